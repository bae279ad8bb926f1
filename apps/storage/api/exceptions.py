"""DRF exception handler shared by every app's API: clear 4xx/503 answers, never a 500 for
bad input or a store that is down."""

from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from apps.storage.client import ObjectNotFound, PathConflict, StorageUnavailable, UploadTooLarge


def exception_handler(exc, context):
    if isinstance(exc, PathConflict):
        detail = exc.message_dict if hasattr(exc, "error_dict") else {"detail": exc.messages}
        return Response(detail, status=status.HTTP_409_CONFLICT)
    if isinstance(exc, DjangoValidationError):
        detail = exc.message_dict if hasattr(exc, "error_dict") else {"detail": exc.messages}
        exc = exceptions.ValidationError(detail)
    elif isinstance(exc, ObjectNotFound):
        exc = exceptions.NotFound("No such object.")
    elif isinstance(exc, UploadTooLarge):
        return Response({"detail": str(exc)}, status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE)
    elif isinstance(exc, StorageUnavailable):
        return Response({"detail": str(exc)}, status=status.HTTP_503_SERVICE_UNAVAILABLE)
    elif isinstance(exc, exceptions.UnsupportedMediaType) and context.get("view"):
        accepted = ", ".join(parser.media_type for parser in context["view"].get_parsers())
        exc = exceptions.UnsupportedMediaType(
            "", detail=f"{exc.detail} This route takes {accepted}."
        )
    return drf_exception_handler(exc, context)
