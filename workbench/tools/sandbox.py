"""Run generated Python only in a sandbox (survey §5.2: code execution as feedback).

The program runs in a separate process, in a fresh temporary directory, with layered limits.
The operating system enforces what it may touch; an audit hook inside the interpreter is the
inner layer.  Every `SandboxResult` lists in ``layers`` the layers that applied to that run
(`layers()` runs an empty program to tell), so nothing claims containment it does not have.

* **always**: its own session (a kill of its group never reaches us); stdout/stderr go to files
  capped by RLIMIT_FSIZE; the wall clock is enforced by the parent; RLIMIT_CPU, RLIMIT_AS,
  RLIMIT_NPROC, RLIMIT_NOFILE, no core files (``rlimits``); Python's isolated mode with an empty
  environment and an audit hook (PEP 578) that refuses sockets, new processes, signals,
  ``ctypes`` and writes outside its directory (``audit-hook``).
* **Linux as root** (with CAP_SYS_ADMIN: CI, ordinary containers, this machine): new mount,
  PID, network, IPC and UTS namespaces (``mount-ns`` ...).  In the mount namespace the whole
  file system is read-only (``read-only-fs``) except the work directory; /tmp, /var/tmp,
  /dev/shm, /run, /root, /home, $HOME and this project are covered by empty read-only tmpfs
  (``hidden:...``; the work directory and Python's standard library are bound back in); /proc is
  a fresh instance for the new PID namespace, mounted ``hidepid=2`` (``proc:hidepid``): no other
  process, and no other process's environment, is visible.  The program is not PID 1 (a reaper
  is); when the reaper ends, the kernel kills whatever is left in the namespace.  The program
  runs as ``nobody`` (``nobody``), so it has no capabilities.
* **Landlock** (Linux 5.13+, root or not, ``landlock:abiN``), in the program's process on top of
  the rest: no file may be written, created, removed or executed outside the work directory;
  files may be read only there, in Python's standard library and in /usr, /lib*, /bin, /etc,
  /proc, /sys and /dev/{null,zero,random,urandom}; no TCP (ABI 4+), no abstract Unix sockets
  and no signals to processes outside the sandbox (ABI 6+); and no ptrace-like access (so no
  /proc/<pid>/environ) to processes outside it.
* **Linux as a user**: the namespaces above inside a new user namespace (``user-ns``; the
  program is ``nobody`` inside, ``no-capabilities``) where unprivileged user namespaces are
  allowed, plus Landlock; else Landlock only; else the rlimits and the audit hook only.
* **root without CAP_SYS_ADMIN** (a locked-down container): a user namespace if allowed, with
  Landlock (outside the namespace the program is still uid 0, without capabilities, so root's
  own 0600 files are kept out only by the hidden directories and Landlock); else Landlock and
  ``nobody``; else ``nobody``, rlimits and the audit hook.  **Colab** runs as root in such a
  container; which of these its kernel and container allow is not verified here: ``layers``
  says, on each run.
* **macOS**: ``nobody`` when run as root, rlimits and the audit hook only: no OS file-system
  containment.

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
def _setup():
    cpu, mem, out, root, fd, use = (int(x) for x in sys.argv[1:7])
    work, layers, sys_ = os.path.realpath(os.getcwd()), [], None
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    if sys.platform.startswith("linux") and use:
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        libc.syscall.restype = ctypes.c_long
        def sys_(name, *a):
            f = libc.syscall if isinstance(name, int) else getattr(libc, name)
            r = f(*([name] if f is libc.syscall else []), *(ctypes.c_long(x) if isinstance(x, int)
                                                           else x for x in a))
            if r < 0:
                e = ctypes.get_errno()
                raise OSError(e, os.strerror(e))
            return r
        if use & 1:
            _namespaces(ctypes, sys_, root, work, layers, sys.argv[7:])
    if "pid-ns" in layers:
        _reaper(sys_, fd, layers)  # returns only in the program's process
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    resource.setrlimit(resource.RLIMIT_AS, (mem * 2**20, mem * 2**20))
    resource.setrlimit(resource.RLIMIT_FSIZE, (out, out))
    resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))
    if sys_ and use & 2:
        try:
            _landlock(ctypes, sys_, work, layers)
        except OSError:
            pass  # not named in `layers`
    if "user-ns" in layers:  # nobody inside; no capabilities left in the namespace
        hdr, data = (ctypes.c_uint32 * 2)(0x20080522, 0), (ctypes.c_uint32 * 6)()
        sys_("capset", hdr, data)
        layers.append("no-capabilities")
    elif root:
        os.setgroups([])
        os.setgid(65534)
        os.setuid(65534)
        layers.append("nobody")
    resource.setrlimit(resource.RLIMIT_NPROC, (32, 32))
    os.write(fd, (" ".join(layers + ["rlimits", "audit-hook"]) + "\n").encode())
    os.close(fd)
def _mount(sys_, src, dst, typ, flags, data=None):
    e = lambda s: None if s is None else os.fsencode(s)
    sys_("mount", e(src), e(dst), e(typ), flags, e(data))
def _namespaces(ctypes, sys_, root, work, layers, hide):
    ns, user = 0x20000 | 0x4000000 | 0x8000000 | 0x20000000 | 0x40000000, 0x10000000
    uid, gid = os.getuid(), os.getgid()
    for flags in ((ns, ns | user) if root else (ns | user,)):
        try:
            sys_("unshare", flags)
        except OSError:
            continue
        layers += ["user-ns"] * bool(flags & user) + ["pid-ns", "net-ns", "ipc-ns", "uts-ns"]
        try:  # a layer is named only once it is in place
            if flags & user:
                for name, s in (("setgroups", "deny"), ("uid_map", f"65534 {uid} 1"),
                                ("gid_map", f"65534 {gid} 1")):
                    with open(f"/proc/self/{name}", "w") as f:
                        f.write(s)
            _filesystem(ctypes, sys_, work, layers, hide)
        except OSError:
            pass
        return
    if root:
        try:
            sys_("unshare", 0x40000000)
            layers.append("net-ns")
        except OSError:
            pass
def _filesystem(ctypes, sys_, work, layers, hide):
    _mount(sys_, None, "/", None, 16384 | 1 << 18)  # MS_REC | MS_PRIVATE: nothing leaks out
    layers.append("mount-ns")
    keep = {os.path.realpath(p) for p in [work] + sys.path if os.path.isdir(p)}
    keep = [k for k in keep if not any(k.startswith(o + "/") for o in keep)]
    done = []
    for h in sorted({os.path.realpath(h) for h in hide if h}, key=lambda h: (len(h), h)):
        if h == "/" or not os.path.isdir(h) or any(h == d or h.startswith(d + "/") for d in done) \
                or any(h == k or h.startswith(k + "/") for k in keep):
            continue
        inner = [(k, os.open(k, os.O_PATH)) for k in keep if k.startswith(h + "/")]
        try:
            _mount(sys_, "tmpfs", h, "tmpfs", 2 | 4 | 8, "mode=755,size=64k")
            try:
                for k, kfd in inner:
                    os.makedirs(k)
                    _mount(sys_, f"/proc/self/fd/{kfd}", k, None, 4096 | 16384)  # bind, rec
                done.append(h)
            except OSError:
                sys_("umount2", os.fsencode(h), 2)  # MNT_DETACH: leave it as it was
        except OSError:
            pass
        for _, kfd in inner:
            os.close(kfd)
    if done:
        layers.append("hidden:" + ",".join(done))
    _mount(sys_, work, work, None, 4096)
    os.chdir(work)  # onto the bind mount: the directory we started in is under the tmpfs/ro root
    class Attr(ctypes.Structure):
        _fields_ = [(n, ctypes.c_uint64) for n in ("set", "clr", "propagation", "userns_fd")]
    try:  # mount_setattr: read-only (and nosuid) everywhere, then writable again in `work`
        sys_(442, -100, os.fsencode("/"), 0x8000, ctypes.byref(Attr(1 | 2)), 32)
        sys_(442, -100, os.fsencode(work), 0, ctypes.byref(Attr(0, 1)), 32)
    except OSError:  # before Linux 5.12: remount each mount, keeping its flags
        import re
        opts = {"ro": 1, "nosuid": 2, "nodev": 4, "noexec": 8, "noatime": 1024,
                "nodiratime": 2048, "relatime": 1 << 21}
        for line in open("/proc/self/mountinfo"):
            f = line.split()
            mp = re.sub(r"\\([0-7]{3})", lambda m: chr(int(m[1], 8)), f[4])
            flags = 32 | 4096 | sum(opts.get(o, 0) for o in f[5].split(","))
            try:
                _mount(sys_, None, mp, None, flags | (0 if mp == work else 1 | 2))
            except OSError:
                if mp in ("/", work):
                    raise
    layers.append("read-only-fs")
def _reaper(sys_, fd, layers):
    sr, sw = os.pipe()
    if os.fork():  # outside the PID namespace: end as the program ended
        os.close(sw), os.close(fd)
        st = os.wait()[1]
        data = os.read(sr, 32)
        _exit_like(int(data) if data else st)
    os.close(sr)
    sys_("prctl", 1, 9, 0, 0, 0)  # PR_SET_PDEATHSIG: SIGKILL (when pid 1 ends, all in it end)
    for typ, data, layer in (("proc", "hidepid=2", "proc:hidepid"), ("tmpfs", "size=4k",
                                                                        "proc:hidden")):
        if "mount-ns" not in layers:  # not private: a mount would show outside
            break
        try:
            _mount(sys_, typ, "/proc", typ, 1 | 2 | 4 | 8, data)
            layers.append(layer)
            break
        except OSError:
            pass
    p = os.fork()
    if p:  # pid 1: reap everything until the program ends, pass its status out
        os.close(fd)
        while True:
            pid, st = os.wait()
            if pid == p:
                os.write(sw, b"%d" % st)
                os._exit(0)
    os.close(sw)
def _exit_like(st):
    if os.WIFSIGNALED(st):
        import signal
        sig = os.WTERMSIG(st)
        if sig not in (signal.SIGKILL, signal.SIGSTOP):
            signal.signal(sig, signal.SIG_DFL)
        os.kill(os.getpid(), sig)
    os._exit(os.WEXITSTATUS(st) if os.WIFEXITED(st) else 1)
def _landlock(ctypes, sys_, work, layers):
    try:
        abi = sys_(444, None, 0, 1)  # landlock_create_ruleset(NULL, 0, VERSION)
    except OSError:
        return
    fs = (1 << 13) - 1 | (abi >= 2) << 13 | (abi >= 3) << 14  # all but IOCTL_DEV: execute,
    read = 4 | 8                                                # read, write, make, remove, ...
    attr = (ctypes.c_uint64 * 3)(fs, 3 if abi >= 4 else 0, 3 if abi >= 6 else 0)  # TCP; scopes
    rs = sys_(444, ctypes.byref(attr), 8 if abi < 4 else 16 if abi < 6 else 24, 0)
    class Beneath(ctypes.Structure):
        _pack_, _fields_ = 1, [("allowed", ctypes.c_uint64), ("fd", ctypes.c_int32)]
    system = ["/usr", "/lib", "/lib32", "/lib64", "/bin", "/etc", "/proc", "/sys"]
    rules = [(p, read) for p in system + sys.path if os.path.isdir(p)] + [
        (f"/dev/{d}", 4) for d in ("zero", "random", "urandom") if os.path.exists(f"/dev/{d}")]
    for path, allowed in rules + [(work, fs & ~1), ("/dev/null", 2 | 4 | (abi >= 3) << 14)]:
        pfd = os.open(path, os.O_PATH)
        try:
            sys_(445, rs, 1, ctypes.byref(Beneath(allowed, pfd)), 0)
        except OSError:
            if path == work:
                raise
        os.close(pfd)
    sys_("prctl", 38, 1, 0, 0, 0)  # PR_SET_NO_NEW_PRIVS
    sys_(446, rs, 0)
    os.close(rs)
    layers.append(f"landlock:abi{abi}")
def _contain():
    banned_modules = {"socket", "_socket", "ctypes", "_ctypes", "subprocess", "_posixsubprocess",
                      "multiprocessing", "signal", "_signal", "pty", "fcntl", "mmap", "resource"}
    banned = ("socket.", "os.system", "os.exec", "os.posix_spawn", "os.spawn", "os.fork",
              "os.forkpty", "os.kill", "os.killpg", "subprocess.", "ctypes.", "os.putenv",
              "os.unsetenv", "os.chdir", "os.chmod", "os.chown", "os.link", "os.symlink",
              "shutil.rmtree", "os.setuid", "os.setgid", "sys.setprofile", "sys.settrace",
              "signal.")
    writes = ("open", "os.remove", "os.rename", "os.mkdir", "os.rmdir", "os.truncate",
              "os.utime", "os.replace")
    dir_fds = {"os.mkdir": (2,), "os.remove": (1,), "os.rmdir": (1,), "os.rename": (2, 3),
               "os.replace": (2, 3), "os.utime": (3,)}  # the dir_fd arguments (-1: none)
    root = os.path.realpath(os.getcwd())
    def inside(p):
        try:
            p = os.path.realpath(os.fspath(p))
        except TypeError:
            return False
        return p == root or p.startswith(root + os.sep)
    def hook(event, args):
        if event == "import" and args[0].split(".")[0] in banned_modules:
            raise PermissionError(f"sandbox: importing {args[0]} is not allowed")
        if event.startswith(banned):
            raise PermissionError(f"sandbox: {event} is not allowed")
        if event == "sqlite3.connect" and args[0] not in (":memory:", "") and not inside(args[0]):
            raise PermissionError("sandbox: a database outside the sandbox")
        if event in writes:
            if event == "open":
                path, mode, flags = args
                if isinstance(path, int):
                    return
                writing = (mode is not None and any(c in mode for c in "wax+")) or \
                    (flags is not None and flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT))
                if writing and not inside(path):
                    raise PermissionError(f"sandbox: writing {path} outside the sandbox")
            elif not all(inside(a) for a in args[:2] if isinstance(a, (str, bytes, os.PathLike))) \
                    or any(args[i] not in (None, -1, -100) for i in dir_fds.get(event, ())):
                raise PermissionError(f"sandbox: {event} outside the sandbox")
    for name in [m for m in sys.modules if m.split(".")[0] in banned_modules]:
        del sys.modules[name]  # loaded by the guard; an import must go through the hook again
    main = type(sys)("__main__")
    main.__builtins__ = __builtins__
    sys.modules["__main__"] = main
    sys.argv = ["main.py"]
    sys.addaudithook(hook)
    return main.__dict__
_setup()
__g = _contain()
del _setup, _mount, _namespaces, _filesystem, _reaper, _exit_like, _landlock, _contain, resource
exec(compile(open("main.py").read(), "main.py", "exec"), __g)
'''

_PROJECT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
_USE = {"namespaces": 1, "landlock": 2}  # the OS layers to try (tests turn one off)
_HIDE = ("/tmp", "/var/tmp", "/dev/shm", "/run", "/root", "/home")


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
    layers: tuple = ()        # the containment layers that applied (module docstring)

    @property
    def feedback(self) -> str:
        """One line to show a model or a person: the output, or what went wrong."""
        if self.ok:
            return self.stdout.strip()
        last = self.stderr.strip().split("\n")[-1] if self.stderr.strip() else ""
        return f"{self.error}: {last}" if last else str(self.error)


_LAYERS: tuple | None = None


def layers() -> tuple:
    """The containment layers a run gets on this machine (runs an empty program once)."""
    global _LAYERS
    if _LAYERS is None:
        _LAYERS = run_python("pass").layers
    return _LAYERS


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
    lr, lw = os.pipe()  # the guard says here which layers applied, and closes it before the program
    try:
        with open(os.path.join(work, "main.py"), "w") as f:
            f.write(code)
        if root:
            os.chown(work, 65534, 65534)
            os.chmod(work, 0o700)
        out_path, err_path = os.path.join(work, ".stdout"), os.path.join(work, ".stderr")
        hide = [*_HIDE, os.path.expanduser("~"), _PROJECT]
        t0 = time.monotonic()
        with open(out_path, "wb") as out, open(err_path, "wb") as err:
            if root:
                os.chown(out_path, 65534, 65534)
                os.chown(err_path, 65534, 65534)
            args = [int(cpu_seconds), int(memory_mb), int(max_output), int(root), lw,
                    sum(_USE.values())]
            proc = subprocess.Popen(
                [sys.executable, "-I", "-S", "-B", "-c", GUARD, *map(str, args), *hide], cwd=work,
                stdin=subprocess.PIPE, stdout=out, stderr=err, pass_fds=(lw,),
                env={"PATH": "/usr/bin:/bin", "PYTHONIOENCODING": "utf-8"},
                start_new_session=True, close_fds=True)
            os.close(lw)
            lw = None
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
        return SandboxResult(error is None, stdout, stderr, rc, error, seconds, t1 or t2,
                             _read_layers(lr))
    finally:
        os.close(lr)
        if lw is not None:
            os.close(lw)
        shutil.rmtree(work, ignore_errors=True)


def _read_layers(fd):
    os.set_blocking(fd, False)
    try:
        data = os.read(fd, 4096)
    except BlockingIOError:  # only if a writer is still alive: then claim nothing
        return ()
    return tuple(data.decode().split()) if data.endswith(b"\n") else ()


def _kill_group(proc):
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        proc.kill()


def _read(path, limit):
    with open(path, "rb") as f:
        data = f.read(limit + 1)
    return data[:limit].decode("utf-8", "replace"), len(data) > limit or len(data) >= limit
