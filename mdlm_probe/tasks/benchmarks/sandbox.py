"""Run untrusted (model-written) Python in a contained process and report a verdict.

`run_program(code, timeout, memory_mb)` -> `Result(verdict, stdout, stderr, returncode, protections)`.
Verdicts: `passed` (exit 0), `failed` (an AssertionError: a test failed), `error` (any other exception,
a crash, a signal, the file-size limit), `timeout` (wall clock or CPU limit), `memory` (MemoryError at
the address-space limit). A program can still fake `passed` (e.g. `os._exit(0)` before the tests): the
sandbox contains code, it does not make scores cheat-proof.

Process tree (this file is also the launcher script, stdlib only, run as `python -I -S sandbox.py`):

    harness (this process) --Popen, new session--> launcher A: unshare(net, mount, pid, ipc)
        A --fork--> B: pid 1 of the new pid namespace; private mounts: fresh /proc, every mount
                       remounted read-only except the temp working dir; reports the active protections
            B --fork--> C: rlimits, drop to an unused uid/gid, stripped env, execve(python -I runner)

When B exits (C done) or is killed (wall timeout: the harness kills A's process group), the kernel kills
everything left in the pid namespace, so forked children and `setsid` escapees die with it. Each step
that is unavailable (not root, no namespaces, another OS) is skipped: the program runs anyway and the
result lists the protections that *were* active; `sandbox_report()` warns once about missing ones.
"""

from __future__ import annotations

import json
import os
import re
import sys

# Exit codes of the runner (process C) that carry a verdict.
EXIT_FAILED, EXIT_ERROR, EXIT_MEMORY, EXIT_SETUP = 1, 2, 3, 126

# Every protection the full sandbox has (`userns` only appears when not run as root).
ALL_PROTECTIONS = ("session", "wall_timeout", "rlimits", "env", "tmpdir", "output_cap", "uid_drop",
                   "netns", "mountns", "readonly_fs", "pidns", "ipcns")

# Runs inside C: execute program.py and map the outcome to an exit code (os._exit skips atexit hooks).
RUNNER = r"""
import os, sys, traceback
def _out(rc):
    try:
        sys.stdout.flush(); sys.stderr.flush()
    except BaseException:
        pass
    os._exit(rc)
try:
    with open('program.py', encoding='utf-8') as _f:
        _code = compile(_f.read(), 'program.py', 'exec')
    exec(_code, {'__name__': '__main__', '__file__': 'program.py', '__builtins__': __builtins__})
except SystemExit as e:
    _out(0 if e.code in (None, 0) else 2)
except AssertionError:
    traceback.print_exc(); _out(1)
except MemoryError:
    _out(3)
except BaseException:
    try:
        traceback.print_exc()
    except BaseException:
        pass
    _out(2)
_out(0)
"""

# ----------------------------------------------------------------------------------------- launcher
# (runs as a script in process A; keep it stdlib-only and free of package imports)

CLONE_NEWNS, CLONE_NEWIPC, CLONE_NEWUSER = 0x00020000, 0x08000000, 0x10000000
CLONE_NEWPID, CLONE_NEWNET = 0x20000000, 0x40000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REMOUNT = 1, 2, 4, 8, 32
MS_NOATIME, MS_NODIRATIME, MS_BIND, MS_REC, MS_PRIVATE, MS_RELATIME = 1024, 2048, 4096, 16384, 1 << 18, 1 << 21
_KEEP_FLAGS = {"nosuid": MS_NOSUID, "nodev": MS_NODEV, "noexec": MS_NOEXEC, "noatime": MS_NOATIME,
               "nodiratime": MS_NODIRATIME, "relatime": MS_RELATIME}


def _libc():
    import ctypes

    # CDLL(None): the interpreter's own symbols include libc (ctypes.util.find_library would fork a
    # helper process, which after unshare(NEWPID) would become and use up the namespace's pid 1).
    return ctypes.CDLL(None, use_errno=True), ctypes


def _sys(fn, *args) -> None:
    """Call a libc function; raise OSError with errno on failure."""
    libc, ctypes = _libc()
    conv = [a.encode() if isinstance(a, str) else a for a in args]
    if getattr(libc, fn)(*conv) != 0:
        e = ctypes.get_errno()
        raise OSError(e, f"{fn}: {os.strerror(e)}")


def _mount(src, target, fstype, flags, data=None) -> None:
    _sys("mount", src, target, fstype, flags, data)


