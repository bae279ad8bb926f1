"""Object storage for user code: bos:// paths over S3.

Two ways in: store credentials (`configure(...)` or BML_S3_* variables: notebooks, users'
own scripts), or a job run's grant (BML_STORAGE_GRANT: a file the appliance writes into the
run's workspace) that lets the run write under its own output folder and nowhere else.
"""

from __future__ import annotations

import json
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


def use_grant(grant: dict | None) -> None:
    """Write through an upload grant ({prefix, url, fields}) instead of store credentials."""
    _config["grant"] = grant


def _grant() -> dict | None:
    if "grant" in _config:
        return _config["grant"]
    path = os.environ.get("BML_STORAGE_GRANT")
    if path and Path(path).is_file():
        return json.loads(Path(path).read_text())
    return None


def _has_credentials() -> bool:
    return bool(_config.get("endpoint") or os.environ.get("BML_S3_ENDPOINT"))


def _client() -> Minio:
    endpoint = _config.get("endpoint") or os.environ.get("BML_S3_ENDPOINT")
    if not endpoint:
        grant = _grant()
        if grant:
            raise PermissionError(
                "A job run reads its data from train_data/ and test_data/ and may write only "
                f"under {grant['prefix']} (bml.storage.upload)."
            )
        raise RuntimeError(
            "No object store configured: set BML_S3_ENDPOINT, BML_S3_ACCESS_KEY and "
            "BML_S3_SECRET_KEY or call bml.storage.configure()."
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
    if local.is_file():
        target = key + local.name if (not key or key.endswith("/")) else key
        pairs = [(local, target)]
    elif local.is_dir():
        base = key if (not key or key.endswith("/")) else key + "/"
        files = sorted(p for p in local.rglob("*") if p.is_file())
        pairs = [(p, base + p.relative_to(local).as_posix()) for p in files]
    else:
        raise FileNotFoundError(local)
    if _has_credentials() or not _grant():
        for path, target in pairs:
            _put_with_credentials(path, bucket, target)
    else:
        _put_all_with_grant(pairs, bucket)
    return [f"bos://{bucket}/{target}" for _, target in pairs]


SMALL_FILE = 4 << 20  # files below this go up several at a time
UPLOADS_AT_ONCE = 4


def _put_all_with_grant(pairs: list[tuple[Path, str]], bucket: str) -> None:
    """One kept-alive connection pool for the lot; small files four at a time (a run's
    outputs are often dozens of small files, where each request's round trip is the cost),
    large ones one after another (in parallel they only share the disk and the cores)."""
    from concurrent.futures import ThreadPoolExecutor

    import httpx

    small, large = [], []
    for path, target in pairs:
        (small if path.stat().st_size < SMALL_FILE else large).append((path, target))
    with httpx.Client(timeout=httpx.Timeout(30.0, read=None, write=None)) as client:
        with ThreadPoolExecutor(UPLOADS_AT_ONCE) as pool:
            done = [pool.submit(_put_with_grant, p, bucket, t, client) for p, t in small]
            for future in done:
                future.result()  # the first refusal is the upload's
        for path, target in large:
            _put_with_grant(path, bucket, target, client)


def _put_with_credentials(path: Path, bucket: str, key: str) -> None:
    _client().fput_object(bucket, key, str(path))


def _put_with_grant(path: Path, bucket: str, key: str, client=None) -> None:
    """An S3 POST under the grant's policy: the store itself refuses keys outside it."""
    import httpx

    grant = _grant()
    if not f"bos://{bucket}/{key}".startswith(grant["prefix"]):
        raise PermissionError(
            f"This run may write only under {grant['prefix']}, not {bucket}/{key}."
        )
    with path.open("rb") as fh:
        response = (client or httpx).post(
            grant["url"],
            data={**grant["fields"], "key": key},
            files={"file": (path.name, fh, "application/octet-stream")},
            timeout=httpx.Timeout(30.0, read=None, write=None),
        )
    if response.status_code not in (200, 201, 204):
        raise RuntimeError(
            f"upload of {key} refused ({response.status_code}): {response.text[:300]}"
        )


def fetch(url: str, target: str | os.PathLike) -> Path:
    """Stream a presigned URL's object to `target` (how a run stages in its data)."""
    import httpx

    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    with httpx.stream("GET", url, timeout=httpx.Timeout(30.0, read=300.0)) as response:
        if response.status_code != 200:
            raise RuntimeError(f"download of {target.name} failed ({response.status_code})")
        with target.open("wb") as fh:
            for chunk in response.iter_bytes(1024 * 1024):
                fh.write(chunk)
    return target


def _byte_range(url: str, first: int, last: int):
    """The bytes first..last (inclusive) of a presigned URL's object, in chunks (an HTTP
    Range request; a server that ignores Range and sends the whole object is cut to it)."""
    import httpx

    headers = {"Range": f"bytes={first}-{last}"}
    timeout = httpx.Timeout(30.0, read=300.0)
    with httpx.stream("GET", url, headers=headers, timeout=timeout) as response:
        if response.status_code not in (200, 206):
            raise RuntimeError(f"ranged download failed ({response.status_code})")
        skip = first if response.status_code == 200 else 0
        left = last - first + 1
        for chunk in response.iter_bytes(1024 * 1024):
            if skip:
                cut = min(skip, len(chunk))
                chunk, skip = chunk[cut:], skip - cut
            chunk = chunk[:left]
            left -= len(chunk)
            if chunk:
                yield chunk
            if left <= 0:
                return


def fetch_rows(url: str, target: str | os.PathLike, start: int, end: int, size: int) -> int:
    """Stream to `target` the whole lines (LF-terminated, so CR LF too) of a presigned URL's
    object of `size` bytes that begin in its bytes [start, end): how the instances of a job
    share one line-oriented file. The line under way at `start` is left to the range before
    (unless start is 0), and the last line is read past `end` to its newline (or the end of
    the object), so ranges that cut an object into pieces give every line to exactly one
    of them, and each piece is a run of whole lines. Only about its own range is read.
    Returns the bytes written; no file is made when no line begins in the range."""
    end = min(end, size)
    if start >= end:
        return 0
    target = Path(target)
    written, last_byte, out = 0, b"", None
    seeking = start > 0  # a line begins at start only if the byte before it ends one
    try:
        for chunk in _byte_range(url, start - 1 if seeking else 0, end - 1):
            if seeking:
                newline = chunk.find(b"\n")
                if newline < 0:
                    continue
                chunk, seeking = chunk[newline + 1 :], False
            if chunk:
                if out is None:
                    target.parent.mkdir(parents=True, exist_ok=True)
                    out = target.open("wb")
                out.write(chunk)
                written, last_byte = written + len(chunk), chunk[-1:]
        position, step = end, 64 * 1024
        while written and last_byte != b"\n" and position < size:
            last = min(position + step, size) - 1
            chunk = b"".join(_byte_range(url, position, last))
            newline = chunk.find(b"\n")
            if newline >= 0:
                chunk = chunk[: newline + 1]
            out.write(chunk)
            written, last_byte = written + len(chunk), chunk[-1:]
            position, step = last + 1, min(step * 2, 8 * 1024 * 1024)
    finally:
        if out is not None:
            out.close()
    return written
