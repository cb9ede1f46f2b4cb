"""Hostile programs: every route to write outside the work directory, start processes, signal
us, or open sockets fails, is reported as a failure, and leaves no trace outside.

Write routes run one program that tries the route in every world-writable directory (and the
work directory's parent) and exits 3 when it sees that none got through; the test then checks
from the outside that nothing carrying the run's token appeared and that no new entry owned by
``nobody`` appeared there.
"""
import os
import shutil
import sys
import uuid

import pytest

import workbench.tools.sandbox as sb
from workbench.tools import run_python

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX sandbox")
DIRS = ["/tmp", "/var/tmp", "/dev/shm"]

PROGRAM = """\
import os, sys
T = {token!r}
escaped = []
for d in ["/tmp", "/var/tmp", "/dev/shm", os.path.dirname(os.getcwd())]:
    p, n = os.path.join(d, T), T
    try:
{body}
    except Exception as e:
        print(d, type(e).__name__, e, file=sys.stderr)
    try:
        escaped += [os.path.join(d, x) for x in os.listdir(d) if x.startswith(T)]
    except OSError:
        pass
print("escaped", escaped)
sys.exit(0 if escaped else 3)
"""

WRITES = {  # each body runs with d (a directory), p (a path in it), n (a file name)
    "open": "open(p, 'w').write('x')",
    "open on an fd": "open(os.open(p, os.O_WRONLY | os.O_CREAT), 'w').write('x')",
    "os.open": "os.close(os.open(p, os.O_WRONLY | os.O_CREAT))",
    "os.open dir_fd": "os.open(n, os.O_WRONLY | os.O_CREAT, dir_fd=os.open(d, os.O_RDONLY))",
    "open opener dir_fd": "open(n, 'w', opener=lambda f, fl: os.open(f, fl, 0o666, "
                          "dir_fd=os.open(d, os.O_RDONLY))).write('x')",
    "relative to parent": "open('../' + n, 'w') if d == os.path.dirname(os.getcwd()) else "
                          "open(os.path.relpath(p), 'w')",
    "os.mkfifo": "os.mkfifo(p)",
    "os.mkfifo dir_fd": "os.mkfifo(n, dir_fd=os.open(d, os.O_RDONLY))",
    "os.mknod": "os.mknod(p)",
    "os.mknod dir_fd": "os.mknod(n, dir_fd=os.open(d, os.O_RDONLY))",
    "os.mkdir dir_fd": "os.mkdir(n, dir_fd=os.open(d, os.O_RDONLY))",
    "os.makedirs": "os.makedirs(p + '/a/b')",
    "pathlib touch": "import pathlib; pathlib.Path(p).touch()",
    "pathlib write_text": "import pathlib; pathlib.Path(p).write_text('x')",
    "io.FileIO": "import io; io.FileIO(p, 'w').write(b'x')",
    "_io.open": "import _io; _io.open(p, 'w').write('x')",
    "codecs.open": "import codecs; codecs.open(p, 'w').write('x')",
    "os.link dir_fd": "open('a', 'w').close(); os.link('a', n, dst_dir_fd=os.open(d, 0))",
    "os.symlink dir_fd": "os.symlink('/etc/passwd', n, dir_fd=os.open(d, os.O_RDONLY))",
    "os.rename dir_fd": "open('a', 'w').close(); "
                        "os.rename('a', n, src_dir_fd=os.open('.', 0), dst_dir_fd=os.open(d, 0))",
    "os.replace dir_fd": "open('a', 'w').close(); os.replace('a', n, dst_dir_fd=os.open(d, 0))",
    "O_TMPFILE then link": "fd = os.open(d, os.O_TMPFILE | os.O_WRONLY); "
                           "os.link(f'/proc/self/fd/{fd}', p)",
    "shutil.copy": "import shutil; shutil.copy('main.py', p)",
    "shutil.copytree": "import shutil; shutil.copytree('.', p)",
    "tempfile.mkstemp": "import tempfile; tempfile.mkstemp(dir=d, prefix=T)",
    "tempfile.NamedTemporaryFile": "import tempfile; "
                                   "tempfile.NamedTemporaryFile(dir=d, prefix=T, delete=False)",
    "tempfile.mkdtemp": "import tempfile; tempfile.mkdtemp(dir=d, prefix=T)",
    "sqlite3.connect": "import sqlite3; sqlite3.connect(p).execute('create table t(x)')",
    "zipfile": "import zipfile; zipfile.ZipFile(p, 'w').writestr('a', 'b')",
    "tarfile": "import tarfile; tarfile.open(p, 'w').close()",
    "dbm.dumb": "import dbm.dumb; dbm.dumb.open(p, 'c').close()",
    "logging.FileHandler": "import logging; logging.FileHandler(p).close()",
    "py_compile": "open('m.py', 'w').write('x=1'); import py_compile; "
                  "py_compile.compile('m.py', cfile=p, doraise=True)",
    "importlib pycache_prefix": "open(f'm{len(d)}.py', 'w').write('x=1'); "
                                "sys.pycache_prefix = p; sys.dont_write_bytecode = False; "
                                "__import__(f'm{len(d)}')",
    "os.openpty then ttyname": "m, s = os.openpty(); os.symlink(os.ttyname(s), p)",
}


