"""The web server's zero copy send (bml_site.zero_copy_http) under a real uvicorn, and the
appliance's downloads taking that path."""

import asyncio
import contextlib
import hashlib
import os
import socket
import threading

import httpx
import pytest
import uvicorn
from rest_framework.authtoken.models import Token

from apps.projects.models import Project
from apps.storage import services as storage
from apps.storage.embedded import free_port
from bml_site import zero_copy_http
from bml_site.asgi import application
from bml_site.zero_copy_http import ZERO_COPY_SEND, ZeroCopyHttpToolsProtocol
from tests.conftest import wait_until

pytestmark = pytest.mark.skipif(not zero_copy_http.AVAILABLE, reason="needs splice(2)")


@contextlib.contextmanager
def serving(app):
    """`app` under uvicorn with the appliance's protocol, in a thread; yields its base URL."""
    port = free_port()
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        loop="uvloop",
        http=ZeroCopyHttpToolsProtocol,
        lifespan="off",
        access_log=False,
        log_level="warning",
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_until(lambda: server.started, 20, what="uvicorn")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


def feed(sock: socket.socket, data: bytes, then_close=True):
    """Write `data` into one end of a socket pair from a thread (the store's part)."""

    def run():
        try:
            sock.sendall(data)
        except OSError:
            pass  # the reader went away
        finally:
            if then_close:
                sock.close()

    threading.Thread(target=run, daemon=True).start()


