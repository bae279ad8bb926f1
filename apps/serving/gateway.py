"""The request path of prediction services, outside Django's request stack (DESIGN.md:
"serving overhead <= 1 ms"):

    POST /v1/endpoints/<endpoint>/invocations?interface=predict&action=predict
    POST /v2/models/<endpoint>/infer                 (Open Inference Protocol v2)
    POST /v2/models/<endpoint>/versions/<n>/infer    (one version, bypassing the split)
    GET  /v2/models/<endpoint>/ready

The access key is taken from `X-BML-Access-Key`, `Authorization: Bearer <key>` or the query
parameter `access_key`, so the spec's client works with only its URL changed. Traffic is
split across versions by their proportions with smooth weighted round robin (nginx's
upstream algorithm: 3:7 gives exactly 3 of every 10, interleaved), and across a version's
replicas round robin; a request whose replica refuses the connection or drops it before
any byte of an answer goes to the version's next replica (prediction is idempotent; an
answer cut short is a 502, never sent twice), and a version's replicas are all tried before
a 503, so killing a replica loses no request.

The routing table (which services, keys, versions and ready replica ports) is read from the
database at most once a second in a thread of its own, never per request; the quality
figures are counted in memory and added to QualityBucket rows once a second. With the table
come the replicas' secrets (read from their files once per process, see replicas.py), sent
as `X-BML-Replica-Key` on every forwarded request: a replica answers nobody else.
"""

import asyncio
import hmac
import json
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import parse_qs

from django.conf import settings

from bml_site.numbers import as_id

logger = logging.getLogger(__name__)

REFRESH_S = 1.0
UNKNOWN_REFRESH_S = 0.25  # an unknown endpoint re-reads the table at most this often
FLUSH_S = 1.0
DOWN_S = 1.0  # a replica that refused a connection is skipped this long
MAX_IDLE_PER_REPLICA = 64
PREFIX_V1, PREFIX_V2 = "/v1/endpoints/", "/v2/models/"


def client_query(raw: bytes) -> dict:
    """The query of a prediction call. The spec's client appends `?interface=...` to the
    ENDPOINT_URL it is given, so an address that already carries `?access_key=K` arrives as
    `access_key=K?interface=predict&action=predict`: a second "?" separates parameters too
    (no access key or parameter value of ours holds one)."""
    return parse_qs(raw.decode("latin-1").replace("?", "&"))


class UpstreamGone(Exception):
    """The replica refused or dropped the connection before any byte of an answer: try
    another (prediction is idempotent)."""


class UpstreamBroken(Exception):
    """The replica's answer head was cut short: not retried (a 502)."""


@dataclass(eq=False)
class Upstream:
    """One ready replica, with its idle keep-alive connections."""

    port: int
    key: str = ""
    idle: list = field(default_factory=list)
    down_until: float = 0.0
    head: str = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.head = "Host: replica\r\nContent-Type: application/json\r\n" + (
            f"X-BML-Replica-Key: {self.key}\r\n" if self.key else ""
        )

    def drop_idle(self) -> None:
        for _, writer in self.idle:
            writer.close()
        self.idle.clear()

    async def exchange(self, method: str, path: str, body: bytes) -> tuple[int, bytes]:
        """One request over HTTP/1.1 keep-alive to our own model_serve (which always sends
        Content-Length): a few lines here cost less per request than a general client.

        UpstreamGone when no byte of an answer came (refused, or reset or closed before the
        head), or the body was cut after a whole head (the prediction had been made): the
        request may go to another replica, a prediction being idempotent.
        UpstreamBroken when the head itself was cut short: not retried (a request that
        crashes its replica must not crash the next one too)."""
        request = (
            f"{method} {path} HTTP/1.1\r\n{self.head}Content-Length: {len(body)}\r\n\r\n"
        ).encode() + body
        pooled = bool(self.idle)
        if pooled:
            reader, writer = self.idle.pop()
            try:
                return await self._send(reader, writer, request)
            except UpstreamGone:  # the replica had closed this idle connection: once, fresh
                self.drop_idle()  # its siblings are as old or older
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        except OSError as exc:
            raise UpstreamGone(str(exc)) from exc
        return await self._send(reader, writer, request)

    async def _send(self, reader, writer, request: bytes) -> tuple[int, bytes]:
        try:
            writer.write(request)
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except asyncio.IncompleteReadError as exc:
                if exc.partial:
                    raise UpstreamBroken("the replica closed the connection mid-answer") from exc
                raise UpstreamGone("closed before answering") from exc
            except OSError as exc:  # reset: the head (one write of model_serve's) never came
                raise UpstreamGone(str(exc)) from exc
            status, length, close = _parse_head(head)
            try:
                payload = await reader.readexactly(length)
            except (OSError, asyncio.IncompleteReadError) as exc:
                # model_serve writes its head once the prediction is made, then the body: a
                # replica gone between the two (kill -9) had answered, so the request did
                # not kill it, and another replica may answer it again.
                raise UpstreamGone("the replica went away after its answer's head") from exc
        except BaseException:  # failed, or cancelled (timeout): the connection's state is unknown
            writer.close()
            raise
        if close or len(self.idle) >= MAX_IDLE_PER_REPLICA:
            writer.close()
        else:
            self.idle.append((reader, writer))
        return status, payload


