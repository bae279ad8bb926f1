"""Writes and rules of notebook instances: create, start, stop, delete, settings, and the
spec's rule that a notebook's storage path and the paths of job modeling never overlap."""

import re

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from apps.billing.models import Module, ResourcePackage
from apps.notebooks import workspace
from apps.notebooks.models import Desired, Notebook, NotebookStatus
from apps.projects.models import Role
from apps.projects.services import require_role
from apps.storage import ownership
from apps.storage.paths import paths_overlap

# The job name rule of the spec: letters, digits, '-' and '_', starting with a letter, < 40.
NAME_RULE = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,38}$")
DISK_SIZES_GB = (10, 20, 50, 100, 200)
MAX_DISK_GB = 1024
MAX_AUTO_STOP_MINUTES = 7 * 24 * 60


def create_notebook(
    user,
    project,
    *,
    name,
    package_id,
    disk_gb=DISK_SIZES_GB[0],
    storage_path="",
    auto_stop_minutes=None,
    start=True,
) -> Notebook:
    require_role(user, project, Role.DEVELOPER)
    name = (name or "").strip()
    if not NAME_RULE.match(name):
        raise ValidationError(
            {
                "name": "Instance names are letters, digits, '-' and '_', start with a letter, "
                "and are shorter than 40 characters."
            }
        )
    if Notebook.objects.filter(project=project, name=name).exists():
        raise ValidationError({"name": f"This project already has an instance named '{name}'."})
    package = ResourcePackage.objects.filter(
        pk=package_id, module=Module.WORKAREA, enabled=True
    ).first()
    if package is None:
        raise ValidationError({"package": "Choose a workarea (notebook) resource package."})
    disk_gb = _disk_size(disk_gb)
    if auto_stop_minutes in (None, ""):
        auto_stop_minutes = settings.NOTEBOOK_AUTO_STOP_MINUTES
    auto_stop = _auto_stop(auto_stop_minutes)
    path = ownership.owned_path(user, project, storage_path, "storage_path")
    if path:
        check_notebook_path(path)
    try:
        with transaction.atomic():
            notebook = Notebook.objects.create(
                project=project,
                name=name,
                package=package,
                disk_gb=disk_gb,
                storage_path=path,
                auto_stop_minutes=auto_stop,
                desired=Desired.RUNNING if start else Desired.STOPPED,
                status=NotebookStatus.STARTING if start else NotebookStatus.STOPPED,
                created_by=user,
            )
    except IntegrityError:  # a concurrent create with the same name
        raise ValidationError(
            {"name": f"This project already has an instance named '{name}'."}
        ) from None
    workspace.create(notebook)
    return notebook  # the scheduler loop starts it within a quarter of a second


def _disk_size(value) -> int:
    try:
        size = int(value)
    except (TypeError, ValueError):
        size = 0
    if not 1 <= size <= MAX_DISK_GB:
        raise ValidationError({"disk_gb": f"The startup disk is 1 to {MAX_DISK_GB} GB."})
    return size


def _auto_stop(value) -> int:
    try:
        minutes = int(value)
    except (TypeError, ValueError):
        minutes = -1
    if not 0 <= minutes <= MAX_AUTO_STOP_MINUTES:
        raise ValidationError(
            {
                "auto_stop_minutes": "Auto-stop is 0 (never) to "
                f"{MAX_AUTO_STOP_MINUTES} minutes without activity."
            }
        )
    return minutes


def check_notebook_path(path: str, exclude_pk=None) -> None:
    """The spec: a notebook's storage path is synchronized into the bucket, so it can be
    neither the same as, nor inside, nor around a path a job reads or writes."""
    from apps.jobs.models import Job

    for job in Job.objects.only("name", "output_path", "train_data_path", "test_data_path"):
        for field in ("output_path", "train_data_path", "test_data_path"):
            used = getattr(job, field)
            if used and paths_overlap(path, used):
                raise ValidationError(
                    {
                        "storage_path": f"'{path}' overlaps {used}, a path of the job "
                        f"'{job.name}' ({field.replace('_', ' ')}); a notebook would overwrite "
                        "it. Use a folder of its own, e.g. bos://bucket/notebooks/<name>/."
                    }
                )
    # Two instances synchronizing one folder would undo each other's deletions.
    others = Notebook.objects.exclude(storage_path="").exclude(pk=exclude_pk)
    for other in others.only("name", "storage_path"):
        if paths_overlap(path, other.storage_path):
            raise ValidationError(
                {
                    "storage_path": f"'{path}' overlaps {other.storage_path}, the storage path "
                    f"of the notebook '{other.name}'; give each instance a folder of its own."
                }
            )


