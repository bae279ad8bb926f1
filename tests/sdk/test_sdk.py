import pytest
from bml import storage
from django.conf import settings


@pytest.fixture
def sdk_bucket(db, make_user):
    from apps.projects.models import Project
    from apps.storage import services

    user = make_user()
    services.create_bucket(user, Project.objects.get(owner=user), "sdk-bucket")
    s3 = settings.S3
    storage.configure(s3["endpoint"], s3["access_key"], s3["secret_key"])
    return "sdk-bucket"


def test_upload_folder_list_and_download_round_trip(sdk_bucket, tmp_path):
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "a.txt").write_text("alpha")
    (src / "sub" / "b.bin").write_bytes(bytes(range(256)))
    uploaded = storage.upload(src, "bos://sdk-bucket/run1/")
    assert sorted(uploaded) == ["bos://sdk-bucket/run1/a.txt", "bos://sdk-bucket/run1/sub/b.bin"]

    top = storage.list("bos:/sdk-bucket/run1/")  # the spec's single-slash form
    assert [(e.key, e.is_folder) for e in top] == [("run1/a.txt", False), ("run1/sub/", True)]

    out = tmp_path / "out"
    storage.download("bos://sdk-bucket/run1/", out)
    assert (out / "a.txt").read_text() == "alpha"
    assert (out / "sub" / "b.bin").read_bytes() == bytes(range(256))


def test_single_file_download(sdk_bucket, tmp_path):
    (tmp_path / "m.txt").write_text("model")
    storage.upload(tmp_path / "m.txt", "bos://sdk-bucket/models/m.txt")
    [path] = storage.download("bos://sdk-bucket/models/m.txt", tmp_path / "got")
    assert path.read_text() == "model"


@pytest.mark.parametrize("uri", ["s3://x/y", "bos://b/../etc"])
def test_bad_uris_are_refused(uri):
    with pytest.raises(ValueError):
        storage.split(uri)
