"""Two-way synchronization of a notebook's `data/` folder with its `bos://bucket/prefix/`.

A JSON state file records, per relative path, what both sides looked like after the last
sync (local size and mtime_ns, remote etag and size). Against it, each side's change is
plain: a new or changed local file is uploaded; a new or changed object is downloaded; a
file gone on one side and unchanged on the other is deleted on the other side; gone on
both is forgotten. When both sides changed, local wins. A path never synced that exists on
both sides is uploaded if the sizes differ, else assumed equal and only recorded.

The folder is written by untrusted user code while we read it, so every local access goes
through file descriptors opened beneath the folder with O_NOFOLLOW (a symlink swapped in
mid-sync cannot lead outside), symbolic links and special files are never synchronized,
keys that do not map to a safe relative path are never written, and anything we skip
locally is never deleted remotely. `.ipynb_checkpoints` folders (Jupyter's own backups)
and folder-marker objects are ignored; empty folders are not synchronized.

A sync that fails part-way still saves what it completed, and every state entry is only
ever a fact about both sides, so the next sync neither deletes nor loses anything.
"""

import contextlib
import json
import os
import secrets
import stat
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from apps.storage.client import PART_SIZE, ObjectNotFound, get_client, translate_errors

STATE_VERSION = 1
MAX_KEY_BYTES = 1024
JUPYTER_CHECKPOINTS = ".ipynb_checkpoints"
# Partial downloads carry this prefix; one left by a crash must never be uploaded.
PARTIAL_DOWNLOAD_PREFIX = ".bml-sync-"
DOWNLOAD_CHUNK = 1024 * 1024
FOLDER_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
# O_NONBLOCK: a fifo swapped in after the scan must not hang the scheduler on open().
READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
WRITE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
NOT_OVERWRITTEN = "changed locally during the sync or not a regular file, not overwritten"


@dataclass
class SyncReport:
    uploaded: int = 0
    downloaded: int = 0
    deleted_remote: int = 0
    deleted_local: int = 0
    skipped: list[str] = field(default_factory=list)
    bytes_up: int = 0
    bytes_down: int = 0


@dataclass(frozen=True)
class LocalFile:
    size: int
    mtime_ns: int


@dataclass(frozen=True)
class RemoteObject:
    etag: str
    size: int


@dataclass(frozen=True)
class Synced:
    """Both sides after the last sync; `local` is None when the local file must be sent again."""

    local: LocalFile | None
    remote: RemoteObject


def sync_folder(
    local_dir: Path, bucket: str, prefix: str, state_path: Path, client=None, owner=None
) -> SyncReport:
    """Synchronize `local_dir` with `bos://bucket/prefix` both ways; raises
    StorageUnavailable when the store cannot be reached. `owner`: the uid the instance's
    sandboxed kernels run as (files and folders written here become theirs, so a notebook
    can change what came from storage)."""
    if prefix and not prefix.endswith("/"):
        raise ValueError(f"prefix must be empty or end with '/': {prefix!r}")
    local_dir, state_path = Path(local_dir), Path(state_path)
    client = client or get_client()
    report = SyncReport()
    previous = load_state(state_path, bucket, prefix)
    created = not os.path.lexists(local_dir)
    if created:
        local_dir.mkdir(parents=True)
        if owner is not None:
            os.chown(local_dir, owner, owner)
    try:
        root_fd = os.open(local_dir, FOLDER_FLAGS)
    except OSError as exc:
        report.skipped.append(f"{local_dir.name}: {os.strerror(exc.errno)}, not synchronized")
        return report
    # A folder that vanished is a lost disk more likely than a wish to empty the bucket:
    # sync it as if for the first time, which never deletes.
    baseline = {} if created else previous
    run = _SyncRun(client, bucket, prefix, root_fd, local_dir.name, report, baseline, owner)
    try:
        run.synchronize()
    finally:
        os.close(root_fd)
        if run.state != previous:
            save_state(state_path, bucket, prefix, run.state)
    return report