def check_job_paths(paths: dict[str, str]) -> None:
    """The reverse of check_notebook_path, for a job being created ({field: path})."""
    notebooks = Notebook.objects.exclude(storage_path="").only("name", "storage_path")
    for field, path in paths.items():
        if not path:
            continue
        for notebook in notebooks:
            if paths_overlap(path, notebook.storage_path):
                raise ValidationError(
                    {
                        field: f"'{path}' overlaps {notebook.storage_path}, the storage path "
                        f"of the notebook '{notebook.name}', which synchronizes it; use "
                        "another folder."
                    }
                )


def start_notebook(user, notebook: Notebook) -> Notebook:
    require_role(user, notebook.project, Role.DEVELOPER)
    if notebook.desired == Desired.RUNNING and notebook.status != NotebookStatus.FAILED:
        raise ValidationError({"status": f"The instance is already {notebook.status}."})
    if notebook.status == NotebookStatus.STOPPING:
        raise ValidationError({"status": "The instance is stopping; start it once it stopped."})
    Notebook.objects.filter(pk=notebook.pk).update(
        desired=Desired.RUNNING,
        status=NotebookStatus.STARTING,
        reason="",
        failures_in_a_row=0,
        retry_at=None,
    )
    notebook.refresh_from_db()
    return notebook


def stop_notebook(user, notebook: Notebook, reason: str = "stopped by request") -> Notebook:
    """Everything in the instance is kept; data/ is synchronized once more, then "stopped"."""
    require_role(user, notebook.project, Role.DEVELOPER)
    if notebook.desired == Desired.STOPPED:
        raise ValidationError({"status": f"The instance is already {notebook.status}."})
    changes = {"desired": Desired.STOPPED, "reason": reason}
    if notebook.status == NotebookStatus.FAILED or (not notebook.pid and not notebook.lease_id):
        changes["status"] = NotebookStatus.STOPPED  # nothing runs: nothing to wait for
    else:  # the page shows "stopping" at once; the loop signals the server
        changes.update(status=NotebookStatus.STOPPING, stopped_at=None)
    Notebook.objects.filter(pk=notebook.pk).update(**changes)
    notebook.refresh_from_db()
    return notebook


def update_notebook(user, notebook: Notebook, *, auto_stop_minutes=None, storage_path=None):
    """Settings that can change on a stopped or running instance (the storage path only
    while stopped: the sync of a running one must not switch buckets under it)."""
    require_role(user, notebook.project, Role.DEVELOPER)
    changes = {}
    if auto_stop_minutes is not None:
        changes["auto_stop_minutes"] = _auto_stop(auto_stop_minutes)
    if storage_path is not None and storage_path != notebook.storage_path:
        if notebook.status != NotebookStatus.STOPPED:
            raise ValidationError({"storage_path": "Stop the instance to change its path."})
        path = ownership.owned_path(user, notebook.project, storage_path, "storage_path")
        if path:
            check_notebook_path(path, exclude_pk=notebook.pk)
        changes["storage_path"] = path
        # A new path starts a new synchronization history.
        (workspace.instance_dir(notebook) / "sync-state.json").unlink(missing_ok=True)
    if changes:
        Notebook.objects.filter(pk=notebook.pk).update(**changes)
        notebook.refresh_from_db()
    return notebook


def delete_notebook(user, notebook: Notebook) -> None:
    """The server is killed and the instance's directory removed (its bucket stays)."""
    require_role(user, notebook.project, Role.DEVELOPER)
    notebook.delete()  # post_delete kills the server and removes the directory
