"""Writes and business rules of projects and memberships."""

import re

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.dispatch import Signal

from apps.projects.models import Membership, Project, Role

DEFAULT_PROJECT_NAME = "default"
PROJECT_NAME_RULE = re.compile(r"^\w[\w\-. ]{0,48}[\w\-.]$|^\w$")
PROJECT_NAME_HELP = (
    "1-50 characters: letters, digits, '-', '_', '.' and inner spaces; "
    "must start with a letter or digit."
)

# Sent (from the Q worker) before a deleted project's rows go, so each module can remove what
# it keeps outside the database (objects in the store, running processes). A receiver that
# raises stops the purge; the project stays marked for deletion and can be deleted again.
project_purging = Signal()


def require_role(user, project: Project, needed: str) -> Membership:
    membership = Membership.objects.filter(project=project, user=user).first()
    if membership is None:
        from django.http import Http404

        raise Http404("No such project.")
    if not membership.allows(needed):
        raise PermissionDenied(
            f"Your role in project '{project.name}' is {membership.role}; this needs {needed}."
        )
    return membership


def validate_project_name(name: str) -> str:
    name = (name or "").strip()
    if not PROJECT_NAME_RULE.match(name):
        raise ValidationError({"name": f"Invalid project name. {PROJECT_NAME_HELP}"})
    return name


def _check_name_free(owner, name, exclude_id=None):
    clash = Project.objects.filter(owner=owner, name=name).exclude(pk=exclude_id)
    if clash.exists():
        raise ValidationError({"name": f"You already have a project named '{name}'."})


def ensure_default_project(user) -> Project:
    project = Project.objects.filter(owner=user, is_default=True).first()
    if project:
        return project
    with transaction.atomic():
        project = Project.objects.create(owner=user, name=DEFAULT_PROJECT_NAME, is_default=True)
        Membership.objects.create(project=project, user=user, role=Role.OWNER)
    return project


def create_project(owner, name: str) -> Project:
    name = validate_project_name(name)
    _check_name_free(owner, name)
    try:
        with transaction.atomic():
            project = Project.objects.create(owner=owner, name=name)
            Membership.objects.create(project=project, user=owner, role=Role.OWNER)
    except IntegrityError:
        raise ValidationError({"name": f"You already have a project named '{name}'."}) from None
    return project


def set_notebook_terminal(user, project: Project, value: str) -> Project:
    """Who gets JupyterLab's terminal in the project's notebooks ("" for nobody); an
    instance running already takes it at its next start."""
    require_role(user, project, Role.OWNER)
    allowed = dict(Project._meta.get_field("notebook_terminal").choices)
    if value not in allowed:
        raise ValidationError(
            {"notebook_terminal": f"Choose one of: {', '.join(map(repr, allowed))}."}
        )
    project.notebook_terminal = value
    project.save(update_fields=["notebook_terminal", "updated_at"])
    return project


def rename_project(user, project: Project, name: str) -> Project:
    require_role(user, project, Role.OWNER)
    name = validate_project_name(name)
    _check_name_free(project.owner, name, exclude_id=project.pk)
    project.name = name
    project.save(update_fields=["name", "updated_at"])
    return project


def delete_project(user, project: Project, confirm_name: str) -> None:
    """Delete a project and everything it owns; the caller must type the name to confirm.

    External resources (objects in the store) are removed by a queued purge, so a project
    with thousands of objects does not hold a web request open.
    """
    require_role(user, project, Role.OWNER)
    if project.is_default:
        raise ValidationError({"project": "The default project cannot be deleted."})
    if (confirm_name or "").strip() != project.name:
        raise ValidationError(
            {"confirm_name": f"Type the project name '{project.name}' exactly to delete it."}
        )
    from django_q.tasks import async_task

    # Hide it at once (no membership, name freed); the purge in the Q cluster removes the rest.
    with transaction.atomic():
        Project.objects.filter(pk=project.pk).update(name=f"~deleting-{project.pk}")
        Membership.objects.filter(project=project).delete()
    async_task("apps.projects.tasks.purge_project", project.pk, task_name=f"purge-{project.pk}")


def purge_project(project_id: int) -> None:
    project = Project.objects.filter(pk=project_id).first()
    if project is None:
        return
    project_purging.send(sender=Project, project=project)
    project.delete()


def add_member(user, project: Project, member, role: str) -> Membership:
    require_role(user, project, Role.OWNER)
    if role not in Role.values:
        raise ValidationError({"role": f"Role must be one of {', '.join(Role.values)}."})
    membership, created = Membership.objects.get_or_create(
        project=project, user=member, defaults={"role": role}
    )
    if not created:
        raise ValidationError({"user": f"{member.username} is already a member."})
    return membership


def change_role(user, membership: Membership, role: str) -> Membership:
    require_role(user, membership.project, Role.OWNER)
    if role not in Role.values:
        raise ValidationError({"role": f"Role must be one of {', '.join(Role.values)}."})
    if membership.user_id == membership.project.owner_id:
        raise ValidationError({"role": "The project's creator stays its owner."})
    membership.role = role
    membership.save(update_fields=["role"])
    return membership


def remove_member(user, membership: Membership) -> None:
    require_role(user, membership.project, Role.OWNER)
    if membership.user_id == membership.project.owner_id:
        raise ValidationError({"user": "The project's creator cannot be removed."})
    membership.delete()
