"""Filters of the appliance's log handlers."""

import logging


class ClientErrorsWithoutTraceback(logging.Filter):
    """A refused request (4xx: a viewer's write, a missing object) is one line, not a
    traceback: Django logs PermissionDenied and Http404 with the exception attached, and
    thirty lines per expected refusal bury the errors that matter."""

    def filter(self, record: logging.LogRecord) -> bool:
        if 400 <= getattr(record, "status_code", 0) < 500:
            record.exc_info, record.exc_text = None, None
        return True
