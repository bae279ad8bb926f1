"""One replica of an online prediction service: loads a model once and serves it over HTTP/1.1.
No Django import.

    python -m workers.runners.model_serve --type T --path P [--fields JSON] --port N
        [--host 127.0.0.1] [--max-body-mb 32] [--max-batch-size B --max-wait-ms W]

The appliance runs N of these per model version and its gateway forwards requests to them.
A replica imports only what its model type needs: the loader's framework, without the packages
frameworks take only in case they are installed (model_loaders_ml.imports_without: no pandas,
pyarrow or torch for scikit-learn), and uvicorn without websockets (benchmarks/serving.py
--memory-only measures each type; a scikit-learn replica holds well under 200 MB).
A load failure prints the error to stderr and exits 1. Once the server accepts requests it
prints ONE line `ready <port>` to stdout (with --port 0 the port the OS chose); whatever the
frameworks print while loading goes to stderr. SIGTERM (or SIGINT): stop accepting, finish the
requests in flight, exit 0.

With BML_REPLICA_KEY in its environment (the appliance always gives one; never on the
command line, which /proc shows to every user) every request must carry that secret in
`X-BML-Replica-Key`, or is answered 403: the port is on loopback, where any process of the
host could otherwise call another project's model past the gateway's access key. Only the
bare probes /v2/health/live and /v2/health/ready (an empty {}: no more than a connect() to
the port tells) are answered without it. The variable is taken out of the environment before
the model loads (its code and children do not inherit it). Without it the server answers
anyone (a model served by hand, the tests).

HTTP (JSON bodies, every error body is {"error": "<message>"}, never a traceback):
- POST /predict {"instances": [...]} -> 200 {"result": [...]} (one result per instance);
  400 malformed JSON (or nested past the parser's depth limit), "instances" missing or not a
  non-empty list, or the instances do not fit the model (model_loaders.BadInput: NaN and
  Infinity included); 413 a body over --max-body-mb; 500 anything else.
- GET /healthz -> 200 {"status": "ready", "info": <predictor info>, "requests": n,
  "predict_calls": n, "instances": n, "max_batch_size": b, "max_wait_ms": w}.
- Open Inference Protocol v2 (minimal, tabular numeric models): GET /v2/health/live and
  /v2/health/ready -> 200 {}; POST /v2/models/<name>/infer {"id"?, "inputs": [{"name",
  "shape", "datatype", "data"}]} -> {"model_name": <name>, "id"?, "outputs": [{"name":
  "output-0", "shape", "datatype", "data"}]}. The first input's data (flat or nested) is
  reshaped to its shape; its rows are the instances. Classifiers give their labels.

predict() runs in ONE worker thread (some predictors are not thread-safe); a model whose
first calls take well under a millisecond is then called in the event loop instead (the
hand-off to the thread would cost more than the prediction). With
--max-batch-size > 1 concurrent requests are batched: their instances are queued and
predicted together in one predict() call (up to max-batch-size instances, waiting at most
--max-wait-ms for more after the first), each request getting its own slice. If a batch
fails, its requests are predicted one by one so that a bad request fails alone.
"""

from __future__ import annotations

import argparse
import asyncio
import hmac
import json
import os
import signal
import socket
import statistics
import sys
import threading
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

from workers.runners.model_loaders import (
    FINITE_NUMBERS,
    BadInput,
    ModelLoadError,
    error_text,
    load,
    validate_instances,
)

INLINE_PROBE_CALLS = 32
INLINE_BELOW_S = 0.001


class HTTPError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


