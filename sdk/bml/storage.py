"""Object storage for user code: bos:// paths over S3, with the credentials a run is given."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from minio import Minio

_BOS = re.compile(r"^bos:/{1,2}([^/]+)(?:/(.*))?$")
_config: dict = {}


@dataclass(frozen=True)
class Entry:
    uri: str
    key: str
    size: int | None
    is_folder: bool


def configure(endpoint: str, access_key: str, secret_key: str, secure: bool = False) -> None:
    """Use these credentials instead of the BML_S3_* environment variables."""
    _config.update(endpoint=endpoint, access_key=access_key, secret_key=secret_key, secure=secure)


def _client() -> Minio:
    endpoint = _config.get("endpoint") or os.environ.get("BML_S3_ENDPOINT")
    if not endpoint:
        raise RuntimeError(
            "No object store configured: set BML_S3_ENDPOINT, BML_S3_ACCESS_KEY and "
            "BML_S3_SECRET_KEY (runs get them from the appliance) or call bml.storage.configure()."
        )
    return Minio(
        endpoint,
        access_key=_config.get("access_key") or os.environ.get("BML_S3_ACCESS_KEY", ""),
        secret_key=_config.get("secret_key") or os.environ.get("BML_S3_SECRET_KEY", ""),
        secure=_config.get("secure", os.environ.get("BML_S3_SECURE", "0") in ("1", "true")),
    )


def split(uri: str) -> tuple[str, str]:
    """'bos://bucket/key' (or the spec's 'bos:/bucket/key') -> ('bucket', 'key')."""
    match = _BOS.match(uri.strip())
    if not match:
        raise ValueError(f"{uri!r} is not a bos:// path (bos://bucket/key)")
    key = match.group(2) or ""
    if any(part in ("..", ".") for part in key.split("/")):
        raise ValueError(f"{uri!r}: '..' and '.' are not allowed in object keys")
    return match.group(1), key


def list(uri: str, recursive: bool = False) -> list[Entry]:  # noqa: A001 - the SDK's verb
    """Entries under a folder (`bos://bucket/folder/`), or the single object named."""
    bucket, key = split(uri)
    prefix = key
    entries = []
    for obj in _client().list_objects(bucket, prefix=prefix or None, recursive=recursive):
        if obj.object_name == prefix and obj.is_dir:
            continue
        entries.append(
            Entry(
                uri=f"bos://{bucket}/{obj.object_name}",
                key=obj.object_name,
                size=None if obj.is_dir else obj.size,
                is_folder=obj.is_dir,
            )
        )
    return entries


def download(
    uri: str, local_dir: str | os.PathLike, shard: tuple[int, int] | None = None
) -> list[Path]:
    """Download an object, or a folder (uri ending in '/') recursively, into local_dir.

    `shard=(index, count)` takes only this instance's share of a folder: the files in key
    order, every count-th one starting at index (how a job's instances split their data).
    """
    bucket, key = split(uri)
    local_dir = Path(local_dir)
    local_dir.mkdir(parents=True, exist_ok=True)
    client = _client()
    if key and not key.endswith("/"):
        target = local_dir / Path(key).name
        client.fget_object(bucket, key, str(target))
        return [target]
    objects = sorted(
        (
            o
            for o in client.list_objects(bucket, prefix=key or None, recursive=True)
            if o.object_name[len(key) :] and not o.object_name.endswith("/")
        ),  # no folder markers
        key=lambda o: o.object_name,
    )
    if shard is not None:
        index, count = shard
        objects = objects[index::count]
    written = []
    for obj in objects:
        relative = obj.object_name[len(key) :]
        target = (local_dir / relative).resolve()
        if local_dir.resolve() not in target.parents:
            raise ValueError(f"refusing to write outside {local_dir}: {obj.object_name}")
        target.parent.mkdir(parents=True, exist_ok=True)
        client.fget_object(bucket, obj.object_name, str(target))
        written.append(target)
    return written


def upload(local: str | os.PathLike, uri: str) -> list[str]:
    """Upload a file or a folder (recursively). A uri ending in '/' is a folder to put it in."""
    bucket, key = split(uri)
    local = Path(local)
    client = _client()
    if local.is_file():
        target = key + local.name if (not key or key.endswith("/")) else key
        client.fput_object(bucket, target, str(local))
        return [f"bos://{bucket}/{target}"]
    if not local.is_dir():
        raise FileNotFoundError(local)
    base = key if (not key or key.endswith("/")) else key + "/"
    uploaded = []
    for path in sorted(p for p in local.rglob("*") if p.is_file()):
        target = base + path.relative_to(local).as_posix()
        client.fput_object(bucket, target, str(path))
        uploaded.append(f"bos://{bucket}/{target}")
    return uploaded
