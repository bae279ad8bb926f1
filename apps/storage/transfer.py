"""The lean data path for object bytes: uploads and downloads under ASGI without Django's
request stack.

Django under ASGI spools a whole request body to a temporary file before a view runs, and
serves a streaming body one chunk at a time through its handler; for large objects both cost
a large share of the store's own speed. Here the body is piped straight into a multipart
upload while it is still arriving, and a download reads the next chunk from the store while
the current one is being sent. Authentication, CSRF, the project scoping and the role rules
are the same code the API uses (DRF authenticators, selectors, services), run once per
request in a thread.

Routes (anything else goes to Django):
    GET|PUT /api/v1/buckets/<bucket>/objects/<key>
    GET     /storage/<bucket>/download/<key>          (console link; login redirect)
"""

import asyncio
import collections
import io
import json
import queue
import re
from importlib import import_module
from urllib.parse import quote, urlsplit

from asgiref.sync import sync_to_async
from django.conf import settings
from django.contrib.auth import get_user
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.handlers.asgi import ASGIRequest
from django.http import Http404
from django.shortcuts import resolve_url
from django.utils.functional import SimpleLazyObject
from rest_framework import exceptions as drf_exceptions
from rest_framework.authentication import SessionAuthentication, TokenAuthentication
from rest_framework.request import Request

from apps.projects.models import Role
from apps.projects.services import require_role
from apps.storage import selectors, services
from apps.storage.client import ObjectNotFound, StorageUnavailable, UploadTooLarge

API_ROUTE = re.compile(r"^/api/v1/buckets/(?P<bucket>[a-z0-9.\-]+)/objects/(?P<key>.+)$")
CONSOLE_ROUTE = re.compile(r"^/storage/(?P<bucket>[a-z0-9.\-]+)/download/(?P<key>.+)$")
PIPE_DEPTH = 256  # ASGI body messages buffered between the socket and the store (~16 MB)


def match(scope) -> tuple[str, dict] | None:
    """('api'|'console', {bucket, key}) when this request belongs to the lean path."""
    if scope["type"] != "http":
        return None
    method, path = scope["method"], scope["path"]
    if method in ("GET", "PUT") and (m := API_ROUTE.match(path)):
        return "api", m.groupdict()
    if method == "GET" and (m := CONSOLE_ROUTE.match(path)):
        return "console", m.groupdict()
    return None


class Refusal(Exception):
    def __init__(self, status: int, body: dict, headers=()):
        self.status, self.body, self.headers = status, body, list(headers)


def _authorize(scope, bucket_name: str, key: str, write: bool, console: bool):
    """Who is asking, and may they? Returns (user, bucket); raises Refusal."""
    request = ASGIRequest(scope, io.BytesIO())
    engine = import_module(settings.SESSION_ENGINE)
    request.session = engine.SessionStore(request.COOKIES.get(settings.SESSION_COOKIE_NAME))
    request.user = SimpleLazyObject(lambda: get_user(request))
    try:
        # The API's own authenticators: session (with its CSRF check) or token.
        drf_request = Request(
            request, authenticators=[SessionAuthentication(), TokenAuthentication()]
        )
        user = drf_request.user
    except drf_exceptions.APIException as exc:
        raise Refusal(exc.status_code, {"detail": str(exc.detail)}) from exc
    if not user or not user.is_authenticated:
        if console:
            login = f"{resolve_url(settings.LOGIN_URL)}?next={quote(scope['path'])}"
            raise Refusal(302, {}, [(b"location", login.encode())])
        raise Refusal(403, {"detail": "Authentication credentials were not provided."})
    try:
        bucket = selectors.get_bucket(user, bucket_name)
        if write:
            require_role(user, bucket.project, Role.DEVELOPER)
    except Http404:
        raise Refusal(404, {"detail": "No such bucket."}) from None
    except PermissionDenied as exc:
        raise Refusal(403, {"detail": str(exc)}) from None
    return user, bucket


