"""The lean data path for object bytes: uploads and downloads under ASGI without Django's
request stack.

Django under ASGI spools a whole request body to a temporary file before a view runs, and
serves a streaming body one chunk at a time through its handler; for large objects both cost
a large share of the store's own speed. Here both directions are relays on the event loop:
an upload's body goes, as it arrives, into presigned PUTs of the store (one, or the parts of
a multipart upload, the next part streaming while the store commits the last), and a
download's bytes go from the store's socket to the client's as they come: moved by the
kernel (splice) when the web server offers the ASGI zero copy send (bml_site.zero_copy_http,
the appliance's uvicorn protocol), else block by block on the event loop. No thread hop, no
part held in memory, and presigned requests are not hashed on the way (a minio client signs
every plain-HTTP payload with SHA-256, which costs more than the copy).

Authentication, CSRF, the project scoping and the role rules are the same code the API uses
(DRF authenticators, selectors, services), run once per request in a thread.

Routes (anything else goes to Django):
    GET|HEAD|PUT /api/v1/buckets/<bucket>/objects/<key>
    GET|HEAD     /storage/<bucket>/download/<key>     (console link; login redirect)
Downloads answer a single byte range (`Range: bytes=...`) with 206, so interrupted
downloads resume and media seek; other range forms get the whole object, as HTTP allows.
"""

import asyncio
import io
import json
import logging
import re
import socket
import ssl
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
from bml_site.zero_copy_http import ZERO_COPY_SEND

logger = logging.getLogger(__name__)

API_ROUTE = re.compile(r"^/api/v1/buckets/(?P<bucket>[a-z0-9.\-]+)/objects/(?P<key>.+)$")
CONSOLE_ROUTE = re.compile(r"^/storage/(?P<bucket>[a-z0-9.\-]+)/download/(?P<key>.+)$")


def match(scope) -> tuple[str, dict] | None:
    """('api'|'console', {bucket, key}) when this request belongs to the lean path."""
    if scope["type"] != "http":
        return None
    method, path = scope["method"], scope["path"]
    if method in ("GET", "HEAD", "PUT") and (m := API_ROUTE.match(path)):
        return "api", m.groupdict()
    if method in ("GET", "HEAD") and (m := CONSOLE_ROUTE.match(path)):
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
    """One HTTP/1.1 exchange with the store over a bare protocol. The response's blocks are
    handed on as the event loop receives them (no stream buffer, no re-slicing), with flow
    control both ways: a slow client pauses reading from the store instead of filling memory,
    and a slow store pauses the writer of a request body (`wait_writable`)."""

    HIGH, LOW = 8 * 1024 * 1024, 2 * 1024 * 1024

    def __init__(self):
        self.head = bytearray()
        self.headers_done = asyncio.get_running_loop().create_future()
        # Nobody waits for an answer of an exchange given up (a client gone mid-upload).
        self.headers_done.add_done_callback(lambda f: f.cancelled() or f.exception())
        self.blocks: asyncio.Queue = asyncio.Queue()
        self.buffered = 0
        self.paused = False
        self.writable = asyncio.Event()
        self.writable.set()
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

    def pause_writing(self):
        self.writable.clear()

    def resume_writing(self):
        self.writable.set()

    def connection_lost(self, exc):
        if not self.headers_done.done():
            self.headers_done.set_exception(exc or ConnectionError("store closed the connection"))
        self.blocks.put_nowait(None)
        self.writable.set()  # a writer waiting for room finds the connection gone

    async def next_block(self) -> bytes | None:
        block = await self.blocks.get()
        if block is not None:
            self.buffered -= len(block)
            if self.paused and self.buffered < self.LOW:
                self.paused = False
                self.transport.resume_reading()
        return block

    async def response(self) -> tuple[int, dict]:
        """(status, headers) once the store has answered; lower-case header names."""
        try:
            head = await asyncio.wait_for(self.headers_done, 60)
        except (TimeoutError, OSError) as exc:
            self.transport.close()
            raise StorageUnavailable(type(exc).__name__) from exc
        return _parse_head(head)

    async def send_body(self, send, length: int):
        """Hand `length` bytes of the body on to an ASGI client, block by block."""
        while length > 0:
            block = await self.next_block()
            if block is None:
                raise ConnectionError("the store closed the connection mid-object")
            length -= len(block)
            await send({"type": "http.response.body", "body": block, "more_body": True})
        await send({"type": "http.response.body", "body": b""})

    def close(self):
        self.transport.close()

    async def rest(self) -> bytes:
        """The remaining body (small: an error document), read until the store closes."""
        blocks = []
        while (block := await self.next_block()) is not None:
            blocks.append(block)
        return b"".join(blocks)


