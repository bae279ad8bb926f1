"""Helpers of the job tests: submit a job, drive the scheduler, read what it stored."""

import textwrap

from apps.billing.models import ResourcePackage
from apps.jobs import services
from apps.storage.client import get_client
from tests.conftest import wait_until
from workers import scheduler


def package(kind="cpu", count=0):
    return ResourcePackage.objects.get(
        module="train",
        device_kind=kind,
        device_count=count,
        name__startswith="CPU Instance_2"
        if kind == "cpu"
        else "GPU Instance_V100_12"
        if kind == "cuda"
        else "XPU",
    )


def submit(owner, project, code, name="job1", pkg=None, **kw):
    return services.create_job(
        owner,
        project,
        name=name,
        kind="deep_learning",
        algorithm="custom_code",
        params={"framework": "pytorch", "code": textwrap.dedent(code)},
        package_id=(pkg or package()).pk,
        output_path="bos://jobs-out/results/",
        **kw,
    )


def submit_template(owner, project, template, name, output_path, framework="sklearn"):
    """A job running one of the console's code templates (e.g. "sklearn_digits")."""
    from apps.jobs.templates_code import available_templates

    return services.create_job(
        owner,
        project,
        name=name,
        kind="deep_learning",
        algorithm="custom_code",
        params={"framework": framework, "code": available_templates()[template].code},
        package_id=package().pk,
        output_path=output_path,
    )


def run_until(predicate, what, timeout=60):
    def step():
        scheduler.tick()
        return predicate()

    return wait_until(step, timeout=timeout, interval=0.2, what=what)


def wait_running(job):
    """Until the job's run is up: admitted and its supervise process alive."""
    run_until(
        lambda: (
            status_of(job) == "running" and scheduler.supervisor_process(job.runs.get()) is not None
        ),
        "the run to start",
    )


def status_of(job):
    job.refresh_from_db()
    return job.status


def stored(key):
    return get_client().get_object("jobs-out", key).read()
