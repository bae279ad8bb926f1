"""Writes of object storage: buckets, folders, uploads, deletes. All S3 calls go through
`client.get_client()` inside `translate_errors()`."""

import io
import mimetypes
import posixpath
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from minio.deleteobjects import DeleteObject

from apps.projects.models import Role
from apps.projects.services import require_role
from apps.storage.client import (
    PART_SIZE,
    UPLOAD_PARALLELISM,
    ObjectNotFound,
    UploadTooLarge,
    get_client,
    translate_errors,
)
from apps.storage.models import Bucket
from apps.storage.paths import validate_bucket_name, validate_key, validate_prefix


@dataclass
class Entry:
    """One row of a folder listing."""

    name: str  # last path segment, "/" kept on folders
    key: str
    is_folder: bool
    size: int | None = None
    last_modified: datetime | None = None
    etag: str | None = None


def create_bucket(user, project, name: str) -> Bucket:
    require_role(user, project, Role.DEVELOPER)
    name = validate_bucket_name((name or "").strip())
    if Bucket.objects.filter(name=name).exists():
        raise ValidationError({"name": f"A bucket named '{name}' already exists."})
    client = get_client()
    with translate_errors():
        if client.bucket_exists(name):
            raise ValidationError({"name": f"A bucket named '{name}' already exists."})
        client.make_bucket(name)
    try:
        with transaction.atomic():
            return Bucket.objects.create(project=project, name=name, created_by=user)
    except IntegrityError:
        raise ValidationError({"name": f"A bucket named '{name}' already exists."}) from None


def bucket_is_empty(bucket: Bucket) -> bool:
    with translate_errors():
        for _ in get_client().list_objects(bucket.name, recursive=True):
            return False
    return True


def delete_bucket(user, bucket: Bucket) -> None:
    """Only an empty bucket can be deleted (the store itself does not always enforce it)."""
    require_role(user, bucket.project, Role.DEVELOPER)
    if not bucket_is_empty(bucket):
        raise ValidationError(
            {"bucket": f"Bucket '{bucket.name}' is not empty; delete its objects first."}
        )
    _remove_bucket(bucket)


def _remove_bucket(bucket: Bucket) -> None:
    client = get_client()
    with translate_errors():
        try:
            client.remove_bucket(bucket.name)
        except ObjectNotFound:
            pass  # already gone from the store: just forget it
    bucket.delete()


def list_folder(bucket: Bucket, prefix: str = "") -> list[Entry]:
    prefix = validate_prefix(prefix)
    entries = []
    with translate_errors():
        for obj in get_client().list_objects(bucket.name, prefix=prefix or None):
            if obj.object_name == prefix:
                continue  # the folder's own marker object
            name = obj.object_name[len(prefix) :]
            entries.append(
                Entry(
                    name=name,
                    key=obj.object_name,
                    is_folder=obj.is_dir,
                    size=None if obj.is_dir else obj.size,
                    last_modified=obj.last_modified,
                    etag=obj.etag,
                )
            )
    entries.sort(key=lambda e: (not e.is_folder, e.name))
    return entries


def create_folder(user, bucket: Bucket, path: str) -> str:
    require_role(user, bucket.project, Role.DEVELOPER)
    key = validate_prefix((path or "").strip(), field="path")
    if not key:
        raise ValidationError({"path": "A folder needs a name."})
    with translate_errors():
        get_client().put_object(bucket.name, key, io.BytesIO(b""), 0)
    return key


def upload_object(user, bucket: Bucket, key: str, stream, length: int, content_type=None) -> dict:
    """Stream `length` bytes from `stream` into the store; large bodies go multipart."""
    require_role(user, bucket.project, Role.DEVELOPER)
    key = validate_key(key)
    if length is None or length < 0:
        raise ValidationError({"Content-Length": "Uploads must state their length."})
    if length > settings.MAX_UPLOAD_BYTES:
        raise UploadTooLarge(settings.MAX_UPLOAD_BYTES)
    content_type = content_type or mimetypes.guess_type(key)[0] or "application/octet-stream"
    with translate_errors():
        result = get_client().put_object(
            bucket.name,
            key,
            stream,
            length,
            content_type=content_type,
            part_size=PART_SIZE,
            num_parallel_uploads=UPLOAD_PARALLELISM,
        )
    return {"bucket": bucket.name, "key": key, "size": length, "etag": result.etag}


def stat_object(bucket: Bucket, key: str):
    validate_key(key)
    with translate_errors():
        return get_client().stat_object(bucket.name, key)


def presigned_read_url(bucket: Bucket, key: str) -> str:
    """A short-lived signed GET URL of the store, for the lean download path (server-side
    only: the store listens on loopback and its URLs never reach a page)."""
    validate_key(key)
    with translate_errors():
        return get_client().presigned_get_object(bucket.name, key, expires=timedelta(minutes=5))


def open_object(bucket: Bucket, key: str):
    """An open HTTP response streaming the object; the caller must close and release it."""
    validate_key(key)
    with translate_errors():
        return get_client().get_object(bucket.name, key)


def delete_path(user, bucket: Bucket, key: str) -> int:
    """Delete an object, or a folder (a key ending in '/') with everything under it."""
    require_role(user, bucket.project, Role.DEVELOPER)
    key = validate_key(key, allow_folder=True)
    if key.endswith("/"):
        return delete_prefix(bucket.name, key)
    with translate_errors():
        client = get_client()
        client.stat_object(bucket.name, key)  # 404 for a key that is not there
        client.remove_object(bucket.name, key)
    return 1


def delete_prefix(bucket_name: str, prefix: str | None) -> int:
    client = get_client()
    with translate_errors():
        names = [
            DeleteObject(o.object_name)
            for o in client.list_objects(bucket_name, prefix=prefix, recursive=True)
        ]
        if prefix:
            names.append(DeleteObject(prefix))  # the folder marker, if any
        errors = list(client.remove_objects(bucket_name, names))
    if errors:
        raise ValidationError({"key": f"{len(errors)} objects could not be deleted: {errors[0]}"})
    return len(names)


def purge_project_storage(project) -> None:
    """Remove every object and bucket of a project being deleted."""
    for bucket in Bucket.objects.filter(project=project):
        delete_prefix(bucket.name, None)
        _remove_bucket(bucket)


def basename(key: str) -> str:
    return posixpath.basename(key.rstrip("/")) or key
