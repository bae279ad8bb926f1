"""Reading the store for data sets: listing a source, reading a few bytes of it, and a
seekable file over ranged GETs so pyarrow reads a parquet footer and one row group without
downloading the whole file."""

import io

from apps.storage.client import ObjectNotFound, get_client, translate_errors
from apps.storage.paths import BosPath


def source_files(path: BosPath) -> list[tuple[str, int]]:
    """(key, size) of the file `path` names, or of every file under the folder, in order."""
    client = get_client()
    if path.key and not path.key.endswith("/"):
        try:
            with translate_errors():
                return [(path.key, client.stat_object(path.bucket, path.key).size)]
        except ObjectNotFound:
            return []
    with translate_errors():
        objects = client.list_objects(path.bucket, prefix=path.key or None, recursive=True)
        return sorted(
            (o.object_name, o.size or 0)
            for o in objects
            if not o.object_name.endswith("/") and o.object_name[len(path.key) :]
        )


def read_object_bytes(bucket: str, key: str, length: int | None = None) -> bytes:
    """The first `length` bytes of an object (all of it with None)."""
    client = get_client()
    with translate_errors():
        response = client.get_object(bucket, key, offset=0, length=length or 0)
        try:
            return response.read()
        finally:
            response.close()
            response.release_conn()


class ObjectFile(io.RawIOBase):
    """A read-only, seekable view of one object; each read is one ranged GET."""

    def __init__(self, bucket: str, key: str):
        super().__init__()
        self.bucket, self.key = bucket, key
        with translate_errors():
            self.size = get_client().stat_object(bucket, key).size
        self.position = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self.position, io.SEEK_END: self.size}[whence]
        self.position = max(0, base + offset)
        return self.position

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            size = self.size - self.position
        size = min(size, self.size - self.position)
        if size <= 0:
            return b""
        client = get_client()
        with translate_errors():
            response = client.get_object(self.bucket, self.key, offset=self.position, length=size)
            try:
                data = response.read()
            finally:
                response.close()
                response.release_conn()
        self.position += len(data)
        return data

    def readinto(self, buffer) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)