def _mounts() -> list[tuple[str, set[str]]]:
    """(mount point, per-mount options) from /proc/self/mountinfo."""
    out = []
    with open("/proc/self/mountinfo") as fh:
        for line in fh:
            f = line.split()
            point = re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), f[4])  # octal escapes: \040
            out.append((point, set(f[5].split(","))))
    return out


def _unshare(cfg: dict, prot: list, notes: list) -> None:
    if os.geteuid() != 0 and cfg["want_ns"]:
        # Unprivileged: a user namespace (own uid mapped to itself) grants the capabilities the others need.
        uid, gid = os.geteuid(), os.getegid()
        try:
            _sys("unshare", CLONE_NEWUSER)
            with open("/proc/self/setgroups", "w") as fh:
                fh.write("deny")
            with open("/proc/self/uid_map", "w") as fh:
                fh.write(f"{uid} {uid} 1")
            with open("/proc/self/gid_map", "w") as fh:
                fh.write(f"{gid} {gid} 1")
            prot.append("userns")
        except OSError as e:
            notes.append(f"userns: {e}")
    if not cfg["want_ns"]:
        return
    for flag, name in ((CLONE_NEWNET, "netns"), (CLONE_NEWNS, "mountns"), (CLONE_NEWPID, "pidns"),
                       (CLONE_NEWIPC, "ipcns")):
        try:
            _sys("unshare", flag)
            prot.append(name)
        except (OSError, AttributeError) as e:
            notes.append(f"{name}: {e}")


def _setup_mounts(cfg: dict, prot: list, notes: list) -> None:
    """In B (pid 1, private mount namespace): fresh /proc, interpreter re-exposed, all read-only but workdir."""
    _mount(None, "/", None, MS_REC | MS_PRIVATE)
    if "pidns" in prot:
        try:  # a /proc of the new pid namespace: the program sees only its own processes
            _mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
        except OSError as e:
            notes.append(f"proc: {e}")
    # The interpreter may live under a directory the unprivileged uid cannot enter (e.g. /root/.pyenv):
    # hide that directory under an empty tmpfs and bind only the interpreter's prefix back into it.
    for i, (hidden, paths) in enumerate(cfg["expose"]):
        stages = []
        for j, p in enumerate(paths):
            stage = os.path.join(cfg["stage_dir"], f"{i}-{j}")
            os.makedirs(stage, exist_ok=True)
            _mount(p, stage, None, MS_BIND | MS_REC)
            stages.append((stage, p))
        _mount("tmpfs", hidden, "tmpfs", MS_NOSUID | MS_NODEV, "mode=755,size=1m")
        for stage, p in stages:
            os.makedirs(p, mode=0o755, exist_ok=True)
            _mount(stage, p, None, MS_BIND | MS_REC)
    work = cfg["workdir"]
    _mount(work, work, None, MS_BIND)
    failed = []
    for point, opts in _mounts():
        if point == work or "ro" in opts:
            continue
        flags = MS_BIND | MS_REMOUNT | MS_RDONLY
        for k, v in _KEEP_FLAGS.items():
            flags |= v if k in opts else 0
        try:
            _mount(None, point, None, flags)
        except OSError as e:
            if e.errno != 2:  # ENOENT: a mount point hidden under the tmpfs above
                failed.append(f"{point} ({e.strerror})")
    if failed:
        notes.append("read-only remount failed: " + ", ".join(failed[:5]))
    else:
        prot.append("readonly_fs")


def _exec_program(cfg: dict, status_fd: int) -> None:
    """Process C: limits, unprivileged uid, stripped env, then exec the runner. Never returns."""
    import resource

    try:
        os.close(status_fd)
        lim = cfg["limits"]
        mb = 1 << 20
        for res, val in ((resource.RLIMIT_CPU, (lim["cpu"], lim["cpu"] + 1)),
                         (resource.RLIMIT_AS, (lim["memory_mb"] * mb,) * 2),
                         (resource.RLIMIT_FSIZE, (lim["fsize_mb"] * mb,) * 2),
                         (resource.RLIMIT_NOFILE, (lim["nofile"],) * 2),
                         (resource.RLIMIT_NPROC, (lim["nproc"],) * 2),
                         (resource.RLIMIT_CORE, (0, 0))):
            resource.setrlimit(res, val)
        if cfg["uid"] is not None:
            os.setgroups([])
            os.setgid(cfg["gid"])
            os.setuid(cfg["uid"])
        os.chdir(cfg["workdir"])
        os.closerange(3, 1 << 16)
        os.execve(cfg["python"], [cfg["python"], "-I", "-c", RUNNER], cfg["env"])
    except BaseException as e:  # setup failed: say why on the captured stderr
        try:
            os.write(2, f"sandbox setup failed: {e!r}\n".encode())
        finally:
            os._exit(EXIT_SETUP)


