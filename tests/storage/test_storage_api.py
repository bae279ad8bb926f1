import hashlib
import os

import pytest
from django.conf import settings

from apps.projects import services as projects
from apps.projects.models import Project, Role
from apps.storage.client import get_client
from apps.storage.embedded import free_port
from tests.conftest import read_body


@pytest.fixture
def owner(make_user):
    return make_user()


@pytest.fixture
def project(owner):
    return Project.objects.get(owner=owner, is_default=True)


@pytest.fixture
def client(owner, api_client_for):
    return api_client_for(owner)


@pytest.fixture
def bucket(client, project, request):
    name = "b-" + hashlib.md5(request.node.nodeid.encode()).hexdigest()[:12]
    response = client.post("/api/v1/buckets/", {"project": project.pk, "name": name})
    assert response.status_code == 201, response.content
    return name


def put(client, bucket, key, data: bytes):
    return client.generic(
        "PUT",
        f"/api/v1/buckets/{bucket}/objects/{key}",
        data,
        content_type="application/octet-stream",
    )


def test_upload_large_multipart_then_download_byte_identical(client, bucket):
    data = os.urandom(40 * 1024 * 1024 + 123)  # above the part size: multipart in the store
    response = put(client, bucket, "models/big.bin", data)
    assert response.status_code == 201, response.content
    assert response.json()["size"] == len(data)
    assert "-" in response.json()["etag"]  # a multipart ETag
    download = client.get(f"/api/v1/buckets/{bucket}/objects/models/big.bin")
    assert download.status_code == 200
    assert download["Content-Length"] == str(len(data))
    assert hashlib.sha256(read_body(download)).digest() == hashlib.sha256(data).digest()


def test_browse_folders_and_files(client, bucket):
    put(client, bucket, "data/train/a.csv", b"1,2\n")
    put(client, bucket, "data/readme.txt", b"hi")
    assert client.post(f"/api/v1/buckets/{bucket}/folders/", {"path": "empty"}).status_code == 201
    root = client.get(f"/api/v1/buckets/{bucket}/objects/").json()
    assert [(e["name"], e["is_folder"]) for e in root] == [("data/", True), ("empty/", True)]
    data = client.get(f"/api/v1/buckets/{bucket}/objects/", {"prefix": "data/"}).json()
    assert [(e["name"], e["size"]) for e in data] == [("train/", None), ("readme.txt", 2)]
    assert data[1]["uri"] == f"bos://{bucket}/data/readme.txt"


def test_folder_beside_a_file_of_its_name_is_409(client, bucket):
    put(client, bucket, "f1", b"x")
    response = client.post(f"/api/v1/buckets/{bucket}/folders/", {"path": "f1"})
    assert response.status_code == 409, response.content
    assert "'f1' already exists" in response.json()["path"][0]


def test_several_files_in_one_multipart_form(client, bucket):
    from django.core.files.uploadedfile import SimpleUploadedFile

    files = [SimpleUploadedFile("one.txt", b"1"), SimpleUploadedFile("two.txt", b"22")]
    response = client.post(
        f"/api/v1/buckets/{bucket}/upload/", {"files": files, "prefix": "in"}, format="multipart"
    )
    assert response.status_code == 201, response.content
    assert sorted(r["key"] for r in response.json()) == ["in/one.txt", "in/two.txt"]
    as_json = client.post(f"/api/v1/buckets/{bucket}/upload/", {"prefix": "in"}, format="json")
    assert as_json.status_code == 415
    assert "This route takes multipart/form-data." in as_json.json()["detail"]


def test_bucket_deletion_only_when_empty(client, bucket):
    put(client, bucket, "keep.txt", b"x")
    refused = client.delete(f"/api/v1/buckets/{bucket}/")
    assert refused.status_code == 400
    assert "not empty" in str(refused.json())
    assert get_client().bucket_exists(bucket)
    assert client.delete(f"/api/v1/buckets/{bucket}/objects/keep.txt").status_code == 204
    assert client.delete(f"/api/v1/buckets/{bucket}/").status_code == 204
    assert not get_client().bucket_exists(bucket)


