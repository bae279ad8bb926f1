"""Scoped access to the store for code the appliance does not trust (job runs).

A run never holds the store's keys. The control plane, which does, hands it:
- for each input folder: the list of its files, each with a presigned GET URL (so the run
  can read exactly those objects, for a while, and nothing else);
- one upload grant: a presigned S3 POST policy whose key must start with the job's own
  output folder (`<output path>/<job_id>/`), so logs, outputs and checkpoints can be
  written there and nowhere else.
Both are plain S3 (SigV4 query signing and POST policies), so they work the same on the
embedded SeaweedFS, MinIO and any external S3 endpoint.
"""

from datetime import UTC, datetime, timedelta

from django.conf import settings

from apps.storage.client import get_client, translate_errors
from apps.storage.paths import parse_bos_uri

# S3 caps presigned URLs and POST policies at 7 days.
MAX_VALIDITY = timedelta(days=7)
# Inputs are read right after start; the margin covers a long stage-in of a large data set.
READ_VALIDITY = timedelta(hours=12)
# The largest object a single S3 POST may carry.
MAX_POST_BYTES = 5 * 1024**3


def input_files(uri: str, shard: tuple[int, int] | None = None) -> dict:
    """What a run needs to stage in `uri` (a file, or a folder ending in '/'): its files
    (this instance's share of them) with presigned GET URLs, or the error to fail with."""
    path = parse_bos_uri(uri, field="path")
    client = get_client()
    item: dict = {"source": uri, "files": []}
    with translate_errors():
        if path.key and not path.key.endswith("/"):
            names = [(path.key, path.key.rsplit("/", 1)[-1])]
            try:
                client.stat_object(path.bucket, path.key)
            except Exception:
                item["error"] = f"{uri} does not exist"
                return item
        else:
            objects = client.list_objects(path.bucket, prefix=path.key or None, recursive=True)
            keys = sorted(
                o.object_name
                for o in objects
                if not o.object_name.endswith("/") and o.object_name[len(path.key) :]
            )
            if not keys:
                item["error"] = f"{uri} holds no files"
                return item
            if shard is not None:
                index, count = shard
                keys = keys[index::count]
                item["share"] = [index, count]
            names = [(key, key[len(path.key) :]) for key in keys]
        for key, relative in names:
            url = client.presigned_get_object(path.bucket, key, expires=READ_VALIDITY)
            item["files"].append({"path": relative, "url": url})
    return item


def upload_grant(prefix_uri: str, valid_for: timedelta) -> dict:
    """A POST policy letting its holder write objects under `prefix_uri` (a folder) only."""
    from minio.datatypes import PostPolicy

    path = parse_bos_uri(prefix_uri, field="path")
    prefix = path.key if path.key.endswith("/") else path.key + "/"
    expires = datetime.now(UTC) + min(valid_for, MAX_VALIDITY)
    policy = PostPolicy(path.bucket, expires)
    policy.add_starts_with_condition("key", prefix)
    policy.add_content_length_range_condition(0, MAX_POST_BYTES)
    client = get_client()
    with translate_errors():
        fields = client.presigned_post_policy(policy)
    s3 = settings.S3  # path-style URL on the endpoint the appliance itself uses
    scheme = "https" if s3["secure"] else "http"
    return {
        "prefix": f"bos://{path.bucket}/{prefix}",
        "url": f"{scheme}://{s3['endpoint']}/{path.bucket}",
        "fields": fields,
        "expires": expires.isoformat(),
    }
