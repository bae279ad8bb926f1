"""Every bos:// path a user gives, wherever it sits in what they submit, is checked by one
rule before anything is stored: the path must lie in a bucket of the project it is used in
(storage_selectors.project_path; a bucket the user cannot see reads as unknown, so nothing
leaks).

Why it matters: a run never holds the store's keys, but the control plane stages what a
job's settings name with its own (grants.input_files presigns every file), so a path that
slipped past here would be read on the user's behalf from another project's bucket.

What is checked in a set of settings ({field: value}):
- the fields declared as paths, always: a value there that is not a path of the project is
  refused, whatever it looks like;
- every other value, at any depth (lists, objects), that looks like a bos:// path. So a
  setting added tomorrow without a declaration is still checked.
"""

from collections.abc import Iterable

from django.core.exceptions import ValidationError

from apps.storage.paths import looks_like_bos_uri
from apps.storage.selectors import project_path

# Deeper settings than this are refused rather than walked (no setting nests this far).
MAX_DEPTH = 32


def owned_path(user, project, uri, field: str, *, required: bool = False) -> str:
    """One path a user gives (a field of a form or a request), checked and normalised;
    "" when not given and not required."""
    must = [field] if required else []
    return owned_paths(user, project, {field: uri}, paths=[field], required=must)[field] or ""


def owned_paths(
    user, project, values: dict, *, paths: Iterable[str] = (), required: Iterable[str] = ()
) -> dict:
    """`values` with every bos:// path in them checked and normalised (`bos://bucket/key`).
    `paths`: the fields that hold a path by declaration; `required`: those that must be
    given. Raises a ValidationError naming the field (the top-level one for a nested value)."""
    paths, required = set(paths), set(required)
    checked = dict(values)
    for field in sorted(required - set(values)):
        project_path(user, project, "", field, required=True)  # raises "This path is required."
    for field, value in values.items():
        if field in paths or field in required:
            if value or field in required:
                checked[field] = project_path(user, project, value, field, field in required)
        else:
            checked[field] = _walk(user, project, value, field, 0)
    return checked


def _walk(user, project, value, field: str, depth: int):
    if depth > MAX_DEPTH:
        raise ValidationError({field: f"{field} is nested too deeply (at most {MAX_DEPTH})."})
    if looks_like_bos_uri(value):
        return project_path(user, project, value, field, required=True)
    if isinstance(value, list | tuple):
        return [_walk(user, project, item, field, depth + 1) for item in value]
    if isinstance(value, dict):
        return {key: _walk(user, project, item, field, depth + 1) for key, item in value.items()}
    return value


def foreign_paths(project_id: int, uris: Iterable[str], *, public_read: bool = False) -> list[str]:
    """The paths among `uris` whose bucket is not the project's. Checked again when a run
    starts: settings stored before a rule existed (or a bucket gone since) must not be
    staged with the control plane's keys. `public_read`: the paths are only read, and the
    public data sets' bucket (readable by every user) counts as the project's."""
    from apps.datasets.public import PUBLIC_BUCKET
    from apps.storage.models import Bucket
    from apps.storage.paths import parse_bos_uri

    uris = [u for u in uris if u]
    buckets = {u: parse_bos_uri(u).bucket for u in uris}
    owned = set(
        Bucket.objects.filter(project_id=project_id, name__in=set(buckets.values())).values_list(
            "name", flat=True
        )
    )
    if public_read:
        owned.add(PUBLIC_BUCKET)
    return [u for u in uris if buckets[u] not in owned]