class _SyncRun:
    """One sync; `state` starts as the baseline and follows each completed step."""

    def __init__(self, client, bucket, prefix, root_fd, folder_name, report, baseline, owner):
        self.client, self.bucket, self.prefix, self.owner = client, bucket, prefix, owner
        self.root_fd, self.folder_name, self.report = root_fd, folder_name, report
        self.baseline: dict[str, Synced] = baseline
        self.state: dict[str, Synced] = dict(baseline)

    def synchronize(self) -> None:
        local, untouchable = self.scan_local()
        remote = self.list_remote()
        for rel in sorted(set(local) | set(remote) | set(self.baseline)):
            if is_ignored(rel) or is_under(rel, untouchable):
                continue
            self.apply(rel, local.get(rel), remote.get(rel), self.baseline.get(rel))

    def apply(self, rel, local, remote, synced) -> None:
        action = decide(local, remote, synced)
        if action == "upload":
            self.upload(rel)
        elif action == "download":
            self.download(rel, local, remote)
        elif action == "delete_local":
            self.delete_local(rel, local)
        elif action == "delete_remote":
            self.delete_remote(rel)
        elif action == "record":
            self.state[rel] = Synced(local, remote)
        elif action == "forget":
            self.state.pop(rel, None)

    def show(self, rel: str) -> str:
        return f"{self.folder_name}/{printable(rel)}"

    def skip(self, rel: str, reason: str) -> None:
        self.report.skipped.append(f"{self.show(rel)}: {reason}")

    # --- the two listings -------------------------------------------------------------

    def scan_local(self) -> tuple[dict[str, LocalFile], set[str]]:
        """Regular files beneath the folder, and the paths we must not touch because we
        could not or would not read them."""
        files: dict[str, LocalFile] = {}
        untouchable: set[str] = set()
        self.scan_folder(os.dup(self.root_fd), "", files, untouchable)
        return files, untouchable

    def scan_folder(self, fd: int, rel_dir: str, files: dict, untouchable: set) -> None:
        try:
            with os.scandir(fd) as entries:
                for entry in entries:
                    self.scan_entry(fd, entry, rel_dir, files, untouchable)
        finally:
            os.close(fd)

    def scan_entry(self, fd, entry, rel_dir, files, untouchable) -> None:
        name = entry.name
        rel = rel_dir + name
        if name.startswith(PARTIAL_DOWNLOAD_PREFIX):
            return
        if entry.is_dir(follow_symlinks=False) and name == JUPYTER_CHECKPOINTS:
            return
        reason = self.unsynchronizable(rel, entry)
        if reason:
            self.skip(rel, reason)
            untouchable.add(rel)
            return
        try:
            if entry.is_dir(follow_symlinks=False):
                child = os.open(name, FOLDER_FLAGS, dir_fd=fd)
                self.scan_folder(child, rel + "/", files, untouchable)
            else:
                st = entry.stat(follow_symlinks=False)
                files[rel] = LocalFile(st.st_size, st.st_mtime_ns)
        except FileNotFoundError:
            pass  # deleted while we looked: that is what the next steps will see
        except OSError as exc:
            self.skip(rel, f"could not be read ({os.strerror(exc.errno)}), not synchronized")
            untouchable.add(rel)

    def unsynchronizable(self, rel: str, entry) -> str | None:
        if not is_utf8(rel):
            return "name is not valid UTF-8, not synchronized"
        if entry.is_symlink():
            return "a symbolic link, not synchronized"
        if not entry.is_dir(follow_symlinks=False) and not entry.is_file(follow_symlinks=False):
            return "a special file (pipe, socket or device), not synchronized"
        if len((self.prefix + rel).encode()) > MAX_KEY_BYTES:
            return f"path longer than {MAX_KEY_BYTES} bytes as a key, not synchronized"
        return unsafe_name_reason(rel)

    def list_remote(self) -> dict[str, RemoteObject]:
        objects: dict[str, RemoteObject] = {}
        with translate_errors():
            listing = self.client.list_objects(
                self.bucket, prefix=self.prefix or None, recursive=True
            )
            for obj in listing:
                key = obj.object_name
                if obj.is_dir or key.endswith("/"):
                    continue
                rel = key[len(self.prefix) :]
                reason = unsafe_name_reason(rel)
                if reason:
                    where = f"bos://{self.bucket}/{printable(key)}"
                    self.report.skipped.append(f"{where}: {reason}, not downloaded")
                    continue
                objects[rel] = RemoteObject(normal_etag(obj.etag), obj.size)
        return objects

    # --- the four transfers -----------------------------------------------------------

    def upload(self, rel: str) -> None:
        try:
            with parent_folder(self.root_fd, rel) as (folder_fd, name):
                fd = os.open(name, READ_FLAGS, dir_fd=folder_fd)
            with os.fdopen(fd, "rb") as source:
                opened = os.fstat(source.fileno())
                before = stat_of(opened)
                if not stat.S_ISREG(opened.st_mode):
                    self.skip(rel, "no longer a regular file, not synchronized")
                    return
                with translate_errors():
                    result = self.client.put_object(
                        self.bucket,
                        self.prefix + rel,
                        source,
                        before.size,
                        part_size=PART_SIZE,
                    )
                after = stat_of(os.fstat(source.fileno()))
        except OSError as exc:  # the store's own failures arrive as StorageUnavailable
            self.skip(rel, f"could not be uploaded ({exc.strerror or exc}), will retry")
            return
        sent_whole = before == after
        if not sent_whole:
            self.skip(rel, "changed while uploading, will upload again")
        self.state[rel] = Synced(
            before if sent_whole else None, RemoteObject(normal_etag(result.etag), before.size)
        )
        self.report.uploaded += 1
        self.report.bytes_up += before.size

    def download(self, rel: str, expected_local: LocalFile | None, listed: RemoteObject) -> None:
        try:
            with parent_folder(self.root_fd, rel, create=True, owner=self.owner) as (
                folder_fd,
                name,
            ):
                if regular_file_at(folder_fd, name) != expected_local:
                    self.skip(rel, NOT_OVERWRITTEN)
                    return
                written, etag = self.fetch_into(folder_fd, name, rel, expected_local)
        except ObjectNotFound:
            self.skip(rel, "removed from the store during the sync")
            return
        except OSError as exc:
            self.skip(rel, f"could not be written ({exc.strerror or exc}), not downloaded")
            return
        if written is None:
            self.skip(rel, NOT_OVERWRITTEN)
            return
        self.state[rel] = Synced(written, RemoteObject(etag or listed.etag, written.size))
        self.report.downloaded += 1
        self.report.bytes_down += written.size

    def fetch_into(self, folder_fd: int, name: str, rel: str, expected: LocalFile | None):
        """Write the object to a partial file beside `name`, then rename it into place unless
        the user changed `name` meanwhile."""
        partial = f"{PARTIAL_DOWNLOAD_PREFIX}{secrets.token_hex(8)}.part"
        fd = os.open(partial, WRITE_FLAGS, 0o644, dir_fd=folder_fd)
        if self.owner is not None:
            os.fchown(fd, self.owner, self.owner)
        try:
            with os.fdopen(fd, "wb") as target:
                with translate_errors():
                    response = self.client.get_object(self.bucket, self.prefix + rel)
                    try:
                        for chunk in response.stream(DOWNLOAD_CHUNK):
                            target.write(chunk)
                        etag = normal_etag(response.headers.get("ETag", ""))
                    finally:
                        response.close()
                        response.release_conn()
                target.flush()
                written = stat_of(os.fstat(target.fileno()))
            if regular_file_at(folder_fd, name) != expected:
                os.unlink(partial, dir_fd=folder_fd)
                return None, None
            os.replace(partial, name, src_dir_fd=folder_fd, dst_dir_fd=folder_fd)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(partial, dir_fd=folder_fd)
            raise
        return written, etag

    def delete_local(self, rel: str, expected: LocalFile) -> None:
        try:
            with parent_folder(self.root_fd, rel) as (folder_fd, name):
                if regular_file_at(folder_fd, name) != expected:
                    self.skip(rel, "changed locally during the sync, not deleted")
                    return
                os.unlink(name, dir_fd=folder_fd)
        except OSError as exc:
            self.skip(rel, f"could not be deleted ({exc.strerror or exc})")
            return
        self.state.pop(rel, None)
        self.report.deleted_local += 1

    def delete_remote(self, rel: str) -> None:
        with translate_errors():
            self.client.remove_object(self.bucket, self.prefix + rel)
        self.state.pop(rel, None)
        self.report.deleted_remote += 1


