"""workers.warm_starts: which projects keep a warm start, and when it goes (real processes;
what a warm start does with the job it is given: tests/workers/test_spare.py and the iris
pipeline's rerun in tests/visual/test_api.py)."""

from datetime import timedelta

import pytest
from django.utils import timezone

from apps.jobs.models import Job, JobInstance, JobStatus
from apps.projects.models import Project
from tests.conftest import wait_until
from tests.jobs.helpers import package
from workers import devices, sandbox, warm_starts

needs_sandbox = pytest.mark.skipif(not sandbox.active(), reason="warm starts need the sandbox")


@pytest.fixture
def project(make_user):
    devices.sync_inventory()
    yield Project.objects.get(owner=make_user())
    warm_starts.stop_all()


def visual_job(project, status=JobStatus.SUCCEEDED, age=timedelta(0)) -> Job:
    job = Job.objects.create(
        project=project,
        name="node",
        kind="visual",
        algorithm="node",
        package=package(),
        time_limit_s=60,
        output_path="bos://x/y/",
        status=status,
    )
    Job.objects.filter(pk=job.pk).update(created_at=timezone.now() - age)
    return job


def ended(folder):
    return warm_starts.supervisor(folder) is None


@needs_sandbox
def test_a_project_doing_visual_modeling_keeps_one_warm_start_until_it_stops(project):
    running = visual_job(project, status=JobStatus.RUNNING)
    warm_starts.ensure(force=True)
    assert warm_starts.unclaimed() == []  # its imports would take cores from the job

    Job.objects.filter(pk=running.pk).update(status=JobStatus.SUCCEEDED)
    warm_starts.ensure(force=True)
    warm_starts.ensure(force=True)  # one per project, not one per look
    (folder,) = warm_starts.unclaimed()
    assert folder.name.startswith(f"{project.pk}-")
    wait_until(lambda: warm_starts.ready(folder), 60, 0.1, "its imports")

    # Fifteen minutes without a visual job: it is stopped, then its folder removed.
    Job.objects.filter(pk=running.pk).update(created_at=timezone.now() - timedelta(minutes=16))
    warm_starts.ensure(force=True)
    wait_until(lambda: ended(folder), 30, 0.1, "the warm start to stop")
    assert "the warm start was stopped unused" in (folder / "log.txt").read_text()
    warm_starts.ensure(force=True)
    assert not folder.exists()


@needs_sandbox
def test_a_taken_warm_start_is_the_jobs_run_dir_and_goes_with_the_job(
    project, monkeypatch, make_user
):
    visual_job(project)
    monkeypatch.setenv("BML_WARM_STARTS", "1")
    warm_starts.ensure(force=True)
    (folder,) = warm_starts.unclaimed()
    wait_until(lambda: warm_starts.supervisor(folder) is not None, 30, 0.05, "its supervisor")

    other = Project.objects.get(owner=make_user())
    job = visual_job(project, status=JobStatus.RUNNING)
    run = JobInstance(job=job, index=0)
    assert warm_starts.claim(Job(project=other, kind="visual"), run) is None
    assert warm_starts.claim(Job(project=project, kind="deep_learning"), run) is None
    assert warm_starts.claim(job, run) == folder
    assert warm_starts.claim(job, run) is None  # one taker
    assert warm_starts.unclaimed() == []

    # The job's run lives there; deleting the job removes it (the process is stopped first,
    # here by hand: nothing was handed to it).
    JobInstance.objects.create(job=job, index=0, run_dir=str(folder), status=JobStatus.FAILED)
    warm_starts.supervisor(folder).terminate()
    wait_until(lambda: ended(folder), 30, 0.1, "the warm start to stop")
    job.delete()
    assert not folder.exists()


def test_the_scheduler_loop_is_woken_by_a_datagram(settings, tmp_path):
    """A job submitted or a run's result written wakes the loop before its next tick."""
    from workers import wakeup

    settings.VAR_DIR = str(tmp_path)
    waker = wakeup.Waker()
    try:
        assert waker.sleep(0.01) is False
        wakeup.wake()
        wakeup.wake()
        assert waker.sleep(30) is True  # both taken by one tick
        assert waker.sleep(0.01) is False
    finally:
        waker.close()
    assert not wakeup.path().exists()
    wakeup.wake()  # nobody listening: nothing happens
