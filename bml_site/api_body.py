"""Request bodies read by API views without a serializer."""

from collections.abc import Mapping

from rest_framework.exceptions import ValidationError


def object_body(request) -> Mapping:
    """The body as a mapping (a JSON object, form or multipart fields); anything else, such
    as a JSON list or string, is a 400 that says what was expected."""
    if not isinstance(request.data, Mapping):
        raise ValidationError({"body": ["Send a JSON object (or form fields)."]})
    return request.data
