"""Admission, start and reconcile of job runs on this host (Django side).

A run never lives inside a Q worker: `start_run` launches `workers.supervise` detached
(`setsid -f`: its own session, reparented away from us) and returns; `reconcile` later reads
each run's `supervisor.pid` and `result.json`. So a killed Q cluster or appliance loses
nothing: a run still alive is adopted on the next reconcile, and one whose process vanished
without a result is closed as "worker lost", its lease freed.

Grants. A run uploads through a presigned POST policy (apps.storage.grants), issued for the
store's address of the day it started. Every reconcile looks at each live run's grant (its
`<run_dir>/grant.json` if one was written, else run.json's): when it no longer points at the
store the appliance uses now (an adopted run after a restart whose store came up elsewhere,
a store moved) or would expire before the run can end, a fresh one goes to grant.json, which
supervise reads before it stages out (and hands on to the running code).

Outputs waiting for the store. When the store is away as a run ends, supervise keeps the
outputs in the workspace and the log in the run dir and ends with result.json "staging"
(workers.supervise). Reconcile then frees the run's devices and marks it, and the job once no
instance still runs, "staging" (JobStatus.STAGING: "Staging outputs", the reason names what
waits). Every STAGING_RETRY it writes a fresh grant and runs `supervise --stage-out` again,
detached like a run (the tick never waits on an upload; the retry uploads with the run's own
grant, so it can write under the job's output folder only, the same path as at the end of
the run). Once everything is stored the run ends with its code's outcome and the job
settles as usual (succeeded); after STAGING_GIVE_UP (settings.JOB_STAGING_GIVE_UP_S) the
run fails with a reason naming what could not be stored and where the files still are.
Terminating the job gives up waiting at once (terminated, the same naming).
"""

import json
import logging
import os
import signal
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path

import psutil
from django.conf import settings
from django.db import transaction
from django.db.models import Count, Min
from django.utils import timezone

from apps.jobs import algorithms
from apps.jobs.models import ACTIVE, Job, JobInstance, JobStatus
from apps.storage import grants, ownership
from workers import confinement, devices, sandbox, wakeup, warm_starts

# A run with no supervisor pid this long after start never came up.
START_GRACE = timedelta(seconds=30)
# Beyond its time limit, supervise ends a run itself; past this too, reconcile does.
HARD_LIMIT_GRACE = timedelta(seconds=60)
# A run's upload grant outlives its time limit by this: staging and the final log upload.
GRANT_MARGIN = timedelta(hours=1)
# Outputs a run could not store are tried again this often, each time with a fresh grant,
STAGING_RETRY = timedelta(seconds=20)
# for this long after the first failure; then the job fails (settings.JOB_STAGING_GIVE_UP_S).
STAGING_GIVE_UP = timedelta(hours=24)
FRESH_GRANT_FILE = "grant.json"  # read by workers.supervise before it stages out
STAGING_ATTEMPT_FILE = "staging.attempt"  # touched at every retry: its time paces them
LIVE = (JobStatus.RUNNING, JobStatus.STAGING)
logger = logging.getLogger(__name__)
OUTCOME_RANK = {JobStatus.TERMINATED: 3, JobStatus.TIMED_OUT: 2, JobStatus.FAILED: 1}


def runs_root() -> Path:
    return Path(settings.VAR_DIR) / "runs"


def tick() -> None:
    """Jobs only. The Q cluster runs this too (a submit asks for an early tick), so two may
    overlap: runs are claimed with compare-and-set updates. Prediction replicas and notebook
    servers are supervised by the run_scheduler loop alone, which owns their processes."""
    reconcile()
    admit()


# -- admission ---------------------------------------------------------------------------


