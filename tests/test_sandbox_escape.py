"""Hostile programs that try to start processes, signal us, open sockets, exhaust resources or
reach the guard's own objects: each fails, is reported as a failure, and we stay unharmed."""
import os
import signal
import socket
import sys
import uuid

import pytest

from workbench.tools import run_python

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX sandbox")

SPAWN = {
    "os.fork": "import os\nif os.fork() == 0:\n    print('spawned')\n",
    "os.posix_spawn": "import os\nos.posix_spawn('/bin/echo', ['echo', 'spawned'], {})\n",
    "os.system": "import os\nos.system('echo spawned')\n",
    "os.execv": "import os\nos.execv('/bin/echo', ['echo', 'spawned'])\n",
    "os.forkpty": "import os\nif os.forkpty()[0] == 0:\n    print('spawned')\n",
    "subprocess": "import subprocess\nsubprocess.run(['echo', 'spawned'])\n",
    "pty.spawn": "import pty\npty.spawn(['echo', 'spawned'])\n",
    "multiprocessing": "import multiprocessing as m\nm.Process(target=print, args=('spawned',))"
                       ".start()\n",
    "_posixsubprocess": "import _posixsubprocess\n",
    "posix.fork": "import posix\nif posix.fork() == 0:\n    print('spawned')\n",
}


@pytest.mark.parametrize("route", sorted(SPAWN))
def test_process_creation_is_refused(route):
    r = run_python(SPAWN[route], timeout=10)
    assert not r.ok and "spawned" not in r.stdout, (r.error, r.stdout, r.stderr[-500:])
    assert "not allowed" in r.stderr or "Permission" in r.stderr, r.stderr[-500:]


SIGNALS = {
    "os.kill parent": "import os\nos.kill({pid}, 10)\n",
    "os.killpg parent group": "import os\nos.killpg({pgid}, 10)\n",
    "os.kill -1": "import os\nos.kill(-1, 10)\n",
    "signal.pidfd_send_signal": "import os, signal\nsignal.pidfd_send_signal(os.pidfd_open({pid}), "
                                "10)\n",
    "_signal via sys.modules": "import sys\nsys.modules.get('_signal') or __import__('_signal')\n",
}


@pytest.mark.parametrize("route", sorted(SIGNALS))
def test_signals_do_not_reach_us(route):
    got = []
    old = signal.signal(signal.SIGUSR1, lambda *a: got.append(a))
    try:
        r = run_python(SIGNALS[route].format(pid=os.getpid(), pgid=os.getpgid(0)), timeout=10)
    finally:
        signal.signal(signal.SIGUSR1, old)
    assert not r.ok and got == [], (r.error, r.stderr[-500:])


@pytest.fixture
def listeners(tmp_path):
    tcp, udp = socket.socket(), socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    tcp.bind(("127.0.0.1", 0)), tcp.listen(), udp.bind(("127.0.0.1", 0))
    unix = socket.socket(socket.AF_UNIX)
    path = f"/tmp/wbx-{uuid.uuid4().hex[:12]}.sock"
    unix.bind(path), unix.listen(), os.chmod(path, 0o777)
    for s in (tcp, udp, unix):
        s.setblocking(False)
    yield {"tcp": tcp.getsockname()[1], "udp": udp.getsockname()[1], "unix": path}
    for s in (tcp, udp, unix):
        with pytest.raises(BlockingIOError):  # nothing connected, nothing arrived
            s.accept() if s is not udp else s.recv(10)
        s.close()
    os.remove(path)


SOCKETS = {
    "tcp": "import socket\nsocket.create_connection(('127.0.0.1', {tcp}), timeout=1)\n",
    "udp": "import socket\nsocket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b'x', "
           "('127.0.0.1', {udp}))\n",
    "unix": "import socket\nsocket.socket(socket.AF_UNIX).connect({unix!r})\n",
    "raw": "import socket\nsocket.socket(socket.AF_INET, socket.SOCK_RAW, 1)\n",
    "_socket": "import _socket\n_s = _socket.socket(_socket.AF_UNIX)\n_s.connect({unix!r})\n",
    "importlib": "import importlib\nimportlib.import_module('socket').socket().connect("
                 "('127.0.0.1', {tcp}))\n",
    "http.client": "import http.client\nhttp.client.HTTPConnection('127.0.0.1', {tcp}).request("
                   "'GET', '/')\n",
}


@pytest.mark.parametrize("route", sorted(SOCKETS))
def test_sockets_are_refused(route, listeners):
    r = run_python(SOCKETS[route].format(**listeners), timeout=10)
    assert not r.ok, (r.stdout, r.stderr[-500:])


RESOURCES = {
    "fork bomb": ("import os\nwhile True:\n    os.fork()\n", None),
    "memory bomb": ("x = bytearray(2 ** 33)\n", None),
    "memory bomb by growth": ("x = []\nwhile True:\n    x.append(' ' * 2 ** 20)\n", None),
    "infinite output": ("while True:\n    print('x' * 1000)\n", {"output limit"}),
    "infinite stderr": ("import sys\nwhile True:\n    sys.stderr.write('x' * 1000)\n",
                        {"output limit"}),
    "infinite loop": ("while True:\n    pass\n", {"timeout", "cpu limit"}),
    "sleep forever": ("import time\ntime.sleep(60)\n", {"timeout"}),
    "fd exhaustion": ("fs = [open('main.py') for _ in range(100000)]\n", None),
    "giant file": ("f = open('big', 'wb')\nwhile True:\n    f.write(b'x' * 2 ** 20)\n", None),
    "giant sparse file": ("f = open('big', 'wb')\nf.seek(2 ** 40)\nf.write(b'x')\nf.flush()\n",
                          None),
}


@pytest.mark.parametrize("route", sorted(RESOURCES))
def test_resource_exhaustion_is_stopped(route):
    code, errors = RESOURCES[route]
    r = run_python(code, timeout=3, cpu_seconds=2, memory_mb=256, max_output=10_000)
    assert not r.ok and r.seconds < 10, (r.error, r.stderr[-300:])
    if errors:
        assert r.error in errors, (r.error, r.stderr[-300:])
    assert len(r.stdout) <= 10_000 and len(r.stderr) <= 10_000


GUARD_OBJECTS = {
    "ctypes left in sys.modules": "import sys\nsys.modules['ctypes'].CDLL(None).system(b'true')\n",
    "resource left in sys.modules": "import sys\nsys.modules['resource'].setrlimit(0, (-1, -1))\n",
    "the guard's globals": "import __main__\n__main__._setup\n",
    "the guard's frame": "import sys\nsys._getframe(1).f_globals['_setup']\n",
}


@pytest.mark.parametrize("route", sorted(GUARD_OBJECTS))
def test_guard_objects_are_out_of_reach(route):
    r = run_python(GUARD_OBJECTS[route])
    assert not r.ok and r.error == "exit status 1", (r.error, r.stderr[-300:])
    assert "Error" in r.stderr.strip().split("\n")[-1]