class Engine:
    """The predictor, its worker thread, the optional batcher and the counters."""

    def __init__(self, predictor, max_batch_size: int = 1, max_wait_ms: float = 0.0):
        self.predictor = predictor
        self.max_batch_size = max(1, int(max_batch_size))
        self.max_wait = max(0.0, float(max_wait_ms)) / 1000
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="predict")
        self.counts = {"requests": 0, "predict_calls": 0, "instances": 0}
        self.lock = threading.Lock()
        self.queue: asyncio.Queue | None = None
        self.carry: tuple | None = None
        self.task: asyncio.Task | None = None
        self.timings: list[float] = []
        self.inline = False

    def start(self) -> None:
        if self.max_batch_size > 1:
            self.queue = asyncio.Queue()
            self.task = asyncio.get_running_loop().create_task(self.batch_loop())

    def close(self) -> None:
        if self.task is not None:
            self.task.cancel()
        self.executor.shutdown(wait=True)

    # ---- in the worker thread -------------------------------------------------------------

    def call_predict(self, instances: list) -> list:
        with self.lock:
            self.counts["predict_calls"] += 1
        result = self.predictor.predict(instances)
        if not isinstance(result, list) or len(result) != len(instances):
            got = len(result) if isinstance(result, list) else type(result).__name__
            raise RuntimeError(f"the model gave {got} results for {len(instances)} instances")
        return result

    def predict_items(self, items: list) -> list:
        """[instances, ...] -> [(result list | None, exception | None), ...]"""
        if len(items) == 1:
            try:
                return [(self.call_predict(items[0]), None)]
            except Exception as exc:
                return [(None, exc)]
        joined = [instance for instances in items for instance in instances]
        try:
            results = self.call_predict(joined)
        except Exception:
            # Validate each request (no predict call), then predict the good ones together;
            # if that fails too, one by one.
            outcomes: list = [None] * len(items)
            good = []
            for i, instances in enumerate(items):
                try:
                    validate_instances(self.predictor, instances)
                    good.append(i)
                except Exception as exc:
                    outcomes[i] = (None, exc)
            if good and len(good) < len(items):
                for i, outcome in zip(
                    good, self.predict_items([items[i] for i in good]), strict=True
                ):
                    outcomes[i] = outcome
            else:
                for i in good:
                    outcomes[i] = self.predict_items([items[i]])[0]
            return outcomes
        out, start = [], 0
        for instances in items:
            out.append((results[start : start + len(instances)], None))
            start += len(instances)
        return out

    # ---- in the event loop ----------------------------------------------------------------

    def learn_speed(self, seconds: float) -> None:
        """After the first calls, a model whose predict takes well under a millisecond (a
        linear model, a small tree ensemble) is called in the event loop itself: handing it
        to the worker thread and back would cost more than the prediction (one wake-up of
        the loop per request). Still one predict at a time, so thread safety holds."""
        if len(self.timings) < INLINE_PROBE_CALLS:
            self.timings.append(seconds)
            if len(self.timings) == INLINE_PROBE_CALLS:
                self.inline = statistics.median(self.timings) < INLINE_BELOW_S

    def timed_predict(self, instances: Any) -> tuple[list, float]:
        """The prediction and how long the model took (without the hand-over to the
        worker thread, which depends on how busy the host is, not on the model)."""
        started = time.perf_counter()
        result = self.call_predict(instances)
        return result, time.perf_counter() - started

    async def predict(self, instances: Any) -> list:
        if not isinstance(instances, list) or not instances:
            raise HTTPError(400, '"instances" must be a non-empty list')
        with self.lock:
            self.counts["requests"] += 1
            self.counts["instances"] += len(instances)
        loop = asyncio.get_running_loop()
        if self.queue is None:
            if self.inline:
                return self.call_predict(instances)
            result, seconds = await loop.run_in_executor(
                self.executor, self.timed_predict, instances
            )
            self.learn_speed(seconds)
            return result
        future = loop.create_future()
        self.queue.put_nowait((instances, future))
        return await future

    async def batch_loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = [self.carry if self.carry is not None else await self.queue.get()]
            self.carry = None
            size = len(batch[0][0])
            deadline = loop.time() + self.max_wait
            while size < self.max_batch_size:
                try:
                    item = self.queue.get_nowait()
                except asyncio.QueueEmpty:
                    timeout = deadline - loop.time()
                    if timeout <= 0:
                        break
                    try:
                        item = await asyncio.wait_for(self.queue.get(), timeout)
                    except TimeoutError:
                        break
                if size + len(item[0]) > self.max_batch_size:
                    self.carry = item  # it starts the next batch
                    break
                batch.append(item)
                size += len(item[0])
            batch = [(instances, future) for instances, future in batch if not future.done()]
            if not batch:
                continue
            try:
                outcomes = await loop.run_in_executor(
                    self.executor, self.predict_items, [instances for instances, _ in batch]
                )
            except Exception as exc:  # the executor itself failed
                outcomes = [(None, exc)] * len(batch)
            for (_, future), (result, exc) in zip(batch, outcomes, strict=True):
                if future.done():
                    continue
                if exc is None:
                    future.set_result(result)
                else:
                    future.set_exception(exc)

    def health(self) -> dict:
        return {
            "status": "ready",
            "info": self.predictor.info,
            **self.counts,
            "max_batch_size": self.max_batch_size,
            "max_wait_ms": self.max_wait * 1000,
            "predict_in_event_loop": self.inline,
        }


# ---- Open Inference Protocol v2 -----------------------------------------------------------

OIP_DATATYPES = {"b": "BOOL", "i": "INT64", "u": "UINT64", "f": "FP64"}


