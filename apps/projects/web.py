"""Small helpers shared by console views: turn service errors into messages."""

import contextlib

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError


@contextlib.contextmanager
def report_errors(request):
    """Run a service call; show its ValidationError/PermissionDenied as an error message."""
    try:
        yield
    except ValidationError as exc:
        for error in exc.messages:
            messages.error(request, error)
    except PermissionDenied as exc:
        messages.error(request, str(exc) or "You may not do that in this project.")