class BodyPipe:
    """A file-like `read(n)` for the store client, fed from the ASGI receive loop.

    Chunks are kept as received and joined once per read, so a 16 MB part costs one copy.
    """

    def __init__(self):
        self.queue: queue.Queue = queue.Queue(maxsize=PIPE_DEPTH)
        self.chunks: collections.deque = collections.deque()
        self.buffered = 0
        self.ended = False

    def read(self, size: int = -1) -> bytes:
        while not self.ended and (size < 0 or self.buffered < size):
            item = self.queue.get()
            if item is None:
                self.ended = True
            elif isinstance(item, BaseException):
                raise item
            else:
                self.chunks.append(item)
                self.buffered += len(item)
        size = self.buffered if size < 0 else min(size, self.buffered)
        parts, taken = [], 0
        while taken < size:
            chunk = self.chunks.popleft()
            if taken + len(chunk) > size:  # split: the rest stays for the next read
                cut = size - taken
                self.chunks.appendleft(chunk[cut:])
                chunk = chunk[:cut]
            parts.append(chunk)
            taken += len(chunk)
        self.buffered -= size
        return b"".join(parts)


async def _send_json(send, status: int, body: dict, headers=()):
    payload = json.dumps(body).encode() if body else b""
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})


def _error_response(exc) -> tuple[int, dict]:
    if isinstance(exc, ValidationError):
        return 400, exc.message_dict if hasattr(exc, "error_dict") else {"detail": exc.messages}
    if isinstance(exc, ObjectNotFound):
        return 404, {"detail": "No such object."}
    if isinstance(exc, UploadTooLarge):
        return 413, {"detail": str(exc)}
    if isinstance(exc, StorageUnavailable):
        return 503, {"detail": str(exc)}
    if isinstance(exc, PermissionDenied):
        return 403, {"detail": str(exc)}
    raise exc


class _UpstreamResponse(asyncio.Protocol):
    """An HTTP/1.1 response from the store read with a bare protocol: each block the event loop
    receives is handed on as it is (no stream buffer, no re-slicing), with flow control so a
    slow client pauses the store instead of filling memory."""

    HIGH, LOW = 8 * 1024 * 1024, 2 * 1024 * 1024

    def __init__(self):
        self.head = bytearray()
        self.headers_done = asyncio.get_running_loop().create_future()
        self.blocks: asyncio.Queue = asyncio.Queue()
        self.buffered = 0
        self.paused = False
        self.transport = None

    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data: bytes):
        if not self.headers_done.done():
            self.head += data
            end = self.head.find(b"\r\n\r\n")
            if end < 0:
                return
            data = bytes(self.head[end + 4 :])
            self.headers_done.set_result(bytes(self.head[:end]))
            if not data:
                return
        self.blocks.put_nowait(data)
        self.buffered += len(data)
        if self.buffered > self.HIGH and not self.paused:
            self.paused = True
            self.transport.pause_reading()

    def connection_lost(self, exc):
        if not self.headers_done.done():
            self.headers_done.set_exception(exc or ConnectionError("store closed the connection"))
        self.blocks.put_nowait(None)

    async def next_block(self) -> bytes | None:
        block = await self.blocks.get()
        if block is not None:
            self.buffered -= len(block)
            if self.paused and self.buffered < self.LOW:
                self.paused = False
                self.transport.resume_reading()
        return block