class SplicingApp:
    """Answers GET /socket/<n> with n bytes from a socket pair (a few sent the ordinary way
    first), /file with a file from an offset; records what each request ended with."""

    def __init__(self, tmp_path):
        self.file = tmp_path / "payload.bin"
        self.file_data = os.urandom(3 * 1024 * 1024 + 17)
        self.file.write_bytes(self.file_data)
        self.sent: dict[int, bytes] = {}
        self.outcomes: list[str] = []
        self.offered: list[bool] = []
        self.clients: list[tuple] = []

    async def __call__(self, scope, receive, send):
        self.offered.append(ZERO_COPY_SEND in scope.get("extensions", {}))
        self.clients.append(tuple(scope["client"]))
        kind, _, arg = scope["path"].strip("/").partition("/")
        try:
            if kind == "socket":
                await self.from_socket(send, int(arg), scope["query_string"].decode())
            else:
                await self.from_file(send)
            self.outcomes.append("done")
        except Exception as exc:  # recorded for the test, then re-raised for uvicorn
            self.outcomes.append(type(exc).__name__)
            raise

    async def from_socket(self, send, length: int, how: str):
        data = os.urandom(length)
        self.sent[length] = data
        store_side, ours = socket.socketpair()
        if how == "stall":  # 10 bytes, then nothing, the connection kept open
            self.stalled = store_side
            feed(store_side, data[:10], then_close=False)
        else:
            feed(store_side, data[: length // 2] if how == "short" else data)
        headers = [(b"content-length", str(length).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        first = ours.recv(10, socket.MSG_WAITALL)
        await send({"type": "http.response.body", "body": first, "more_body": True})
        ours.setblocking(False)  # as the appliance's own store connections are
        try:
            await send({"type": ZERO_COPY_SEND, "file": ours, "count": length - len(first)})
        finally:
            ours.close()

    async def from_file(self, send):
        size = len(self.file_data) - 100
        headers = [(b"content-length", str(size).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        with self.file.open("rb") as fh:
            await send({"type": ZERO_COPY_SEND, "file": fh, "offset": 100})


@pytest.fixture
def app(tmp_path):
    return SplicingApp(tmp_path)


def test_a_socket_is_spliced_to_the_client_byte_for_byte(app):
    length = 24 * 1024 * 1024 + 3  # many times the pipe
    with serving(app) as url:
        got = httpx.get(f"{url}/socket/{length}", timeout=30)
    assert got.status_code == 200
    assert app.offered == [True]
    assert app.outcomes == ["done"]
    assert hashlib.sha256(got.content).digest() == hashlib.sha256(app.sent[length]).digest()


def test_a_file_is_sent_from_an_offset_and_head_sends_no_body(app):
    with serving(app) as url, httpx.Client(timeout=30) as client:  # one kept-alive connection
        got = client.get(f"{url}/file")
        head = client.head(f"{url}/file")
        again = client.get(f"{url}/socket/70000")
    assert got.content == app.file_data[100:]
    assert head.status_code == 200 and head.content == b""
    assert head.headers["content-length"] == str(len(app.file_data) - 100)
    assert again.content == app.sent[70000]
    assert app.outcomes == ["done", "done", "done"]
    assert len(set(app.clients)) == 1  # the connection went on after each zero copy send


def test_a_source_ending_early_cuts_the_response_and_the_server_goes_on(app):
    with serving(app) as url:
        with pytest.raises(httpx.RemoteProtocolError):
            httpx.get(f"{url}/socket/{4 * 1024 * 1024}?short", timeout=30)
        after = httpx.get(f"{url}/socket/1000", timeout=30)
    assert after.content == app.sent[1000]
    assert app.outcomes == ["ConnectionError", "done"]


def test_a_stalled_source_ends_the_send(app, monkeypatch):
    monkeypatch.setattr(zero_copy_http, "IDLE_SECONDS", 0.5)
    with serving(app) as url:
        with pytest.raises(httpx.RemoteProtocolError):
            httpx.get(f"{url}/socket/5000?stall", timeout=30)
    assert app.outcomes == ["TimeoutError"]


def test_a_client_leaving_midway_ends_the_send(app):
    length = 256 * 1024 * 1024  # far more than the socket buffers hold
    with serving(app) as url:
        with httpx.stream("GET", f"{url}/socket/{length}", timeout=30) as response:
            first = next(response.iter_bytes(1024 * 1024))
        assert first == app.sent[length][: len(first)]
        # The send notices the closed connection and returns; nothing is left running.
        wait_until(lambda: app.outcomes, 20, what="the send to end")
        assert app.outcomes == ["done"]
        assert httpx.get(f"{url}/socket/500", timeout=30).content == app.sent[500]


@pytest.mark.django_db(transaction=True)  # the application reads from the server's threads
def test_appliance_downloads_take_the_zero_copy_path(make_user, monkeypatch):
    owner = make_user()
    storage.create_bucket(owner, Project.objects.get(owner=owner), "spliced")
    spliced = []
    real_splice_all = zero_copy_http.splice_all

    def counting_splice_all(src_fd, dst_fd, count, offset, stop):
        spliced.append(count)
        return real_splice_all(src_fd, dst_fd, count, offset, stop)

    monkeypatch.setattr(zero_copy_http, "splice_all", counting_splice_all)
    token = {"Authorization": f"Token {Token.objects.get_or_create(user=owner)[0].key}"}
    data = os.urandom(20 * 1024 * 1024 + 5)  # two parts in the store
    with serving(application) as url:
        path = f"{url}/api/v1/buckets/spliced/objects/a/b.bin"
        put = httpx.put(path, content=data, headers=token, timeout=60)
        assert put.status_code == 201, put.text
        got = httpx.get(path, headers=token, timeout=60)
        part = httpx.get(path, headers={**token, "Range": "bytes=1000-1999"}, timeout=60)
        head = httpx.head(path, headers=token, timeout=60)
        missing = httpx.get(f"{url}/api/v1/buckets/spliced/objects/nope", headers=token)
    assert got.status_code == 200
    assert got.headers["content-length"] == str(len(data))
    assert hashlib.sha256(got.content).digest() == hashlib.sha256(data).digest()
    assert part.status_code == 206 and part.content == data[1000:2000]
    assert head.status_code == 200 and head.headers["content-length"] == str(len(data))
    assert missing.status_code == 404
    # The object's body moved in the kernel, less what arrived with the store's head (the
    # small range usually comes whole with its head and is sent the ordinary way).
    assert len(data) - 256 * 1024 < spliced[0] <= len(data)
    assert all(count <= 1000 for count in spliced[1:])


@pytest.mark.django_db(transaction=True)
def test_a_store_dying_mid_object_cuts_the_download_with_one_log_line(
    make_user, monkeypatch, caplog
):
    """The store is replaced by one that promises a megabyte, sends a kilobyte and dies."""
    owner = make_user()
    storage.create_bucket(owner, Project.objects.get(owner=owner), "dying")
    listener = socket.create_server(("127.0.0.1", 0))

    def dying_store():
        conn, _ = listener.accept()
        conn.recv(65536)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1048576\r\n\r\n" + b"x" * 1024)
        conn.close()

    def serve_twice():
        dying_store()
        dying_store()

    threading.Thread(target=serve_twice, daemon=True).start()
    store_url = f"http://127.0.0.1:{listener.getsockname()[1]}/dying/k"
    monkeypatch.setattr(storage, "presigned_read_url", lambda bucket, key, method: store_url)
    token = {"Authorization": f"Token {Token.objects.get_or_create(user=owner)[0].key}"}
    with serving(application) as url:
        with pytest.raises(httpx.RemoteProtocolError):
            httpx.get(f"{url}/api/v1/buckets/dying/objects/k", headers=token, timeout=30)
    # The user-space relay (a server without the extension) ends the same way.
    messages = asyncio.run(_asgi_messages("/api/v1/buckets/dying/objects/k", token))
    assert messages[0]["type"] == "http.response.start"
    assert (b"content-length", b"1048576") in messages[0]["headers"]
    assert sum(len(m.get("body", b"")) for m in messages[1:]) == 1024
    assert all(m.get("more_body") for m in messages[1:])  # left unfinished: the cut
    listener.close()
    assert caplog.text.count("download of k cut short") == 2
    assert "Traceback" not in caplog.text


async def _asgi_messages(path, headers) -> list[dict]:
    """What the application sends for a GET, under a server without the extension."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        "server": ("testserver", 80),
        "client": ("127.0.0.1", 1),
    }
    sent = []

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        sent.append(message)

    await application(scope, receive, send)
    return sent