def _launch(cfg: dict) -> None:
    """Process A (then B): namespaces, mounts, report protections, run C, relay its status."""
    status_fd = cfg["status_fd"]
    prot, notes = [], []
    _unshare(cfg, prot, notes)
    b = os.fork()  # after unshare(NEWPID) the first child is pid 1 of the new namespace
    if b:
        _, st = os.waitpid(b, 0)
        os._exit(os.waitstatus_to_exitcode(st) & 0xFF)
    if "mountns" in prot:
        try:
            _setup_mounts(cfg, prot, notes)
        except OSError as e:
            notes.append(f"mounts: {e}")
    if cfg["uid"] is not None and cfg["expose"] and "readonly_fs" not in prot:
        notes.append("uid_drop: the interpreter is not reachable by an unprivileged uid without the mount setup")
        cfg["uid"] = None
    if cfg["uid"] is not None and os.geteuid() == 0:
        prot.append("uid_drop")
    else:
        cfg["uid"] = None
    prot.append("rlimits")
    os.write(status_fd, (json.dumps({"protections": prot, "notes": notes}) + "\n").encode())
    c = os.fork()
    if c == 0:
        _exec_program(cfg, status_fd)
    while True:  # reap everything (pid 1 inherits orphans) until C is done
        try:
            pid, st, ru = os.wait4(-1, 0)
        except ChildProcessError:
            break
        if pid == c:
            done = {"exit": os.waitstatus_to_exitcode(st), "cpu": round(ru.ru_utime + ru.ru_stime, 3)}
            os.write(status_fd, (json.dumps(done) + "\n").encode())
            break
    os._exit(0)  # as pid 1 this tears down the namespace: every leftover process is killed


# ------------------------------------------------------------------------------------------ harness

import itertools  # noqa: E402  (harness-only imports; the launcher above needs none of them)
import math  # noqa: E402
import shutil  # noqa: E402
import signal  # noqa: E402
import stat  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from concurrent.futures import ThreadPoolExecutor  # noqa: E402
from dataclasses import asdict, dataclass, field  # noqa: E402

VERDICTS = ("passed", "failed", "error", "timeout", "memory")
UID_BASE = 1_500_000_000  # unused uids (no passwd entry), one per run so RLIMIT_NPROC is per sandbox
_uid_counter = itertools.count()
_warned = False
_probe: "Result | None" = None
_lock = threading.Lock()


@dataclass
class Limits:
    timeout: float = 10.0  # wall clock, seconds
    cpu_s: int | None = None  # CPU seconds (RLIMIT_CPU); default: ceil(timeout) + 1
    memory_mb: int = 1024  # address space
    fsize_mb: int = 16  # largest file the program may write (its stdout/stderr included)
    nofile: int = 64
    nproc: int = 32  # processes + threads of the sandbox's uid
    output_cap: int = 64 * 1024  # bytes of stdout/stderr kept in the Result


@dataclass
class Result:
    verdict: str  # passed | failed | error | timeout | memory
    stdout: str
    stderr: str
    returncode: int | None  # the program's exit code (negative: killed by that signal); None on timeout
    protections: tuple[str, ...]  # protections active for this run
    seconds: float = 0.0  # wall time of the whole run (sandbox setup included)
    cpu_seconds: float | None = None  # CPU time of the program process
    notes: list[str] = field(default_factory=list)  # why a protection is missing, truncation, ...
    uid: int | None = None  # the unprivileged uid it ran as (None: not dropped)

    def to_dict(self) -> dict:
        return asdict(self)


