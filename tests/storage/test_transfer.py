"""The lean byte path (apps.storage.transfer), driven through the real ASGI application."""

import asyncio
import hashlib
import io
import os
from urllib.parse import quote

import httpx
import pytest
from rest_framework.authtoken.models import Token

from apps.projects import services as projects
from apps.projects.models import Project, Role
from apps.storage import services as storage
from apps.storage.client import get_client
from apps.storage.embedded import free_port
from bml_site.asgi import application

pytestmark = pytest.mark.django_db(transaction=True)  # the handler reads from other threads


def run(coro):
    return asyncio.run(coro)


async def request(method, path, headers=None, content=None, cookies=None):
    transport = httpx.ASGITransport(app=application)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://testserver", cookies=cookies
    ) as client:
        return await client.request(method, path, headers=headers, content=content)


@pytest.fixture
def owner(make_user):
    return make_user()


@pytest.fixture
def bucket(owner):
    return storage.create_bucket(owner, Project.objects.get(owner=owner), "lean-bucket")


def token_for(user) -> dict:
    return {"Authorization": f"Token {Token.objects.get_or_create(user=user)[0].key}"}


def test_upload_then_download_through_the_lean_path(owner, bucket):
    data = os.urandom(20 * 1024 * 1024 + 5)  # two parts in the store
    put = run(request("PUT", "/api/v1/buckets/lean-bucket/objects/w/x.bin", token_for(owner), data))
    assert put.status_code == 201, put.text
    assert put.json()["size"] == len(data)
    got = run(request("GET", "/api/v1/buckets/lean-bucket/objects/w/x.bin", token_for(owner)))
    assert got.status_code == 200
    assert got.headers["content-length"] == str(len(data))
    assert "x.bin" in got.headers["content-disposition"]
    assert hashlib.sha256(got.content).digest() == hashlib.sha256(data).digest()


def test_strangers_get_404_and_viewers_cannot_write(owner, bucket, make_user):
    storage.upload_object(owner, bucket, "a.txt", io.BytesIO(b"abc"), 3)
    stranger, viewer = make_user(), make_user()
    projects.add_member(owner, bucket.project, viewer, Role.VIEWER)
    path = "/api/v1/buckets/lean-bucket/objects/a.txt"
    assert run(request("GET", path, token_for(stranger))).status_code == 404
    assert run(request("PUT", path, token_for(stranger), b"zz")).status_code == 404
    viewer_headers = token_for(viewer)
    assert run(request("GET", path, viewer_headers)).content == b"abc"
    refused = run(request("PUT", path, viewer_headers, b"zz"))
    assert refused.status_code == 403 and "viewer" in refused.json()["detail"]
    assert get_client().get_object("lean-bucket", "a.txt").read() == b"abc"


def test_session_uploads_need_the_csrf_token(owner, bucket, client):
    client.force_login(owner)
    cookies = {"sessionid": client.cookies["sessionid"].value}
    refused = run(request("PUT", "/api/v1/buckets/lean-bucket/objects/c.txt", {}, b"x", cookies))
    assert refused.status_code == 403 and "CSRF" in refused.json()["detail"]
    assert list(get_client().list_objects("lean-bucket")) == []


def test_anonymous_requests_are_refused_or_sent_to_login(bucket):
    api = run(request("GET", "/api/v1/buckets/lean-bucket/objects/a.txt"))
    assert api.status_code == 403
    console = run(request("GET", "/storage/lean-bucket/download/a.txt"))
    assert console.status_code == 302
    assert console.headers["location"].startswith("/login/?next=")


def test_missing_object_and_bad_key(owner, bucket):
    headers = token_for(owner)
    assert (
        run(request("GET", "/api/v1/buckets/lean-bucket/objects/nope", headers)).status_code == 404
    )
    bad = run(request("PUT", "/api/v1/buckets/lean-bucket/objects/a/%2E%2E/b", headers, b"x"))
    assert bad.status_code == 400 and ".." in str(bad.json())