def oip_instances(body: Any) -> list:
    import numpy as np

    inputs = body.get("inputs") if isinstance(body, dict) else None
    if not isinstance(inputs, list) or not inputs or not isinstance(inputs[0], dict):
        raise HTTPError(400, '"inputs" must be a non-empty list of tensors')
    tensor = inputs[0]
    shape, data = tensor.get("shape"), tensor.get("data")
    if (
        not isinstance(shape, list)
        or not shape
        or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape)
    ):
        raise HTTPError(400, "the input's shape must be a list of non-negative integers")
    if data is None:
        raise HTTPError(400, "the input has no data")
    if str(tensor.get("datatype", "FP32")).upper() == "BYTES":
        raise HTTPError(400, "BYTES inputs are not supported; this endpoint takes numbers")
    try:
        array = np.asarray(data, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise HTTPError(400, "the input's data must be numbers") from exc
    if array.dtype.kind == "f" and not np.isfinite(array).all():
        raise HTTPError(400, f"inputs[0].data: values must be {FINITE_NUMBERS}")
    try:
        array = array.reshape(shape)
    except ValueError as exc:
        raise HTTPError(400, f"{array.size} values do not fit the shape {shape}") from exc
    if array.ndim == 1:  # one row per instance would be ambiguous: [n] is n scalars
        array = array.reshape(shape[0], 1)
    return array.tolist()


def oip_output(results: list) -> dict:
    import numpy as np

    values = [(r.get("label", r.get("class")) if isinstance(r, dict) else r) for r in results]
    try:
        array = np.asarray(values)
        if array.dtype == object:
            raise ValueError("ragged")
    except ValueError:
        return {"name": "output-0", "shape": [len(values)], "datatype": "BYTES",
                "data": [json.dumps(v) for v in values]}  # fmt: skip
    datatype = OIP_DATATYPES.get(array.dtype.kind, "BYTES")
    data = array.reshape(-1).tolist()
    if datatype == "BYTES":
        data = [str(v) for v in data]
    return {"name": "output-0", "shape": list(array.shape), "datatype": datatype, "data": data}


# ---- the ASGI app -------------------------------------------------------------------------


def replica_environment(home) -> dict:
    """The environment every replica starts with (apps/serving/replicas.py adds its key and
    the lease's devices and thread counts): no appliance settings or secrets, its own home
    and temporary folder. Benchmarks and tests start bare replicas with the same."""
    return {
        "PATH": f"{os.path.dirname(sys.executable)}:/usr/bin:/bin",
        "HOME": str(home),
        "TMPDIR": str(home),
        "LANG": "C.UTF-8",
        "KERAS_BACKEND": "torch",
        "PYTHONUNBUFFERED": "1",
    }


def dumps(value: Any) -> bytes:
    return json.dumps(value, allow_nan=False, separators=(",", ":")).encode()


KEY_HEADER = b"x-bml-replica-key"
OPEN_PATHS = frozenset(("/v2/health/live", "/v2/health/ready"))


class App:
    def __init__(self, engine: Engine, max_body: int, key: bytes = b""):
        self.engine = engine
        self.max_body = max_body
        self.key = key

    def admitted(self, scope) -> bool:
        if not self.key or scope["path"] in OPEN_PATHS:
            return True
        for name, value in scope["headers"]:
            if name == KEY_HEADER:
                return hmac.compare_digest(value, self.key)
        return False

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    self.engine.start()
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        close = False
        try:
            if not self.admitted(scope):
                raise HTTPError(403, "this port answers only the appliance's gateway")
            status, body = await self.handle(scope, receive)
        except HTTPError as exc:
            status, body = exc.status, {"error": str(exc)}
            close = exc.status == 413
        except BadInput as exc:
            status, body = 400, {"error": error_text(exc)}
        except Exception as exc:
            traceback.print_exc(file=sys.stderr)
            status, body = 500, {"error": error_text(exc)}
        try:
            payload = dumps(body)
        except (TypeError, ValueError) as exc:
            status = 500
            payload = dumps({"error": f"the model's output is not valid JSON: {exc}"})
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(payload)).encode()),
        ]
        if close:
            headers.append((b"connection", b"close"))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": payload})

    async def handle(self, scope, receive) -> tuple[int, Any]:
        method, path = scope["method"], scope["path"]
        if path == "/predict":
            if method != "POST":
                raise HTTPError(405, "use POST")
            body = await self.read_json(scope, receive)
            if not isinstance(body, dict) or "instances" not in body:
                raise HTTPError(400, 'the body must be a JSON object {"instances": [...]}')
            result = await self.engine.predict(body["instances"])
            if self.engine.predictor.info.get("result_as_text"):
                # The spec's transfer learning answer: {"result": "[[logits], ...]"}, the
                # per-image scores printed as one text (its client prints res.text).
                result = json.dumps(result)
            return 200, {"result": result}
        if path == "/healthz" or path in ("/v2/health/live", "/v2/health/ready"):
            if method not in ("GET", "HEAD"):
                raise HTTPError(405, "use GET")
            return 200, (self.engine.health() if path == "/healthz" else {})
        if path.startswith("/v2/models/") and path.endswith("/infer"):
            if method != "POST":
                raise HTTPError(405, "use POST")
            name = path[len("/v2/models/") : -len("/infer")].split("/versions/")[0]
            body = await self.read_json(scope, receive)
            results = await self.engine.predict(oip_instances(body))
            answer = {"model_name": name, "outputs": [oip_output(results)]}
            if isinstance(body.get("id"), str):
                answer["id"] = body["id"]
            return 200, answer
        raise HTTPError(404, f"no such endpoint: {method} {path}")

    async def read_json(self, scope, receive) -> Any:
        for name, value in scope["headers"]:
            if name == b"content-length":
                try:
                    length = int(value)
                except ValueError as exc:
                    raise HTTPError(400, "bad Content-Length") from exc
                if length > self.max_body:
                    raise HTTPError(413, f"the body is over {self.max_body} bytes")
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise HTTPError(400, "the client went away")
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body:
                raise HTTPError(413, f"the body is over {self.max_body} bytes")
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        try:
            return json.loads(b"".join(chunks))
        except RecursionError as exc:  # the parser recurses per level: no walk of the body
            raise HTTPError(400, json_depth_refusal()) from exc
        except (ValueError, UnicodeDecodeError) as exc:
            raise HTTPError(400, f"the body is not valid JSON: {exc}") from exc


