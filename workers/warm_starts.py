"""Warm starts for visual modeling's node jobs, the control plane's side (workers.spare is
the process's side).

A project that ran a visual modeling job in the last KEEP keeps one warm start on this host:
a segment runner (workers.runners.visual.run) already started in its sandbox, its imports
done, waiting under its own `workers.supervise --spare`. The next node job of that project
takes it (`claim`, in workers.scheduler.start_run): its folder becomes the job's run dir and
the job skips the interpreter's start and the imports (~1.3 s warm, ~2 s on cold memory:
about half of a rerun that changed one setting). Anything else about the job is as a fresh
start makes it (workers.spare says how); a job that finds none, or one that has just ended,
starts fresh.

The run_scheduler loop calls `ensure` (about once a second): a warm start for each of the
BML_WARM_STARTS (default 2, 0 turns them off) projects with the most recent visual jobs,
started only while none of the project's visual jobs waits or runs (its imports would take
cores from them), stopped once the project has had none for KEEP. Each holds ~200 MB of
memory, outside any resource package's lease; none is kept without the sandbox (a warm
start's inputs are shown through a read-only bind, which only bwrap gives).
"""

import json
import logging
import os
import secrets
import shutil
import signal
import time
from datetime import timedelta
from pathlib import Path

import psutil
from django.conf import settings
from django.db.models import Max
from django.utils import timezone

from workers import confinement, sandbox
from workers.spare import CLAIMED_FILE, READY, SPARE_FILE

logger = logging.getLogger(__name__)

KEEP = timedelta(minutes=15)
CHECK_EVERY_S = 0.2  # every loop of the scheduler (0.25 s): a rerun soon after finds it ready
_checked_at = 0.0


def wanted_count() -> int:
    try:
        return max(0, int(os.environ.get("BML_WARM_STARTS", "2")))
    except ValueError:
        return 2


def root() -> Path:
    return Path(settings.VAR_DIR) / "runs" / "warm"


def _project_of(folder: Path) -> int | None:
    head = folder.name.split("-", 1)[0]
    return int(head) if head.isdigit() else None


def supervisor(folder: Path) -> psutil.Process | None:
    """The live `supervise --spare` of a warm start's folder."""
    from workers import scheduler

    process = scheduler.supervisor_in(folder)
    try:
        return process if process is not None and "--spare" in process.cmdline() else None
    except psutil.Error:
        return None


def unclaimed() -> list[Path]:
    """Warm starts no job has taken (a taken one is a job's run dir, not ours any more)."""
    if not root().is_dir():
        return []
    return sorted(f for f in root().iterdir() if (f / SPARE_FILE).exists())


def ready(folder: Path) -> bool:
    return (folder / "workspace" / READY).exists()


def claim(job, run) -> Path | None:
    """Take a live warm start of the job's project for this run, or None. One taker: the
    claim is the rename of its spare.json."""
    from apps.visual import node_jobs

    if job.kind != node_jobs.KIND or job.instances != 1:
        return None
    if run.lease is not None and run.lease.devices.exists():
        return None  # a warm start has no devices bound
    for folder in unclaimed():
        if _project_of(folder) != job.project_id or supervisor(folder) is None:
            continue
        try:
            os.rename(folder / SPARE_FILE, folder / CLAIMED_FILE)
        except OSError:
            continue  # taken by another tick meanwhile
        return folder
    return None


def give_back(folder: Path) -> None:
    """A claimed warm start whose job could not start (no run.json written): free again."""
    try:
        os.rename(folder / CLAIMED_FILE, folder / SPARE_FILE)
    except OSError:
        pass


def wake(folder: Path) -> bool:
    """Tell a claimed warm start its run.json is written; False when it is gone (the job
    then starts fresh in its folder)."""
    process = supervisor(folder)
    if process is None:
        return False
    try:
        process.send_signal(signal.SIGUSR1)
    except psutil.Error:
        return False
    return True


def wanted_projects() -> list[int]:
    """The projects with the most recent visual jobs in the last KEEP, most recent first."""
    from apps.jobs.models import Job
    from apps.visual import node_jobs

    count = wanted_count()
    if not count or not sandbox.active():
        return []
    recent = (
        Job.objects.filter(kind=node_jobs.KIND, created_at__gte=timezone.now() - KEEP)
        .values("project_id")
        .annotate(last=Max("created_at"))
        .order_by("-last")
    )
    return [entry["project_id"] for entry in recent[:count]]


def busy_projects() -> set[int]:
    from apps.jobs.models import ACTIVE, Job
    from apps.visual import node_jobs

    return set(
        Job.objects.filter(kind=node_jobs.KIND, status__in=ACTIVE).values_list(
            "project_id", flat=True
        )
    )


def ensure(force: bool = False) -> None:
    """Start the warm starts wanted, stop the others, remove those that ended."""
    global _checked_at
    if not force and time.monotonic() - _checked_at < CHECK_EVERY_S:
        return
    _checked_at = time.monotonic()
    wanted = wanted_projects()
    have = set()
    for folder in unclaimed():
        process, project_id = supervisor(folder), _project_of(folder)
        if process is None:
            if _ended(folder):
                shutil.rmtree(folder, ignore_errors=True)  # its log said why
            else:
                have.add(project_id)  # launched, not up yet
        elif project_id not in wanted or project_id in have:
            stop(process)
        else:
            have.add(project_id)
    busy = busy_projects() if set(wanted) - have else set()
    for project_id in wanted:
        if project_id not in have and project_id not in busy:
            start(project_id)


def _ended(folder: Path) -> bool:
    """No live supervisor: it ended, or never came up (a just-launched one is given a
    minute to write its pid)."""
    if (folder / "supervisor.pid").exists():
        return True
    try:
        return time.time() - folder.stat().st_mtime > 60
    except OSError:
        return False


def start(project_id: int) -> Path:
    from apps.visual import node_jobs
    from workers import scheduler
    from workers.spare import GO

    token = secrets.token_hex(4)
    folder = root() / f"{project_id}-{token}"
    (folder / "workspace").mkdir(parents=True)
    os.chmod(folder, 0o700)
    rules = confinement.for_run(
        project_id, folder / "workspace", None, group=f"warm-{project_id}-{token}"
    )
    spare = {
        "project_id": project_id,
        "command": [*node_jobs.runner(), "--wait", GO],
        "sandbox": rules.to_json(),
    }
    fd = os.open(folder / SPARE_FILE, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(spare, fh)
    scheduler.launch_supervise(folder / "run.json", "--spare")
    logger.info("warm start for project %s started in %s", project_id, folder)
    return folder


def stop(process: psutil.Process) -> None:
    try:
        process.terminate()  # it stops its code and ends; `ensure` then removes the folder
    except psutil.Error:
        pass


def stop_all() -> None:
    """When the appliance stops: warm starts are not adopted (a fresh one is cheap)."""
    for folder in unclaimed():
        process = supervisor(folder)
        if process is not None:
            stop(process)
