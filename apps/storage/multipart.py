"""Multipart uploads driven part by part, for the relay that streams a request body into the
store (apps.storage.transfer) without holding parts in memory.

minio's public API only offers whole uploads (put_object reads the parts itself); these three
calls are its own multipart requests, stable across the pinned 7.2 series. Callers wrap them
in `client.translate_errors()`.
"""

from minio import Minio
from minio.datatypes import Part


def create(client: Minio, bucket: str, key: str, content_type: str) -> str:
    """Open a multipart upload; returns its upload id."""
    return client._create_multipart_upload(bucket, key, {"Content-Type": content_type})


def complete(client: Minio, bucket: str, key: str, upload_id: str, etags: list[str]) -> str:
    """Join the parts (ETags in part order); returns the object's ETag."""
    parts = [Part(number, etag) for number, etag in enumerate(etags, start=1)]
    return client._complete_multipart_upload(bucket, key, upload_id, parts).etag


def abort(client: Minio, bucket: str, key: str, upload_id: str) -> None:
    client._abort_multipart_upload(bucket, key, upload_id)
