"""Small helpers shared by console views: turn service errors into messages, remember the
project a user works in."""

import contextlib

from django.contrib import messages
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.utils import timezone

from apps.projects.models import Membership


def choose_project(request, project) -> None:
    """Make `project` the console's current one, for this session and the next sign-in."""
    request.session["project_id"] = project.pk
    Membership.objects.filter(project=project, user=request.user).update(
        last_chosen_at=timezone.now()
    )


@contextlib.contextmanager
def report_errors(request):
    """Run a service call; show its ValidationError as an error message.

    PermissionDenied is not caught: a viewer's write is refused with a 403 page."""
    try:
        yield
    except ValidationError as exc:
        for error in error_lines(exc):
            messages.error(request, error)


def error_lines(exc: ValidationError) -> list[str]:
    """One line per error, naming its field ("Output path: This path is required."), since a
    message at the top of a page does not stand beside the field it is about."""
    if not hasattr(exc, "error_dict"):
        return list(exc.messages)
    lines = []
    for field, errors in exc.message_dict.items():
        label = "" if field == NON_FIELD_ERRORS else field.replace("_", " ").capitalize() + ": "
        lines += [label + error for error in errors]
    return lines
