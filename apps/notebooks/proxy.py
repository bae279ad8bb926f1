"""The way into notebook instances: `/notebooks/<id>/...` on the appliance's own address and
port, HTTP and websockets, forwarded to the instance's Jupyter server on loopback. No
notebook port is open to the network, and Jupyter's token never reaches a browser.

Who may pass is decided from the Django session cookie (the console's login): a member of
the instance's project with at least the developer role (a notebook runs code, which a
viewer may not); anyone else gets a 404, as for any other object of another project; no
session sends the browser to the login page. The decision is cached for a moment per
session and instance, and the database is read in a thread of its own, so the many small
requests JupyterLab makes cost no Django request each.

Django's own cookies are taken off every forwarded request: the Jupyter server (whose
configuration its users can edit) must never see a member's console session.
"""

import asyncio
import functools
import json
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from html import escape
from urllib.parse import quote, urlsplit

import httpx
from django.conf import settings
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from bml_site.numbers import as_id

logger = logging.getLogger(__name__)

PREFIX = "/notebooks/"
DECISION_TTL_S = 2.0
HOP_BY_HOP = {
    b"connection",
    b"keep-alive",
    b"proxy-authenticate",
    b"proxy-authorization",
    b"te",
    b"trailer",
    b"trailers",
    b"transfer-encoding",
    b"upgrade",
}
UNSAFE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}


@dataclass(frozen=True)
class Decision:
    kind: str  # "pass", "login", "missing", "forbidden", "not_running"
    port: int = 0
    token: str = ""
    terminals: bool = False
    name: str = ""
    status: str = ""
    reason: str = ""


def decide(session_key: str, pk: int) -> Decision:
    """Who is asking, and may they reach this instance? (runs in the proxy's db thread)"""
    from django.contrib.auth import HASH_SESSION_KEY, SESSION_KEY, get_user_model
    from django.contrib.sessions.backends.db import SessionStore
    from django.db import close_old_connections
    from django.utils.crypto import constant_time_compare

    from apps.notebooks.models import Notebook
    from apps.notebooks.servers import terminal_permitted
    from apps.projects.models import Membership, Role

    close_old_connections()
    session = SessionStore(session_key) if session_key else None
    user_id = session.get(SESSION_KEY) if session is not None else None
    user = get_user_model().objects.filter(pk=user_id, is_active=True).first() if user_id else None
    if user is None or not constant_time_compare(
        session.get(HASH_SESSION_KEY, ""), user.get_session_auth_hash()
    ):
        return Decision("login")
    notebook = Notebook.objects.select_related("project").filter(pk=pk).first()
    membership = (
        Membership.objects.filter(project_id=notebook.project_id, user=user).first()
        if notebook
        else None
    )
    if membership is None:
        return Decision("missing")
    if membership.role == Role.VIEWER:
        return Decision("forbidden", name=notebook.name)
    if not notebook.is_open:
        return Decision(
            "not_running", name=notebook.name, status=notebook.status, reason=notebook.reason
        )
    return Decision(
        "pass",
        port=notebook.port,
        token=notebook.token,
        terminals=terminal_permitted(notebook.project.notebook_terminal, membership.role),
        name=notebook.name,
    )