def test_oversize_upload_is_refused_before_reading(owner, bucket, settings):
    settings.MAX_UPLOAD_BYTES = 10
    response = run(
        request("PUT", "/api/v1/buckets/lean-bucket/objects/big", token_for(owner), b"x" * 11)
    )
    assert response.status_code == 413
    assert list(get_client().list_objects("lean-bucket")) == []


def test_store_down_is_503(owner, bucket, settings):
    headers = token_for(owner)
    settings.S3 = {**settings.S3, "endpoint": f"127.0.0.1:{free_port()}"}
    for method, body in (("GET", None), ("PUT", b"data")):
        response = run(request(method, "/api/v1/buckets/lean-bucket/objects/k", headers, body))
        assert response.status_code == 503, (method, response.text)
        assert "not reachable" in response.json()["detail"]


def test_chinese_keys_round_trip(owner, bucket):
    headers = token_for(owner)
    path = "/api/v1/buckets/lean-bucket/objects/" + quote("数据集/训练 数据.csv")
    assert run(request("PUT", path, headers, "标签,值\n".encode())).status_code == 201
    got = run(request("GET", path, headers))
    assert got.content.decode() == "标签,值\n"
    assert quote("训练 数据.csv") in got.headers["content-disposition"]
    listed = storage.list_folder(bucket, "数据集/")
    assert [e.name for e in listed] == ["训练 数据.csv"]


def test_a_slow_client_pauses_the_store_instead_of_filling_memory(owner, bucket, monkeypatch):
    from apps.storage import transfer

    data = os.urandom(24 * 1024 * 1024)
    storage.upload_object(owner, bucket, "slow.bin", io.BytesIO(data), len(data))
    peaks = []

    class Recording(transfer._UpstreamResponse):  # the real protocol, watched
        def data_received(self, block):
            super().data_received(block)
            peaks.append((self.buffered, self.paused))

    monkeypatch.setattr(transfer, "_UpstreamResponse", Recording)
    received = bytearray()

    async def slow_send(message):
        received.extend(message.get("body", b""))
        await asyncio.sleep(0.002)  # a client on a slow link

    run(transfer._download(bucket, "slow.bin", slow_send))
    assert bytes(received) == data
    assert any(paused for _, paused in peaks), "the store was never paused"
    limit = transfer._UpstreamResponse.HIGH + 1024 * 1024
    assert max(buffered for buffered, _ in peaks) <= limit


def pending_uploads(bucket_name: str) -> list:
    return get_client()._list_multipart_uploads(bucket_name).uploads


def test_large_bodies_are_relayed_as_multipart_uploads(owner, bucket, monkeypatch):
    monkeypatch.setattr(storage, "RELAY_PART_SIZE", 5 * 1024 * 1024)  # S3's smallest part
    data = os.urandom(12 * 1024 * 1024 + 3)  # parts of 5, 5 and 2 MB
    headers = {**token_for(owner), "X-Object-Content-Type": "application/x-parquet"}
    put = run(request("PUT", "/api/v1/buckets/lean-bucket/objects/m/big.bin", headers, data))
    assert put.status_code == 201, put.text
    assert put.json()["etag"].endswith("-3")  # the store's mark of a 3-part object
    stat = get_client().stat_object("lean-bucket", "m/big.bin")
    assert (stat.size, stat.content_type) == (len(data), "application/x-parquet")
    got = get_client().get_object("lean-bucket", "m/big.bin").read()
    assert hashlib.sha256(got).digest() == hashlib.sha256(data).digest()
    assert pending_uploads("lean-bucket") == []


def test_plan_parts_cover_the_body_exactly():
    plan = storage.UploadPlan("b", "k", 10, "text/plain", upload_id="u", part_size=4)
    assert plan.parts() == [(1, 4), (2, 4), (3, 2)]
    assert storage.UploadPlan("b", "k", 0, "text/plain").parts() == [(None, 0)]


