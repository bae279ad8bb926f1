"""Scoped access to the store for code the appliance does not trust (job runs).

A run never holds the store's keys. The control plane, which does, hands it:
- for each input folder: the list of its files, each with a presigned GET URL (so the run
  can read exactly those objects, for a while, and nothing else), and its size and, when a
  job's instances share a line-oriented file by rows, the byte range this instance reads;
- one upload grant: a presigned S3 POST policy whose key must start with the job's own
  output folder (`<output path>/<job_id>/`), so logs, outputs and checkpoints can be
  written there and nowhere else.
Both are plain S3 (SigV4 query signing and POST policies), so they work the same on the
embedded SeaweedFS, MinIO and any external S3 endpoint.
"""

from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.core.exceptions import ValidationError

from apps.storage.client import get_client, translate_errors
from apps.storage.paths import parse_bos_uri

# S3 caps presigned URLs and POST policies at 7 days.
MAX_VALIDITY = timedelta(days=7)
# Inputs are read right after start; the margin covers a long stage-in of a large data set.
READ_VALIDITY = timedelta(hours=12)
# The largest object a single S3 POST may carry.
MAX_POST_BYTES = 5 * 1024**3


def input_files(uri: str, shard: tuple[int, int] | None = None, split_rows: bool = False) -> dict:
    """What a run needs to stage in `uri` (a file, or a folder ending in '/'): its files
    (this instance's share of them) with presigned GET URLs, or the error to fail with.

    `shard=(index, count)` gives instance `index` of `count` its share of a folder: the files
    in key order, every count-th one from index (a single file path goes whole to every
    instance). `split_rows` says the input is line-oriented samples (the machine learning
    algorithms' data): its runners' hidden files ("." or "_" names) and empty files are left
    out, and when fewer files remain than instances (typically one big file, or a file path)
    each instance gets every file, but only the whole lines that begin in its 1/count of the
    file's bytes: `range` [size * index // count, size * (index + 1) // count), read by
    workers.supervise with HTTP Range requests (bml.storage.fetch_rows), so every line goes
    to exactly one instance and none downloads the whole file.

    An item: {source, files: [{path, url, size, range?}], share?: [index, count],
    rows?: true (a row split), input_files?, input_bytes? (what there is to share)}."""
    path = parse_bos_uri(uri, field="path")
    client = get_client()
    item: dict = {"source": uri, "files": []}
    with translate_errors():
        single = bool(path.key) and not path.key.endswith("/")
        if single:
            try:
                stat = client.stat_object(path.bucket, path.key)
            except Exception:
                item["error"] = f"{uri} does not exist"
                return item
            found = [(path.key, path.key.rsplit("/", 1)[-1], stat.size or 0)]
        else:
            objects = client.list_objects(path.bucket, prefix=path.key or None, recursive=True)
            found = sorted(
                (o.object_name, o.object_name[len(path.key) :], o.size or 0)
                for o in objects
                if not o.object_name.endswith("/") and o.object_name[len(path.key) :]
            )
            if split_rows:
                found = [f for f in found if f[2] and not _hidden(f[1])]
            if not found:
                item["error"] = f"{uri} holds no {'non-empty data ' if split_rows else ''}files"
                return item
        ranges: list = [None] * len(found)
        if shard is not None:
            index, count = shard
            total = len(found)
            if split_rows and total < count:
                sizes = [size for *_, size in found]
                ranges = [[size * index // count, size * (index + 1) // count] for size in sizes]
                item.update(rows=True, input_bytes=sum(sizes))
            elif not single:
                found, ranges = found[index::count], ranges[index::count]
            if item.get("rows") or not single:
                item.update(share=[index, count], input_files=total)
        for (key, relative, size), byte_range in zip(found, ranges, strict=True):
            url = client.presigned_get_object(path.bucket, key, expires=READ_VALIDITY)
            entry = {"path": relative, "url": url, "size": size}
            if byte_range is not None:
                entry["range"] = byte_range
            item["files"].append(entry)
    return item


def _hidden(relative: str) -> bool:
    """Names the line-oriented runners skip (ml_standardize, ml_data): '.x', '_SUCCESS'."""
    return any(part.startswith((".", "_")) for part in relative.split("/"))


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
    return {
        "prefix": f"bos://{path.bucket}/{prefix}",
        "url": _bucket_url(path.bucket),
        "fields": fields,
        "expires": expires.isoformat(),
    }


def _bucket_url(bucket: str) -> str:
    s3 = settings.S3  # path-style URL on the endpoint the appliance itself uses
    scheme = "https" if s3["secure"] else "http"
    return f"{scheme}://{s3['endpoint']}/{bucket}"


def grant_is_current(grant: dict, margin: timedelta) -> bool:
    """Whether an upload grant still reaches the store where the appliance finds it now
    (a restart may have moved it) and stays valid for `margin` more."""
    try:
        bucket = parse_bos_uri(grant["prefix"], field="path").bucket
        expires = datetime.fromisoformat(grant["expires"])
    except (KeyError, TypeError, ValueError, ValidationError):
        return False
    return grant.get("url") == _bucket_url(bucket) and expires - datetime.now(UTC) > margin
