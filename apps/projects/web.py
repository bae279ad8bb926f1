"""Small helpers shared by console views: turn service errors into messages."""

import contextlib

from django.contrib import messages
from django.core.exceptions import ValidationError


@contextlib.contextmanager
def report_errors(request):
    """Run a service call; show its ValidationError as an error message.

    PermissionDenied is not caught: a viewer's write is refused with a 403 page."""
    try:
        yield
    except ValidationError as exc:
        for error in exc.messages:
            messages.error(request, error)