def json_depth_refusal() -> str:
    """Python's JSON parser recurses once per level and stops at the interpreter's recursion
    limit (less the frames already on the stack): bml_site.api_body says the same."""
    return (
        "JSON nesting depth limit exceeded: arrays and objects may nest fewer than "
        f"{sys.getrecursionlimit()} levels deep"
    )


# ---- the process --------------------------------------------------------------------------


def serve(engine: Engine, host: str, port: int, max_body: int, key: bytes = b"") -> int:
    import uvicorn

    class Server(uvicorn.Server):
        @contextmanager
        def capture_signals(self):  # ours below: uvicorn re-raises SIGTERM after shutdown
            yield

    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # accepted sockets inherit it
    sock.listen(2048)
    sock.set_inheritable(True)
    bound = sock.getsockname()[1]
    config = uvicorn.Config(
        App(engine, max_body, key),
        loop="uvloop",
        http="httptools",
        ws="none",  # no websocket endpoints: not even importing websockets
        lifespan="on",
        access_log=False,
        log_level="warning",
        timeout_graceful_shutdown=60,
        timeout_keep_alive=75,  # more than the gateway's idle keep-alive
    )
    server = Server(config)

    async def main() -> None:
        loop = asyncio.get_running_loop()

        def stop() -> None:
            server.should_exit = True

        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop)
        serving = loop.create_task(server.serve(sockets=[sock]))
        while not server.started and not serving.done():
            await asyncio.sleep(0.005)
        if server.started:
            print(f"ready {bound}", flush=True)
        await serving
        engine.close()

    import uvloop  # uvicorn applies its loop="uvloop" only in Server.run(), not here

    uvloop.run(main())
    return 0 if server.started else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m workers.runners.model_serve")
    parser.add_argument("--name", default="", help="who this is (for the supervisor)")
    parser.add_argument("--type", required=True)
    parser.add_argument("--path", required=True)
    parser.add_argument("--fields", default="{}")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--max-body-mb", type=float, default=32)
    parser.add_argument("--max-batch-size", type=int, default=1)
    parser.add_argument("--max-wait-ms", type=float, default=5.0)
    args = parser.parse_args(argv)
    key = os.environ.pop("BML_REPLICA_KEY", "").strip().encode()  # before the model's code runs

    # Frameworks print to fd 1 (C++ included): stdout holds only the ready line.
    stdout_fd = os.dup(1)
    sys.stdout.flush()
    os.dup2(2, 1)
    try:
        fields = json.loads(args.fields)
        if not isinstance(fields, dict):
            raise ModelLoadError("--fields must be a JSON object")
        predictor = load(args.type, args.path, fields)
    except Exception as exc:
        traceback.print_exc(file=sys.stderr)
        print(f"error: {error_text(exc)}", file=sys.stderr, flush=True)
        return 1
    finally:
        sys.stdout.flush()
        os.dup2(stdout_fd, 1)
        os.close(stdout_fd)
    engine = Engine(predictor, args.max_batch_size, args.max_wait_ms)
    return serve(engine, args.host, args.port, int(args.max_body_mb * 1024 * 1024), key)


if __name__ == "__main__":
    sys.exit(main())
