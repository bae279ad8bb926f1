"""Two-way sync of a notebook's data/ folder with its bos:// path, against the real store."""

import io
import os
import uuid
from pathlib import Path

import minio.api
import pytest
from minio.error import S3Error

from apps.notebooks.sync import SyncReport, sync_folder, unsafe_name_reason
from apps.storage.client import PART_SIZE, StorageUnavailable, get_client
from apps.storage.embedded import free_port

PREFIX = "nb/data/"


@pytest.fixture
def bucket():
    name = f"sync-{uuid.uuid4().hex[:12]}"
    get_client().make_bucket(name)
    return name


@pytest.fixture
def data(tmp_path) -> Path:
    folder = tmp_path / "workspace" / "data"
    folder.mkdir(parents=True)
    return folder


@pytest.fixture
def state_path(tmp_path) -> Path:
    return tmp_path / "state" / "sync.json"


@pytest.fixture
def sync(data, bucket, state_path):
    def run(client=None) -> SyncReport:
        return sync_folder(data, bucket, PREFIX, state_path, client=client)

    return run


def put(bucket, key, body: bytes):
    get_client().put_object(bucket, key, io.BytesIO(body), len(body))


def get(bucket, key) -> bytes:
    response = get_client().get_object(bucket, key)
    try:
        return response.read()
    finally:
        response.close()
        response.release_conn()


def remote_keys(bucket) -> set[str]:
    return {o.object_name for o in get_client().list_objects(bucket, recursive=True)}


def write(path: Path, body: bytes):
    """Write and move the mtime forward, so an edit is visible even within one clock tick."""
    path.parent.mkdir(parents=True, exist_ok=True)
    before = path.stat().st_mtime_ns if path.exists() else 0
    path.write_bytes(body)
    os.utime(path, ns=(before + 10**9, max(path.stat().st_mtime_ns, before + 10**9)))


def files_under(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()}


def nothing_changed() -> SyncReport:
    return SyncReport()


def test_first_sync_is_a_union_of_both_sides(sync, data, bucket):
    write(data / "local.txt", b"from the notebook")
    write(data / "sub" / "deep.csv", b"a,b\n1,2\n")
    write(data / "same.txt", b"12345")
    write(data / "differs.txt", b"local version, longer")
    put(bucket, PREFIX + "remote.txt", b"from the bucket")
    put(bucket, PREFIX + "far/away/r.bin", b"\x00\x01")
    put(bucket, PREFIX + "same.txt", b"abcde")
    put(bucket, PREFIX + "differs.txt", b"remote")
    put(bucket, "elsewhere/not-mine.txt", b"outside the prefix")

    report = sync()

    assert (report.uploaded, report.downloaded) == (3, 2)
    assert (report.deleted_local, report.deleted_remote) == (0, 0)
    assert report.bytes_down == len(b"from the bucket") + 2
    assert report.skipped == []
    assert get(bucket, PREFIX + "local.txt") == b"from the notebook"
    assert get(bucket, PREFIX + "sub/deep.csv") == b"a,b\n1,2\n"
    assert get(bucket, PREFIX + "differs.txt") == b"local version, longer"  # local wins
    assert (data / "remote.txt").read_bytes() == b"from the bucket"
    assert (data / "far" / "away" / "r.bin").read_bytes() == b"\x00\x01"
    # Equal sizes on a first sync are taken as the same file: recorded, not transferred.
    assert get(bucket, PREFIX + "same.txt") == b"abcde"
    assert (data / "same.txt").read_bytes() == b"12345"
    assert not (data / "elsewhere").exists() and not (data / "not-mine.txt").exists()

    assert sync() == nothing_changed()


def test_a_second_sync_without_changes_transfers_nothing(sync, data, bucket):
    write(data / "a.txt", b"a")
    put(bucket, PREFIX + "b.txt", b"b")
    big = data / "big.bin"
    with big.open("wb") as out:  # several parts: the listing's etag must match the upload's
        out.truncate(PART_SIZE + 1)
    get_client().put_object(
        bucket,
        PREFIX + "big-remote.bin",
        io.BytesIO(bytes(PART_SIZE + 1)),
        PART_SIZE + 1,
        part_size=PART_SIZE,
    )
    first = sync()
    assert (first.uploaded, first.downloaded) == (2, 2)
    assert sync() == nothing_changed()
    assert sync() == nothing_changed()