def _parse_head(head: bytes) -> tuple[int, int, bool]:
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    length, close = 0, False
    for line in lines[1:]:
        name, _, value = line.partition(":")
        name = name.strip().lower()
        if name == "content-length":
            length = int(value)
        elif name == "connection" and value.strip().lower() == "close":
            close = True
    return status, length, close


@dataclass(eq=False)
class VersionRoute:
    number: int
    weight: int
    upstreams: list
    current: int = 0  # smooth weighted round robin state
    next_replica: int = 0

    def live(self, now: float) -> list:
        return [u for u in self.upstreams if u.down_until <= now]

    def attempts(self, now: float) -> list:
        """Every replica once, round robin: the next one first, those that refused a
        connection lately last (rather than none: they may be back). The turn is taken once
        per request, since concurrent requests move it while this one waits."""
        count = len(self.upstreams)
        if not count:
            return []
        start = self.next_replica
        self.next_replica += 1
        turn = [self.upstreams[(start + i) % count] for i in range(count)]
        return sorted(turn, key=lambda u: u.down_until > now)  # stable: the turn kept


@dataclass(eq=False)
class Route:
    service_id: int
    endpoint: str
    access_key: str
    running: bool
    versions: list

    def pick(self, now: float, pinned: int | None = None) -> list:
        """Versions to try, the chosen one first (the others only if it has no replica)."""
        if pinned is not None:
            return [v for v in self.versions if v.number == pinned]
        candidates = [v for v in self.versions if v.weight > 0 and v.live(now)]
        if not candidates:
            return [v for v in self.versions if v.live(now)]
        total = 0
        best = None
        for version in candidates:
            version.current += version.weight
            total += version.weight
            if best is None or version.current > best.current:
                best = version
        best.current -= total
        return [best, *(v for v in self.versions if v is not best)]


_KEYS: dict[tuple, str] = {}  # (replica id, pid, port) -> the replica's secret


def load_table() -> list[dict]:
    """The routing table as plain data (runs in the gateway's database thread)."""
    from django.db import close_old_connections

    from apps.serving.models import Desired, Replica, ReplicaStatus, Service, ServiceVersion
    from apps.serving.replicas import read_key

    close_old_connections()
    services = {
        s["pk"]: {**s, "versions": {}}
        for s in Service.objects.values("pk", "endpoint", "access_key", "desired")
    }
    running = [pk for pk, s in services.items() if s["desired"] == Desired.RUNNING]
    for v in ServiceVersion.objects.filter(service_id__in=running).values(
        "pk", "service_id", "number", "proportion"
    ):
        services[v["service_id"]]["versions"][v["pk"]] = {**v, "ports": []}
    ready = Replica.objects.filter(
        version__service_id__in=running,
        status=ReplicaStatus.RUNNING,
        port__isnull=False,
        host=settings.HOST_NAME,
    ).values_list("version__service_id", "version_id", "port", "pk", "pid")
    keys = {}
    for service_id, version_id, port, replica_id, pid in ready:
        # A restart writes a new key, and brings a new pid (and port): read once per process.
        process = (replica_id, pid, port)
        key = keys[process] = _KEYS.get(process) or read_key(replica_id)
        services[service_id]["versions"][version_id]["ports"].append((port, key))
    _KEYS.clear()
    _KEYS.update(keys)
    return list(services.values())


def write_quality(batch: dict) -> None:
    """Add a second's counts to the minute buckets (runs in the gateway's database thread)."""
    from django.db import IntegrityError, close_old_connections, transaction
    from django.db.models import F

    from apps.serving.models import QualityBucket

    close_old_connections()
    names = ("requests", "bytes_in", "bytes_out", "handle_ms")
    names += ("status_2xx", "status_3xx", "status_4xx", "status_5xx")
    for (service_id, version, minute), counts in batch.items():
        start = datetime.fromtimestamp(minute, UTC)
        key = {"service_id": service_id, "version_number": version, "start": start}
        increments = {n: F(n) + c for n, c in zip(names, counts, strict=True)}
        try:
            with transaction.atomic():
                if not QualityBucket.objects.filter(**key).update(**increments):
                    QualityBucket.objects.create(**key, **dict(zip(names, counts, strict=True)))
        except IntegrityError:  # the service was deleted meanwhile: its figures go with it
            continue


