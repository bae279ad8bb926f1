"""workers.sandbox on its own: confinement as root and as an ordinary user, the modes, and
what a run can see. Real bwrap, real processes."""

import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import pytest

from workers import sandbox

ROOT = Path(__file__).resolve().parent.parent.parent


@pytest.fixture
def fresh_probe(monkeypatch):
    sandbox.probe.cache_clear()
    yield monkeypatch
    sandbox.probe.cache_clear()


def test_off_runs_the_command_as_it_is_and_required_refuses_without_bwrap(fresh_probe):
    rules = sandbox.Confinement(workdir=Path("/tmp"))
    fresh_probe.setenv("BML_SANDBOX", "off")
    assert sandbox.command(["true"], rules) == ["true"]
    assert "OFF" in sandbox.describe() and "BML_SANDBOX=off" in sandbox.describe()

    sandbox.probe.cache_clear()
    fresh_probe.setenv("BML_SANDBOX", "required")
    fresh_probe.setattr(sandbox, "bwrap_binary", lambda: None)
    with pytest.raises(sandbox.SandboxUnavailable, match="bubblewrap is not installed"):
        sandbox.command(["true"], rules)


def test_a_run_sees_its_folder_but_not_what_is_hidden_and_cannot_write_the_code(tmp_path):
    var = tmp_path / "var"
    workdir = var / "runs" / "r1" / "workspace"
    workdir.mkdir(parents=True)
    (var / "db.sqlite3").write_text("secret")
    (var / "runs" / "r2").mkdir()
    rules = sandbox.Confinement(workdir=workdir, hidden=[var], uid=sandbox.run_uid(7))
    sandbox.give_to_run(workdir, rules.uid)
    code = textwrap.dedent(
        f"""
        import os
        print(os.path.exists({str(var / "db.sqlite3")!r}), sorted(os.listdir({str(var)!r})),
              sorted(os.listdir({str(var / "runs")!r})))
        open("mine.txt", "w").write("ok")
        try:
            open({str(ROOT / "pwned")!r}, "w")
            print("wrote the code")
        except OSError:
            print("code read-only")
        print(os.getuid())
        """
    )
    done = subprocess.run(
        sandbox.command([sys.executable, "-c", code], rules),
        capture_output=True,
        text=True,
        preexec_fn=sandbox.limits(rules),
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "False ['runs'] ['r1']"
    assert lines[1] == "code read-only"
    assert int(lines[2]) == (sandbox.run_uid(7) if os.geteuid() == 0 else os.getuid())
    assert (workdir / "mine.txt").read_text() == "ok"


def test_a_run_has_shared_memory_of_its_own_for_worker_processes(tmp_path):
    """multiprocessing (and PyTorch's DataLoader workers) need a writable /dev/shm: the run
    gets a private one; a segment the host holds there is not visible to it."""
    if not sandbox.active():
        pytest.skip(f"no sandbox here: {sandbox.probe()}")
    workdir = tmp_path / "workspace"
    workdir.mkdir()
    planted = Path("/dev/shm") / f"bml-host-{os.getpid()}"
    planted.write_text("host")
    rules = sandbox.Confinement(workdir=workdir, uid=sandbox.run_uid(8))
    sandbox.give_to_run(workdir, rules.uid)
    code = textwrap.dedent(
        f"""
        import multiprocessing, os
        from multiprocessing import shared_memory
        block = shared_memory.SharedMemory(create=True, size=4096)
        block.buf[:2] = b"ok"
        print(bytes(block.buf[:2]).decode(), os.path.exists({str(planted)!r}))
        block.close(); block.unlink()
        queue = multiprocessing.get_context("spawn").Queue()  # a POSIX semaphore
        queue.put(1)
        print(queue.get())
        """
    )
    try:
        done = subprocess.run(
            sandbox.command([sys.executable, "-c", code], rules),
            capture_output=True,
            text=True,
            preexec_fn=sandbox.limits(rules),
            timeout=60,
        )
    finally:
        planted.unlink()
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["ok", "False", "1"]


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to become an ordinary user")
def test_the_sandbox_works_for_an_appliance_run_by_an_ordinary_user():
    """As an ordinary user (no setpriv, an unprivileged user namespace) the same rules hold:
    the module itself is run as `nobody` by Debian's own Python."""
    python = shutil.which("python3", path="/usr/bin")
    if not python:
        pytest.skip("no /usr/bin/python3")
    # Not under pytest's tmp_path: its parents are root's own (0700).
    home = Path(tempfile.mkdtemp(prefix="bml-as-a-user-"))
    (home / "workers").mkdir(parents=True)
    for name in ("__init__.py", "sandbox.py", "cgroups.py"):
        shutil.copy(ROOT / "workers" / name, home / "workers" / name)
    (home / "var" / "run" / "workspace").mkdir(parents=True)
    (home / "var" / "db.sqlite3").write_text("secret")
    (home / "check.py").write_text(
        textwrap.dedent(
            """
            import os, subprocess, sys
            from pathlib import Path
            sys.path.insert(0, os.path.dirname(__file__))
            from workers import sandbox
            var = Path(__file__).parent / "var"
            rules = sandbox.Confinement(workdir=var / "run" / "workspace", hidden=[var],
                                        uid=sandbox.run_uid(1))
            assert rules.uid is None, "not root: no uid of its own"
            assert sandbox.active(), sandbox.probe()
            code = "import os; print(os.path.exists('%s'), os.getuid())" % (var / "db.sqlite3")
            done = subprocess.run(sandbox.command([sys.executable, "-c", code], rules),
                                  capture_output=True, text=True)
            print(done.stdout.strip(), done.returncode, done.stderr[-300:])
            """
        )
    )
    for path in [*home.rglob("*"), home]:
        os.chmod(path, 0o777 if path.is_dir() else 0o666)
    try:
        done = subprocess.run(
            ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", python, "check.py"],
            cwd=home,
            capture_output=True,
            text=True,
            env={"PATH": "/usr/bin:/bin", "HOME": str(home), "BML_SANDBOX": "required"},
            timeout=60,
        )
    finally:
        shutil.rmtree(home, ignore_errors=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split()[:3] == ["False", "65534", "0"], done.stdout
