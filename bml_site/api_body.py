"""Request bodies: the API's JSON parser, and bodies read by views without a serializer."""

import codecs
import json
import math
import sys
from collections.abc import Mapping

from rest_framework import parsers
from rest_framework.exceptions import ParseError, ValidationError


def object_body(request) -> Mapping:
    """The body as a mapping (a JSON object, form or multipart fields); anything else, such
    as a JSON list or string, is a 400 that says what was expected."""
    if not isinstance(request.data, Mapping):
        raise ValidationError({"body": ["Send a JSON object (or form fields)."]})
    return request.data


def json_depth_refusal() -> str:
    """What a body nested past the parser's reach is told. Python's JSON parser recurses
    once per level and stops at the interpreter's recursion limit, less the frames already
    on the stack: catching that costs nothing per request, where walking the body would."""
    return (
        "JSON nesting depth limit exceeded: arrays and objects may nest fewer than "
        f"{sys.getrecursionlimit()} levels deep"
    )


FINITE_RULE = "numbers must be finite (NaN/Infinity refused)"


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not a number: {FINITE_RULE}")


def _finite_float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise ValueError(f"{text} is out of range: {FINITE_RULE}")
    return value


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser (the API's default, REST_FRAMEWORK's DEFAULT_PARSER_CLASSES) with
    a 400 naming the rule instead of a 500 or a value nothing downstream can store:
    nesting past the depth limit (a RecursionError otherwise), NaN/Infinity, and numbers
    out of float range (1e400 would be inf)."""

    def parse(self, stream, media_type=None, parser_context=None):
        encoding = parsers.get_encoding(parser_context or {})
        try:
            text = codecs.getreader(encoding)(stream)
            return json.load(text, parse_constant=_refuse_constant, parse_float=_finite_float)
        except RecursionError as exc:
            raise ParseError(f"JSON parse error - {json_depth_refusal()}") from exc
        except ValueError as exc:
            raise ParseError(f"JSON parse error - {exc}") from exc
