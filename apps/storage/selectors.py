"""Reads scoped to the requesting user's projects."""

from django.core.exceptions import ValidationError
from django.http import Http404

from apps.projects.models import Membership
from apps.storage.models import Bucket
from apps.storage.paths import BosPath, parse_bos_uri

# Buckets the platform keeps for itself in a project (the model warehouse's files): browsable
# in storage, but never offered as a place for a user's data (defaults, path pickers).
INTERNAL_BUCKET_PREFIXES = ("bml-models-p",)


def buckets_for(user, project=None):
    buckets = Bucket.objects.filter(project__memberships__user=user).select_related("project")
    if project is not None:
        buckets = buckets.filter(project=project)
    return buckets.distinct()


def data_buckets_for(user, project=None):
    """The buckets that hold a project's own data: all but the platform's internal ones."""
    buckets = buckets_for(user, project)
    for prefix in INTERNAL_BUCKET_PREFIXES:
        buckets = buckets.exclude(name__startswith=prefix)
    return buckets


def get_bucket(user, name: str) -> Bucket:
    """The bucket if the user is a member of its project; 404 otherwise (no existence leak)."""
    bucket = Bucket.objects.select_related("project").filter(name=name).first()
    if bucket is None or not Membership.objects.filter(project=bucket.project, user=user).exists():
        raise Http404("No such bucket.")
    return bucket


def resolve_path(user, uri: str, field: str = "path") -> tuple[Bucket, BosPath]:
    path = parse_bos_uri(uri, field)
    return get_bucket(user, path.bucket), path


def project_path(user, project, uri: str, field: str, required: bool) -> str:
    """A bos:// path in a bucket of this project, normalised; a field error otherwise (a
    bucket the user cannot see reads as unknown, so nothing leaks)."""
    if not uri:
        if required:
            raise ValidationError({field: "This path is required."})
        return ""
    try:
        bucket, path = resolve_path(user, uri, field)
    except Http404:
        raise ValidationError({field: f"No bucket of yours is named in '{uri}'."}) from None
    if bucket.project_id != project.pk:
        raise ValidationError({field: f"'{uri}' belongs to another project."})
    return str(path)
