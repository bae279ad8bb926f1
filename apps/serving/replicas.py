"""Supervision of prediction replicas, run by the scheduler loop 4 times a second.

Each replica is a `workers.runners.model_serve` process in its own session, started with
a lease (devices exclusive, cores shared: see `devices.acquire`), no appliance secrets, its
own directory under var/serving/replicas/ holding stdout.log and stderr.log. A replica
whose process is gone is started again at once (the model files are cached locally, so a
restart is the process start and the model load, about a second for a small model); one
that never comes up is retried with a growing pause and marked failed after a few tries.
The gateway reads which replicas are ready (status running, a port) from the database.

A replica's port is on loopback, where any process of the host can connect: each start
makes a new random secret, given to the process in its environment (BML_REPLICA_KEY: not on
its command line, which /proc shows to every user) and kept for the gateway in
var/serving/replica-keys/<id>.key (0600), outside the replica's own directory: the model's
code writes there and must not choose what file the gateway reads. The replica refuses
requests without it; the gateway reads it with the routing table and sends it with every
request. The file outlives the appliance, so adopted replicas keep theirs.
"""

import json
import logging
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

import psutil
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from apps.serving.models import (
    Desired,
    Replica,
    ReplicaStatus,
    Service,
    ServiceStatus,
    ServiceVersion,
)
from apps.storage.paths import parse_bos_uri
from apps.warehouse.models import ModelVersion
from apps.warehouse.services import download_files
from workers import confinement, devices, processes, sandbox
from workers.runners.model_serve import replica_environment

logger = logging.getLogger(__name__)

# A replica that has not said "ready" this long after its start is killed and retried.
START_TIMEOUT = timedelta(seconds=300)
# Starts that end before "ready" in a row before the replica is marked failed.
MAX_FAILED_STARTS = 4
# A replica killed after serving comes back at once; a failing start waits 2, 4, 8 s.
BACKOFF_BASE_S = 2
STDERR_TAIL_BYTES = 2000


def serving_root() -> Path:
    return Path(settings.VAR_DIR) / "serving"


# -- model files -------------------------------------------------------------------------


def model_cache(version: ModelVersion) -> Path:
    # The creation time too: a database restored from a backup (or a test database) may give
    # a new version the id of a deleted one, and it must not get the old one's files.
    return serving_root() / "models" / f"{version.pk}-{int(version.created_at.timestamp() * 1e6)}"


def model_files(version: ModelVersion) -> Path:
    """The version's files on local disk, downloaded once and shared by its replicas."""
    cache = model_cache(version)
    done = cache / ".complete"
    if not done.exists():
        shutil.rmtree(cache, ignore_errors=True)
        cache.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=cache.parent, prefix=f".{version.pk}-"))
        path = parse_bos_uri(version.path)
        prefix = path.key if path.key.endswith("/") or not path.key else path.key + "/"
        (staging / "files").mkdir()
        download_files(path.bucket, prefix, staging / "files")
        (staging / ".complete").write_text("")
        os.replace(staging, cache)
    files = [p for p in (cache / "files").rglob("*") if p.is_file()]
    if len(files) == 1 and files[0].parent == cache / "files":
        return files[0]
    return cache / "files"


_DOWNLOADS: dict[int, Future] = {}
_DOWNLOADER = ThreadPoolExecutor(max_workers=2, thread_name_prefix="model-download")


def local_model(version: ModelVersion) -> Path | None:
    """The version's files if they are on disk; otherwise their download is started in the
    background and None returned: a large model must not hold up the loop that restarts
    every other replica (and admits jobs). A failed download raises its error once; the
    next call tries again."""
    if (model_cache(version) / ".complete").exists():
        return model_files(version)
    future = _DOWNLOADS.get(version.pk)
    if future is None:
        _DOWNLOADS[version.pk] = _DOWNLOADER.submit(model_files, version)
        return None
    if not future.done():
        return None
    del _DOWNLOADS[version.pk]
    return future.result()


def forget_model_files(version: ModelVersion) -> None:
    shutil.rmtree(model_cache(version), ignore_errors=True)


# -- processes ---------------------------------------------------------------------------


def replica_dir(replica: Replica) -> Path:
    return serving_root() / "replicas" / str(replica.pk)


