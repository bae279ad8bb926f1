"""The one way the appliance speaks S3: a minio client with short timeouts, and the
translation of transport failures into a plain "object store unavailable"."""

import contextlib
import functools

import urllib3
from django.conf import settings
from django.core.exceptions import ValidationError
from minio import Minio
from minio.error import S3Error

PART_SIZE = 16 * 1024 * 1024
# Parts in flight per upload: the body arrives while earlier parts are still being stored.
UPLOAD_PARALLELISM = 6


class StorageUnavailable(Exception):
    """The object store cannot be reached; pages and API answer 503 with this message."""

    def __init__(self, detail: str = ""):
        super().__init__(
            "The object store is not reachable right now; try again in a moment."
            + (f" ({detail})" if detail else "")
        )


class ObjectNotFound(Exception):
    pass


class PathConflict(ValidationError):
    """A file and a folder would share a name (the store refuses a folder `f1/` beside an
    object `f1`): the API answers 409, the console shows the message."""


# What S3 servers answer for that: SeaweedFS, then MinIO's two directions.
CONFLICT_CODES = frozenset(
    ("ExistingObjectIsFile", "ExistingObjectIsDirectory", "XMinioParentIsObject",
     "XMinioObjectExistsAsDirectory")
)  # fmt: skip


class UploadTooLarge(Exception):
    def __init__(self, limit: int):
        super().__init__(f"Upload too large: the limit is {limit // (1024 * 1024)} MB.")


@functools.cache
def _client_for(endpoint, access_key, secret_key, secure, region) -> Minio:
    # Few retries and short connect timeouts: a store that is down must produce a 503 in
    # about a second, not hang a page. Reads may be long (large objects), so no read timeout.
    http = urllib3.PoolManager(
        timeout=urllib3.Timeout(connect=2.0, read=None),
        maxsize=16,
        retries=urllib3.Retry(total=1, backoff_factor=0.1, status_forcelist=[502, 503, 504]),
    )
    return Minio(
        endpoint,
        access_key=access_key,
        secret_key=secret_key,
        secure=secure,
        region=region,
        http_client=http,
    )


def get_client() -> Minio:
    s3 = settings.S3
    if not s3["endpoint"]:
        raise StorageUnavailable("the embedded store has not started")
    return _client_for(
        s3["endpoint"], s3["access_key"], s3["secret_key"], s3["secure"], s3["region"]
    )


@contextlib.contextmanager
def translate_errors():
    """Map transport errors to StorageUnavailable, missing keys to ObjectNotFound and a
    file/folder name clash to PathConflict."""
    try:
        yield
    except S3Error as exc:
        if exc.code in ("NoSuchKey", "NoSuchBucket", "NoSuchObject"):
            raise ObjectNotFound(exc.code) from exc
        if exc.code in CONFLICT_CODES:
            name = exc.object_name or ""
            raise PathConflict(
                f"'{name}' cannot be created: a file and a folder cannot share a name."
            ) from exc
        raise
    except (urllib3.exceptions.HTTPError, ConnectionError, TimeoutError) as exc:
        raise StorageUnavailable(type(exc).__name__) from exc
