"""Writes and rules of jobs: creation with validation, termination."""

import functools
import re

from django.core.exceptions import ValidationError
from django.core.validators import URLValidator, validate_email
from django.db import transaction

from apps.billing.models import Module, ResourcePackage
from apps.jobs import algorithms
from apps.jobs.models import ACTIVE, Job, JobStatus
from apps.jobs.notify import webhook_refusal
from apps.projects.models import Role
from apps.projects.services import require_role
from apps.storage import ownership

# The spec: letters, digits, '-' and '_', starting with a letter, fewer than 40 characters.
JOB_NAME_RULE = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,38}$")
MAX_INSTANCES = 4
MAX_TIME_LIMIT_S = 30 * 24 * 3600
# The job's own bos:// paths; its algorithm declares those among its params.
JOB_PATH_FIELDS = ("output_path", "train_data_path", "test_data_path")


def create_job(
    user,
    project,
    *,
    name,
    kind,
    algorithm,
    params=None,
    package_id,
    instances=1,
    time_limit_s=3600,
    output_path,
    train_data_path="",
    test_data_path="",
    notify_email="",
    notify_webhook="",
) -> Job:
    require_role(user, project, Role.DEVELOPER)
    if not JOB_NAME_RULE.match(name or ""):
        raise ValidationError(
            {
                "name": "Job names are letters, digits, '-' and '_', start with a letter, "
                "and are shorter than 40 characters."
            }
        )
    algo = algorithms.get(kind, algorithm)
    if params is None:
        params = {}
    if not isinstance(params, dict):
        raise ValidationError({"params": "Params must be an object of the algorithm's settings."})
    # Every bos:// path of the job must be its project's (apps.storage.ownership): the run
    # stages them with the appliance's keys. The params are walked as given and as the
    # algorithm keeps them (what is stored and staged).
    own_params = functools.partial(ownership.owned_paths, user, project, paths=algo.path_params)
    params = own_params(algo.validate(own_params(params)))
    package = ResourcePackage.objects.filter(
        pk=package_id, module=Module.TRAIN, enabled=True
    ).first()
    if package is None:
        raise ValidationError({"package": "Choose a training resource package."})
    fewest, most = algo.instances or (1, MAX_INSTANCES)
    try:
        instances = int(instances)
    except (TypeError, ValueError):
        instances = 0
    if not (fewest <= instances <= most):
        raise ValidationError(
            {"instances": f"Instances must be {fewest} to {most} for {algo.title}."}
        )
    if not (1 <= int(time_limit_s) <= MAX_TIME_LIMIT_S):
        raise ValidationError({"time_limit_s": "Maximum running time must be 1 s to 30 days."})
    notify_email, notify_webhook = check_notify(notify_email, notify_webhook)
    paths = ownership.owned_paths(
        user,
        project,
        {
            "output_path": output_path,
            "train_data_path": train_data_path,
            "test_data_path": test_data_path,
        },
        paths=JOB_PATH_FIELDS,
        required=["output_path", *(["train_data_path"] if algo.needs_train_data else [])],
    )
    output, train, test = (paths[field] or "" for field in JOB_PATH_FIELDS)
    # The spec: a notebook's storage path is synchronized into its bucket, so a job may not
    # use it, a folder inside it, or a folder around it.
    from apps.notebooks.services import check_job_paths

    check_job_paths({"output_path": output, "train_data_path": train, "test_data_path": test})
    if algo.check_inputs:
        algo.check_inputs({**params, "train_data_path": train, "test_data_path": test})
    job = Job.objects.create(
        project=project,
        name=name,
        kind=kind,
        algorithm=algorithm,
        params=params,
        package=package,
        instances=int(instances),
        time_limit_s=int(time_limit_s),
        output_path=output,
        train_data_path=train,
        test_data_path=test,
        notify_email=notify_email,
        notify_webhook=notify_webhook,
        created_by=user,
    )
    transaction.on_commit(_kick_scheduler)
    return job


def check_notify(email: str, webhook: str) -> tuple[str, str]:
    """Where "notify at end" goes, checked now: a bad address would only fail when the job
    ends, with nobody told."""
    email, webhook = (email or "").strip(), (webhook or "").strip()
    try:
        if email:
            validate_email(email)
    except ValidationError:
        raise ValidationError({"notify_email": f"'{email}' is not an e-mail address."}) from None
    try:
        if webhook:
            URLValidator(schemes=["http", "https"])(webhook)
    except ValidationError:
        raise ValidationError(
            {"notify_webhook": "The webhook must be an http:// or https:// URL."}
        ) from None
    if webhook and (refusal := webhook_refusal(webhook)):
        raise ValidationError({"notify_webhook": refusal})
    return email, webhook


# The settings a user chooses when creating a job (create_job's keyword arguments, less the
# project and package); the API serializer and "clone" are built from this one list.
SETTINGS_FIELDS = [
    "name",
    "kind",
    "algorithm",
    "params",
    "instances",
    "time_limit_s",
    "output_path",
    "train_data_path",
    "test_data_path",
    "notify_email",
    "notify_webhook",
]
CLONE_SUFFIX = "-clone"


def clone_settings(job: Job) -> dict:
    """A job's settings for a new job, its name suffixed (still within the name rule)."""
    settings = {field: getattr(job, field) for field in SETTINGS_FIELDS}
    settings.update(
        name=job.name[: 39 - len(CLONE_SUFFIX)] + CLONE_SUFFIX,
        project=job.project_id,
        package=job.package_id,
    )
    return settings


def resume_job(user, job: Job) -> Job:
    """An AutoML search that died goes on as a new job from its finished trials (the old
    job keeps its logs and table); see apps.jobs.automl.resume_settings."""
    from apps.jobs.automl import resume_settings

    require_role(user, job.project, Role.DEVELOPER)
    settings = resume_settings(job)
    settings.pop("project")
    return create_job(user, job.project, package_id=settings.pop("package"), **settings)


def terminate_job(user, job: Job) -> Job:
    """Queued jobs end at once; running ones are signalled and end at the next reconcile
    (as does one whose outputs wait for the store: no longer retried)."""
    require_role(user, job.project, Role.DEVELOPER)
    if job.status not in ACTIVE:
        raise ValidationError({"status": f"Job is already {job.status}."})
    from workers import scheduler

    if job.status == JobStatus.QUEUED:
        scheduler.finish_job(job, JobStatus.TERMINATED, "terminated by request")
    else:
        scheduler.signal_runs(job, "terminate")
        # Outputs waiting for the object store are not waited for any more.
        scheduler.stop_staging(job, "terminated by request")
    transaction.on_commit(_kick_scheduler)
    job.refresh_from_db()
    return job


def delete_job(user, job: Job) -> bool:
    """Delete a job; a live one is terminated first and its rows go once its runs have
    stopped (returns False then: the deletion is under way)."""
    require_role(user, job.project, Role.DEVELOPER)
    if job.status in ACTIVE:
        terminate_job(user, job)
        if job.status in ACTIVE:
            Job.objects.filter(pk=job.pk).update(delete_requested=True)
            return False
    job.delete()
    return True


def _kick_scheduler():
    from django_q.tasks import async_task

    from workers import wakeup

    wakeup.wake()  # the run_scheduler loop, at once
    async_task("workers.tasks.tick", task_name="scheduler-tick")  # a Q worker, if it is first