def decide(local: LocalFile | None, remote: RemoteObject | None, synced: Synced | None) -> str:
    """What to do with one path, given both sides now and after the last sync."""
    if synced is None:
        if local and remote:
            # Never synced yet on both sides: equal sizes are taken as the same file.
            return "record" if local.size == remote.size else "upload"
        return "upload" if local else "download" if remote else "forget"
    local_changed = local is not None and local != synced.local
    remote_changed = remote is not None and remote.etag != synced.remote.etag
    if local_changed:
        return "upload"  # local wins, over a remote edit and over a remote deletion
    if local and remote:
        return "download" if remote_changed else "keep"
    if local:
        return "delete_local"
    if remote:
        return "download" if remote_changed else "delete_remote"
    return "forget"


# --- paths and names ------------------------------------------------------------------


@contextlib.contextmanager
def parent_folder(root_fd: int, rel: str, create: bool = False, owner: int | None = None):
    """(fd of the folder holding `rel`, its last name), reached one O_NOFOLLOW step at a
    time, so no symlinked folder, present or swapped in, leads outside the root."""
    *folders, name = rel.split("/")
    fd = os.dup(root_fd)
    try:
        for folder in folders:
            if create:
                with contextlib.suppress(FileExistsError):
                    os.mkdir(folder, 0o755, dir_fd=fd)
                    if owner is not None:
                        os.chown(folder, owner, owner, dir_fd=fd, follow_symlinks=False)
            child = os.open(folder, FOLDER_FLAGS, dir_fd=fd)
            os.close(fd)
            fd = child
        yield fd, name
    finally:
        os.close(fd)