def test_a_local_edit_is_uploaded(sync, data, bucket):
    write(data / "notes.md", b"v1")
    sync()
    write(data / "notes.md", b"v2, edited in the notebook")
    report = sync()
    assert (report.uploaded, report.downloaded) == (1, 0)
    assert report.bytes_up == len(b"v2, edited in the notebook")
    assert get(bucket, PREFIX + "notes.md") == b"v2, edited in the notebook"
    assert sync() == nothing_changed()


def test_a_remote_edit_is_downloaded(sync, data, bucket):
    write(data / "model.cfg", b"lr=0.1")
    sync()
    put(bucket, PREFIX + "model.cfg", b"lr=0.2")  # same size: only the etag tells
    report = sync()
    assert (report.uploaded, report.downloaded) == (0, 1)
    assert (data / "model.cfg").read_bytes() == b"lr=0.2"
    assert not [p for p in data.iterdir() if p.name.startswith(".")]  # no partial file left
    assert sync() == nothing_changed()


def test_a_local_deletion_deletes_the_object(sync, data, bucket):
    write(data / "keep.txt", b"k")
    write(data / "sub" / "gone.txt", b"g")
    sync()
    (data / "sub" / "gone.txt").unlink()
    report = sync()
    assert report.deleted_remote == 1 and report.uploaded == 0
    assert remote_keys(bucket) == {PREFIX + "keep.txt"}
    assert sync() == nothing_changed()


def test_a_remote_deletion_deletes_the_local_file(sync, data, bucket):
    write(data / "keep.txt", b"k")
    write(data / "gone.txt", b"g")
    sync()
    get_client().remove_object(bucket, PREFIX + "gone.txt")
    report = sync()
    assert report.deleted_local == 1 and report.downloaded == 0
    assert files_under(data) == {"keep.txt"}
    assert sync() == nothing_changed()


def test_when_both_sides_changed_local_wins(sync, data, bucket):
    write(data / "both.txt", b"original")
    sync()
    write(data / "both.txt", b"edited locally")
    put(bucket, PREFIX + "both.txt", b"edited remotely")
    report = sync()
    assert (report.uploaded, report.downloaded) == (1, 0)
    assert get(bucket, PREFIX + "both.txt") == b"edited locally"
    assert (data / "both.txt").read_bytes() == b"edited locally"


def test_an_edit_on_one_side_beats_a_deletion_on_the_other(sync, data, bucket):
    write(data / "edited-here.txt", b"v1")
    put(bucket, PREFIX + "edited-there.txt", b"v1")
    sync()
    write(data / "edited-here.txt", b"v2 local")
    get_client().remove_object(bucket, PREFIX + "edited-here.txt")
    (data / "edited-there.txt").unlink()
    put(bucket, PREFIX + "edited-there.txt", b"v2 remote")
    report = sync()
    assert (report.uploaded, report.downloaded) == (1, 1)
    assert (report.deleted_local, report.deleted_remote) == (0, 0)
    assert get(bucket, PREFIX + "edited-here.txt") == b"v2 local"
    assert (data / "edited-there.txt").read_bytes() == b"v2 remote"


