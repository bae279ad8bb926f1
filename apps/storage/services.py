"""Writes of object storage: buckets, folders, uploads, deletes. All S3 calls go through
`client.get_client()` inside `translate_errors()`."""

import contextlib
import io
import mimetypes
import posixpath
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from minio.deleteobjects import DeleteObject

from apps.projects.models import Role
from apps.projects.services import require_role
from apps.storage import multipart
from apps.storage.client import (
    PART_SIZE,
    UPLOAD_PARALLELISM,
    ObjectNotFound,
    PathConflict,
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
    try:
        with translate_errors():
            get_client().put_object(bucket.name, key, io.BytesIO(b""), 0)
    except PathConflict as exc:
        name = key.rstrip("/")
        raise PathConflict(
            {"path": f"A file named '{name}' already exists here: a folder cannot take its name."}
        ) from exc
    return key


def _check_upload(user, bucket: Bucket, key: str, length, content_type) -> tuple[str, str]:
    """The rules every upload meets first; returns the key and the content type to store."""
    require_role(user, bucket.project, Role.DEVELOPER)
    key = validate_key(key)
    if length is None or length < 0:
        raise ValidationError({"Content-Length": "Uploads must state their length."})
    if length > settings.MAX_UPLOAD_BYTES:
        raise UploadTooLarge(settings.MAX_UPLOAD_BYTES)
    return key, content_type or mimetypes.guess_type(key)[0] or "application/octet-stream"


def upload_object(user, bucket: Bucket, key: str, stream, length: int, content_type=None) -> dict:
    """Stream `length` bytes from `stream` into the store; large bodies go multipart."""
    key, content_type = _check_upload(user, bucket, key, length, content_type)
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


# Relayed uploads (apps.storage.transfer) go to the store in parts of this size; a body up to
# one part is a single PUT. Big parts keep the per-part commit pause of the store rare, and
# the relay holds no part in memory, whatever its size.
RELAY_PART_SIZE = 64 * 1024 * 1024
MAX_PARTS = 10_000  # S3's limit per multipart upload


@dataclass
class UploadPlan:
    """How one upload of known length reaches the store: a single presigned PUT, or the parts
    of a multipart upload (`upload_id`), each a presigned PUT of `part_size` bytes."""

    bucket: str
    key: str
    length: int
    content_type: str
    upload_id: str | None = None
    part_size: int = RELAY_PART_SIZE

    def parts(self) -> list[tuple[int | None, int]]:
        """(part number or None for the single PUT, bytes) in order."""
        if self.upload_id is None:
            return [(None, self.length)]
        count = -(-self.length // self.part_size)
        last = self.length - (count - 1) * self.part_size
        return [(n, self.part_size if n < count else last) for n in range(1, count + 1)]


def begin_upload(user, bucket: Bucket, key: str, length, content_type=None) -> UploadPlan:
    """Check an upload (role, key, length, limit) and open it in the store: the first half of
    a relayed upload, whose bytes the caller sends to `presigned_write_url`s."""
    key, content_type = _check_upload(user, bucket, key, length, content_type)
    plan = UploadPlan(bucket.name, key, length, content_type)
    if length > RELAY_PART_SIZE:
        plan.part_size = max(RELAY_PART_SIZE, -(-length // MAX_PARTS))
        with translate_errors():
            plan.upload_id = multipart.create(get_client(), bucket.name, key, content_type)
    return plan


def presigned_write_url(plan: UploadPlan, part_number: int | None = None) -> str:
    """A short-lived signed PUT URL for the whole object or one part (server-side only).
    Presigned requests carry an unsigned payload: the bytes are not hashed on the way."""
    extra = {}
    if part_number is not None:
        extra = {"partNumber": str(part_number), "uploadId": plan.upload_id}
    with translate_errors():
        return get_client().get_presigned_url(
            "PUT", plan.bucket, plan.key, expires=timedelta(hours=1), extra_query_params=extra
        )


def finish_upload(plan: UploadPlan, etags: list[str]) -> dict:
    """Complete a multipart upload from its parts' ETags (a single PUT is complete already)."""
    etag = etags[0] if plan.upload_id is None else None
    if plan.upload_id is not None:
        with translate_errors():
            etag = multipart.complete(get_client(), plan.bucket, plan.key, plan.upload_id, etags)
    return {"bucket": plan.bucket, "key": plan.key, "size": plan.length, "etag": etag}


def abort_upload(plan: UploadPlan) -> None:
    """Drop the parts stored so far (best effort: the store may be the reason we abort)."""
    if plan.upload_id is None:
        return  # an unfinished single PUT leaves nothing behind
    with contextlib.suppress(Exception), translate_errors():
        multipart.abort(get_client(), plan.bucket, plan.key, plan.upload_id)


def abort_stale_uploads(older_than: timedelta = timedelta(hours=24)) -> int:
    """Drop the parts of uploads that never finished: an appliance killed mid-upload cannot
    abort its own, and their parts would hold disk in the store for ever. Returns how many."""
    moment = timezone.now() - older_than
    aborted = 0
    with translate_errors():
        client = get_client()
        for name in Bucket.objects.values_list("name", flat=True):
            try:
                stale = multipart.started_before(client, name, moment)
            except ObjectNotFound:
                continue  # the bucket is gone from the store
            for key, upload_id in stale:
                multipart.abort(client, name, key, upload_id)
                aborted += 1
    return aborted


def stat_object(bucket: Bucket, key: str):
    validate_key(key)
    with translate_errors():
        return get_client().stat_object(bucket.name, key)


def presigned_read_url(bucket: Bucket, key: str, method: str = "GET") -> str:
    """A short-lived signed GET (or HEAD) URL of the store, for the lean download path
    (server-side only: the store listens on loopback and its URLs never reach a page)."""
    validate_key(key)
    with translate_errors():
        return get_client().get_presigned_url(
            method, bucket.name, key, expires=timedelta(minutes=5)
        )


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


def prefix_size(bucket_name: str, prefix: str) -> int:
    """Bytes stored under `prefix` (what deleting it frees)."""
    client = get_client()
    with translate_errors():
        return sum(
            o.size or 0 for o in client.list_objects(bucket_name, prefix=prefix, recursive=True)
        )


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