async def _open_upstream(url: str):
    """GET a presigned URL of the store on the event loop itself (one connection per
    download): bytes move socket to socket with no thread hop and no HTTP-library layer.
    Returns (status, headers, protocol)."""
    parts = urlsplit(url)
    loop = asyncio.get_running_loop()
    try:
        transport, protocol = await asyncio.wait_for(
            loop.create_connection(_UpstreamResponse, parts.hostname, parts.port or 80), 2.0
        )
    except (TimeoutError, OSError) as exc:
        raise StorageUnavailable(type(exc).__name__) from exc
    target = parts.path + ("?" + parts.query if parts.query else "")
    transport.write(
        f"GET {target} HTTP/1.1\r\nHost: {parts.netloc}\r\nConnection: close\r\n\r\n".encode()
    )
    try:
        head = await asyncio.wait_for(protocol.headers_done, 30)
    except (TimeoutError, OSError) as exc:
        transport.close()
        raise StorageUnavailable(type(exc).__name__) from exc
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines:
        if ":" in line:
            name, value = line.split(":", 1)
            headers[name.strip().lower()] = value.strip()
    return int(status_line.split()[1]), headers, protocol


async def _download(bucket, key, send):
    url = await sync_to_async(services.presigned_read_url, thread_sensitive=False)(bucket, key)
    status, headers, upstream = await _open_upstream(url)
    try:
        if status == 404:
            raise ObjectNotFound(key)
        if status != 200 or "content-length" not in headers:
            raise StorageUnavailable(f"store answered {status}")
        remaining = int(headers["content-length"])
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (
                        b"content-type",
                        headers.get("content-type", "application/octet-stream").encode(),
                    ),
                    (b"content-length", str(remaining).encode()),
                    (b"etag", headers.get("etag", "").encode()),
                    (
                        b"content-disposition",
                        f"attachment; filename*=UTF-8''{quote(services.basename(key))}".encode(),
                    ),
                ],
            }
        )
        while remaining > 0:
            block = await upstream.next_block()
            if block is None:
                raise ConnectionError("the store closed the connection mid-object")
            remaining -= len(block)
            await send({"type": "http.response.body", "body": block, "more_body": True})
        await send({"type": "http.response.body", "body": b""})
    finally:
        upstream.transport.close()


async def _upload(user, bucket, key, scope, receive, send):
    headers = dict(scope.get("headers") or [])
    length = headers.get(b"content-length", b"").decode()
    if not length.isdigit():
        await _send_json(send, 411, {"Content-Length": "Uploads must state their length."})
        return
    content_type = headers.get(b"x-object-content-type", b"").decode() or None
    pipe = BodyPipe()
    upload = asyncio.ensure_future(
        sync_to_async(services.upload_object, thread_sensitive=False)(
            user, bucket, key, pipe, int(length), content_type
        )
    )
    loop = asyncio.get_running_loop()
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            pipe.queue.put(ConnectionAbortedError("client went away mid-upload"))
            break
        body = message.get("body", b"")
        while body and not upload.done():
            try:
                pipe.queue.put_nowait(body)
                break
            except queue.Full:  # the store is slower than the client: wait, do not buffer
                try:
                    await loop.run_in_executor(None, pipe.queue.put, body, True, 0.5)
                    break
                except queue.Full:
                    continue  # check again whether the upload ended meanwhile
        if upload.done() or not message.get("more_body"):
            if not upload.done():
                pipe.queue.put(None)
            break
    try:
        result = await upload
    except (ConnectionAbortedError, OSError):
        return  # nobody is listening; the store aborted the multipart upload
    except Exception as exc:  # noqa: BLE001 - mapped to a clear status, or re-raised
        status, body = _error_response(exc)
        await _send_json(send, status, body)
        return
    await _send_json(send, 201, result)


async def handle(kind: str, params: dict, scope, receive, send):
    write = scope["method"] == "PUT"
    try:
        user, bucket = await sync_to_async(_authorize, thread_sensitive=False)(
            scope, params["bucket"], params["key"], write, kind == "console"
        )
    except Refusal as refusal:
        await _send_json(send, refusal.status, refusal.body, refusal.headers)
        return
    try:
        if write:
            await _upload(user, bucket, params["key"], scope, receive, send)
        else:
            await _download(bucket, params["key"], send)
    except Exception as exc:  # noqa: BLE001
        status, body = _error_response(exc)
        await _send_json(send, status, body)
