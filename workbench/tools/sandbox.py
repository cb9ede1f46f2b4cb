"""Run generated Python only in a sandbox (survey §5.2: code execution as feedback).

The program runs in a separate process, in a fresh temporary directory, with layered limits:

* **process**: its own session (a kill of its group never reaches us); stdout/stderr go to
  files capped by RLIMIT_FSIZE; the wall clock is enforced by the parent;
* **resources**: RLIMIT_CPU (seconds of CPU), RLIMIT_AS (address space), RLIMIT_NPROC,
  RLIMIT_NOFILE, no core files;
* **identity and network** (when we run as root, as on Colab or in containers): a new network
  namespace with no interfaces, and the user ``nobody``, so the file system's permissions
  apply to it;
* **inside the interpreter**: Python's isolated mode with an empty environment, and an audit hook
  (PEP 578) that refuses sockets, new processes, signals, ``ctypes``, and writes outside its
  directory.

A program that breaks a rule fails; the failure is reported in the `SandboxResult`, never raised.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass

GUARD = r'''
import sys, os, resource
_cpu, _mem, _out, _nobody, _net = (int(x) for x in sys.argv[1:6])
if _net:
    try:
        import ctypes
        ctypes.CDLL(None, use_errno=True).unshare(0x40000000)  # CLONE_NEWNET: no interfaces
    except Exception:
        pass  # the audit hook below still refuses sockets
resource.setrlimit(resource.RLIMIT_CPU, (_cpu, _cpu + 1))
resource.setrlimit(resource.RLIMIT_AS, (_mem * 2**20, _mem * 2**20))
resource.setrlimit(resource.RLIMIT_FSIZE, (_out, _out))
resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))
resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
if _nobody:
    os.setgroups([])
    os.setgid(65534)
    os.setuid(65534)
resource.setrlimit(resource.RLIMIT_NPROC, (32, 32))
sys.argv = ["main.py"]
_root = os.path.realpath(os.getcwd())
_BANNED_MODULES = {"socket", "_socket", "ctypes", "_ctypes", "subprocess", "_posixsubprocess",
                   "multiprocessing", "signal", "_signal", "pty", "fcntl", "mmap", "resource"}
_BANNED_EVENTS = ("socket.", "os.system", "os.exec", "os.posix_spawn", "os.spawn", "os.fork",
                  "os.forkpty", "os.kill", "os.killpg", "subprocess.", "ctypes.", "os.putenv",
                  "os.unsetenv", "os.chdir", "os.chmod", "os.chown", "os.link", "os.symlink",
                  "shutil.rmtree", "os.setuid", "os.setgid", "sys.setprofile", "sys.settrace")
_WRITES = ("open", "os.remove", "os.rename", "os.mkdir", "os.rmdir", "os.truncate", "os.utime",
           "os.replace")
def _inside(p):
    try:
        p = os.path.realpath(os.fspath(p))
    except TypeError:
        return False
    return p == _root or p.startswith(_root + os.sep)
def _hook(event, args):
    if event == "import" and args[0].split(".")[0] in _BANNED_MODULES:
        raise PermissionError(f"sandbox: importing {args[0]} is not allowed")
    if event.startswith(_BANNED_EVENTS):
        raise PermissionError(f"sandbox: {event} is not allowed")
    if event in _WRITES:
        if event == "open":
            path, mode, flags = args
            if isinstance(path, int):
                return
            writing = (mode is not None and any(c in mode for c in "wax+")) or \
                (flags is not None and flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT))
            if writing and not _inside(path):
                raise PermissionError(f"sandbox: writing {path} outside the sandbox")
        elif not all(_inside(a) for a in args[:2] if isinstance(a, (str, bytes, os.PathLike))):
            raise PermissionError(f"sandbox: {event} outside the sandbox")
sys.addaudithook(_hook)
del _hook
__src = open("main.py").read()
exec(compile(__src, "main.py", "exec"), {"__name__": "__main__", "__builtins__": __builtins__})
'''


@dataclass
class SandboxResult:
    ok: bool                  # exited with status 0 within every limit
    stdout: str
    stderr: str
    returncode: int | None
    error: str | None         # "timeout", "cpu limit", "output limit", "killed by signal N",
                              # "exit status N" (the stderr's last line says more), or None
    seconds: float
    truncated: bool = False

    @property
    def feedback(self) -> str:
        """One line to show a model or a person: the output, or what went wrong."""
        if self.ok:
            return self.stdout.strip()
        last = self.stderr.strip().split("\n")[-1] if self.stderr.strip() else ""
        return f"{self.error}: {last}" if last else str(self.error)


def run_python(code: str, timeout: float = 5.0, cpu_seconds: int = 5, memory_mb: int = 256,
               max_output: int = 64_000, stdin: str = "") -> SandboxResult:
    """Run ``code`` as ``main.py`` in a sandbox and report what happened (never raises for the
    program's own failures)."""
    if not isinstance(code, str):
        raise TypeError("code must be a string")
    for name, v in (("timeout", timeout), ("cpu_seconds", cpu_seconds), ("memory_mb", memory_mb),
                    ("max_output", max_output)):
        if v <= 0:
            raise ValueError(f"{name} must be > 0, got {v}")
    if os.name != "posix":
        raise RuntimeError("the sandbox needs a POSIX system (Linux or macOS)")
    root = os.geteuid() == 0
    work = tempfile.mkdtemp(prefix="wb-sandbox-")
    try:
        with open(os.path.join(work, "main.py"), "w") as f:
            f.write(code)
        if root:
            os.chown(work, 65534, 65534)
            os.chmod(work, 0o700)
        out_path, err_path = os.path.join(work, ".stdout"), os.path.join(work, ".stderr")
        t0 = time.monotonic()
        with open(out_path, "wb") as out, open(err_path, "wb") as err:
            if root:
                os.chown(out_path, 65534, 65534)
                os.chown(err_path, 65534, 65534)
            args = [int(cpu_seconds), int(memory_mb), int(max_output), int(root),
                    int(root and sys.platform.startswith("linux"))]
            proc = subprocess.Popen(
                [sys.executable, "-I", "-S", "-B", "-c", GUARD, *map(str, args)], cwd=work,
                stdin=subprocess.PIPE, stdout=out, stderr=err,
                env={"PATH": "/usr/bin:/bin", "PYTHONIOENCODING": "utf-8"},
                start_new_session=True, close_fds=True)
            try:
                proc.communicate(stdin.encode(), timeout=timeout)
                timed_out = False
            except subprocess.TimeoutExpired:
                timed_out = True
                _kill_group(proc)
                proc.wait()
        seconds = time.monotonic() - t0
        stdout, t1 = _read(out_path, max_output)
        stderr, t2 = _read(err_path, max_output)
        rc = proc.returncode
        error = None
        if timed_out:
            error = "timeout"
        elif rc is not None and rc < 0:
            sig = -rc
            error = {signal.SIGXCPU: "cpu limit", signal.SIGXFSZ: "output limit",
                     signal.SIGKILL: "killed (cpu or memory limit)"}.get(sig, f"killed by signal {sig}")
        elif rc:
            error = f"exit status {rc}"
        if t1 or t2:  # Python ignores SIGXFSZ: the write fails and the program exits non-zero
            error = "output limit"
        return SandboxResult(error is None, stdout, stderr, rc, error, seconds, t1 or t2)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _kill_group(proc):
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        proc.kill()


def _read(path, limit):
    with open(path, "rb") as f:
        data = f.read(limit + 1)
    return data[:limit].decode("utf-8", "replace"), len(data) > limit or len(data) >= limit