def _parse_head(head: bytes) -> tuple[int, dict]:
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines:
        if ":" in line:
            name, value = line.split(":", 1)
            headers[name.strip().lower()] = value.strip()
    return int(status_line.split()[1]), headers


def _request_head(parts, method: str, headers) -> bytes:
    target = parts.path + ("?" + parts.query if parts.query else "")
    lines = [f"{method} {target} HTTP/1.1", f"Host: {parts.netloc}", "Connection: close"]
    lines += [f"{name}: {value}" for name, value in headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


class _SplicedUpstream:
    """A download from a plain-HTTP store on a bare socket whose body the web server moves
    to the client itself (the ASGI zero copy send, bml_site.zero_copy_http): the bytes never
    enter this process."""

    def __init__(self, sock: socket.socket):
        self.sock = sock
        self.early = b""  # body bytes that came with the head

    async def response(self) -> tuple[int, dict]:
        loop = asyncio.get_running_loop()
        head = b""
        try:
            async with asyncio.timeout(60):
                while (end := head.find(b"\r\n\r\n")) < 0:
                    block = await loop.sock_recv(self.sock, 65536)
                    if not block:
                        raise ConnectionError("store closed the connection")
                    head += block
        except (TimeoutError, OSError) as exc:
            raise StorageUnavailable(type(exc).__name__) from exc
        head, self.early = head[:end], head[end + 4 :]
        return _parse_head(head)

    async def send_body(self, send, length: int):
        if self.early:
            await send({"type": "http.response.body", "body": self.early, "more_body": True})
        await send({"type": ZERO_COPY_SEND, "file": self.sock, "count": length - len(self.early)})

    def close(self):
        self.sock.close()


async def _open_spliced_upstream(url: str, method: str, headers=()) -> _SplicedUpstream:
    parts = urlsplit(url)
    loop = asyncio.get_running_loop()
    sock = None
    try:
        async with asyncio.timeout(5.0):
            (family, kind, proto, _, address), *_ = await loop.getaddrinfo(
                parts.hostname, parts.port or 80, type=socket.SOCK_STREAM
            )
            sock = socket.socket(family, kind, proto)
            sock.setblocking(False)
            await loop.sock_connect(sock, address)
            await loop.sock_sendall(sock, _request_head(parts, method, headers))
    except (TimeoutError, OSError) as exc:
        if sock is not None:
            sock.close()
        raise StorageUnavailable(type(exc).__name__) from exc
    return _SplicedUpstream(sock)


async def _open_upstream(url: str, method: str = "GET", headers=()) -> _UpstreamResponse:
    """Connect to a presigned URL of the store on the event loop itself (one connection per
    exchange) and send the request head; bytes then move socket to socket with no thread hop
    and no HTTP-library layer."""
    parts = urlsplit(url)
    secure = parts.scheme == "https"  # an external S3/BOS endpoint may be TLS
    loop = asyncio.get_running_loop()
    try:
        _, protocol = await asyncio.wait_for(
            loop.create_connection(
                _UpstreamResponse,
                parts.hostname,
                parts.port or (443 if secure else 80),
                ssl=ssl.create_default_context() if secure else None,
            ),
            5.0,
        )
    except (TimeoutError, OSError) as exc:
        raise StorageUnavailable(type(exc).__name__) from exc
    protocol.transport.write(_request_head(parts, method, headers))
    return protocol


# One range, the only form S3 serves: "bytes=first-[last]" or "bytes=-suffix".
SINGLE_RANGE = re.compile(r"^bytes=(\d+-\d*|-\d+)$")
PASSED_ON = ("content-type", "content-length", "content-range", "etag", "last-modified")


async def _download(bucket, key, send, scope=None):
    method = scope["method"] if scope else "GET"
    wanted = dict(scope.get("headers") or []).get(b"range", b"").decode() if scope else ""
    url = await sync_to_async(services.presigned_read_url, thread_sensitive=False)(
        bucket, key, method
    )
    asked = [("Range", wanted)] if SINGLE_RANGE.match(wanted) else []
    spliced = ZERO_COPY_SEND in (scope or {}).get("extensions", {}) and url.startswith("http:")
    upstream = await (_open_spliced_upstream if spliced else _open_upstream)(url, method, asked)
    try:
        status, headers = await upstream.response()
        if status == 404:
            raise ObjectNotFound(key)
        if status == 416:  # the range lies beyond the object: say how long it is
            size = headers.get("content-range", "").rpartition("/")[2] or "*"
            await _send_json(
                send,
                416,
                {"Range": f"Outside the object ({size} bytes)."},
                [(b"content-range", f"bytes */{size}".encode())],
            )
            return
        if status not in (200, 206) or "content-length" not in headers:
            raise StorageUnavailable(f"store answered {status}")
        remaining = 0 if method == "HEAD" else int(headers["content-length"])
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    *((n.encode(), headers[n].encode()) for n in PASSED_ON if n in headers),
                    (b"accept-ranges", b"bytes"),
                    (
                        b"content-disposition",
                        f"attachment; filename*=UTF-8''{quote(services.basename(key))}".encode(),
                    ),
                ],
            }
        )
        try:
            await upstream.send_body(send, remaining)
        except OSError as exc:  # the store went away or stalled mid-object
            # Nothing more can be said once the body has begun: the response is left
            # unfinished, so the server cuts the connection and the client sees a short body
            # (never a wrong one), and the log gets one line instead of a traceback.
            logger.warning("download of %s cut short: %s", key, exc)
    finally:
        upstream.close()