def test_folder_delete_removes_everything_under_it(client, bucket):
    put(client, bucket, "dir/a", b"a")
    put(client, bucket, "dir/sub/b", b"b")
    put(client, bucket, "other", b"c")
    assert client.delete(f"/api/v1/buckets/{bucket}/objects/dir/").status_code == 204
    names = [o.object_name for o in get_client().list_objects(bucket, recursive=True)]
    assert names == ["other"]


@pytest.mark.parametrize("key", ["..%2Fescape", "a/../b", "a//b"])
def test_escaping_keys_are_refused_and_nothing_is_written(client, bucket, key):
    response = put(client, bucket, key, b"x")
    assert response.status_code == 400
    assert list(get_client().list_objects(bucket, recursive=True)) == []


def test_bad_bucket_name_names_the_rule(client, project):
    response = client.post("/api/v1/buckets/", {"project": project.pk, "name": "Bad_Name"})
    assert response.status_code == 400
    assert "lowercase letters" in response.json()["name"][0]


@pytest.mark.parametrize(
    "body, rule",
    [
        ('{"name": ' + "[" * 100_000 + "]" * 100_000 + "}", "nesting depth limit"),
        ('{"name": "b-nan", "project": NaN}', "NaN is not a number"),
        ('{"name": "b-inf", "project": -Infinity}', "must be finite"),
        ('{"name": "b-big", "project": 1e400}', "1e400 is out of range"),
    ],
)
def test_hostile_json_is_400_naming_the_rule(client, body, rule):
    response = client.generic("POST", "/api/v1/buckets/", body, content_type="application/json")
    assert response.status_code == 400, response.content
    assert rule in response.json()["detail"]


def test_duplicate_bucket_is_refused(client, project, bucket):
    response = client.post("/api/v1/buckets/", {"project": project.pk, "name": bucket})
    assert response.status_code == 400
    assert "already exists" in response.json()["name"][0]


def test_upload_over_the_limit_is_refused_with_413(client, bucket, settings):
    settings.MAX_UPLOAD_BYTES = 1024
    response = put(client, bucket, "too-big.bin", b"x" * 2048)
    assert response.status_code == 413
    assert "limit is" in response.json()["detail"]
    assert list(get_client().list_objects(bucket)) == []


def test_missing_object_is_404(client, bucket):
    assert client.get(f"/api/v1/buckets/{bucket}/objects/nope.txt").status_code == 404


def test_another_projects_bucket_is_404(make_user, api_client_for, bucket):
    stranger = api_client_for(make_user())
    assert stranger.get(f"/api/v1/buckets/{bucket}/objects/").status_code == 404
    assert put(stranger, bucket, "x", b"x").status_code == 404
    assert stranger.get("/api/v1/buckets/").json()["results"] == []


def test_viewer_reads_but_cannot_upload(owner, project, bucket, make_user, api_client_for):
    viewer = make_user()
    projects.add_member(owner, project, viewer, Role.VIEWER)
    client = api_client_for(viewer)
    assert client.get(f"/api/v1/buckets/{bucket}/objects/").status_code == 200
    assert put(client, bucket, "x", b"x").status_code == 403


def test_store_down_gives_503_with_a_message_not_500(client, bucket, settings):
    settings.S3 = {**settings.S3, "endpoint": f"127.0.0.1:{free_port()}"}
    response = client.get(f"/api/v1/buckets/{bucket}/objects/")
    assert response.status_code == 503
    assert "object store is not reachable" in response.json()["detail"]


def test_console_store_down_page_is_503(client, bucket, settings, owner):
    from django.test import Client

    web = Client()
    web.force_login(owner)
    settings.S3 = {**settings.S3, "endpoint": f"127.0.0.1:{free_port()}"}
    response = web.get(f"/storage/{bucket}/")
    assert response.status_code == 503
    assert b"object store is not reachable" in response.content


def test_store_keys_never_reach_a_page(client, bucket, owner):
    from django.test import Client

    web = Client()
    web.force_login(owner)
    secret = settings.S3["secret_key"].encode()
    access = settings.S3["access_key"].encode()
    for url in [
        "/projects/",
        "/storage/",
        f"/storage/{bucket}/",
        "/resources/",
        "/metrics",
        "/healthz",
        "/api/v1/schema/",
    ]:
        page = web.get(url).content
        assert secret not in page and access not in page, url