def run_program(code: str, timeout: float = 10.0, memory_mb: int = 1024, *, limits: Limits | None = None,
                namespaces: bool = True, drop_uid: bool = True, python: str | None = None) -> Result:
    """Run `code` (a whole Python program) in the sandbox and classify the outcome."""
    lim = limits or Limits(timeout=timeout, memory_mb=memory_mb)
    t0 = time.monotonic()
    base = tempfile.mkdtemp(prefix="mdlm-sbx-")  # root-only: output files and staging mount points
    os.chmod(base, 0o711)  # the sandbox uid may pass through to work/, not list or read the rest
    work = os.path.join(base, "work")
    os.mkdir(work, 0o700)
    uid = _pick_uid() if drop_uid and os.geteuid() == 0 else None
    py = python or sys.executable
    notes: list[str] = [] if uid is not None or not drop_uid else ["uid_drop: needs root (runs as the calling user)"]
    try:
        with open(os.path.join(work, "program.py"), "w", encoding="utf-8") as fh:
            fh.write(code)
        if uid is not None:
            os.chown(work, uid, uid)
            os.chown(os.path.join(work, "program.py"), uid, uid)
        cfg = {"workdir": work, "uid": uid, "gid": uid, "python": py, "want_ns": namespaces,
               "stage_dir": os.path.join(base, "stage"), "expose": _hidden_prefixes(py) if uid is not None else [],
               "env": _clean_env(work),
               "limits": {"cpu": lim.cpu_s or math.ceil(lim.timeout) + 1, "memory_mb": lim.memory_mb,
                          "fsize_mb": lim.fsize_mb, "nofile": lim.nofile, "nproc": lim.nproc}}
        if uid is None:  # running as the caller: RLIMIT_NPROC counts all its tasks, so allow nproc more
            cfg["limits"]["nproc"] += _uid_tasks(os.getuid())
        r_fd, w_fd = os.pipe()
        cfg["status_fd"] = w_fd
        try:
            with _private_file(base, "out") as out, _private_file(base, "err") as err:
                proc = subprocess.Popen([sys.executable, "-I", "-S", os.path.abspath(__file__), "--launch",
                                         json.dumps(cfg)], stdin=subprocess.DEVNULL, stdout=out, stderr=err, cwd=work,
                                        env=_clean_env(work), start_new_session=True, pass_fds=(w_fd,))
        finally:
            os.close(w_fd)
        timed_out = False
        try:
            proc.wait(timeout=lim.timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
        finally:
            _kill_group(proc.pid)  # always (an interrupt included): nothing of the run outlives it
            proc.wait()
        status = _read_status(r_fd)
        prot = ["session", "wall_timeout", "env", "tmpdir", "output_cap"] + status.get("protections", [])
        notes += status.get("notes", [])
        if "uid_drop" in prot:
            # The pid namespace's teardown finishes asynchronously (and without one, setsid escapees
            # would live on): kill whatever still runs as the sandbox uid and wait until it is gone.
            left = _reap_uid(uid)
            if left:
                notes.append(f"{left} processes of uid {uid} still present after the run")
        stdout, t1 = _read_capped(os.path.join(base, "out"), lim.output_cap)
        stderr, t2 = _read_capped(os.path.join(base, "err"), lim.output_cap)
        if t1 or t2:
            notes.append(f"output truncated to {lim.output_cap} bytes")
        rc = status.get("exit")
        verdict = _classify(rc, timed_out, stderr, status.get("cpu"), cfg["limits"]["cpu"])
        if rc is None and not timed_out:
            notes.append(f"launcher ended with {proc.returncode} before reporting the program's status")
        return Result(verdict, stdout, stderr, None if timed_out else rc, tuple(sorted(set(prot))),
                      round(time.monotonic() - t0, 3), status.get("cpu"), notes, uid if "uid_drop" in prot else None)
    finally:
        shutil.rmtree(base, ignore_errors=True)


def _classify(rc: int | None, timed_out: bool, stderr: str, cpu: float | None, cpu_limit: float) -> str:
    if timed_out:
        return "timeout"
    if rc is None:
        return "error"
    if rc == 0:
        return "passed"
    if rc == EXIT_FAILED:
        return "failed"
    if rc == EXIT_MEMORY or (rc < 0 and "MemoryError" in stderr[-2000:]):
        return "memory"
    if rc == -signal.SIGXCPU or (rc == -signal.SIGKILL and (cpu or 0) >= cpu_limit):  # CPU limit (soft, hard)
        return "timeout"
    return "error"


def run_many(codes: list[str], workers: int | None = None, **kw) -> list[Result]:
    """Run programs in parallel, one sandbox each, on the available cores (order kept)."""
    if not codes:
        return []
    workers = workers or available_cores()
    with ThreadPoolExecutor(max_workers=min(workers, len(codes))) as pool:  # the work is in subprocesses
        return list(pool.map(lambda c: run_program(c, **kw), codes))


def available_cores() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return max(1, os.cpu_count() or 1)


def sandbox_report(warn: bool = True) -> dict:
    """The protections this machine gives (one probe run per process), for the run config; warns once if any
    is missing or the probe program itself does not pass."""
    global _warned, _probe
    with _lock:
        if _probe is None or _probe.verdict != "passed":
            _probe = run_program("pass", timeout=30)  # protections do not change within a process
    r = _probe
    missing = [p for p in ALL_PROTECTIONS if p not in r.protections]
    with _lock:
        if warn and not _warned and (missing or r.verdict != "passed"):
            _warned = True
            why = "; ".join(r.notes) or "unavailable here"
            msg = f"code sandbox: running without {', '.join(missing)} ({why})" if missing else \
                f"code sandbox: a trivial program did not pass ({r.verdict}: {r.stderr.strip()[-300:]})"
            warnings.warn(msg, RuntimeWarning, stacklevel=2)
    return {"protections": list(r.protections), "missing": missing, "notes": r.notes,
            "probe_verdict": r.verdict}


def _pick_uid() -> int | None:
    """An unused uid inside this user namespace's map (fallback: nobody), distinct per run."""
    cand = UID_BASE + (os.getpid() % 10_000) * 10_000 + next(_uid_counter) % 10_000
    try:
        with open("/proc/self/uid_map") as fh:
            ranges = [tuple(map(int, line.split())) for line in fh if line.strip()]
    except OSError:
        ranges = []
    for uid in (cand, 65534):
        if any(lo <= uid < lo + n for lo, _, n in ranges):
            return uid
    return None


def _hidden_prefixes(python: str) -> list[tuple[str, list[str]]]:
    """[(top directory others cannot enter, [interpreter dirs below it])] for the mount-namespace re-expose."""
    dirs = {os.path.realpath(d) for d in (sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix,
                                          os.path.dirname(os.path.realpath(python)))}
    out: dict[str, list[str]] = {}
    for d in sorted(dirs):
        parts = d.split(os.sep)
        for i in range(2, len(parts) + 1):
            anc = os.sep.join(parts[:i]) or os.sep
            if not os.stat(anc).st_mode & stat.S_IXOTH:
                if anc != d and not any(d.startswith(p + os.sep) or d == p for p in out.get(anc, [])):
                    out.setdefault(anc, []).append(d)
                break
    return sorted(out.items())


def _clean_env(work: str) -> dict[str, str]:
    return {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": work, "TMPDIR": work, "LANG": "C.UTF-8",
            "PYTHONDONTWRITEBYTECODE": "1", "OMP_NUM_THREADS": "1"}


def _kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _uid_pids(uid: int) -> list[int]:
    out = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/status") as fh:
                for line in fh:
                    if line.startswith("Uid:"):
                        if int(line.split()[1]) == uid:
                            out.append(int(pid))
                        break
        except (OSError, ValueError):
            pass
    return out


def _uid_tasks(uid: int) -> int:
    """Tasks (threads) of `uid`: what RLIMIT_NPROC counts."""
    n = 0
    for pid in _uid_pids(uid):
        try:
            with open(f"/proc/{pid}/status") as fh:
                n += next((int(line.split()[1]) for line in fh if line.startswith("Threads:")), 1)
        except (OSError, ValueError):
            pass
    return n


def _reap_uid(uid: int, wait_s: float = 5.0) -> int:
    """Kill every process of the sandbox uid (kill(-1) run as that uid) and wait until none is left."""
    deadline = time.monotonic() + wait_s
    killed = False
    while True:
        pids = _uid_pids(uid)
        if not pids or time.monotonic() > deadline:
            return len(pids)
        kill = shutil.which("kill", path="/usr/bin:/bin")
        if kill and not killed:
            subprocess.run([kill, "-9", "-1"], user=uid, group=uid, extra_groups=[], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, check=False)
            killed = True
        time.sleep(0.02)


def _private_file(base: str, name: str):
    return os.fdopen(os.open(os.path.join(base, name), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb")


def _read_status(fd: int) -> dict:
    """Merge the JSON lines B wrote: protections first, then the program's exit code."""
    with os.fdopen(fd, "rb") as fh:
        data = fh.read(1 << 16)
    out: dict = {}
    for line in data.decode("utf-8", "replace").splitlines():
        try:
            out.update(json.loads(line))
        except json.JSONDecodeError:
            pass
    return out


def _read_capped(path: str, cap: int) -> tuple[str, bool]:
    with open(path, "rb") as fh:
        data = fh.read(cap + 1)
    return data[:cap].decode("utf-8", "replace"), len(data) > cap


if __name__ == "__main__" and len(sys.argv) == 3 and sys.argv[1] == "--launch":
    _launch(json.loads(sys.argv[2]))
