"""Hostile programs are contained, reported as failures, and leave the test process unharmed."""
import os

import pytest

from workbench.tools import run_python

HOSTILE = {
    "infinite loop": ("while True:\n    pass\n", {"timeout"} | {"cpu limit"}),
    "memory bomb": ("x = ' ' * (2 ** 34)\n", None),
    "fork bomb": ("import os\nwhile True:\n    os.fork()\n", None),
    "socket": ("import socket\ns = socket.create_connection(('1.1.1.1', 80), timeout=1)\n", None),
    "socket via builtins": ("__import__('_socket')\n", None),
    "write outside": ("open('/tmp/wb_sandbox_escape.txt', 'w').write('x')\n", None),
    "write outside via os.open": (
        "import os\nos.open('/tmp/wb_sandbox_escape.txt', os.O_WRONLY | os.O_CREAT)\n", None),
    "huge output": ("print('x' * 10_000_000)\n", {"output limit"}),
    "deep recursion": ("import sys\nsys.setrecursionlimit(10**7)\n"
                       "def f(n):\n    return f(n + 1)\nf(0)\n", None),
    "kill parent": ("import os\nos.kill(os.getppid(), 9)\n", None),
    "kill everything": ("import os\nos.kill(-1, 9)\n", None),
    "subprocess": ("import subprocess\nsubprocess.run(['ls', '/'])\n", None),
    "ctypes": ("import ctypes\nctypes.CDLL(None).system(b'true')\n", None),
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_program_is_contained(name):
    code, errors = HOSTILE[name]
    parent = os.getpid()
    r = run_python(code, timeout=6, cpu_seconds=2, memory_mb=256, max_output=10_000)
    assert not r.ok, name
    assert r.error is not None
    if errors:
        assert r.error in errors, (name, r.error, r.stderr[-300:])
    assert os.getpid() == parent
    assert not os.path.exists("/tmp/wb_sandbox_escape.txt")
    assert len(r.stdout) <= 10_000 and len(r.stderr) <= 10_000
    assert run_python("print(6 * 7)").stdout == "42\n"  # the sandbox still works


def test_environment_is_not_leaked(monkeypatch):
    monkeypatch.setenv("WB_SECRET_TOKEN", "hunter2")
    r = run_python("import os\nprint(dict(os.environ))\n")
    assert r.ok and "hunter2" not in r.stdout and "WB_SECRET_TOKEN" not in r.stdout


def test_normal_programs_run_and_can_use_their_directory():
    r = run_python("open('notes.txt', 'w').write('hi')\nprint(open('notes.txt').read())\n"
                   "a=7*3\nb=12+a\nprint(b)\n")
    assert r.ok and r.stdout == "hi\n33\n" and r.feedback == "hi\n33"


def test_errors_are_reported_with_the_exception():
    r = run_python("print(undefined_name)\n")
    assert not r.ok and r.error == "exit status 1" and "NameError" in r.feedback


@pytest.mark.parametrize("kw", [{"timeout": 0}, {"memory_mb": -1}, {"max_output": 0}])
def test_bad_limits_raise(kw):
    with pytest.raises(ValueError):
        run_python("print(1)", **kw)
