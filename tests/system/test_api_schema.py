"""The API docs group every operation under its module: one tag each, declared with a
description, and no module left without operations."""

from django.conf import settings
from drf_spectacular.generators import SchemaGenerator

from bml_site.api_schema import MODULE_OF_PATH

METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


def test_every_operation_has_one_declared_module_tag_and_every_module_a_description():
    declared = {
        tag["name"]: tag.get("description", "") for tag in settings.SPECTACULAR_SETTINGS["TAGS"]
    }
    schema = SchemaGenerator().get_schema(request=None, public=True)
    assert [tag["name"] for tag in schema["tags"]] == list(declared)

    used: dict[str, int] = {}
    untagged = []
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            if method not in METHODS:
                continue
            tags = operation.get("tags", [])
            if len(tags) != 1 or tags[0] not in declared:
                untagged.append(f"{method.upper()} {path}: {tags}")
            for tag in tags:
                used[tag] = used.get(tag, 0) + 1
    assert not untagged, "operations outside the declared modules: " + "; ".join(untagged)
    assert all(len(description) >= 40 for description in declared.values()), declared
    assert set(used) == set(declared), f"modules without operations: {set(declared) - set(used)}"
    assert set(MODULE_OF_PATH.values()) == set(declared)
