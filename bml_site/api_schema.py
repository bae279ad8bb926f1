"""The API schema's grouping: every operation carries its module's tag, chosen here from the
first part of its path (the tags and their descriptions are SPECTACULAR_SETTINGS["TAGS"]).
A new route registers its path here too; tests/system/test_api_schema.py fails until it does.
"""

from drf_spectacular.openapi import AutoSchema

MODULE_OF_PATH = {
    "projects": "projects",
    "buckets": "storage",
    "datasets": "datasets",
    "annotation-tasks": "annotation",
    "jobs": "jobs",
    "notebooks": "notebooks",
    "models": "warehouse",
    "services": "serving",
    "resource-packages": "billing",
    "devices": "system",
}


class ModuleTaggedSchema(AutoSchema):
    def get_tags(self) -> list[str]:
        # drf-spectacular's own tag is the path's first part, e.g. "annotation-tasks".
        return [MODULE_OF_PATH.get(part, part) for part in super().get_tags()]
