"""Helpers for the long-lived processes the scheduler loop supervises (prediction replicas,
notebook servers): find a recorded pid's process only if it is still ours, signal its
group, read the end of its log."""

import os
import signal
from collections.abc import Callable
from pathlib import Path

import psutil


def live_process(pid: int | None, is_ours: Callable[[psutil.Process], bool]):
    """The live process of `pid` if `is_ours` says so (pids are reused), else None. A
    zombie is reaped (we may be its parent) and counts as gone."""
    if not pid:
        return None
    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            process.wait(0)
            return None
        if is_ours(process):
            return process
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.TimeoutExpired):
        pass
    return None


def signal_group(process: psutil.Process | None, signum=signal.SIGTERM) -> None:
    """Signal the process's whole group (its session: a run and what it started)."""
    if process is not None:
        try:
            os.killpg(process.pid, signum)
        except ProcessLookupError:
            pass


def tail_text(path: Path, size: int) -> str:
    """The last `size` bytes of a file as text; "" when there is none."""
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(0, fh.tell() - size))
            return fh.read().decode(errors="replace")
    except OSError:
        return ""


def kill_processes_under(root: Path) -> int:
    """SIGKILL every process whose working directory is below `root` (notebook servers and
    their kernels of a throw-away appliance or test); returns how many."""
    prefix, killed = str(root).rstrip("/") + "/", 0
    for process in psutil.process_iter():
        try:
            if (process.cwd() + "/").startswith(prefix):
                process.kill()
                killed += 1
        except psutil.Error:
            continue
    return killed


def runs_left(var: Path) -> dict[str, list[psutil.Process]]:
    """The runs of the appliance whose state is in `var` that go on without it: job runs
    (their supervise process) and notebook servers. Both are adopted by the next start."""
    runs = str(Path(var) / "runs") + "/"
    notebooks = str(Path(var) / "notebooks") + "/"
    found: dict[str, list[psutil.Process]] = {"job runs": [], "notebook servers": []}
    for process in psutil.process_iter(["cmdline", "cwd"]):
        try:
            cmdline = " ".join(process.info["cmdline"] or [])
            if "workers.supervise" in cmdline and runs in cmdline:
                found["job runs"].append(process)
            elif "--ServerApp.base_url=/notebooks/" in cmdline and (
                (process.info["cwd"] or "") + "/"
            ).startswith(notebooks):
                found["notebook servers"].append(process)
        except psutil.Error:
            continue
    # A server's own children (bwrap's inner processes) carry its command line too: count
    # only the leaders of their process groups.
    for kind, processes in found.items():
        found[kind] = [p for p in processes if _leads_its_group(p)]
    return found


def _leads_its_group(process: psutil.Process) -> bool:
    try:
        return os.getpgid(process.pid) == process.pid
    except OSError:
        return False


def end_runs(var: Path, grace: float = 10) -> int:
    """End every run left by the appliance of `var`: job runs are asked to stop (their logs
    are kept and they end "terminated"), notebook servers are stopped (files kept)."""
    left = [p for processes in runs_left(var).values() for p in processes]
    for process in left:
        signal_group(process, signal.SIGTERM)
    gone, alive = psutil.wait_procs(left, timeout=grace)
    for process in alive:
        signal_group(process, signal.SIGKILL)
    return len(left)
