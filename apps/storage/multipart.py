"""Multipart uploads driven part by part, for the relay that streams a request body into the
store (apps.storage.transfer) without holding parts in memory.

minio's public API only offers whole uploads (put_object reads the parts itself); these three
calls are its own multipart requests, stable across the pinned 7.2 series. Callers wrap them
in `client.translate_errors()`.
"""

from datetime import datetime

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


def started_before(client: Minio, bucket: str, moment: datetime) -> list[tuple[str, str]]:
    """(key, upload id) of the bucket's unfinished uploads begun before `moment`."""
    found, key_marker, id_marker = [], None, None
    while True:
        page = client._list_multipart_uploads(
            bucket, key_marker=key_marker, upload_id_marker=id_marker, max_uploads=1000
        )
        found += [
            (u.object_name, u.upload_id)
            for u in page.uploads
            if u.initiated_time is None or u.initiated_time < moment
        ]
        if not page.is_truncated:
            return found
        key_marker, id_marker = page.next_key_marker, page.next_upload_id_marker