def admit() -> list[Job]:
    """Start queued jobs whose resources are free: FIFO within a project, and between
    projects the one with the fewest running jobs goes first (then the longest waiting)."""
    started = []
    blocked_projects = set()
    while True:
        projects = (
            Job.objects.filter(status=JobStatus.QUEUED)
            .exclude(project_id__in=blocked_projects)
            .values("project_id")
            .annotate(oldest=Min("created_at"))
        )
        if not projects:
            return started
        running = dict(
            Job.objects.filter(status=JobStatus.RUNNING)
            .values("project_id")
            .annotate(n=Count("id"))
            .values_list("project_id", "n")
        )
        order = sorted(projects, key=lambda p: (running.get(p["project_id"], 0), p["oldest"]))
        progressed = False
        for entry in order:
            job = (
                Job.objects.filter(project_id=entry["project_id"], status=JobStatus.QUEUED)
                .order_by("created_at", "pk")
                .first()
            )
            if job and _admit_job(job):
                started.append(job)
                progressed = True
                break  # fairness is recomputed after every admission
            blocked_projects.add(entry["project_id"])  # head of line waits: FIFO
        if not progressed:
            return started


def _admit_job(job: Job) -> bool:
    leases = []
    try:
        for index in range(job.instances):
            leases.append(
                devices.acquire(
                    job.package,
                    "job",
                    f"{job.job_id}/{index}",
                    label=f"job {job.name}",
                    share=job.instances,
                )
            )
    except devices.NoCapacity:
        for lease in leases:
            devices.release(lease)
        never = devices.fits_host(job.package, devices.this_host(), job.instances)
        if never:  # waiting would be forever: say so instead
            finish_job(job, JobStatus.FAILED, never)
        return False
    with transaction.atomic():
        claimed = Job.objects.filter(pk=job.pk, status=JobStatus.QUEUED).update(
            status=JobStatus.RUNNING, started_at=timezone.now()
        )
        if not claimed:  # terminated meanwhile
            for lease in leases:
                devices.release(lease)
            return False
        runs = [
            JobInstance.objects.create(
                job=job,
                index=i,
                lease=lease,
                host=settings.HOST_NAME,
                status=JobStatus.RUNNING,
                started_at=timezone.now(),
            )
            for i, lease in enumerate(leases)
        ]
    job.refresh_from_db()
    for run in runs:
        try:
            start_run(job, run)
        except Exception as exc:  # a run that cannot start fails the job, with the reason
            _close_run(run, JobStatus.FAILED, None, f"could not start: {exc}")
    return True


def distributed_env(job: Job, run: JobInstance, port: int) -> dict:
    """What torchrun and paddle.distributed set, so their scripts run unchanged."""
    world = job.instances
    return {
        "RANK": str(run.index),
        "LOCAL_RANK": str(run.index),
        "WORLD_SIZE": str(world),
        "LOCAL_WORLD_SIZE": str(world),
        "MASTER_ADDR": "127.0.0.1",
        "MASTER_PORT": str(port),
        "PADDLE_TRAINER_ID": str(run.index),
        "PADDLE_TRAINERS_NUM": str(world),
        "PADDLE_TRAINER_ENDPOINTS": ",".join(f"127.0.0.1:{port + 1 + i}" for i in range(world)),
        "PADDLE_CURRENT_ENDPOINT": f"127.0.0.1:{port + 1 + run.index}",
    }


def start_run(job: Job, run: JobInstance) -> None:
    # A warm start of the project's (workers.warm_starts) is taken as it is: its folder
    # becomes the run dir, its supervisor supervises the run.
    warm = warm_starts.claim(job, run)
    try:
        config_path = _write_config(job, run, warm or runs_root() / job.job_id / str(run.index))
    except Exception:
        if warm:
            warm_starts.give_back(warm)
        raise
    if not (warm and warm_starts.wake(warm)):
        launch_supervise(config_path)  # fresh (in the warm start's folder if it just ended)


