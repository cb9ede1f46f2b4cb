"""What a sandboxed program may read and which layers apply: other processes' environments, files
outside its directory (ours or the user's), with every OS layer and with each alone, and the
`layers` a run reports.  Ordinary programs behave as they did before the OS layers."""
import os
import subprocess
import sys
import uuid

import pytest

import workbench.tools.sandbox as sb
from test_sandbox_hostile import config  # noqa: F401 (a fixture: each OS layer on its own)
from workbench.tools import run_python

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX sandbox")
ROOT = os.geteuid() == 0


def _read_all(paths):
    """A program that prints whatever of ``paths`` it can read, and exits 3 if it read none."""
    return (f"got = []\nfor p in {paths!r}:\n    try:\n        got.append(open(p).read())\n"
            "    except Exception as e:\n        print(p, type(e).__name__)\n"
            "print(got)\nraise SystemExit(0 if got else 3)\n")


@pytest.fixture
def secret_process():
    """A process whose environment holds a secret, run by the user the sandbox runs as."""
    token = f"wbsecret{uuid.uuid4().hex}"
    kw = {"user": 65534, "group": 65534, "extra_groups": []} if ROOT else {}
    p = subprocess.Popen(["sleep", "30"], env={"WB_SECRET": token}, **kw)
    yield p.pid, token
    p.kill()
    p.wait()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc")
@pytest.mark.parametrize("whose", ["ours", "a process of the sandbox's user", "scan of /proc"])
def test_other_environments_are_unreadable(whose, secret_process, config):
    pid, token = secret_process
    if whose == "scan of /proc":
        code = ("import os\ngot = []\nfor d in os.listdir('/proc'):\n    try:\n"
                "        e = open(f'/proc/{d}/environ').read()\n"
                "        if 'WB_SECRET' in e: got.append(e)\n    except Exception:\n        pass\n"
                "print(got)\nraise SystemExit(0 if got else 3)\n")
    else:
        code = _read_all([f"/proc/{os.getpid() if whose == 'ours' else pid}/environ"])
    r = run_python(code)
    assert not r.ok and r.error == "exit status 3", (r.stdout, r.stderr[-300:])
    assert token not in r.stdout + r.stderr


@pytest.mark.parametrize("where", ["/tmp", "/var/tmp", "/dev/shm"])
@pytest.mark.parametrize("mode", [0o600, 0o644])
def test_files_outside_are_unreadable(where, mode, config):
    token = f"wbsecret{uuid.uuid4().hex}"
    path = os.path.join(where, f"wbx-{uuid.uuid4().hex[:12]}")
    with open(path, "w") as f:
        f.write(token)
    try:
        os.chmod(path, mode)
        if ROOT:
            os.chown(path, 65534, 65534)  # the sandbox's own user: only hiding keeps it out
        r = run_python(_read_all([path]))
        assert not r.ok and r.error == "exit status 3", (r.stdout, r.stderr[-300:])
        assert token not in r.stdout + r.stderr
    finally:
        os.remove(path)


def test_project_and_home_are_hidden(config):
    project = [os.path.join(sb._PROJECT, f) for f in ("pyproject.toml", "README.md")]
    home = os.path.expanduser("~")
    r = run_python(_read_all(project + [os.path.join(home, ".bashrc"), "/root/.bashrc",
                                        "/root/.ssh/id_rsa", "/etc/shadow"]))
    assert not r.ok and r.error == "exit status 3", (r.stdout, r.stderr[-300:])
    listing = run_python(f"import os\nprint(os.listdir({sb._PROJECT!r}))\n")
    assert listing.stdout in ("", "[]\n") and "workbench" not in listing.stdout


def test_layers_are_reported():
    got = sb.layers()
    assert got == run_python("print(1)").layers and got[-2:] == ("rlimits", "audit-hook")
    if ROOT:
        assert "nobody" in got or "no-capabilities" in got
    if "read-only-fs" in got:
        assert {"mount-ns", "pid-ns", "net-ns"} <= set(got)


def test_layers_claim_only_what_applied(monkeypatch):
    monkeypatch.setattr(sb, "_USE", {})
    r = run_python("print(1)")
    assert r.ok and set(r.layers) <= {"nobody", "rlimits", "audit-hook"}


ORDINARY = {  # code, stdin -> stdout, error
    "print": ("print(6 * 7)", "", "42\n", None),
    "stdin": ("print(input()[::-1])", "abc\n", "cba\n", None),
    "exit code": ("import sys\nprint('x')\nsys.exit(4)", "", "x\n", "exit status 4"),
    "exception": ("1 / 0", "", "", "exit status 1"),
    "stdlib": ("import json, math, re, collections, itertools, fractions, decimal\n"
               "print(json.dumps({'a': math.comb(5, 2)}))", "", '{"a": 10}\n', None),
    "tempfile": ("import tempfile, os\nwith tempfile.TemporaryFile() as f:\n    f.write(b'x')\n"
                 "print(os.path.dirname(tempfile.mkdtemp()) == os.getcwd())", "", "True\n", None),
    "own directory": ("import os\nos.makedirs('a/b')\nopen('a/b/c', 'w').write('hi')\n"
                      "os.rename('a/b/c', 'd')\nprint(open('d').read(), sorted(os.listdir()))",
                      "", "hi ['.stderr', '.stdout', 'a', 'd', 'main.py']\n", None),
    "/dev": ("import os\nprint(len(open('/dev/null').read()), len(os.urandom(3)), "
             "len(open('/dev/urandom', 'rb').read(2)))", "", "0 3 2\n", None),
    "__main__": ("import __main__\nx = 5\nprint(__main__.x, __name__)", "", "5 __main__\n", None),
}


@pytest.mark.parametrize("name", sorted(ORDINARY))
def test_ordinary_programs_behave_as_before(name):
    code, stdin, out, error = ORDINARY[name]
    r = run_python(code, stdin=stdin)
    assert (r.stdout, r.error, r.ok) == (out, error, error is None), r.stderr[-300:]
    if name == "exception":
        assert r.feedback == "exit status 1: ZeroDivisionError: division by zero"