class Gateway:
    def __init__(self):
        self.routes: dict[str, Route] = {}
        self.upstreams: dict[tuple, Upstream] = {}
        self.loaded_at = 0.0
        self.refreshing: asyncio.Future | None = None
        self.db = ThreadPoolExecutor(max_workers=1, thread_name_prefix="gateway-db")
        self.pending: dict[tuple, list] = {}
        self.flusher: asyncio.Task | None = None

    # ---- routing table -----------------------------------------------------------------

    async def refresh(self) -> None:
        """Read the table once for every request waiting on it. The reading task installs
        the table before it is done: a request that finds it done finds the new table too
        (a future's done callback would run a loop turn later: a request could see the read
        finished and the old table, and answer 404 for a service just created)."""
        if self.refreshing is None:
            self.refreshing = asyncio.ensure_future(self._reload())
        await asyncio.shield(self.refreshing)

    async def _reload(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            table = await loop.run_in_executor(self.db, load_table)
        except Exception as exc:  # the previous table stays in use
            logger.error("gateway: reading the routing table failed: %r", exc)
            table = None
        self.refreshing = None
        self.loaded_at = time.monotonic()
        if table is not None:
            self._install(table)

    def _install(self, table: list[dict]) -> None:
        old_routes, routes, seen = self.routes, {}, set()
        for service in table:
            previous = old_routes.get(service["endpoint"])
            states = {v.number: v for v in previous.versions} if previous else {}
            versions = []
            for v in sorted(service["versions"].values(), key=lambda v: v["number"]):
                ups = [self.upstreams.setdefault(p, Upstream(*p)) for p in sorted(v["ports"])]
                seen.update(v["ports"])
                route = VersionRoute(v["number"], v["proportion"], ups)
                if v["number"] in states:
                    route.current = states[v["number"]].current
                versions.append(route)
            routes[service["endpoint"]] = Route(
                service["pk"],
                service["endpoint"],
                service["access_key"],
                service["desired"] == "running",
                versions,
            )
        for gone in set(self.upstreams) - seen:  # (port, key): a new process is a new upstream
            self.upstreams.pop(gone).drop_idle()
        self.routes = routes

    async def route_for(self, endpoint: str) -> Route | None:
        age = time.monotonic() - self.loaded_at
        route = self.routes.get(endpoint)
        # Unknown, or no replica ready (yet): read the table now rather than refuse.
        stale = route is None or not any(v.upstreams for v in route.versions)
        if stale and age > UNKNOWN_REFRESH_S:
            await self.refresh()
            return self.routes.get(endpoint)
        if age > REFRESH_S and self.refreshing is None:
            asyncio.ensure_future(self.refresh())
        return route

    # ---- quality -----------------------------------------------------------------------

    def record(self, route: Route, version: int, status: int, size_in: int, size_out: int, ms):
        key = (route.service_id, version, int(time.time()) // 60 * 60)
        counts = self.pending.get(key)
        if counts is None:
            counts = self.pending[key] = [0, 0, 0, 0.0, 0, 0, 0, 0]
        counts[0] += 1
        counts[1] += size_in
        counts[2] += size_out
        counts[3] += ms
        klass = status // 100
        if 2 <= klass <= 5:
            counts[2 + klass] += 1
        if self.flusher is None or self.flusher.done():
            self.flusher = asyncio.ensure_future(self.flush_loop())

    async def flush_loop(self) -> None:
        loop = asyncio.get_running_loop()
        while self.pending:
            await asyncio.sleep(FLUSH_S)
            batch, self.pending = self.pending, {}
            try:
                await loop.run_in_executor(self.db, write_quality, batch)
            except Exception:  # the database is busy or gone: the figures of this second are lost
                logger.exception("gateway: writing quality figures failed")

    # ---- requests ----------------------------------------------------------------------

    @staticmethod
    def matches(path: str) -> bool:
        return path.startswith(PREFIX_V1) or path.startswith(PREFIX_V2)

    async def __call__(self, scope, receive, send) -> None:
        started = time.perf_counter()
        parsed = self.parse_path(scope["path"])
        if parsed is None:
            return await respond(send, 404, {"error": f"no such endpoint: {scope['path']}"})
        endpoint, upstream_path, pinned, action = parsed
        route = await self.route_for(endpoint)
        if route is None:
            return await respond(send, 404, {"error": f"no prediction service '{endpoint}'"})
        version_number, status, size_in, answer, retry_after = 0, 500, 0, b"", None
        try:
            query = client_query(scope.get("query_string", b""))
            self.authorize(route, scope["headers"], query)
            if action == "ready":
                ready = any(v.live(time.monotonic()) for v in route.versions)
                status, answer = (200 if ready else 503), b"{}"
                return await respond_raw(send, status, answer)
            for name in ("interface", "action"):
                if query.get(name, ["predict"])[0] != "predict":
                    raise Refusal(400, f"{name} must be 'predict'")
            if scope["method"] != "POST":
                raise Refusal(405, "use POST")
            body = await read_body(scope, receive)
            size_in = len(body)
            version_number, status, answer = await self.forward(route, upstream_path, body, pinned)
        except Refusal as refusal:
            status, answer = refusal.status, dumps({"error": refusal.message})
            retry_after = refusal.retry_after
        except TimeoutError:
            status = 504
            answer = dumps({"error": f"no answer within {settings.SERVING_TIMEOUT_S:g} s"})
        except Exception as exc:  # a replica answered something that is not HTTP, or a bug
            logger.exception("gateway: %s failed", scope["path"])
            status, answer = 502, dumps({"error": f"bad answer from the replica: {exc}"})
        extra = [(b"x-bml-version", str(version_number).encode())] if version_number else []
        if retry_after:
            extra.append((b"retry-after", str(retry_after).encode()))
        await respond_raw(send, status, answer, extra)
        elapsed_ms = (time.perf_counter() - started) * 1000
        self.record(route, version_number, status, size_in, len(answer), elapsed_ms)

    def parse_path(self, path: str):
        """-> (endpoint, path at the replica, pinned version or None, action) or None."""
        if path.startswith(PREFIX_V1):
            endpoint, _, rest = path[len(PREFIX_V1) :].partition("/")
            return (endpoint, "/predict", None, "predict") if rest == "invocations" else None
        parts = path[len(PREFIX_V2) :].split("/")
        if len(parts) == 2 and parts[1] in ("infer", "ready"):
            return parts[0], path, None, parts[1]
        if len(parts) == 4 and parts[1] == "versions" and parts[3] == "infer":
            if (number := as_id(parts[2])) is not None:
                return parts[0], f"{PREFIX_V2}{parts[0]}/infer", number, "infer"
        return None

    @staticmethod
    def authorize(route: Route, headers, query) -> None:
        given = query.get("access_key", [""])[0]
        for name, value in headers:
            if name == b"x-bml-access-key":
                given = value.decode("latin-1")
            elif name == b"authorization" and value[:7].lower() == b"bearer ":
                given = value[7:].decode("latin-1").strip()
        if not given:
            raise Refusal(401, "an access key is required (X-BML-Access-Key or ?access_key=)")
        if not hmac.compare_digest(given.encode(), route.access_key.encode()):
            raise Refusal(401, "wrong access key")
        if not route.running:
            raise Refusal(503, f"the service '{route.endpoint}' is stopped")

    async def forward(self, route: Route, path: str, body: bytes, pinned) -> tuple:
        now = time.monotonic()
        versions = route.pick(now, pinned)
        if not versions and pinned is not None:
            raise Refusal(404, f"no version {pinned} in this service")
        if not versions:  # deploying, or every replica restarting
            raise Refusal(503, NOT_READY, retry_after=RETRY_AFTER_S)
        async with asyncio.timeout(settings.SERVING_TIMEOUT_S):
            for version in versions:
                for upstream in version.attempts(now):
                    try:
                        status, answer = await upstream.exchange("POST", path, body)
                    except UpstreamGone:
                        upstream.down_until = time.monotonic() + DOWN_S
                        upstream.drop_idle()
                        continue
                    except UpstreamBroken as exc:
                        raise Refusal(502, f"{exc}; the request was not retried") from exc
                    upstream.down_until = 0.0
                    return version.number, status, answer
        raise Refusal(503, NOT_READY, retry_after=RETRY_AFTER_S)


NOT_READY = "no replica of this service is ready yet (deploying or restarting); try again shortly"
RETRY_AFTER_S = 2


class Refusal(Exception):
    def __init__(self, status: int, message: str, retry_after: int | None = None):
        super().__init__(message)
        self.status, self.message, self.retry_after = status, message, retry_after


def dumps(value) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


async def read_body(scope, receive) -> bytes:
    limit = settings.SERVING_MAX_BODY_BYTES
    too_big = Refusal(413, f"the body is over {limit // (1024 * 1024)} MB")
    for name, value in scope["headers"]:
        if name == b"content-length" and value.isdigit() and int(value) > limit:
            raise too_big
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise Refusal(400, "the client went away")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise too_big
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


async def respond(send, status: int, body: dict) -> None:
    await respond_raw(send, status, dumps(body))


async def respond_raw(send, status: int, body: bytes, extra=()) -> None:
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        *extra,
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


gateway = Gateway()