def _write_config(job: Job, run: JobInstance, run_dir: Path) -> Path:
    """The run's run.json (workers.supervise), with its inputs resolved and checked."""
    workspace = run_dir / "workspace"
    workspace.mkdir(parents=True, exist_ok=True)
    os.chmod(run_dir, 0o700)
    algo = algorithms.get(job.kind, job.algorithm)
    inputs = {"train_data_path": job.train_data_path, "test_data_path": job.test_data_path}
    command, code_stage = algo.prepare({**job.params, **inputs}, workspace)
    output = job.output_path.rstrip("/") + f"/{job.job_id}"
    # With several instances each gets its share of the files, as the spec says; of a
    # line-oriented input with fewer files than instances, its share of the lines.
    shard = (run.index, job.instances) if job.instances > 1 else None
    wanted = [
        (
            item["uri"],
            item["dest"],
            shard if item.get("shard") else None,
            item.get("split_rows"),
            item.get("local"),
            item.get("host_files"),
        )
        for item in code_stage
    ]
    data_paths = ((job.train_data_path, "train_data"), (job.test_data_path, "test_data"))
    for path, dest in data_paths if algo.stages_data_paths else ():
        if path:
            wanted.append((path, dest, shard, algo.split_data_rows, None, None))
    # Inputs are only read: a public data set's parts may be among them (visual modeling).
    foreign = ownership.foreign_paths(job.project_id, [w[0] for w in wanted], public_read=True)
    foreign += ownership.foreign_paths(job.project_id, [output])
    if foreign:
        raise ValueError(f"{foreign[0]} is not in the job's project")
    # `local`: a folder of this host holding the same files (an earlier run's outputs, as
    # it staged them out): supervise copies from it what matches, the rest from the store.
    # `host_files`: files of this host the store does not have (an earlier run's table kept
    # in a faster form: apps.visual.node_jobs), shown too when they are still there.
    stage_in = [
        {
            "dest": dest,
            **grants.input_files(uri, shard, split_rows=bool(rows)),
            **({"local": local} if local else {}),
            **({"host_files": host_files} if host_files else {}),
        }
        for uri, dest, shard, rows, local, host_files in wanted
    ]
    port = 29500 + (job.pk % 1000) * 8
    config = {
        "run_id": f"{job.job_id}-{run.index}",
        "workspace": str(workspace),
        "command": command,
        "env": {**devices.visible_devices_env(run.lease), **distributed_env(job, run, port)},
        "time_limit_s": job.time_limit_s,
        "cpu_affinity": run.lease.cpus,
        # The project's own user (as root), and nothing of var/ but this run's workspace.
        "sandbox": confinement.for_run(
            job.project_id, workspace, run.lease, group=f"job-{job.job_id}-{run.index}"
        ).to_json(),
        # No store keys: presigned reads of its inputs, and writes under its own folder.
        "grant": grants.upload_grant(
            output + "/", timedelta(seconds=job.time_limit_s) + GRANT_MARGIN
        ),
        "stage_in": stage_in,
        "stage_out": [{"src": name, "uri": f"{output}/{name}/"} for name in algo.outputs]
        if run.index == 0 or algo.outputs_from_every_instance
        else [],
        "log_uri": f"{output}/log/",
        "wake": str(wakeup.path()),
    }
    config_path = run_dir / "run.json"
    written = run_dir / "run.json.tmp"  # whole or absent: a warm start may look any time
    fd = os.open(written, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(config, fh)
    os.replace(written, config_path)
    JobInstance.objects.filter(pk=run.pk).update(run_dir=str(run_dir))
    run.run_dir = str(run_dir)
    return config_path


def launch_supervise(config_path: Path, *extra: str) -> None:
    """Start workers.supervise detached: its own session, not our child."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8"}
    env["BML_SANDBOX"] = sandbox.mode()  # "required" must hold in supervise too
    command = [sys.executable, "-m", "workers.supervise", "--config", str(config_path), *extra]
    subprocess.run(
        ["setsid", "-f", *command],
        cwd=settings.BASE_DIR,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        check=True,
        timeout=30,
    )


# -- reconcile ---------------------------------------------------------------------------


def supervisor_process(run: JobInstance) -> psutil.Process | None:
    """The live supervise process of this run, checked by command line (pids are reused)."""
    return supervisor_in(Path(run.run_dir)) if run.run_dir else None


def supervisor_in(run_dir: Path) -> psutil.Process | None:
    """The live supervise process whose run dir this is (its supervisor.pid, and its
    command line naming the dir's run.json: pids are reused), or None."""
    try:
        process = psutil.Process(int((run_dir / "supervisor.pid").read_text()))
        if process.status() == psutil.STATUS_ZOMBIE:
            return None
        if str(run_dir / "run.json") in " ".join(process.cmdline()):
            return process
    except (OSError, psutil.NoSuchProcess, psutil.AccessDenied, ValueError):
        pass
    return None


def reconcile() -> None:
    now = timezone.now()
    running = JobInstance.objects.filter(status=JobStatus.RUNNING, host=settings.HOST_NAME)
    for run in running.select_related("job", "lease"):
        result = _result(run)
        if result is not None:
            if result["status"] == JobStatus.STAGING:
                _begin_staging(run, result)
            else:
                _close_run(run, result["status"], result.get("exit_code"), result.get("reason", ""))
            continue
        process = supervisor_process(run)
        if process is None:
            if run.started_at and now - run.started_at > START_GRACE or _pid_file_exists(run):
                _close_run(run, JobStatus.FAILED, None, "worker lost: the run's process is gone")
            continue
        limit = timedelta(seconds=run.job.time_limit_s) + HARD_LIMIT_GRACE
        if run.started_at and now - run.started_at > limit:
            _kill_group(process)
            _close_run(run, JobStatus.TIMED_OUT, None, "maximum running time exceeded")
            continue
        # Still to come: the rest of its time, then staging out.
        left = (run.started_at + limit - now) if run.started_at else limit
        _refresh_grant(run, left + GRANT_MARGIN / 2, left + GRANT_MARGIN)
    staging = JobInstance.objects.filter(status=JobStatus.STAGING, host=settings.HOST_NAME)
    for run in staging.select_related("job"):
        _retry_staging(run, now)
    for job in Job.objects.filter(status__in=LIVE):
        _settle_job(job)
    # Deletions asked while the job ran: its runs have stopped now, so the rows can go.
    Job.objects.filter(delete_requested=True).exclude(status__in=ACTIVE).delete()


def _result(run: JobInstance) -> dict | None:
    path = Path(run.run_dir) / "result.json" if run.run_dir else None
    if path is None or not path.exists():
        return None
    return json.loads(path.read_text())


# -- grants and outputs waiting for the store --------------------------------------------


def _run_config(run: JobInstance) -> dict:
    return json.loads((Path(run.run_dir) / "run.json").read_text())


def _refresh_grant(run: JobInstance, needed: timedelta, valid_for: timedelta) -> None:
    """A fresh grant for a live run whose own no longer reaches the store, or not for
    `needed` more (see the module's docstring)."""
    fresh = Path(run.run_dir) / FRESH_GRANT_FILE
    try:
        granted = _run_config(run).get("grant")
        current = json.loads(fresh.read_text()) if fresh.exists() else granted
    except (OSError, ValueError):
        return  # run.json is written before the run starts; nothing to look at yet
    if not granted or grants.grant_is_current(current, needed):
        return
    try:
        _write_grant(run, granted["prefix"], valid_for)
    except Exception as exc:  # the store is away: its next reconcile tries again
        logger.warning("no fresh grant for run %s: %r", run, exc)


def _write_grant(run: JobInstance, prefix: str, valid_for: timedelta) -> None:
    grant = grants.upload_grant(prefix, valid_for)
    path = Path(run.run_dir) / FRESH_GRANT_FILE
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(grant, fh)
    os.replace(tmp, path)


def _waiting(result: dict) -> list[str]:
    return ["the log" if item == "log" else item for item in result.get("pending") or ["outputs"]]


def _staging_reason(result: dict) -> str:
    return (
        f"outputs waiting for the object store: {', '.join(_waiting(result))}; retrying "
        f"({result.get('staging_error') or 'no answer'})"
    )


def _where_kept(run: JobInstance, result: dict) -> str:
    """What could not be stored and where its files are, for a reason a user reads."""
    run_dir = Path(run.run_dir)
    try:
        sources = {i["uri"]: i["src"] for i in _run_config(run).get("stage_out") or []}
    except (OSError, ValueError):
        sources = {}
    kept = []
    for item in result.get("pending") or []:
        if item == "log":
            kept.append(f"the log (in {run_dir / 'log.txt'})")
        else:
            kept.append(f"{item} (in {run_dir / 'workspace' / sources.get(item, '')})")
    return f"not stored: {', '.join(kept)} on host {run.host or settings.HOST_NAME}"


def _begin_staging(run: JobInstance, result: dict) -> None:
    """The run's code has ended but the store did not take its outputs: its devices are
    free, its outputs wait (retried by _retry_staging)."""
    with transaction.atomic():
        updated = JobInstance.objects.filter(pk=run.pk, status=JobStatus.RUNNING).update(
            status=JobStatus.STAGING,
            exit_code=result.get("exit_code"),
            reason=_staging_reason(result),
        )
        if updated and run.lease_id:
            devices.release(run.lease)


def staging_give_up() -> timedelta:
    seconds = getattr(settings, "JOB_STAGING_GIVE_UP_S", None)
    return timedelta(seconds=seconds) if seconds is not None else STAGING_GIVE_UP


def _retry_staging(run: JobInstance, now) -> None:
    """Settle a run whose outputs waited, or try once more (detached) with a fresh grant."""
    result = _result(run)
    if result is None:
        _close_run(run, JobStatus.FAILED, None, "worker lost: the run's result is gone")
        return
    if result["status"] != JobStatus.STAGING:  # a retry stored everything (or was refused)
        _close_run(run, result["status"], result.get("exit_code"), result.get("reason", ""))
        return
    if supervisor_process(run) is not None:
        return  # a retry is under way
    reason = _staging_reason(result)
    if reason != run.reason:
        JobInstance.objects.filter(pk=run.pk, status=JobStatus.STAGING).update(reason=reason)
    since = datetime.fromisoformat(result.get("staging_since") or result["ended_at"])
    if now - since > staging_give_up():
        hours = staging_give_up().total_seconds() / 3600
        given_up = (
            f"outputs could not be stored for {hours:g} h "
            f"({result.get('staging_error') or 'no answer'}); {_where_kept(run, result)}"
        )
        own = result.get("reason")
        _close_run(
            run,
            JobStatus.FAILED,
            result.get("exit_code"),
            f"{own}; {given_up}" if own else given_up,
        )
        return
    attempt = Path(run.run_dir) / STAGING_ATTEMPT_FILE
    last = max(
        datetime.fromisoformat(result.get("attempted_at") or result["ended_at"]),
        datetime.fromtimestamp(attempt.stat().st_mtime, tz=now.tzinfo)
        if attempt.exists()
        else since,
    )
    if now - last < STAGING_RETRY:
        return
    attempt.touch()
    try:
        _write_grant(run, _run_config(run)["grant"]["prefix"], GRANT_MARGIN)
        launch_supervise(Path(run.run_dir) / "run.json", "--stage-out")
    except Exception as exc:  # the store still away (no grant without it): next time
        logger.warning("staging out run %s again failed to start: %r", run, exc)


def _pid_file_exists(run: JobInstance) -> bool:
    return bool(run.run_dir) and (Path(run.run_dir) / "supervisor.pid").exists()


def _kill_group(process: psutil.Process) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _close_run(run: JobInstance, status, exit_code, reason: str) -> None:
    with transaction.atomic():
        updated = JobInstance.objects.filter(pk=run.pk, status__in=LIVE).update(
            status=status, exit_code=exit_code, reason=reason or "", ended_at=timezone.now()
        )
        if updated and run.lease_id:
            devices.release(run.lease)


def _settle_job(job: Job) -> None:
    """A job ends when all its runs have; one failed run stops the others (a distributed
    job cannot go on without a member)."""
    runs = list(job.runs.all())
    open_runs = [r for r in runs if r.status in LIVE]
    bad = sorted(
        (r for r in runs if r.status in OUTCOME_RANK), key=lambda r: -OUTCOME_RANK[r.status]
    )
    if any(r.status == JobStatus.RUNNING for r in open_runs):
        if bad:
            signal_runs(job, "terminate")
        return
    if open_runs:  # no code runs any more, but outputs wait for the store: say so
        waiting = open_runs[0]
        reason = f"instance {waiting.index}: {waiting.reason}"
        if (job.status, job.reason) != (JobStatus.STAGING, reason):
            Job.objects.filter(pk=job.pk, status__in=LIVE).update(
                status=JobStatus.STAGING, reason=reason
            )
        return
    if bad:
        worst = bad[0]
        finish_job(job, worst.status, f"instance {worst.index}: {worst.reason}")
    else:
        finish_job(job, JobStatus.SUCCEEDED, "")


def finish_job(job: Job, status, reason: str) -> None:
    """Record a job's end once, and send its "notify at end" messages from the Q cluster."""
    ended = Job.objects.filter(pk=job.pk, status__in=ACTIVE).update(
        status=status, reason=reason, ended_at=timezone.now()
    )
    if ended:
        from apps.jobs.signals import job_finished

        job.refresh_from_db()
        # A receiver's failure must not stop reconcile: log it, the job's end stands.
        for receiver, error in job_finished.send_robust(sender=Job, job=job):
            if isinstance(error, Exception):
                logger.error("job_finished receiver %s failed: %r", receiver, error)
    if ended and (job.notify_email or job.notify_webhook):
        from django_q.tasks import async_task

        async_task("apps.jobs.notify.notify_job_end", job.pk, task_name=f"notify-{job.job_id}")


def signal_runs(job: Job, action: str) -> None:
    """Ask every live run of the job to stop; supervise ends them "terminated" with logs."""
    assert action == "terminate"
    for run in job.runs.filter(status=JobStatus.RUNNING, host=settings.HOST_NAME):
        process = supervisor_process(run)
        if process is not None:
            process.send_signal(signal.SIGTERM)


def kill_runs(job: Job) -> None:
    """Kill every live run of the job at once (its project is being deleted) and free leases."""
    for run in job.runs.filter(status__in=LIVE, host=settings.HOST_NAME):
        process = supervisor_process(run)
        if process is not None:
            _kill_group(process)
            child_pid = Path(run.run_dir) / "child.pid"
            # A staging run's code ended long ago: its pid may be someone else's by now.
            if run.status == JobStatus.RUNNING and child_pid.exists():
                try:
                    os.killpg(int(child_pid.read_text()), signal.SIGKILL)
                except (ProcessLookupError, ValueError):
                    pass
        _close_run(run, JobStatus.TERMINATED, None, "project deleted")


def stop_staging(job: Job, reason: str) -> None:
    """Stop waiting for the store (the job is terminated): its staging runs end now,
    their reason naming what was not stored and where it is."""
    for run in job.runs.filter(status=JobStatus.STAGING, host=settings.HOST_NAME):
        process = supervisor_process(run)
        if process is not None:
            _kill_group(process)
        result = _result(run) or {}
        _close_run(
            run,
            JobStatus.TERMINATED,
            result.get("exit_code"),
            f"{reason}; {_where_kept(run, result)}",
        )