def test_symbolic_links_are_never_followed(sync, data, bucket, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    write(outside / "secret.txt", b"appliance secret")
    (data / "hostname").symlink_to("/etc/hostname")
    (data / "linked-dir").symlink_to(outside)
    write(data / "real.txt", b"r")
    put(bucket, PREFIX + "linked-dir/planted.txt", b"must not land outside")
    put(bucket, PREFIX + "hostname", b"must not replace the link")

    report = sync()

    assert remote_keys(bucket) == {
        PREFIX + "real.txt",
        PREFIX + "linked-dir/planted.txt",
        PREFIX + "hostname",
    }
    assert get(bucket, PREFIX + "hostname") == b"must not replace the link"
    assert "data/hostname: a symbolic link, not synchronized" in report.skipped
    assert "data/linked-dir: a symbolic link, not synchronized" in report.skipped
    assert files_under(outside) == {"secret.txt"}
    assert (data / "hostname").is_symlink() and (data / "linked-dir").is_symlink()
    # The objects behind skipped links are left alone too: nothing deleted on either side.
    (data / "hostname").unlink()
    sync()
    assert PREFIX + "linked-dir/planted.txt" in remote_keys(bucket)


def test_a_symlinked_parent_folder_is_not_written_through(sync, data, bucket, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (data / "out").symlink_to(outside)
    put(bucket, PREFIX + "out/evil.txt", b"x")
    put(bucket, PREFIX + "out/deeper/evil.txt", b"x")
    put(bucket, PREFIX + "fine.txt", b"ok")

    report = sync()

    assert report.downloaded == 1
    assert "data/out: a symbolic link, not synchronized" in report.skipped
    assert list(outside.iterdir()) == []
    assert (data / "fine.txt").read_bytes() == b"ok"


def test_a_parent_swapped_for_a_symlink_after_the_first_sync_is_not_written_through(
    sync, data, bucket, tmp_path
):
    write(data / "sub" / "f.txt", b"v1")
    sync()
    outside = tmp_path / "outside"
    outside.mkdir()
    (data / "sub" / "f.txt").unlink()
    (data / "sub").rmdir()
    (data / "sub").symlink_to(outside)
    put(bucket, PREFIX + "sub/f.txt", b"v2 remote")

    report = sync()

    assert list(outside.iterdir()) == []
    assert report.deleted_remote == 0  # skipped locally is not "deleted locally"
    assert get(bucket, PREFIX + "sub/f.txt") == b"v2 remote"


def test_symlinks_swapped_in_during_the_sync_are_not_followed(sync, data, bucket, tmp_path):
    write(data / "sub" / "f.txt", b"v1")
    write(data / "upload-me.txt", b"mine")
    sync()
    outside = tmp_path / "outside"
    outside.mkdir()
    put(bucket, PREFIX + "sub/f.txt", b"v2 remote")
    write(data / "upload-me.txt", b"mine, edited")

    class UserCodeRacesTheSync:
        """The real client; between the scan and the transfers, user code swaps a folder
        and a file for symbolic links pointing outside."""

        def __getattr__(self, name):
            return getattr(get_client(), name)

        def list_objects(self, *args, **kwargs):
            (data / "sub" / "f.txt").unlink()
            (data / "sub").rmdir()
            (data / "sub").symlink_to(outside)
            (data / "upload-me.txt").unlink()
            (data / "upload-me.txt").symlink_to("/etc/hostname")
            return get_client().list_objects(*args, **kwargs)

    report = sync(client=UserCodeRacesTheSync())

    assert list(outside.iterdir()) == []
    assert (report.downloaded, report.uploaded) == (0, 0)
    assert any(s.startswith("data/sub/f.txt: could not be written") for s in report.skipped)
    assert any(s.startswith("data/upload-me.txt: could not be uploaded") for s in report.skipped)
    assert get(bucket, PREFIX + "upload-me.txt") == b"mine"


def test_keys_that_climb_out_of_the_folder_never_write_outside(sync, data, bucket, monkeypatch):
    # The minio client refuses '.' and '..' segments itself; let the attempt reach the store.
    monkeypatch.setattr(minio.api, "check_object_name", lambda name: None)
    for key in (PREFIX + "../escape.txt", PREFIX + "a/../../x", "nb/../../y", PREFIX + "./z"):
        try:
            put(bucket, key, b"climber")
        except (S3Error, ValueError):
            pass  # the client or the store refused it, which is fine too
    monkeypatch.undo()
    workspace = data.parent
    before = set(os.listdir(workspace))

    sync()

    assert set(os.listdir(workspace)) == before
    for path in data.rglob("*"):
        assert os.path.realpath(path).startswith(str(data) + os.sep)


@pytest.mark.parametrize(
    "rel",
    ["../escape.txt", "a/../../x", "/etc/passwd", "a//b", "./x", "a/.", "", "a\\..\\b", "a\x00b"],
)
def test_unsafe_relative_names_are_refused(rel):
    assert unsafe_name_reason(rel) is not None


def test_safe_relative_names_are_accepted():
    assert unsafe_name_reason("a/b c/..hidden/x.y") is None


def test_special_files_and_odd_names_are_skipped(sync, data, bucket):
    os.mkfifo(data / "pipe")
    write(data / "ok.txt", b"ok")
    with open(os.path.join(os.fsencode(data), b"bad-\xff.txt"), "wb") as out:
        out.write(b"not utf-8 name")
    write(data / "back\\slash.txt", b"b")

    report = sync()

    assert remote_keys(bucket) == {PREFIX + "ok.txt"}
    assert "data/pipe: a special file (pipe, socket or device), not synchronized" in report.skipped
    assert any("bad-\ufffd.txt" in s and "UTF-8" in s for s in report.skipped)
    assert any("back\\slash.txt" in s for s in report.skipped)


def test_paths_too_long_for_a_key_are_skipped(data, bucket, state_path):
    prefix = "p" * 1000 + "/"
    write(data / ("n" * 30), b"x")
    write(data / "short", b"y")
    report = sync_folder(data, bucket, prefix, state_path)
    assert remote_keys(bucket) == {prefix + "short"}
    assert any("longer than 1024 bytes" in s for s in report.skipped)


def test_jupyter_checkpoints_and_folder_markers_are_ignored(sync, data, bucket):
    write(data / ".ipynb_checkpoints" / "nb-checkpoint.ipynb", b"{}")
    write(data / "sub" / ".ipynb_checkpoints" / "x-checkpoint.py", b"")
    write(data / "sub" / "x.py", b"print()")
    (data / "empty-folder").mkdir()
    put(bucket, PREFIX + "marker/", b"")
    report = sync()
    assert remote_keys(bucket) == {PREFIX + "sub/x.py", PREFIX + "marker/"}
    assert not (data / "marker").exists()
    assert report.skipped == []


def test_a_store_that_is_down_raises_and_leaves_the_state_alone(
    sync, data, bucket, state_path, settings
):
    write(data / "a.txt", b"a")
    write(data / "b.txt", b"b")
    sync()
    recorded = state_path.read_bytes()
    (data / "a.txt").unlink()
    write(data / "b.txt", b"b2")
    real = settings.S3

    settings.S3 = {**real, "endpoint": f"127.0.0.1:{free_port()}"}
    with pytest.raises(StorageUnavailable):
        sync()
    assert state_path.read_bytes() == recorded

    settings.S3 = real
    report = sync()
    assert (report.deleted_remote, report.uploaded) == (1, 1)
    assert remote_keys(bucket) == {PREFIX + "b.txt"}
    assert get(bucket, PREFIX + "b.txt") == b"b2"


def test_a_file_changed_while_uploading_is_uploaded_again(sync, data, bucket):
    class AppendsDuringUpload:
        """The real client; the notebook writes to the file while its upload is running."""

        def __getattr__(self, name):
            return getattr(get_client(), name)

        def put_object(self, *args, **kwargs):
            with open(data / "log.txt", "ab") as out:
                out.write(b" and more")
            return get_client().put_object(*args, **kwargs)

    write(data / "log.txt", b"start")
    report = sync(client=AppendsDuringUpload())
    assert report.uploaded == 1
    assert any("changed while uploading" in s for s in report.skipped)

    again = sync()
    assert again.uploaded == 1
    assert get(bucket, PREFIX + "log.txt") == b"start and more"
    assert sync() == nothing_changed()


def test_a_lost_or_corrupt_state_never_deletes(sync, data, bucket, state_path):
    write(data / "a.txt", b"a")
    sync()
    state_path.write_text("{not json")
    get_client().remove_object(bucket, PREFIX + "a.txt")
    report = sync()
    assert report.deleted_local == 0 and report.uploaded == 1
    assert get(bucket, PREFIX + "a.txt") == b"a"


def test_a_vanished_data_folder_is_restored_not_emptied_remotely(sync, data, bucket):
    write(data / "a.txt", b"a")
    sync()
    (data / "a.txt").unlink()
    data.rmdir()
    report = sync()
    assert report.deleted_remote == 0 and report.downloaded == 1
    assert (data / "a.txt").read_bytes() == b"a"


def test_a_data_folder_replaced_by_a_symlink_is_not_synchronized(sync, data, bucket, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    write(outside / "secret.txt", b"s")
    data.rmdir()
    data.symlink_to(outside)
    put(bucket, PREFIX + "planted.txt", b"p")
    report = sync()
    assert report.uploaded == report.downloaded == 0
    assert report.skipped and "not synchronized" in report.skipped[0]
    assert files_under(outside) == {"secret.txt"}


@pytest.mark.skipif(os.geteuid() != 0, reason="only root can give files to another user")
def test_downloads_belong_to_the_instances_own_user(data, bucket, state_path):
    """Kernels run sandboxed as the project's user: what the sync brings in (and the folders
    it makes) must be theirs, or a notebook could not change a file that came from storage."""
    put(bucket, PREFIX + "deep/er/table.csv", b"a,b\n1,2\n")
    report = sync_folder(data, bucket, PREFIX, state_path, owner=2_000_123)
    assert report.downloaded == 1
    for path in (data / "deep", data / "deep/er", data / "deep/er/table.csv"):
        assert path.stat().st_uid == 2_000_123 and path.stat().st_gid == 2_000_123, path
