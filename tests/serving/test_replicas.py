"""Replica supervision (apps.serving.replicas.reconcile, the scheduler loop's serving part),
driven in-process: real model_serve processes, real leases."""

import threading
import time

import psutil
import pytest

from apps.projects.services import purge_project
from apps.serving import replicas, services
from apps.serving.models import Replica
from workers.models import Lease


def drive(predicate, what, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        replicas.reconcile()
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def status_of(obj):
    obj.refresh_from_db()
    return obj.status


def pids(service):
    return sorted(Replica.objects.filter(version__service=service).values_list("pid", flat=True))


def alive(pid) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


@pytest.fixture
def service(owner, project, iris_version):
    service = services.create_service(
        owner,
        project,
        name="iris",
        version=services.VersionConfig(1, iris_version, replicas=2),
    )
    yield service
    for replica in Replica.objects.all():
        replicas.kill_replica(replica)


def test_replicas_start_are_replaced_on_edit_scale_down_stop_and_restart(owner, service):
    drive(lambda: status_of(service) == "running", "the service to run")
    first = pids(service)
    assert all(alive(pid) for pid in first)
    leases = Lease.objects.filter(holder_type="replica", released_at=None)
    assert leases.count() == 2 and all(lease.shared_cpu for lease in leases)

    # Edit: batching changes the launch spec, so both replicas are replaced; then scale down.
    (config,) = services.current_configs(service)
    config.max_batch_size, config.max_wait_ms = 8, 2
    services.edit_service(owner, service, [config])
    drive(
        lambda: status_of(service) == "running" and not set(pids(service)) & set(first),
        "replaced replicas",
    )
    drive(lambda: not any(alive(pid) for pid in first), "the old processes to exit", 30)
    config.replicas = 1
    services.edit_service(owner, service, [config])
    drive(lambda: len(pids(service)) == 1, "the scale-down")
    assert Lease.objects.filter(holder_type="replica", released_at=None).count() == 1
    assert [r.note for r in service.revisions.order_by("number")] == [
        "created with version 1",
        "edited",
        "edited",
    ]

    # Stop: processes end, leases go; restart brings it back.
    (running_pid,) = pids(service)
    (replica_id,) = Replica.objects.filter(version__service=service).values_list("pk", flat=True)
    assert replicas.key_file(replica_id).exists()
    services.stop_service(owner, service)
    drive(lambda: not alive(running_pid), "the stop", 30)
    assert status_of(service) == "stopped"
    assert not Replica.objects.filter(version__service=service).exists()
    assert not replicas.key_file(replica_id).exists()  # the gateway's copy of its secret
    assert not Lease.objects.filter(holder_type="replica", released_at=None).exists()
    services.restart_service(owner, service)
    drive(lambda: status_of(service) == "running", "the restart")


def test_a_slow_model_download_does_not_hold_up_the_loop(service, monkeypatch):
    gate, real = threading.Event(), replicas.model_files

    def slow(version):
        gate.wait(60)
        return real(version)

    monkeypatch.setattr(replicas, "model_files", slow)
    started = time.monotonic()
    replicas.reconcile()
    replicas.reconcile()
    assert time.monotonic() - started < 5
    runs = Replica.objects.filter(version__service=service)
    assert [(r.reason, r.pid) for r in runs] == [("fetching the model files", None)] * 2
    assert status_of(service) == "deploying"
    gate.set()
    drive(lambda: status_of(service) == "running", "the service once the files are in")


def test_a_model_that_stops_loading_fails_the_version_with_the_loaders_error(
    owner, service, monkeypatch
):
    monkeypatch.setattr(replicas, "BACKOFF_BASE_S", 0)
    version = service.versions.get()
    drive(lambda: status_of(service) == "running", "the service to run")
    path = replicas.model_files(version.model_version)
    path.write_bytes(b"not a model any more")
    for replica in Replica.objects.filter(version=version):
        replicas.kill_replica(replica)
    drive(lambda: status_of(service) == "failed", "the failure", 90)
    version.refresh_from_db()
    assert version.status == "failed"
    assert "model" in version.reason.lower() or "load" in version.reason.lower(), version.reason
    assert not Lease.objects.filter(holder_type="replica", released_at=None).exists()
    # The spec: a failed service can be restarted (and deleted).
    services.restart_service(owner, service)
    assert status_of(service) == "deploying"
    services.stop_service(owner, service)
    services.delete_service(owner, service)


def test_shutdown_stops_replicas_and_the_next_start_brings_them_back(service):
    drive(lambda: status_of(service) == "running", "the service to run")
    before = pids(service)
    replicas.shutdown()
    for pid in before:
        psutil.Process(pid).wait(30)
    drive(
        lambda: status_of(service) == "running" and set(pids(service)).isdisjoint(before),
        "the replicas after a restart",
    )


def test_deleting_the_project_kills_its_replicas(owner, make_user, iris_version):
    from apps.projects.services import create_project

    other = create_project(owner, "doomed")
    from apps.warehouse.models import Model

    common = Model.objects.filter(is_common=True).first()
    version = common.versions.first() if common else None
    if version is None:  # common models are seeded at `make up`, not in this test database
        version = iris_version
        version.model.project = other
        version.model.save()
    service = services.create_service(
        owner, other, name="doomed", version=services.VersionConfig(1, version)
    )
    drive(lambda: status_of(service) == "running", "the service to run")
    (pid,) = pids(service)
    purge_project(other.pk)
    psutil.Process(pid).wait(10)
    assert not Lease.objects.filter(holder_type="replica", released_at=None).exists()


def test_the_q_clusters_tick_leaves_replicas_to_the_scheduler_loop(service):
    """A submit asks the Q cluster for an early job tick; were it to supervise replicas too,
    it and the loop could both restart a dead replica."""
    from workers import tasks

    tasks.tick()
    assert not Replica.objects.filter(version__service=service).exclude(pid=None).exists()
    drive(lambda: status_of(service) == "running", "the service to run")