def relay_with_body(bucket, owner, messages, length):
    """Run the upload relay on an ASGI receive that yields `messages`; returns what it sent."""
    from apps.storage import transfer

    feed = iter(messages)
    sent = []

    async def receive():
        await asyncio.sleep(0)
        return next(feed)

    async def send(message):
        sent.append(message)

    scope = {"headers": [(b"content-length", str(length).encode())]}
    run(transfer._upload(owner, bucket, "cut.bin", scope, receive, send))
    return sent


@pytest.mark.parametrize("part_size", [5 * 1024 * 1024, 64 * 1024 * 1024])
@pytest.mark.parametrize("ending", ["disconnect", "short body"])
def test_an_upload_cut_short_leaves_nothing_in_the_store(
    owner, bucket, monkeypatch, part_size, ending
):
    monkeypatch.setattr(storage, "RELAY_PART_SIZE", part_size)
    chunk = os.urandom(1024 * 1024)
    messages = [{"type": "http.request", "body": chunk, "more_body": True}] * 7
    if ending == "disconnect":
        messages.append({"type": "http.disconnect"})
    else:
        messages.append({"type": "http.request", "body": b"", "more_body": False})
    sent = relay_with_body(bucket, owner, messages, 12 * 1024 * 1024)
    assert sent == []  # nobody to answer
    assert list(get_client().list_objects("lean-bucket", recursive=True)) == []
    assert pending_uploads("lean-bucket") == []


def test_a_bucket_gone_from_the_store_is_a_clear_404(owner, bucket):
    get_client().remove_bucket("lean-bucket")  # behind the appliance's back
    response = run(request("PUT", "/api/v1/buckets/lean-bucket/objects/x", token_for(owner), b"x"))
    assert response.status_code == 404
    assert response.json() == {"detail": "No such object."}


def test_downloads_answer_a_byte_range_and_head(owner, bucket):
    data = bytes(range(256)) * 400  # 102,400 bytes
    storage.upload_object(owner, bucket, "r.bin", io.BytesIO(data), len(data))
    path, headers = "/api/v1/buckets/lean-bucket/objects/r.bin", token_for(owner)

    def ranged(spec):
        return run(request("GET", path, {**headers, "Range": spec}))

    part = ranged("bytes=1000-1999")
    assert part.status_code == 206 and part.content == data[1000:2000]
    assert part.headers["content-range"] == f"bytes 1000-1999/{len(data)}"
    assert part.headers["accept-ranges"] == "bytes"
    tail = ranged("bytes=-10")  # resume from the end
    assert tail.status_code == 206 and tail.content == data[-10:]
    assert ranged("bytes=100000-").content == data[100000:]
    beyond = ranged("bytes=200000-")
    assert beyond.status_code == 416
    assert beyond.headers["content-range"] == f"bytes */{len(data)}"
    # Forms S3 cannot serve are ignored, as HTTP allows: the whole object.
    for spec in ("bytes=0-1,5-6", "lines=1-2", "bytes=a-b"):
        whole = ranged(spec)
        assert (whole.status_code, whole.content) == (200, data), spec
    head = run(request("HEAD", path, headers))
    assert head.status_code == 200 and head.content == b""
    assert head.headers["content-length"] == str(len(data))
    missing = run(request("HEAD", "/api/v1/buckets/lean-bucket/objects/nope", headers))
    assert missing.status_code == 404
    console = run(request("HEAD", "/storage/lean-bucket/download/r.bin"))
    assert console.status_code == 302  # anonymous: to the login page, as for GET


def test_uploads_left_unfinished_are_dropped_after_a_day(owner, bucket):
    from datetime import timedelta

    from apps.storage import multipart

    client = get_client()
    left = multipart.create(client, "lean-bucket", "crashed.bin", "application/octet-stream")
    assert storage.abort_stale_uploads(older_than=timedelta(hours=1)) == 0  # too young
    assert [u.upload_id for u in pending_uploads("lean-bucket")] == [left]
    assert storage.abort_stale_uploads(older_than=timedelta(0)) == 1
    assert pending_uploads("lean-bucket") == []