def process_of(replica: Replica) -> psutil.Process | None:
    """The replica's live process, checked by command line (pids are reused)."""
    marker = f"--name={replica_marker(replica)}"
    return processes.live_process(replica.pid, lambda p: marker in p.cmdline())


def replica_marker(replica: Replica) -> str:
    return f"replica-{replica.pk}"


def key_file(replica_id: int) -> Path:
    return serving_root() / "replica-keys" / f"{replica_id}.key"


def write_key(replica: Replica) -> str:
    """A new secret for the process about to start (atomic: never half a key)."""
    path = key_file(replica.pk)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    key = secrets.token_urlsafe(32)
    staging = path.with_suffix(".new")
    staging.unlink(missing_ok=True)
    with os.fdopen(os.open(staging, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as fh:
        fh.write(key)
    staging.replace(path)
    return key


def read_key(replica_id: int) -> str:
    """The secret of the replica's running process ("" for one started without)."""
    try:
        return key_file(replica_id).read_text().strip()
    except OSError:
        return ""


def start_process(replica: Replica, version: ServiceVersion, path: Path) -> None:
    run_dir = replica_dir(replica)
    run_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(run_dir, 0o700)
    # The model's code sees only home/ (and its files, read-only): not the logs beside it,
    # whose first line tells the gateway the replica's port.
    home = run_dir / "home"
    home.mkdir(exist_ok=True)
    lease = replica.lease
    project_id = version.service.project_id
    rules = confinement.for_run(
        project_id, home, lease, readable=[Path(path)], group=f"replica-{replica.pk}"
    )
    sandbox.give_to_run(home, rules.uid)
    env = {
        **replica_environment(home),
        "BML_REPLICA_KEY": write_key(replica),  # the gateway's; model_serve takes it out
        **devices.visible_devices_env(lease),
    }
    model = version.model_version
    command = [
        sys.executable,
        "-m",
        "workers.runners.model_serve",
        f"--name={replica_marker(replica)}",
        "--type",
        model.model_type,
        "--path",
        str(path),
        "--fields",
        json.dumps(model.fields),
        "--port",
        "0",
        "--max-batch-size",
        str(version.max_batch_size),
        "--max-wait-ms",
        str(version.max_wait_ms),
        "--max-body-mb",
        str(settings.SERVING_MAX_BODY_BYTES / (1024 * 1024)),
    ]
    with open(run_dir / "stderr.log", "ab") as stderr, open(run_dir / "stdout.log", "wb") as out:
        stderr.write(
            f"[{timezone.now().isoformat()}] [bml] starting replica {replica.name} "
            f"(start {replica.restarts + 1}) with {model} on {lease.package.name}\n".encode()
        )
        stderr.flush()
        process = subprocess.Popen(
            sandbox.command(command, rules),
            cwd=settings.BASE_DIR,  # for `-m workers...` when unconfined
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=stderr,
            start_new_session=True,
            # limits, the lease's cores and memory
            preexec_fn=sandbox.limits(rules, sandbox.control_groups(rules)),
        )
    _LAUNCHED[process.pid] = process  # kept so that its exit is reaped (no zombies)
    replica.pid = process.pid
    replica.port = None
    replica.run_dir = str(run_dir)
    replica.started_at = timezone.now()
    replica.ready_at = None
    replica.retry_at = None


_LAUNCHED: dict[int, subprocess.Popen] = {}


def ready_port(replica: Replica) -> int | None:
    """The port from the replica's "ready <port>" line, once it has printed it."""
    try:
        with open(Path(replica.run_dir) / "stdout.log", "rb") as fh:
            first = fh.readline(100).decode(errors="replace")
    except OSError:
        return None
    if first.startswith("ready ") and first.endswith("\n"):
        return int(first.split()[1])
    return None


def stderr_tail(replica: Replica) -> str:
    text = processes.tail_text(Path(replica.run_dir) / "stderr.log", STDERR_TAIL_BYTES)
    lines = text.strip().splitlines()
    errors = [line for line in lines if line.startswith("error: ")]
    return (errors[-1] if errors else (lines[-1] if lines else ""))[:500]


def signal_process(replica: Replica, signum=signal.SIGTERM) -> None:
    """TERM lets the replica finish the requests it holds (model_serve drains, then exits)."""
    processes.signal_group(process_of(replica), signum)


def stop_replica(replica: Replica) -> None:
    """Stop the process (gracefully) and free the lease; the row is the caller's."""
    signal_process(replica)
    if replica.lease_id:
        devices.release(replica.lease)


def kill_replica(replica: Replica) -> None:
    signal_process(replica, signal.SIGKILL)
    if replica.lease_id:
        devices.release(replica.lease)


# -- the loop ----------------------------------------------------------------------------


def reconcile() -> None:
    now = timezone.now()
    wanted = ServiceVersion.objects.filter(service__desired=Desired.RUNNING)
    for version in wanted.select_related("service", "model_version", "package"):
        try:
            _reconcile_version(version, now)
        except Exception as exc:  # one broken version must not stop the others
            logger.exception("serving reconcile of %s failed", version)
            _set(version, ServiceStatus.FAILED, f"{type(exc).__name__}: {exc}")
    remove(Replica.objects.filter(version__service__desired=Desired.STOPPED))
    for service in Service.objects.prefetch_related("versions"):
        _settle_service(service)
    for pid, process in list(_LAUNCHED.items()):
        if process.poll() is not None:
            del _LAUNCHED[pid]


def _reconcile_version(version: ServiceVersion, now) -> None:
    spec = version.launch_spec()
    existing = {r.index: r for r in version.runs.select_related("lease__package")}
    for index in range(version.replicas):
        replica = existing.pop(index, None) or Replica.objects.create(
            version=version, index=index, launch_spec=spec, host=settings.HOST_NAME
        )
        before = _snapshot(replica)
        _keep_alive(replica, version, spec, now)
        if _snapshot(replica) != before:
            replica.save()
    remove(existing.values())  # scaled down
    _settle_version(version)


def _snapshot(replica: Replica) -> tuple:
    return tuple(
        getattr(replica, f)
        for f in (
            "status",
            "reason",
            "launch_spec",
            "lease_id",
            "pid",
            "port",
            "started_at",
            "ready_at",
            "restarts",
            "failures_in_a_row",
            "retry_at",
            "run_dir",
        )
    )


def _keep_alive(replica: Replica, version: ServiceVersion, spec: dict, now) -> None:
    if replica.launch_spec != spec:  # edited: model, package or batching changed
        stop_replica(replica)
        replica.lease, replica.pid, replica.port = None, None, None
        replica.launch_spec, replica.status, replica.failures_in_a_row = spec, "starting", 0
        replica.retry_at = None
    if replica.status == ReplicaStatus.FAILED:
        return  # until the service is restarted
    if replica.pid:
        if process_of(replica) is not None:
            _check_ready(replica, now)
            return
        _record_exit(replica, now)
        if replica.status == ReplicaStatus.FAILED:
            return
    if replica.retry_at and now < replica.retry_at:
        return
    try:
        path = local_model(version.model_version)
    except Exception as exc:  # the store is down, or the files are gone
        replica.reason = f"could not fetch the model files: {exc}"
        _failed_start(replica, now)
        return
    if path is None:
        replica.status, replica.reason = ReplicaStatus.STARTING, "fetching the model files"
        return
    if replica.lease_id is None or not replica.lease.active:
        try:
            replica.lease = devices.acquire(
                version.package,
                "replica",
                replica.pk,
                label=f"service {version.service.name} v{version.number}",
                shared_cpu=True,
            )
        except devices.NoCapacity as exc:
            replica.status, replica.reason = ReplicaStatus.PENDING, str(exc)
            return
    replica.status = ReplicaStatus.STARTING if not replica.restarts else ReplicaStatus.RESTARTING
    start_process(replica, version, path)


def _check_ready(replica: Replica, now) -> None:
    if replica.status == ReplicaStatus.RUNNING:
        return
    port = ready_port(replica)
    if port:
        replica.status, replica.port, replica.ready_at = ReplicaStatus.RUNNING, port, now
        replica.reason, replica.failures_in_a_row = "", 0
    elif replica.started_at and now - replica.started_at > START_TIMEOUT:
        signal_process(replica, signal.SIGKILL)
        replica.reason = f"not ready within {START_TIMEOUT.seconds} s"


def _record_exit(replica: Replica, now) -> None:
    """The process is gone: say why, and decide when (or whether) to start it again."""
    was_ready = replica.ready_at is not None
    tail = stderr_tail(replica)
    replica.pid, replica.port, replica.ready_at = None, None, None
    replica.restarts += 1
    if was_ready:
        replica.failures_in_a_row = 0
        replica.reason = "the process exited; restarted" + (f" ({tail})" if tail else "")
        replica.status = ReplicaStatus.RESTARTING
        return
    replica.reason = tail or "the process exited before it was ready"
    _failed_start(replica, now)


def _failed_start(replica: Replica, now) -> None:
    """A start that did not come up: retry after a growing pause, or give up."""
    replica.failures_in_a_row += 1
    if replica.failures_in_a_row >= MAX_FAILED_STARTS:
        replica.status = ReplicaStatus.FAILED
        if replica.lease_id:
            devices.release(replica.lease)
        return
    replica.status = ReplicaStatus.RESTARTING
    replica.retry_at = now + timedelta(seconds=BACKOFF_BASE_S**replica.failures_in_a_row)


# -- statuses ----------------------------------------------------------------------------


def _set(obj, status: str, reason: str) -> None:
    if obj.status != status or obj.reason != reason:
        type(obj).objects.filter(pk=obj.pk).update(status=status, reason=reason)
        obj.status, obj.reason = status, reason


def _settle_version(version: ServiceVersion) -> None:
    runs = list(version.runs.all())
    running = sum(r.status == ReplicaStatus.RUNNING for r in runs)
    failed = [r for r in runs if r.status == ReplicaStatus.FAILED]
    if running >= version.replicas:
        _set(version, ServiceStatus.RUNNING, "")
    elif runs and len(failed) == len(runs):
        _set(version, ServiceStatus.FAILED, failed[0].reason)
    elif (
        running == 0
        and not any(r.restarts for r in runs)
        and version.status
        in (
            ServiceStatus.DEPLOYING,
            ServiceStatus.STOPPED,
        )
    ):
        pending = [r.reason for r in runs if r.status == ReplicaStatus.PENDING]
        _set(version, ServiceStatus.DEPLOYING, pending[0] if pending else "")
    else:
        reasons = [r.reason for r in runs if r.status != ReplicaStatus.RUNNING and r.reason]
        _set(
            version,
            ServiceStatus.ABNORMAL,
            f"{running} of {version.replicas} replicas running"
            + (f": {reasons[0]}" if reasons else ""),
        )


def _settle_service(service: Service) -> None:
    if service.desired == Desired.STOPPED:
        ServiceVersion.objects.filter(service=service).exclude(status=ServiceStatus.STOPPED).update(
            status=ServiceStatus.STOPPED, reason=""
        )
        _set(service, ServiceStatus.STOPPED, "")
        return
    statuses = [(v.status, v.number, v.reason) for v in service.versions.all()]
    if not statuses:
        _set(service, ServiceStatus.FAILED, "the service has no version")
    elif all(s == ServiceStatus.FAILED for s, _, _ in statuses):
        _set(service, ServiceStatus.FAILED, f"v{statuses[0][1]}: {statuses[0][2]}")
    elif any(s in (ServiceStatus.FAILED, ServiceStatus.ABNORMAL) for s, _, _ in statuses):
        bad = next(x for x in statuses if x[0] in (ServiceStatus.FAILED, ServiceStatus.ABNORMAL))
        _set(service, ServiceStatus.ABNORMAL, f"v{bad[1]}: {bad[2]}")
    elif any(s == ServiceStatus.DEPLOYING for s, _, _ in statuses):
        _set(service, ServiceStatus.DEPLOYING, "")
    else:
        _set(service, ServiceStatus.RUNNING, "")


def remove(replicas) -> None:
    """Stop these replicas' processes (gracefully), free their leases and delete the rows."""
    for replica in replicas:
        stop_replica(replica)
        key_file(replica.pk).unlink(missing_ok=True)
        replica.delete()


def stop_all(services) -> None:
    """Every replica of these services (stop, restart, delete)."""
    with transaction.atomic():
        remove(Replica.objects.filter(version__service__in=services).select_related("lease"))


def stop_all_of_version(version: ServiceVersion) -> None:
    remove(version.runs.select_related("lease"))


def shutdown() -> None:
    """The appliance stops: stop this host's replica processes (gracefully) and free their
    leases; the rows stay, so the next start brings the same replicas back."""
    for replica in Replica.objects.filter(host=settings.HOST_NAME).exclude(pid=None):
        stop_replica(replica)
        replica.lease = None
        replica.save(update_fields=["lease"])
