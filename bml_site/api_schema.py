"""The API schema's grouping and its error answers.

Every operation carries its module's tag, chosen here from the first part of its path (the
tags and their descriptions are SPECTACULAR_SETTINGS["TAGS"]); a new route registers its
path here too, or tests/system/test_api_schema.py fails. Every operation also declares the
error codes it can answer, with one shared `Error` body (what DRF and our exception handler,
apps.storage.api.exceptions, write); tests/system/test_api_schema_responses.py calls every
route and fails on a code or a body the schema does not declare.
"""

from drf_spectacular.openapi import AutoSchema
from drf_spectacular.plumbing import ResolvedComponent

MODULE_OF_PATH = {
    "projects": "projects",
    "buckets": "storage",
    "datasets": "datasets",
    "annotation-tasks": "annotation",
    "jobs": "jobs",
    "notebooks": "notebooks",
    "visual-experiments": "visual",
    "visual-components": "visual",
    "models": "warehouse",
    "services": "serving",
    "resource-packages": "billing",
    "devices": "system",
}

# Modules whose writes put objects into the store, where a file and a folder may clash (409).
WRITES_OBJECTS = {"storage", "annotation", "datasets", "warehouse"}
# Modules that never talk to the store (no 503), and the store-free reads of projects.
STORE_FREE = {"billing", "system"}
PAGING = {"limit", "offset"}
WRITES = {"POST", "PUT", "PATCH", "DELETE"}
UPLOAD_MEDIA = {"multipart/form-data", "application/octet-stream"}

ERROR_VALUE = {
    "anyOf": [
        {"type": "string"},
        {"type": "array", "items": {"$ref": "#/components/schemas/ErrorValue"}},
        {"type": "object", "additionalProperties": {"$ref": "#/components/schemas/ErrorValue"}},
    ],
    "description": "A message, a list of them, or a nested object's errors by field.",
}
ERROR = {
    "type": "object",
    "minProperties": 1,
    "additionalProperties": {"$ref": "#/components/schemas/ErrorValue"},
    "description": "`detail` with a message, or the messages by field name (a nested "
    "object's or list's fields nested alike), e.g. "
    '`{"name": ["This field is required."]}`.',
    "example": {"detail": "Not found."},
}
WHY = {
    "400": "Invalid input, or a state that does not allow it; the body names the field.",
    "401": "Authentication failed.",
    "403": "Not signed in, or your role in the project does not allow this.",
    "404": "No such object in your projects (or the project named is not yours).",
    "409": "A file and a folder would share a name; or (visual modeling) the node has no such "
    "output yet, or the experiment has not run.",
    "410": "Gone: the run's intermediate results were cleared (visual modeling).",
    "411": "The upload did not state its length.",
    "413": "The upload is larger than the appliance takes.",
    "503": "The object store is not reachable right now; try again.",
}


class ModuleTaggedSchema(AutoSchema):
    def get_tags(self) -> list[str]:
        # drf-spectacular's own tag is the path's first part, e.g. "annotation-tasks".
        return [MODULE_OF_PATH.get(part, part) for part in super().get_tags()]

    def get_operation(self, path, path_regex, path_prefix, method, registry):
        operation = super().get_operation(path, path_regex, path_prefix, method, registry)
        if operation is None:
            return None
        error = {"application/json": {"schema": self._error_component().ref}}
        for code in self.error_codes(operation):
            operation["responses"].setdefault(code, {"content": error, "description": WHY[code]})
        return operation

    def error_codes(self, operation: dict) -> list[str]:
        """The error codes this operation can answer: 401/403 always; 404 where it names an
        object (in its path, its body or a `project` filter); 400 for writes and filtered
        reads; 409 where a write puts objects into the store; 411/413 for uploads; 503
        where the store is needed."""
        module = operation.get("tags", [""])[0]
        query = {p["name"] for p in operation.get("parameters", []) if p.get("in") == "query"}
        media = set(operation.get("requestBody", {}).get("content", {}))
        codes = ["401", "403"]
        if "{" in self.path or media or "project" in query:
            codes.append("404")
        if self.method in WRITES or query - PAGING:
            codes.append("400")
        if module in WRITES_OBJECTS and self.method in ("POST", "PUT"):
            codes.append("409")
        if module == "visual" and "{run}" in self.path and self.method == "GET":
            codes += ["409", "410"]  # a node's output before it exists, after it is cleared
        if module == "visual" and self.path.endswith("/compare/"):
            codes.append("409")  # nothing has run yet
        if "application/octet-stream" in media:
            codes.append("411")
        if media & UPLOAD_MEDIA:
            codes.append("413")
        if module not in STORE_FREE and not (module == "projects" and self.method == "GET"):
            codes.append("503")
        return codes

    def _error_component(self) -> ResolvedComponent:
        for name, schema in (("ErrorValue", ERROR_VALUE), ("Error", ERROR)):
            component = ResolvedComponent(
                name=name, type=ResolvedComponent.SCHEMA, object=name, schema=schema
            )
            self.registry.register_on_missing(component)
        return component