def regular_file_at(folder_fd: int, name: str) -> LocalFile | None:
    """The file at `name` as the scan would see it; anything but a regular file compares
    unequal to every scanned file, so it is neither overwritten nor deleted."""
    try:
        st = os.stat(name, dir_fd=folder_fd, follow_symlinks=False)
    except FileNotFoundError:
        return None
    return stat_of(st) if stat.S_ISREG(st.st_mode) else LocalFile(-1, -1)


def unsafe_name_reason(rel: str) -> str | None:
    """Why a relative path cannot be a file beneath the folder, if it cannot."""
    if "\x00" in rel or "\\" in rel:
        return "unsafe name (NUL or backslash)"
    if rel.startswith("/"):
        return "unsafe name (absolute path)"
    if any(segment in ("", ".", "..") for segment in rel.split("/")):
        return "unsafe name (empty, '.' or '..' segment)"
    return None


def is_ignored(rel: str) -> bool:
    segments = rel.split("/")
    return JUPYTER_CHECKPOINTS in segments or segments[-1].startswith(PARTIAL_DOWNLOAD_PREFIX)


def is_under(rel: str, paths: set[str]) -> bool:
    """Whether `rel` or one of its folders is in `paths`."""
    if not paths:
        return False
    segments = rel.split("/")
    return any("/".join(segments[:i]) in paths for i in range(1, len(segments) + 1))


def is_utf8(name: str) -> bool:
    try:
        name.encode()  # undecodable bytes from the file system arrive as lone surrogates
    except UnicodeEncodeError:
        return False
    return True


def printable(name: str) -> str:
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def stat_of(st: os.stat_result) -> LocalFile:
    return LocalFile(st.st_size, st.st_mtime_ns)


def normal_etag(etag: str | None) -> str:
    return (etag or "").strip('"')


# --- the state file -------------------------------------------------------------------


def load_state(path: Path, bucket: str, prefix: str) -> dict[str, Synced]:
    """The last sync's record; empty (a first sync, which never deletes) when missing,
    unreadable, or written for another storage path."""
    try:
        data = json.loads(path.read_text())
        if (data["version"], data["bucket"], data["prefix"]) != (STATE_VERSION, bucket, prefix):
            return {}
        return {rel: synced_from_json(entry) for rel, entry in data["files"].items()}
    except FileNotFoundError:
        return {}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return {}


def synced_from_json(entry: dict) -> Synced:
    local = None
    if entry["size"] is not None:
        local = LocalFile(int(entry["size"]), int(entry["mtime_ns"]))
    return Synced(local, RemoteObject(str(entry["etag"]), int(entry["remote_size"])))


def synced_to_json(synced: Synced) -> dict:
    return {
        "size": synced.local.size if synced.local else None,
        "mtime_ns": synced.local.mtime_ns if synced.local else None,
        "etag": synced.remote.etag,
        "remote_size": synced.remote.size,
    }


def save_state(path: Path, bucket: str, prefix: str, state: dict[str, Synced]) -> None:
    """Write via a temporary file and a rename, so a crash leaves the old state or the new."""
    payload = {
        "version": STATE_VERSION,
        "bucket": bucket,
        "prefix": prefix,
        "files": {rel: synced_to_json(synced) for rel, synced in sorted(state.items())},
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as out:
            json.dump(payload, out, separators=(",", ":"))
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
