"""Reads scoped to the requesting user: nothing here can return another user's project."""

from django.http import Http404

from apps.projects.models import Membership, Project
from bml_site.numbers import as_id


def projects_for(user):
    return Project.objects.filter(memberships__user=user).select_related("owner").distinct()


def membership_for(user, project_id) -> Membership:
    """The user's membership of a project, or 404 (never 403: existence is not disclosed)."""
    pk = as_id(project_id)  # None for what cannot be an id, 2**63 included
    try:
        return Membership.objects.select_related("project").get(project_id=pk, user=user)
    except Membership.DoesNotExist:
        raise Http404("No such project.") from None


def may_write(user, project) -> bool:
    """Whether the user may change what the project owns (developer role or above); no
    project (a user without a current one) allows nothing."""
    if project is None:
        return False
    membership = Membership.objects.filter(project=project, user=user).first()
    return bool(membership and membership.allows("developer"))


def get_project(user, project_id) -> Project:
    return membership_for(user, project_id).project


def current_project(request) -> Project | None:
    """The project chosen in the switcher, falling back to the user's default project."""
    user = request.user
    if not user.is_authenticated:
        return None
    chosen = request.session.get("project_id")
    if chosen is not None:
        membership = Membership.objects.select_related("project").filter(
            project_id=chosen, user=user
        )
        if membership:
            return membership[0].project
    # A new session (a sign-in) opens the project the user last chose, then their default.
    last = (
        Membership.objects.select_related("project")
        .filter(user=user, last_chosen_at__isnull=False)
        .order_by("-last_chosen_at")
        .first()
    )
    if last:
        return last.project
    project = projects_for(user).filter(owner=user, is_default=True).first()
    return project or projects_for(user).first()