class NotebookProxy:
    def __init__(self):
        self.db = ThreadPoolExecutor(max_workers=2, thread_name_prefix="notebook-proxy-db")
        self.decisions: dict[tuple[str, int], tuple[float, Decision]] = {}
        self.client: httpx.AsyncClient | None = None

    @staticmethod
    def parse(path: str) -> tuple[int, str] | None:
        """-> (instance id, the rest of the path) for /notebooks/<id>/..., else None."""
        if not path.startswith(PREFIX):
            return None
        ident, _, rest = path[len(PREFIX) :].partition("/")
        number = as_id(ident)
        return (number, rest) if number is not None else None

    def matches(self, path: str) -> bool:
        return self.parse(path) is not None

    async def decision(self, session_key: str, pk: int, fresh: bool = False) -> Decision:
        key = (session_key, pk)
        cached = self.decisions.get(key)
        now = time.monotonic()
        if cached and not fresh and now - cached[0] < DECISION_TTL_S:
            return cached[1]
        loop = asyncio.get_running_loop()
        result = await loop.run_in_executor(self.db, decide, session_key, pk)
        if len(self.decisions) > 10000:
            self.decisions.clear()
        if result.kind == "pass":  # a refusal is asked again: the instance may be up now
            self.decisions[key] = (time.monotonic(), result)
        else:
            self.decisions.pop(key, None)
        return result

    async def __call__(self, scope, receive, send) -> None:
        pk, rest = self.parse(scope["path"])
        headers = scope.get("headers") or []
        decision = await self.decision(session_cookie(headers), pk)
        refusal = self.refusal(scope, decision, rest)
        if refusal is not None:
            return await self.refuse(scope, receive, send, *refusal)
        try:
            if scope["type"] == "websocket":
                await self.forward_websocket(scope, receive, send, decision, pk)
            else:
                await self.forward_http(scope, receive, send, decision, pk)
        except (httpx.ConnectError, ConnectionRefusedError):
            # Stopped or restarted since the decision was cached: ask again and say why.
            fresh = await self.decision(session_cookie(headers), pk, fresh=True)
            refusal = self.refusal(scope, fresh, rest)
            if refusal is None:
                refusal = (502, "The notebook server is restarting; try again in a moment.")
            await self.refuse(scope, receive, send, *refusal)

    def refusal(self, scope, decision: Decision, rest: str) -> tuple | None:
        """(status, message[, location]) when the request may not pass, else None."""
        if decision.kind == "login":
            target = scope["path"] + (
                "?" + scope["query_string"].decode("latin-1") if scope.get("query_string") else ""
            )
            return 302, "Log in first.", f"{login_url()}?next={quote(target)}"
        if decision.kind == "missing":
            return 404, "No such notebook instance."
        if decision.kind == "forbidden":
            return 403, "Viewers cannot open Jupyter: running code needs the developer role."
        if decision.kind == "not_running":
            return 503, f"The instance '{decision.name}' is {decision.status}." + (
                f" ({decision.reason})" if decision.reason else ""
            )
        if not same_origin(scope):
            return 403, "Cross-site requests to notebooks are refused."
        if is_terminal(rest) and not decision.terminals:
            return 403, "Terminals are not enabled for your role in this project."
        return None

    async def refuse(self, scope, receive, send, status: int, message: str, location=None):
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 4000 + status % 1000})
            return
        headers = [(b"cache-control", b"no-store")]
        if location:
            headers.append((b"location", location.encode("latin-1")))
        wants_json = "/api/" in scope["path"]
        if wants_json:
            body = json.dumps({"message": message}).encode()
            headers.append((b"content-type", b"application/json"))
        else:
            body = refusal_page(status, message, scope["path"]).encode()
            headers.append((b"content-type", b"text/html; charset=utf-8"))
        headers.append((b"content-length", str(len(body)).encode()))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    # -- HTTP ----------------------------------------------------------------------------

    def http_client(self) -> httpx.AsyncClient:
        if self.client is None:
            self.client = httpx.AsyncClient(
                timeout=httpx.Timeout(connect=5.0, read=None, write=None, pool=None),
                limits=httpx.Limits(max_connections=None, max_keepalive_connections=64),
            )
        return self.client

    async def forward_http(self, scope, receive, send, decision: Decision, pk: int) -> None:
        target = f"http://127.0.0.1:{decision.port}{upstream_path(scope)}"
        method = scope["method"]
        client = self.http_client()
        request = client.build_request(
            method,
            target,
            headers=upstream_headers(scope, decision.token),
            content=None if method in ("GET", "HEAD", "OPTIONS") else request_body(receive),
        )
        response = await client.send(request, stream=True)
        try:
            headers = [
                (name.lower(), value)
                for name, value in response.headers.raw
                if name.lower() not in HOP_BY_HOP
            ]
            await send(
                {"type": "http.response.start", "status": response.status_code, "headers": headers}
            )
            async for chunk in response.aiter_raw():
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b""})
        finally:
            await response.aclose()

    # -- websockets ----------------------------------------------------------------------

    async def forward_websocket(self, scope, receive, send, decision: Decision, pk: int) -> None:
        if (await receive())["type"] != "websocket.connect":
            return
        target = f"ws://127.0.0.1:{decision.port}{upstream_path(scope)}"
        try:
            upstream = await ws_connect(
                target,
                additional_headers=[("Authorization", f"token {decision.token}")],
                subprotocols=scope.get("subprotocols") or None,
                max_size=None,
                ping_interval=None,  # the browser's side keeps the connection alive
                compression=None,
                open_timeout=10,
            )
        except (OSError, InvalidHandshake, InvalidStatus, TimeoutError) as exc:
            logger.warning("notebook %s: websocket to %s refused: %s", pk, target, exc)
            await send({"type": "websocket.close", "code": 1011})
            return
        async with upstream:
            await send({"type": "websocket.accept", "subprotocol": upstream.subprotocol})
            await pump_websockets(receive, send, upstream)