class ClientGone(Exception):
    """The uploader disconnected or its body ended short of its Content-Length."""


class _Body:
    """The request body as ASGI delivers it, cut at part boundaries without copying more than
    the one message that straddles a boundary."""

    def __init__(self, receive):
        self.receive = receive
        self.pending = b""

    async def take(self, limit: int) -> bytes:
        """Up to `limit` bytes (at least one)."""
        while not self.pending:
            message = await self.receive()
            if message["type"] == "http.disconnect":
                raise ClientGone("client went away mid-upload")
            self.pending = message.get("body", b"")
            if not self.pending and not message.get("more_body"):
                raise ClientGone("the body ended before its Content-Length")
        if len(self.pending) <= limit:
            chunk, self.pending = self.pending, b""
        else:
            chunk, self.pending = self.pending[:limit], self.pending[limit:]
        return chunk


async def _stored_part(upstream: _UpstreamResponse) -> str:
    """Wait for the store's answer to one PUT; its ETag, or a clear error."""
    try:
        status, headers = await upstream.response()
        if status != 200:
            detail = re.search(rb"<Code>([^<]+)</Code>", await upstream.rest())
            code = detail.group(1).decode() if detail else str(status)
            if code in ("NoSuchBucket", "NoSuchUpload"):
                raise ObjectNotFound(code)
            raise StorageUnavailable(f"the store refused the upload: {code}")
        return headers.get("etag", "").strip('"')
    finally:
        upstream.transport.close()


async def _relay_upload(plan, receive) -> dict:
    """Send the body to the store part by part as it arrives. While the store commits a part
    (a pause of tens of milliseconds), the next part is already streaming into a second
    connection; nothing is buffered beyond the sockets' own windows."""
    presign = sync_to_async(services.presigned_write_url, thread_sensitive=False)
    body = _Body(receive)
    in_flight: list[asyncio.Future] = []
    etags: list[str] = []
    try:
        for number, size in plan.parts():
            headers = [("Content-Length", size)]
            if number is None:
                headers.append(("Content-Type", plan.content_type))
            upstream = await _open_upstream(await presign(plan, number), "PUT", headers)
            remaining = size
            while remaining:
                chunk = await body.take(remaining)
                if upstream.transport.is_closing():
                    break  # the store answered early (an error); its answer says why
                upstream.transport.write(chunk)
                remaining -= len(chunk)
                if not upstream.writable.is_set():
                    await upstream.writable.wait()
            in_flight.append(asyncio.ensure_future(_stored_part(upstream)))
            while len(in_flight) > 1 or (in_flight and in_flight[0].done()):
                etags.append(await in_flight.pop(0))
        for part in in_flight:
            etags.append(await part)
        in_flight.clear()
        return await sync_to_async(services.finish_upload, thread_sensitive=False)(plan, etags)
    except BaseException:
        for part in in_flight:
            part.cancel()
        await sync_to_async(services.abort_upload, thread_sensitive=False)(plan)
        raise


async def _upload(user, bucket, key, scope, receive, send):
    headers = dict(scope.get("headers") or [])
    length = headers.get(b"content-length", b"")
    if not length.isdigit():  # bytes: ASCII digits only
        await _send_json(send, 411, {"Content-Length": "Uploads must state their length."})
        return
    length = length.decode()
    content_type = headers.get(b"x-object-content-type", b"").decode() or None
    try:
        plan = await sync_to_async(services.begin_upload, thread_sensitive=False)(
            user, bucket, key, int(length), content_type
        )
        result = await _relay_upload(plan, receive)
    except ClientGone:
        return  # nobody is listening; the store has dropped what it had
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
            await _download(bucket, params["key"], send, scope)
    except Exception as exc:  # noqa: BLE001
        status, body = _error_response(exc)
        await _send_json(send, status, body)
