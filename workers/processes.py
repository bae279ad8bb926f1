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
