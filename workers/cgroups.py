"""Memory and process-count limits of a run, as its resource package says, through the
kernel's control groups. No Django import.

Each run gets a group of its own, `bml/<name>`, made below the group the appliance itself
lives in (so a host's or a container's own limits keep holding), either in the unified
hierarchy (cgroup v2: memory.max, pids.max) or, where the host still mounts the v1
controllers, in the memory and pids hierarchies (memory.limit_in_bytes, pids.max). The
child enters it before it execs (see workers.sandbox.limits), so the run and everything it
starts are counted together; the kernel's OOM killer ends a run that outgrows its memory,
and fork() fails beyond its process count. Empty groups are removed when the run ends (and
left-overs by prune()).

Needs write access to the appliance's own group: as root, or where the service manager
delegated it (systemd's Delegate=yes). Otherwise available() says why, and runs keep the
sandbox's other limits.
"""

import os
import time
from pathlib import Path

MOUNT = Path("/sys/fs/cgroup")
PARENT = "bml"
PRUNE_AFTER_S = 60  # a group this young may be about to be entered


def _own_path(controller: str | None) -> str:
    """This process's group in a v1 hierarchy (controller) or in the unified one (None)."""
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        if controller is None and controllers == "":
            return path
        if controller is not None and controller in controllers.split(","):
            return path
    raise LookupError(controller or "unified")


def _v2_root() -> Path | None:
    if not (MOUNT / "cgroup.controllers").exists():
        return None
    return MOUNT / _own_path(None).lstrip("/")


def roots() -> dict[str, Path]:
    """Where this appliance's run groups go: {"memory": dir, "pids": dir} (one dir for v2)."""
    v2 = _v2_root()
    if v2 is not None:
        return {"memory": v2 / PARENT, "pids": v2 / PARENT}
    return {c: MOUNT / c / _own_path(c).lstrip("/") / PARENT for c in ("memory", "pids")}


def _prepare_v2(parent: Path) -> None:
    """Controllers are handed down level by level; our own group must pass memory and pids
    to bml/, and bml/ to the runs' groups. (Only possible where our group holds no process
    itself, or is the hierarchy's root: the kernel's no-internal-process rule.)"""
    parent.mkdir(exist_ok=True)
    for level in (parent.parent, parent):
        wanted = {"memory", "pids"} - set((level / "cgroup.subtree_control").read_text().split())
        if wanted:
            (level / "cgroup.subtree_control").write_text(" ".join(f"+{c}" for c in wanted))


_checked: str | None = None


def available() -> str:
    """ "" when run groups can be made here, else why not (checked once per process)."""
    global _checked
    if _checked is None:
        _checked = _check()
    return _checked


def _check() -> str:
    try:
        places = roots()
        if _v2_root() is not None:
            _prepare_v2(places["memory"])
        else:
            for place in places.values():
                place.mkdir(exist_ok=True)
        probe = create(f"probe-{os.getpid()}", 64 * 1024**2, 16)
        remove(probe)
    except (OSError, LookupError) as exc:
        return f"control groups are not writable here ({exc})"
    return ""


def create(name: str, memory_bytes: int | None, max_pids: int | None) -> list[Path]:
    """The run's group(s), with its limits written; entered by enter() in the child."""
    places = roots()
    groups = []
    for parent in places.values():
        group = parent / name
        if group in groups:
            continue
        group.mkdir(exist_ok=True)
        groups.append(group)
    v2 = _v2_root() is not None
    memory_group, pids_group = places["memory"] / name, places["pids"] / name
    if memory_bytes:
        limit = "memory.max" if v2 else "memory.limit_in_bytes"
        (memory_group / limit).write_text(str(int(memory_bytes)))
    if max_pids:
        (pids_group / "pids.max").write_text(str(int(max_pids)))
    return groups


def enter(groups: list[Path]) -> None:
    """Move the calling process into the groups (in a child, before exec)."""
    for group in groups:
        (group / "cgroup.procs").write_text("0")


def out_of_memory(groups: list[Path]) -> bool:
    """Whether the kernel's OOM killer struck inside the run's group."""
    for group in groups:
        for name, marker in (("memory.events", "oom_kill"), ("memory.oom_control", "oom_kill")):
            try:
                for line in (group / name).read_text().splitlines():
                    key, _, value = line.partition(" ")
                    if key == marker and int(value or 0) > 0:
                        return True
            except (OSError, ValueError):
                continue
    return False


def remove(groups: list[Path]) -> None:
    """Remove the groups once empty (rmdir of a group that still holds a process fails)."""
    for group in groups:
        try:
            group.rmdir()
        except OSError:
            pass


def prune() -> int:
    """Remove left-over empty run groups (a run killed with its supervisor); returns how many."""
    if available():
        return 0
    removed = 0
    for parent in set(roots().values()):
        for group in parent.iterdir() if parent.is_dir() else ():
            try:
                if group.is_dir() and time.time() - group.stat().st_mtime > PRUNE_AFTER_S:
                    group.rmdir()
                    removed += 1
            except OSError:
                continue
    return removed