def _nobody_entries():
    found = set()
    for d in DIRS:
        try:
            with os.scandir(d) as it:
                found |= {e.path for e in it if e.stat(follow_symlinks=False).st_uid == 65534
                          and not e.name.startswith("wb-sandbox-")}
        except OSError:
            pass
    return found


def _traces(token):
    return [os.path.join(d, x) for d in DIRS if os.path.isdir(d)
            for x in os.listdir(d) if token in x]


CONFIGS = {"all": ({"namespaces": 1, "landlock": 2}, ("read-only-fs", "landlock:")),
           "mount-ns only": ({"namespaces": 1}, ("read-only-fs",)),
           "landlock only": ({"landlock": 2}, ("landlock:",))}
_seen = {}


@pytest.fixture(params=sorted(CONFIGS))
def config(request, monkeypatch):
    """Runs with every OS layer, only the mount namespace, or only Landlock (skip if absent)."""
    use, wanted = CONFIGS[request.param]
    monkeypatch.setattr(sb, "_USE", use)
    if request.param not in _seen:
        _seen[request.param] = run_python("pass").layers
    got = _seen[request.param]
    missing = [w for w in wanted if not any(x.startswith(w) for x in got)]
    if missing:
        pytest.skip(f"{missing} not available here (layers: {got})")
    return got


@pytest.mark.parametrize("route", sorted(WRITES))
def test_write_outside_is_refused(route, config):
    token = f"wbx-{uuid.uuid4().hex[:12]}"
    before = _nobody_entries()
    body = "\n".join(" " * 8 + line for line in WRITES[route].split("\n"))
    r = run_python(PROGRAM.format(token=token, body=body), timeout=10)
    traces = _traces(token)
    for t in traces:  # an escape fails the test; it should not litter the machine too
        shutil.rmtree(t) if os.path.isdir(t) and not os.path.islink(t) else os.remove(t)
    assert not r.ok and r.error == "exit status 3", (r.error, r.stdout, r.stderr[-800:])
    assert traces == []
    assert _nobody_entries() <= before


def test_existing_world_writable_file_is_untouched(tmp_path):
    victim = f"/tmp/wbx-victim-{uuid.uuid4().hex[:12]}"
    with open(victim, "w") as f:
        f.write("original")
    os.chmod(victim, 0o666)
    try:
        st = os.stat(victim)
        code = (f"import os\nV = {victim!r}\nhits = []\n"
                "for how in ('open(V, \"r+\").write(\"evil\")', 'os.truncate(V, 0)', "
                "'os.utime(V, (0, 0))', 'os.chmod(V, 0o777)', 'os.remove(V)'):\n"
                "    try:\n        exec(how)\n        hits.append(how)\n"
                "    except Exception:\n        pass\n"
                "print(hits)\nraise SystemExit(0 if hits else 3)\n")
        r = run_python(code)
        assert not r.ok and r.error == "exit status 3", (r.stdout, r.stderr[-500:])
        after = os.stat(victim)
        assert open(victim).read() == "original"
        assert (after.st_mtime_ns, after.st_mode) == (st.st_mtime_ns, st.st_mode)
    finally:
        os.remove(victim)