async def pump_websockets(receive, send, upstream) -> None:
    async def from_browser():
        while True:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                return
            if message.get("bytes") is not None:
                await upstream.send(message["bytes"])
            elif message.get("text") is not None:
                await upstream.send(message["text"])

    async def from_jupyter():
        try:
            async for data in upstream:
                key = "bytes" if isinstance(data, bytes) else "text"
                await send({"type": "websocket.send", key: data})
        except ConnectionClosed:
            pass
        try:
            await send({"type": "websocket.close", "code": 1000})
        except Exception:  # the browser is gone already
            pass

    tasks = [asyncio.ensure_future(from_browser()), asyncio.ensure_future(from_jupyter())]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


# -- helpers -----------------------------------------------------------------------------


def upstream_path(scope) -> str:
    """The path as the browser sent it (still percent-encoded), with its query."""
    raw = scope.get("raw_path") or quote(scope["path"]).encode()
    path = raw.decode("latin-1")
    if scope.get("query_string"):
        path += "?" + scope["query_string"].decode("latin-1")
    return path


@functools.cache
def login_url() -> str:
    from django.shortcuts import resolve_url

    return resolve_url(settings.LOGIN_URL)


def session_cookie(headers) -> str:
    name = settings.SESSION_COOKIE_NAME
    for key, value in headers:
        if key == b"cookie":
            for part in value.decode("latin-1").split(";"):
                cookie, _, content = part.strip().partition("=")
                if cookie == name:
                    return content
    return ""


def upstream_headers(scope, token: str) -> list[tuple[str, str]]:
    private = {settings.SESSION_COOKIE_NAME, settings.CSRF_COOKIE_NAME}
    forwarded = []
    for key, value in scope.get("headers") or []:
        if key in HOP_BY_HOP or key == b"authorization":
            continue
        text = value.decode("latin-1")
        if key == b"cookie":
            kept = [
                part.strip()
                for part in text.split(";")
                if part.strip() and part.strip().partition("=")[0] not in private
            ]
            if not kept:
                continue
            text = "; ".join(kept)
        forwarded.append((key.decode("latin-1"), text))
    client = scope.get("client") or ("", 0)
    forwarded.append(("Authorization", f"token {token}"))
    forwarded.append(("X-Forwarded-For", client[0] or ""))
    forwarded.append(("X-Forwarded-Proto", scope.get("scheme", "http")))
    return forwarded


async def request_body(receive):
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
        chunk = message.get("body", b"")
        if chunk:
            yield chunk
        if not message.get("more_body", False):
            return


def same_origin(scope) -> bool:
    """A request a browser sends from another site (with the member's cookies) is refused;
    reads are harmless, writes and websockets are not."""
    if scope["type"] == "http" and scope["method"] not in UNSAFE_METHODS:
        return True
    headers = dict(scope.get("headers") or [])
    origin = headers.get(b"origin")
    if origin is None:
        return headers.get(b"sec-fetch-site", b"same-origin") in (b"same-origin", b"none")
    host = headers.get(b"host", b"").decode("latin-1")
    return urlsplit(origin.decode("latin-1")).netloc == host


def is_terminal(rest: str) -> bool:
    return rest.startswith("api/terminals") or rest.startswith("terminals/")


def refusal_page(status: int, message: str, path: str) -> str:
    parsed = NotebookProxy.parse(path)
    console = f"/workarea/{parsed[0]}/" if parsed else "/workarea/"
    refresh = '<meta http-equiv="refresh" content="1">' if status == 503 else ""
    return (
        f"<!doctype html><html><head><meta charset='utf-8'>{refresh}<title>Notebook</title>"
        "<link rel='stylesheet' href='/static/bml/console.css'></head><body><main>"
        f"<h1>{status}</h1><p>{escape(message)}</p>"
        f"<p><a href='{console}'>Back to the instance in the console</a></p></main></body></html>"
    )


notebook_proxy = NotebookProxy()
