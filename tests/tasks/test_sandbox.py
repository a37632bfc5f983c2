"""The code sandbox contains hostile programs: the harness survives and records the right verdict.

Where a containment test depends on a protection (read-only filesystem, network namespace, uid drop), it
first checks the protection is active on this machine and skips with the reason otherwise. The canary and
listener tests also run an unprotected control, so the checks are shown to detect a breach.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
from pathlib import Path

import pytest

from mdlm_probe.tasks.benchmarks.sandbox import ALL_PROTECTIONS, Limits, run_many, run_program, sandbox_report


@pytest.fixture(scope="module")
def protections() -> tuple[str, ...]:
    rep = sandbox_report(warn=False)
    assert rep["probe_verdict"] == "passed", rep
    return tuple(rep["protections"])


def need(protections, *names):
    missing = [n for n in names if n not in protections]
    if missing:
        pytest.skip(f"this machine's sandbox lacks {', '.join(missing)}")


def uid_processes(uid: int) -> list[int]:
    """Pids of live processes whose real uid is `uid`."""
    out = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("Uid:") and int(line.split()[1]) == uid:
                    out.append(int(pid))
        except (OSError, ValueError):
            pass
    return out


def test_verdicts_for_ordinary_outcomes():
    codes = ["assert sum([1, 2]) == 3\nprint('ok')", "assert 1 + 1 == 3", "raise ValueError('x')",
             "def f(:\n  pass", "import sys\nsys.exit(4)"]
    res = run_many(codes, timeout=20)
    assert [r.verdict for r in res] == ["passed", "failed", "error", "error", "error"]
    assert res[0].stdout == "ok\n"
    assert "AssertionError" in res[1].stderr and "ValueError" in res[2].stderr and "SyntaxError" in res[3].stderr


def test_protections_match_what_this_machine_allows(protections):
    # Root always gets the uid drop; where util-linux's unshare (an independent check) can create the
    # namespaces, the sandbox must have created them too, and then every protection is active.
    assert {"session", "wall_timeout", "rlimits", "env", "tmpdir", "output_cap"} <= set(protections)
    if os.geteuid() == 0:
        assert "uid_drop" in protections
    tool = shutil.which("unshare")
    if not tool:
        pytest.skip("util-linux unshare is absent: no independent check of namespace support")
    flags = ["--net", "--mount", "--pid", "--ipc", "--fork"] if os.geteuid() == 0 else \
        ["--user", "--net", "--mount", "--pid", "--ipc", "--fork"]
    if subprocess.run([tool, *flags, "true"], capture_output=True).returncode != 0:
        pytest.skip("this machine does not allow these namespaces")
    assert {"netns", "mountns", "pidns", "ipcns", "readonly_fs"} <= set(protections)
    if os.geteuid() == 0:
        assert set(ALL_PROTECTIONS) <= set(protections)


def test_infinite_loop_times_out():
    r = run_program("while True:\n    pass", timeout=2)
    assert r.verdict == "timeout" and r.returncode is None


def test_cpu_limit_applies_before_wall_clock():
    # A long wall-clock budget, but the CPU rlimit stops it first: SIGXCPU -> timeout.
    r = run_program("while True:\n    pass", limits=Limits(timeout=60, cpu_s=1))
    assert r.verdict == "timeout" and r.returncode == -signal.SIGXCPU


def test_memory_hogs():
    res = run_many(["x = bytearray(8 << 30)",
                    "chunks = []\nwhile True:\n    chunks.append(b'x' * (1 << 24))"], timeout=20, memory_mb=512)
    assert [r.verdict for r in res] == ["memory", "memory"]


def test_unbounded_recursion():
    r = run_program("def f(n):\n    return f(n + 1)\nf(0)", timeout=20)
    assert r.verdict == "error" and "RecursionError" in r.stderr
    deep = "import sys\nsys.setrecursionlimit(10 ** 9)\ndef f(n):\n    return f(n + 1)\nf(0)"
    r = run_program(deep, timeout=3, memory_mb=256)
    assert r.verdict in ("error", "memory", "timeout")


def test_fork_bomb_is_contained_and_killed(protections):
    need(protections, "uid_drop")
    bomb = ("import os\nwhile True:\n    try:\n        os.fork()\n        os.setsid()\n"
            "    except OSError:\n        pass\n")
    r = run_program(bomb, timeout=3)
    assert r.verdict == "timeout"
    assert r.uid is not None and uid_processes(r.uid) == []  # nothing of the bomb survives the run


def test_kill_parent_and_group_does_not_hurt_harness():
    me = os.getpid()
    code = (f"import os, signal\nhits = []\n"
            f"for how, fn in [('ppid', lambda: os.kill(os.getppid(), signal.SIGKILL)),\n"
            f"                ('harness', lambda: os.kill({me}, signal.SIGKILL)),\n"
            f"                ('group', lambda: os.killpg(os.getpgid({me}), signal.SIGKILL)),\n"
            f"                ('init', lambda: os.kill(1, signal.SIGKILL)),\n"
            f"                ('all', lambda: os.kill(-1, signal.SIGKILL))]:\n"
            f"    try:\n        fn()\n        hits.append(how)\n    except OSError:\n        pass\n"
            f"print('survived', hits)\n")
    r = run_program(code, timeout=20)
    assert os.getpid() == me  # we are still here
    assert r.verdict == "passed", (r.stderr, r.notes)
    assert r.stdout.startswith("survived")


def test_output_flood_is_capped():
    r = run_program("while True:\n    print('x' * 10000)", limits=Limits(timeout=20, fsize_mb=2, output_cap=4096))
    assert r.verdict == "error" and "File too large" in r.stderr  # EFBIG at the file-size limit
    assert len(r.stdout) == 4096 and any("truncated" in n for n in r.notes)


@pytest.fixture
def open_dir():
    """A world-writable directory outside the sandbox (so only the read-only mount protects it)."""
    d = tempfile.mkdtemp(prefix="mdlm-canary-", dir="/tmp")
    os.chmod(d, 0o777)
    canary = Path(d) / "canary.txt"
    canary.write_text("untouched")
    os.chmod(canary, 0o666)
    yield Path(d)
    shutil.rmtree(d, ignore_errors=True)


def writer_code(d: Path) -> str:
    return (f"import os, shutil\nd = {str(d)!r}\n"
            f"for act in [lambda: open(os.path.join(d, 'canary.txt'), 'w').write('pwned'),\n"
            f"            lambda: os.remove(os.path.join(d, 'canary.txt')),\n"
            f"            lambda: open(os.path.join(d, 'new.txt'), 'w').write('x'),\n"
            f"            lambda: shutil.rmtree(d),\n"
            f"            lambda: open('/tmp/mdlm-sandbox-escape.txt', 'w').write('x')]:\n"
            f"    try:\n        act()\n    except OSError:\n        pass\n"
            f"open('inside.txt', 'w').write('mine')\nassert open('inside.txt').read() == 'mine'\n")


def test_writes_and_deletes_outside_are_blocked(open_dir, protections):
    need(protections, "readonly_fs")
    r = run_program(writer_code(open_dir), timeout=20)
    assert r.verdict == "passed", r.stderr  # it can write its own temp dir
    assert (open_dir / "canary.txt").read_text() == "untouched"
    assert sorted(p.name for p in open_dir.iterdir()) == ["canary.txt"]
    assert not Path("/tmp/mdlm-sandbox-escape.txt").exists()


def test_canary_control_detects_an_unprotected_write(open_dir):
    # The same program without namespaces and uid drop does reach the canary: the check above can fail.
    r = run_program(writer_code(open_dir), timeout=20, namespaces=False, drop_uid=False)
    Path("/tmp/mdlm-sandbox-escape.txt").unlink(missing_ok=True)
    assert r.verdict == "passed"
    assert not (open_dir / "canary.txt").exists() or (open_dir / "canary.txt").read_text() != "untouched"


def connect_code(port: int) -> str:
    return f"import socket\nsocket.create_connection(('127.0.0.1', {port}), timeout=3).sendall(b'hello')\n"


def listen():
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.bind(("127.0.0.1", 0))
    srv.listen(4)
    srv.settimeout(0.5)
    return srv


def test_network_connection_is_blocked(protections):
    need(protections, "netns")
    srv = listen()
    try:
        r = run_program(connect_code(srv.getsockname()[1]), timeout=20)
        assert r.verdict == "error" and "Error" in r.stderr, r.stderr  # e.g. OSError: Network is unreachable
        with pytest.raises(socket.timeout):
            srv.accept()  # nobody connected
    finally:
        srv.close()


def test_network_control_sees_an_unprotected_connection():
    srv = listen()
    try:
        r = run_program(connect_code(srv.getsockname()[1]), timeout=20, namespaces=False)
        assert r.verdict == "passed", r.stderr
        conn, _ = srv.accept()
        conn.close()
    finally:
        srv.close()


def test_environment_is_stripped_and_workdir_removed(monkeypatch):
    monkeypatch.setenv("MDLM_SECRET_TOKEN", "s3cret")
    r = run_program("import os\nprint(sorted(os.environ))\nprint(os.getcwd())", timeout=20)
    assert r.verdict == "passed" and "MDLM_SECRET_TOKEN" not in r.stdout
    workdir = r.stdout.splitlines()[1]
    assert not Path(workdir).exists()


def test_missing_protections_are_reported():
    r = run_program("print(1)", timeout=20, namespaces=False, drop_uid=False)
    assert r.verdict == "passed"
    assert {"netns", "mountns", "readonly_fs", "pidns", "uid_drop"}.isdisjoint(r.protections)
    assert {"session", "rlimits", "wall_timeout"} <= set(r.protections)
