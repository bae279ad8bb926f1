"""Online prediction: requests/s and p50/p99 latency of a prediction service, through the
running appliance (client -> the web process's gateway -> one model_serve replica), beside
a bare server calling the same model, in the same run:

- a scikit-learn model (iris LogisticRegression, joblib; one row per request) and
- ResNet-18 (torchvision, random weights, TorchScript; one base64 JPEG per request, decoded,
  resized and ImageNet-normalised by the pytorch loader; top-5 classes back),

at 1 and 32 concurrent clients; for ResNet-18 at 32 clients also with adaptive batching on
(max_batch_size 16, max_wait_ms 5) beside off (max_batch_size 1); with --quick the images
are 112x112 and each case runs once for 1 s, otherwise 224x224 and the median of 3 rounds.

    .venv/bin/python benchmarks/serving.py [--quick] [--seconds S] [--rounds N] [--image-size N]
    .venv/bin/python benchmarks/serving.py --memory-only     # the replica memory alone (~1 min)
    .venv/bin/python benchmarks/serving.py --smoke [--memory-only]

--smoke (tests/benchmarks/test_smoke.py): every case once for 0.3 s with 32x32 images, the
replica memory of the two scikit-learn files and the custom predictor only; no goal judged.

Services are created the way the console does it (apps.serving.services.create_service, in
a Django script with the appliance's database) from models imported through the warehouse
API, and used through the spec's URL with the access key header.

The peer ("bare server") is about the least one can write to serve the model over HTTP: an
ASGI app under the same uvicorn (uvloop + httptools, no access log) that loads the model
with the same `workers.runners.model_loaders.load` and, per request, json.loads the body,
calls `predictor.predict(instances)` and answers json.dumps({"result": ...}): no batching,
no validation, no counters, no routing. For scikit-learn it calls predict inline in the event
loop (no thread hop: the fastest); for the torch model in one worker thread, as the replica
does, because inline calls from the event loop's thread were erratic on 2 cores (OpenMP's
workers of the main thread spin: whenever another process held a core a forward pass took
10-70x longer, 6 to 110 req/s across runs), which no one would choose. It runs with the
replica's own environment (read from /proc: OMP/MKL/OPENBLAS thread counts, hidden GPUs)
and CPU affinity, so the model computes with the same threads.

The load generator is a separate process: asyncio on uvloop, one raw HTTP/1.1 keep-alive
connection per client, closed loop (each client sends its next request when the answer is
in), a warm-up, then a timed window; latency is from writing the request to the last byte of
the answer. Its overhead is measured, not assumed: its own CPU per request in every run, and
its ceiling against a null server (a fixed answer from an asyncio protocol, no HTTP parser)
at 32 clients. The servers' CPU per request (web process = gateway, replica or bare server)
comes from their CPU times, less what each spends idle. On a 2-core machine the client, the
gateway and the replica share two cores, so throughput at 32 clients is bound by the CPU
all of them spend per request.

Replica memory per model type (after the throughput runs, with the appliance stopped; alone
with --memory-only): a small model of each type whose framework is installed (iris
LogisticRegression as .skops and as .joblib, an XGBoost Booster, a TorchScript MLP, a Paddle
linear layer, ONNX, Keras, PMML, a custom predictor.py; one iris row in) is served by a bare
replica (`python -m workers.runners.model_serve --port 0` with the environment the appliance
gives a replica on a 1-core CPU lease), one at a time: its VmRSS from /proc after loading and
after 50 predictions, its peak VmHWM, and which heavy libraries (torch, pandas, pyarrow,
scipy, ...) its /proc/<pid>/maps shows loaded. The full run also reads the VmRSS of the
appliance's own replicas (iris, ResNet-18: the Python process under the sandbox). RESULT
fields: replica_memory_mb and replica_peak_memory_mb {model: MB}, replica_libraries {model:
[...]}, replica_memory_goal, replica_memory_meets, appliance_replica_memory_mb; the full
run's "meets" includes replica_memory_meets.

Goals (the serving issue): throughput through the appliance >= 0.8 of the bare server's
(headline: the small model at 32 clients; ResNet-18 too), <= 1 ms added p50 for the small
model at 1 client, batching >= 2x the throughput of no batching at 32 clients with a p99 no
worse than 2x. Everything here runs on the CPU, where batching pays far less than on a GPU.
A scikit-learn replica (skops and joblib) holds <= 200 MB resident: a replica imports only
what its model type needs (issue 18).
"""

import argparse
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

BATCH_SIZE, BATCH_WAIT_MS = 16, 5.0
STARTED = time.monotonic()


def progress(message: str) -> None:
    print(f"[{time.monotonic() - STARTED:5.1f} s] {message}", file=sys.stderr, flush=True)


IRIS_ROW = [5.1, 3.5, 1.4, 0.2]


# ---- the peer: a bare server (`serving.py --bare-server TYPE PATH FIELDS`) ----------------


def bare_server(model_type: str, path: str, fields: str, mode: str) -> None:
    import asyncio
    import socket
    from concurrent.futures import ThreadPoolExecutor

    import uvicorn
    import uvloop

    from workers.runners.model_loaders import load

    predictor = load(model_type, path, json.loads(fields))
    worker = ThreadPoolExecutor(max_workers=1)

    async def predict(instances):
        if mode == "inline":
            return predictor.predict(instances)
        return await asyncio.get_running_loop().run_in_executor(
            worker, predictor.predict, instances
        )

    async def app(scope, receive, send):
        if scope["type"] != "http":
            return
        body, more = b"", True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        result = await predict(json.loads(body)["instances"])
        payload = json.dumps({"result": result}, separators=(",", ":")).encode()
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(payload)).encode()),
        ]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": payload})

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.listen(2048)
    config = uvicorn.Config(
        app, loop="uvloop", http="httptools", lifespan="off", access_log=False, log_level="warning"
    )
    server = uvicorn.Server(config)

    async def main():
        serving = asyncio.get_running_loop().create_task(server.serve(sockets=[sock]))
        while not server.started and not serving.done():
            await asyncio.sleep(0.005)
        print(f"ready {sock.getsockname()[1]}", flush=True)
        await serving

    # On uvloop, as `uvicorn --loop uvloop` runs an app (Server.serve() alone would not).
    uvloop.run(main())


# ---- the load generator's ceiling: a null server (`serving.py --null-server`) ------------


def null_server() -> None:
    import asyncio

    import uvloop

    answer = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"

    class Null(asyncio.Protocol):
        def connection_made(self, transport):
            self.transport, self.buffer = transport, b""

        def data_received(self, data):
            # Requests are one write each and never pipelined: a head and a body per answer.
            self.buffer += data
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self.buffer[:end].lower()
            start = head.find(b"content-length:")
            length = int(head[start + 15 :].split(b"\r\n", 1)[0]) if start >= 0 else 0
            if len(self.buffer) >= end + 4 + length:
                self.buffer = self.buffer[end + 4 + length :]
                self.transport.write(answer)

    async def main():
        server = await asyncio.get_running_loop().create_server(Null, "127.0.0.1", 0)
        print(f"ready {server.sockets[0].getsockname()[1]}", flush=True)
        await asyncio.Event().wait()

    uvloop.run(main())


# ---- the load generator (`serving.py --loadgen SPEC`) -------------------------------------


def loadgen(spec: dict) -> dict:
    """Closed loop: `concurrency` keep-alive connections, each sending the same request again
    as soon as the previous answer is complete. Counts the answers completed in the window
    [warmup, warmup + seconds]; waits for the stragglers so the server ends idle."""
    import asyncio

    import uvloop

    body = Path(spec["body"]).read_bytes()
    head = (
        f"POST {spec['path']} HTTP/1.1\r\nHost: 127.0.0.1:{spec['port']}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        + "".join(f"{k}: {v}\r\n" for k, v in spec.get("headers", {}).items())
        + "\r\n"
    ).encode()
    request = head + body
    latencies, errors, completed = [], [], [0]
    clock = time.perf_counter

    class Client(asyncio.Protocol):
        def __init__(self, run):
            self.run, self.done = run, asyncio.get_running_loop().create_future()

        def connection_made(self, transport):
            self.transport = transport
            self.send()

        def send(self):
            if clock() >= self.run["stop"]:
                self.transport.close()
                if not self.done.done():
                    self.done.set_result(None)
                return
            self.buffer, self.need, self.sent = bytearray(), 0, clock()
            self.transport.write(request)

        def data_received(self, data):
            self.buffer += data
            if not self.need:
                end = self.buffer.find(b"\r\n\r\n")
                if end < 0:
                    return
                lines = bytes(self.buffer[:end]).decode("latin-1").split("\r\n")
                self.status = int(lines[0].split(" ", 2)[1])
                length = 0
                for line in lines[1:]:
                    name, _, value = line.partition(":")
                    if name.strip().lower() == "content-length":
                        length = int(value)
                self.need = end + 4 + length
            if len(self.buffer) < self.need:
                return
            now = clock()
            completed[0] += 1
            if self.status != 200:
                errors.append(f"{self.status} {bytes(self.buffer[-300:])!r}")
            elif self.run["start"] <= now < self.run["stop"]:
                latencies.append(now - self.sent)
            self.send()

        def connection_lost(self, exc):
            if not self.done.done():
                if clock() < self.run["stop"]:
                    errors.append(f"connection lost: {exc}")
                self.done.set_result(None)

    async def main():
        loop = asyncio.get_running_loop()
        now = clock()
        run = {"start": now + spec["warmup"], "stop": now + spec["warmup"] + spec["seconds"]}
        usage = {}

        def sample(key):
            usage[key] = (clock(), resource.getrusage(resource.RUSAGE_SELF))

        loop.call_later(spec["warmup"], sample, "start")
        loop.call_later(spec["warmup"] + spec["seconds"], sample, "stop")
        clients = []
        for _ in range(spec["concurrency"]):
            _, client = await loop.create_connection(lambda: Client(run), "127.0.0.1", spec["port"])
            clients.append(client)
        await asyncio.wait_for(asyncio.gather(*(c.done for c in clients)), spec["seconds"] + 600)
        (t0, u0), (t1, u1) = usage["start"], usage["stop"]
        cpu = (u1.ru_utime + u1.ru_stime) - (u0.ru_utime + u0.ru_stime)
        return t1 - t0, cpu

    window, cpu = uvloop.run(main())
    latencies.sort()

    def pct(q):
        return latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000

    n = len(latencies)
    return {
        "requests": n,
        "completed": completed[0],
        "rps": n / window,
        "p50_ms": pct(0.50) if n else None,
        "p99_ms": pct(0.99) if n else None,
        "loadgen_cpu_us": cpu / n * 1e6 if n else None,
        "loadgen_cpu_share": cpu / window,
        "errors": errors[:3],
        "error_count": len(errors),
    }


# ---- replica memory per model type (`serving.py --memory-only`) --------------------------

MEMORY_GOAL_MB = 200  # a scikit-learn replica's resident memory, skops or joblib
MEMORY_REQUESTS = 50
# Packages whose shared objects in a replica's /proc/<pid>/maps show what it imported.
LIBRARIES = (
    "torch", "tensorflow", "jax", "paddle", "pandas", "pyarrow", "scipy", "sklearn", "xgboost",
    "onnxruntime", "PIL",
)  # fmt: skip
PMML_REGRESSION = """<?xml version="1.0" encoding="UTF-8"?>
<PMML xmlns="http://www.dmg.org/PMML-4_4" version="4.4">
  <Header/>
  <DataDictionary>
    <DataField name="sepal_length" optype="continuous" dataType="double"/>
    <DataField name="sepal_width" optype="continuous" dataType="double"/>
    <DataField name="petal_length" optype="continuous" dataType="double"/>
    <DataField name="petal_width" optype="continuous" dataType="double"/>
    <DataField name="y" optype="continuous" dataType="double"/>
  </DataDictionary>
  <RegressionModel functionName="regression">
    <MiningSchema>
      <MiningField name="sepal_length"/>
      <MiningField name="sepal_width"/>
      <MiningField name="petal_length"/>
      <MiningField name="petal_width"/>
      <MiningField name="y" usageType="target"/>
    </MiningSchema>
    <RegressionTable intercept="0.5">
      <NumericPredictor name="sepal_length" coefficient="0.1"/>
      <NumericPredictor name="sepal_width" coefficient="-0.2"/>
      <NumericPredictor name="petal_length" coefficient="0.3"/>
      <NumericPredictor name="petal_width" coefficient="0.4"/>
    </RegressionTable>
  </RegressionModel>
</PMML>
"""
CUSTOM_PREDICTOR = """
class Predictor:
    def load(self, model_dir):
        self.weights = [0.1, -0.2, 0.3, 0.4]

    def predict(self, instances):
        return [sum(w * x for w, x in zip(self.weights, row)) for row in instances]
"""


def memory_models(folder: Path, smoke: bool = False) -> dict:
    """Small models of each type, all taking an iris row: name -> (type, path, fields).
    A type whose framework is not installed is left out; smoke: scikit-learn and custom."""
    import numpy as np
    from sklearn.datasets import load_iris

    x, y = load_iris(return_X_y=True)
    folder.mkdir(parents=True, exist_ok=True)
    models = {}

    def sklearn_models():
        import joblib
        import skops.io
        from sklearn.linear_model import LogisticRegression

        model = LogisticRegression(max_iter=500).fit(x, y)
        skops.io.dump(model, folder / "iris.skops")
        joblib.dump(model, folder / "iris.joblib")
        models["sklearn"] = ("sklearn", folder / "iris.skops", {})
        models["sklearn-joblib"] = ("sklearn", folder / "iris.joblib", {})

    def xgboost_model():
        import xgboost

        params = {"objective": "multi:softprob", "num_class": 3, "max_depth": 3, "nthread": 1}
        booster = xgboost.train(params, xgboost.DMatrix(x, label=y), num_boost_round=20)
        booster.save_model(str(folder / "iris-xgb.json"))
        models["xgboost"] = ("xgboost", folder / "iris-xgb.json", {})

    def pytorch_model():
        import warnings

        import torch

        torch.manual_seed(0)
        mlp = torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.ReLU(), torch.nn.Linear(16, 3))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "torch.jit.trace is deprecated"
            torch.jit.trace(mlp.eval(), torch.zeros(1, 4)).save(str(folder / "iris-mlp.pt"))
        fields = {"input_shape": [4], "task": "classification"}
        models["pytorch"] = ("pytorch", folder / "iris-mlp.pt", fields)

    def paddle_model():
        import paddle

        paddle.seed(0)
        spec = [paddle.static.InputSpec(shape=[None, 4], dtype="float32", name="x")]
        paddle.jit.save(paddle.nn.Linear(4, 3), str(folder / "paddle" / "inference"), spec)
        models["paddle"] = ("paddle", folder / "paddle", {})

    def onnx_model():
        import onnx
        from onnx import TensorProto, helper, numpy_helper

        weights = np.random.default_rng(0).normal(size=(4, 3)).astype(np.float32)
        graph = helper.make_graph(
            [helper.make_node("MatMul", ["x", "W"], ["y"])],
            "linear",
            [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])],
            [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 3])],
            [numpy_helper.from_array(weights, "W")],
        )
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
        model.ir_version = 8
        onnx.save(model, str(folder / "iris-linear.onnx"))
        models["onnx"] = ("onnx", folder / "iris-linear.onnx", {})

    def keras_model():
        if "keras" not in sys.modules:
            os.environ["KERAS_BACKEND"] = "torch"  # as the replicas run it
        import keras

        keras.utils.set_random_seed(0)
        model = keras.Sequential(
            [keras.Input(shape=(4,)), keras.layers.Dense(16, activation="relu"),
             keras.layers.Dense(3)]
        )  # fmt: skip
        model.save(str(folder / "iris-dense.keras"))
        models["keras"] = ("keras", folder / "iris-dense.keras", {})

    def pmml_model():
        import sklearn_pmml_model  # noqa: F401  (only whether it is installed)

        (folder / "iris-regression.pmml").write_text(PMML_REGRESSION)
        models["pmml"] = ("pmml", folder / "iris-regression.pmml", {})

    def custom_model():
        (folder / "custom").mkdir(exist_ok=True)
        (folder / "custom" / "predictor.py").write_text(CUSTOM_PREDICTOR)
        models["custom"] = ("custom", folder / "custom", {})

    builders = (
        sklearn_models, xgboost_model, pytorch_model, paddle_model, onnx_model, keras_model,
        pmml_model, custom_model,
    )  # fmt: skip
    for build in (sklearn_models, custom_model) if smoke else builders:
        try:
            build()
        except ImportError as exc:
            progress(f"{build.__name__}: not installed ({exc}); left out")
    return models


def proc_memory(pid: int) -> dict:
    """VmRSS and VmHWM (the peak) in MB, and the LIBRARIES whose shared objects it maps."""
    status = Path(f"/proc/{pid}/status").read_text().splitlines()
    figures = {
        line.split(":")[0]: int(line.split()[1]) / 1024
        for line in status
        if line.startswith(("VmRSS:", "VmHWM:"))
    }
    mapped = set()
    try:
        maps = Path(f"/proc/{pid}/maps").read_text().splitlines()
    except PermissionError:  # a replica confined as another user: its status only
        maps = None
    for line in maps or ():
        parts = line.split(maxsplit=5)
        path = parts[5] if len(parts) == 6 else ""
        if "site-packages/" in path and (".so" in path or path.endswith(".pyd")):
            top = path.split("site-packages/", 1)[1].split("/", 1)[0]
            mapped.add(top.removesuffix(".libs").split("-")[0])
    return {
        "rss_mb": round(figures["VmRSS"], 1),
        "hwm_mb": round(figures["VmHWM"], 1),
        "libraries": None if maps is None else [n for n in LIBRARIES if n in mapped],
    }


def replica_memory(folder: Path, models: dict) -> dict:
    """Starts one bare replica per model (model_serve --port 0, the environment the appliance
    gives a replica on a 1-core CPU lease), one at a time; after it is ready and after
    MEMORY_REQUESTS predictions of one iris row, reads its memory from /proc; stops it."""
    import http.client

    from workers.runners.model_serve import replica_environment

    results = {}
    for name, (model_type, path, fields) in models.items():
        home = folder / f"home-{name}"
        home.mkdir(exist_ok=True)
        env = {
            **replica_environment(home),  # as a replica of a 1-core CPU lease has it
            "OMP_NUM_THREADS": "1",
            "MKL_NUM_THREADS": "1",
            "OPENBLAS_NUM_THREADS": "1",
            "CUDA_VISIBLE_DEVICES": "",
        }
        command = [sys.executable, "-m", "workers.runners.model_serve", "--type", model_type]
        command += ["--path", str(path), "--fields", json.dumps(fields), "--port", "0"]
        started = time.monotonic()
        with open(home / "stderr.log", "wb") as stderr:
            process = subprocess.Popen(
                command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=stderr, text=True
            )
        try:
            line = read_line(process, 300)
            if not line.startswith("ready "):
                log = (home / "stderr.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"the {name} replica did not start: {line!r}\n{log}")
            ready_s = time.monotonic() - started
            loaded = proc_memory(process.pid)
            connection = http.client.HTTPConnection("127.0.0.1", int(line.split()[1]), timeout=60)
            body = json.dumps({"instances": [IRIS_ROW]})
            for _ in range(MEMORY_REQUESTS):
                connection.request("POST", "/predict", body, {"Content-Type": "application/json"})
                response = connection.getresponse()
                answer = response.read()
                if response.status != 200:
                    raise RuntimeError(f"{name}: {response.status} {answer[:300]!r}")
            connection.close()
            served = proc_memory(process.pid)
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        results[name] = {
            "type": model_type,
            "loaded_mb": loaded["rss_mb"],
            "rss_mb": served["rss_mb"],
            "hwm_mb": served["hwm_mb"],
            "libraries": served["libraries"],
            "ready_s": round(ready_s, 2),
        }
        progress(f"replica memory {name}: {served['rss_mb']:.1f} MB ({served['libraries']})")
    return results


def memory_report(memory: dict) -> dict:
    """Prints the table; the RESULT line's fields."""
    print(
        f"\nReplica memory (bare model_serve, OMP_NUM_THREADS=1, one iris-row model per type; "
        f"MB; after loading, and after {MEMORY_REQUESTS} predictions: VmRSS and its peak "
        "VmHWM; the heavy libraries it mapped):"
    )
    header = (
        f"{'model':<15} {'type':<9} {'loaded':>7} {'served':>7} {'peak':>7} {'ready s':>8}"
        "  libraries"
    )
    print(header)
    print("-" * len(header))
    for name, m in memory.items():
        print(
            f"{name:<15} {m['type']:<9} {m['loaded_mb']:>7.1f} {m['rss_mb']:>7.1f} "
            f"{m['hwm_mb']:>7.1f} {m['ready_s']:>8.2f}  {', '.join(m['libraries']) or '-'}"
        )
    sklearn = [m["rss_mb"] for name, m in memory.items() if m["type"] == "sklearn"]
    meets = bool(sklearn) and max(sklearn) <= MEMORY_GOAL_MB
    print(
        f"scikit-learn replica: {max(sklearn, default=float('nan')):.1f} MB "
        f"(goal <= {MEMORY_GOAL_MB} MB, skops and joblib)"
    )
    return {
        "replica_memory_mb": {name: m["rss_mb"] for name, m in memory.items()},
        "replica_peak_memory_mb": {name: m["hwm_mb"] for name, m in memory.items()},
        "replica_libraries": {name: m["libraries"] for name, m in memory.items()},
        "replica_memory_goal": f"sklearn <= {MEMORY_GOAL_MB}",
        "replica_memory_meets": meets,
    }


def run_memory(smoke: bool = False) -> dict:
    work = Path(tempfile.mkdtemp(prefix="bml-bench-memory-"))
    try:
        models = memory_models(work, smoke)
        progress("memory: models built")
        return memory_report(replica_memory(work, models))
    finally:
        shutil.rmtree(work, ignore_errors=True)


def memory_only(smoke: bool = False) -> None:
    fields = run_memory(smoke)
    result = {
        "figure": "replica memory per model type (VmRSS MB after loading and 50 predictions)",
        "ours": fields["replica_memory_mb"].get("sklearn"),
        "peer": None,  # a goal in MB, no peer
        "ratio": None,
        "goal": f"<= {MEMORY_GOAL_MB}",
        "meets": None if smoke else fields["replica_memory_meets"],
        **fields,
        "smoke": smoke,
    }
    print("RESULT " + json.dumps(result))


# ---- the driver ---------------------------------------------------------------------------


def scripted_resnet18(path: Path) -> None:
    """A TorchScript ResNet-18 with seeded random weights (nothing downloaded)."""
    import warnings

    import torch
    import torchvision

    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "torch.jit.script is deprecated"
        scripted = torch.jit.script(torchvision.models.resnet18(weights=None).eval())
    scripted.save(str(path))


def photo_jpeg(image_size: int) -> bytes:
    """A smooth picture (gradients and a disc) as JPEG: it compresses as a photo, not noise."""
    import io

    import numpy as np
    from PIL import Image

    y, x = np.mgrid[0:image_size, 0:image_size] / image_size
    disc = ((x - 0.6) ** 2 + (y - 0.4) ** 2 < 0.08).astype(float)
    rgb = np.stack([x, y, 0.5 * (1 - x) + 0.5 * disc], axis=-1)
    jpeg = io.BytesIO()
    Image.fromarray((rgb * 255).astype("uint8")).save(jpeg, format="JPEG", quality=90)
    return jpeg.getvalue()


def resnet_body(image_size: int) -> str:
    """A prediction request of one base64 JPEG, as the console sends pictures."""
    import base64

    return json.dumps({"instances": [{"data": base64.b64encode(photo_jpeg(image_size)).decode()}]})


def build_models(folder: Path, image_size: int) -> dict:
    """Model files and request bodies: iris (joblib) and ResNet-18 (TorchScript)."""
    import joblib
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    joblib.dump(
        LogisticRegression(max_iter=500).fit(*load_iris(return_X_y=True)), folder / "iris.joblib"
    )
    scripted_resnet18(folder / "resnet18.pt")
    (folder / "iris.json").write_text(json.dumps({"instances": [IRIS_ROW]}))
    (folder / "resnet.json").write_text(resnet_body(image_size))
    return {
        "jpeg_bytes": len(photo_jpeg(image_size)),
        "body_bytes": (folder / "resnet.json").stat().st_size,
    }


CREATE_SERVICES = """
import json, sys, time
import django
django.setup()
from django.contrib.auth import get_user_model
from apps.projects.models import Project
from apps.serving.models import Replica, Service
from apps.serving.services import VersionConfig, create_service
from apps.warehouse.models import ModelVersion

wanted = json.loads(sys.argv[1])
user = get_user_model().objects.get(username="admin")
project = Project.objects.get(pk=wanted["project"])
services = {}
for spec in wanted["services"]:
    version = ModelVersion.objects.get(model_id=spec["model"], version=1)
    services[spec["name"]] = create_service(user, project, name=spec["name"], version=VersionConfig(
        number=1, model_version=version, max_batch_size=spec["max_batch_size"],
        max_wait_ms=spec["max_wait_ms"]))

def replica_pids():
    pids = {}
    for name, service in services.items():
        replica = Replica.objects.filter(version__service=service).exclude(pid=None).first()
        if replica is None:
            return None
        pids[name] = replica.pid
    return pids

deadline = time.monotonic() + 300
while (pids := replica_pids()) is None and time.monotonic() < deadline:
    time.sleep(0.1)
print(json.dumps({"pids": pids}), flush=True)
while time.monotonic() < deadline:
    statuses = {name: Service.objects.values_list("status", "reason").get(pk=s.pk)
                for name, s in services.items()}
    failed = {n: r for n, (st, r) in statuses.items() if st == "failed"}
    if failed:
        sys.exit(f"services failed: {failed}")
    if all(st == "running" for st, _ in statuses.values()):
        break
    time.sleep(0.1)
else:
    sys.exit(f"services not running after 300 s: {statuses}")
pids = {name: Replica.objects.get(version__service=s, status="running").pid
        for name, s in services.items()}  # a replica that restarted has a new pid
print(json.dumps({name: {"endpoint": s.endpoint, "access_key": s.access_key, "pid": pids[name],
                         "id": s.pk} for name, s in services.items()}), flush=True)
"""


class Children:
    """Processes this benchmark starts itself (bare servers, the null server)."""

    def __init__(self):
        self.processes = []

    def start(self, args: list, env=None, affinity=None, timeout=120) -> tuple:
        process = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), *args],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
            preexec_fn=(lambda: os.sched_setaffinity(0, affinity)) if affinity else None,
        )
        self.processes.append(process)
        return process, lambda: self._ready(process, timeout)

    @staticmethod
    def _ready(process, timeout) -> int:
        line = read_line(process, timeout)
        if not line.startswith("ready "):
            raise RuntimeError(f"{process.args[2:4]} did not start: {line!r}")
        return int(line.split()[1])

    def stop(self):
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def read_line(process, timeout: float) -> str:
    """The next stdout line of a child, or "" if none came within `timeout` seconds."""
    lines = []
    reader = threading.Thread(target=lambda: lines.append(process.stdout.readline()), daemon=True)
    reader.start()
    reader.join(timeout)
    return lines[0].strip() if lines else ""


def cpu_seconds(pids: dict) -> dict:
    import psutil

    seconds = {}
    for name, pid in pids.items():
        times = psutil.Process(pid).cpu_times()
        seconds[name] = times.user + times.system
    return seconds


IDLE_CPU: dict[int, float] = {}  # pid -> CPU seconds per second with no request


def measure_idle(pids, seconds: float) -> None:
    """What the servers spend with no request (the web process's table refresh, the
    scheduler's health checks): taken off their CPU per request below."""
    pids = {pid: pid for pid in pids}
    before, started = cpu_seconds(pids), time.monotonic()
    time.sleep(seconds)
    after, wall = cpu_seconds(pids), time.monotonic() - started
    IDLE_CPU.update({pid: (after[pid] - before[pid]) / wall for pid in pids})


def measure(port, path, body, concurrency, seconds, warmup, headers=None, server_pids=None):
    """One closed-loop run; server_pids {"web"|"model": pid} get their CPU per request
    (less their idle CPU)."""
    server_pids = server_pids or {}
    spec = {
        "port": port,
        "path": path,
        "body": str(body),
        "concurrency": concurrency,
        "seconds": seconds,
        "warmup": warmup,
        "headers": headers or {},
    }
    before, started = cpu_seconds(server_pids), time.monotonic()
    done = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--loadgen", json.dumps(spec)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=seconds + warmup + 600,
    )
    if done.returncode:
        raise RuntimeError(f"load generator failed: {done.stderr[-2000:]}")
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    if figures["error_count"] or not figures["requests"]:
        raise RuntimeError(f"{figures['error_count']} errors, e.g. {figures['errors']}")
    after, wall = cpu_seconds(server_pids), time.monotonic() - started
    figures["cpu_us"] = {
        name: (after[name] - before[name] - IDLE_CPU.get(pid, 0.0) * wall)
        / figures["completed"]
        * 1e6
        for name, pid in server_pids.items()
    }
    time.sleep(0.1)  # let OpenMP worker threads stop spinning before the next run
    return figures


def replica_environment(pid: int, home: Path) -> tuple[dict, set]:
    """The replica's environment (thread counts, hidden GPUs) and CPU affinity."""
    raw = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    env = dict(item.decode().split("=", 1) for item in raw if b"=" in item)
    env.pop("BML_REPLICA_KEY", None)  # the replica's secret is the gateway's alone
    env.update(HOME=str(home), TMPDIR=str(home))
    return env, os.sched_getaffinity(pid)


def replica_python(pid: int) -> int:
    """The replica's Python process: the replica's pid is its sandbox (bwrap, a few MB) when
    the sandbox is on, with the model_serve process below it."""
    import psutil

    root = psutil.Process(pid)
    for process in [root, *root.children(recursive=True)][::-1]:
        try:
            if "python" in process.name().lower() and any(
                "workers.runners.model_serve" in arg for arg in process.cmdline()
            ):
                return process.pid
        except psutil.Error:
            continue
    return pid


def web_pid(appliance) -> int:
    import psutil

    for child in psutil.Process(appliance.process.pid).children(recursive=True):
        if "bml_site.asgi:application" in child.cmdline():
            return child.pid
    raise RuntimeError("no web process under the launcher")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="short runs, 112x112 images")
    parser.add_argument("--seconds", type=float, help="measured seconds per sklearn run")
    parser.add_argument("--rounds", type=int, help="runs of each case (the median is kept)")
    parser.add_argument("--image-size", type=int, help="the images' and the model's size")
    parser.add_argument(
        "--memory-only", action="store_true", help="only the replica memory per model type"
    )
    parser.add_argument("--smoke", action="store_true", help="0.3 s per case: runs, no figure")
    args = parser.parse_args()
    if args.memory_only:
        memory_only(args.smoke)
        return
    short = args.quick or args.smoke
    image_size = args.image_size or (32 if args.smoke else 112 if args.quick else 224)
    seconds = args.seconds or (0.3 if args.smoke else 1.0 if args.quick else 3.0)
    small_warmup, big_warmup = (0.1, 0.1) if args.smoke else (0.3, 0.5) if short else (1.0, 1.5)
    big_seconds = seconds if short else seconds * 5 / 3
    rounds = args.rounds or (1 if short else 3)
    brief = 0.3 if args.smoke else 0.5 if args.quick else 2.0  # calibration and idle CPU
    load_before = os.getloadavg()[0]

    from bml_site.running import RunningAppliance

    work = Path(tempfile.mkdtemp(prefix="bml-bench-serving-"))
    appliance = RunningAppliance.for_benchmark("bench-admin-pass-1", work / "var")
    (work / "var").mkdir()
    started: list = []
    # The appliance starts (~20 s) while this process builds the models.
    starter = threading.Thread(
        target=lambda: started.append(_start(appliance)), daemon=True, name="appliance"
    )
    starter.start()
    children = Children()
    creator, finished, api, services = None, False, None, {}
    try:
        sizes = build_models(work, image_size)
        progress("models built")
        starter.join()
        progress("appliance started")
        if isinstance(started[0], BaseException):
            raise started[0]
        api = appliance.login()
        project = api.get("/api/v1/projects/").json()["results"][0]["id"]
        api.post("/api/v1/buckets/", json={"project": project, "name": "bench-serving"})
        models, files = {}, {}
        for name, file, model_type, fields in (
            ("iris", "iris.joblib", "sklearn", {}),
            (
                "resnet18",
                "resnet18.pt",
                "pytorch",
                {"input_shape": [3, image_size, image_size], "task": "classification"},
            ),
        ):
            api.put(
                f"/api/v1/buckets/bench-serving/objects/{file}", content=(work / file).read_bytes()
            )
            created = api.post(
                "/api/v1/models/",
                json={
                    "project": project,
                    "name": name,
                    "model_type": model_type,
                    "path": f"bos://bench-serving/{file}",
                    "fields": fields,
                },
            )
            assert created.status_code == 201, created.text
            models[name] = (created.json()["model"], model_type, fields)
            files[name] = file

        env = {k: v for k, v in os.environ.items() if not k.startswith(("BML_", "DJANGO_"))}
        env.update(BML_VAR_DIR=str(appliance.var), DJANGO_SETTINGS_MODULE="bml_site.settings")
        wanted = {
            "project": project,
            "services": [
                {"name": "iris", "model": models["iris"][0], "max_batch_size": 1, "max_wait_ms": 0},
                {
                    "name": "resnet",
                    "model": models["resnet18"][0],
                    "max_batch_size": 1,
                    "max_wait_ms": 0,
                },
                {
                    "name": "resnet-batched",
                    "model": models["resnet18"][0],
                    "max_batch_size": BATCH_SIZE,
                    "max_wait_ms": BATCH_WAIT_MS,
                },
            ],
        }
        progress("models imported")
        creator = subprocess.Popen(
            [sys.executable, "-c", CREATE_SERVICES, json.dumps(wanted)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            text=True,
        )
        first = read_line(creator, 320)
        if not first:
            raise RuntimeError(f"creating the services failed ({creator.wait()})")
        replica_pids = json.loads(first)["pids"]
        progress("replicas starting")

        # The bare servers start while the replicas load, with the replicas' environment.
        bare = {}
        for name, model in (("iris", "iris"), ("resnet", "resnet18")):
            (home := work / f"bare-{name}").mkdir()
            bare_env, affinity = replica_environment(replica_pids[name], home)
            _, model_type, fields = models[model]
            mode = "inline" if model_type == "sklearn" else "thread"
            process, ready = children.start(
                ["--bare-server", model_type, str(work / files[model]), json.dumps(fields), mode],
                env=bare_env,
                affinity=affinity,
            )
            bare[name] = (process, ready, bare_env.get("OMP_NUM_THREADS"), sorted(affinity))
        _, null_ready = children.start(["--null-server"])
        null_port = null_ready()
        bare = {
            name: (p, ready(), threads, cpus) for name, (p, ready, threads, cpus) in bare.items()
        }

        second = read_line(creator, 320)
        if creator.wait() or not second:
            raise RuntimeError("the services did not come up; see the launcher log")
        services = json.loads(second)
        progress("bare servers and services ready")
        web = web_pid(appliance)

        def through(name, concurrency, body, secs, warmup):
            service = services[name]
            return measure(
                appliance.port,
                f"/v1/endpoints/{service['endpoint']}/invocations?interface=predict&action=predict",
                body,
                concurrency,
                secs,
                warmup,
                headers={"X-BML-Access-Key": service["access_key"]},
                server_pids={"web": web, "model": service["pid"]},
            )

        def beside(name, concurrency, body, secs, warmup):
            process, port, _, _ = bare[name]
            return measure(
                port,
                "/predict",
                body,
                concurrency,
                secs,
                warmup,
                server_pids={"model": process.pid},
            )

        calibration = measure(null_port, "/predict", work / "iris.json", 32, brief, 0.2)
        progress(f"load generator ceiling: {calibration['rps']:.0f} req/s")
        measure_idle(
            [web, *(s["pid"] for s in services.values()), *(b[0].pid for b in bare.values())],
            brief,
        )
        scenarios = []
        for model, service, body, secs, warmup in (
            ("sklearn", "iris", work / "iris.json", seconds, small_warmup),
            ("resnet18", "resnet", work / "resnet.json", big_seconds, big_warmup),
        ):
            for concurrency in (1, 32):
                for where, run in (("bare", beside), ("appliance", through)):
                    scenarios.append(
                        (
                            (model, where, concurrency),
                            run,
                            (service, concurrency, body, secs, warmup),
                        )
                    )
        for concurrency in (32,) if short else (1, 32):
            scenarios.append(
                (
                    ("resnet18", "appliance batched", concurrency),
                    through,
                    ("resnet-batched", concurrency, work / "resnet.json", big_seconds, big_warmup),
                )
            )
        # Rounds of every case in turn, so that a burst of other work on the machine hits
        # one round of each rather than all runs of one case; the median round is kept.
        runs = {key: [] for key, _, _ in scenarios}
        for _ in range(rounds):
            for key, run, run_args in scenarios:
                f = run(*run_args)
                runs[key].append(f)
                progress(
                    f"{' '.join(map(str, key))}: {f['rps']:.1f} req/s, p50 {f['p50_ms']:.2f} ms"
                )
        table = {
            key: sorted(found, key=lambda f: f["rps"])[len(found) // 2]
            for key, found in runs.items()
        }
        appliance_memory = {
            name: proc_memory(replica_python(service["pid"]))["rss_mb"]
            for name, service in services.items()
        }
        finished = True
    finally:
        if creator is not None and creator.poll() is None:
            creator.kill()
            creator.wait()
        children.stop()
        starter.join()
        for service in services.values():  # a shared appliance (--smoke) keeps running
            try:
                stopped = api.post(f"/api/v1/services/{service['id']}/stop/")
                stopped.raise_for_status()
            except Exception as exc:  # noqa: BLE001 - stopping the appliance ends them anyway
                progress(f"could not stop service {service['id']}: {exc}")
        appliance.stop()
        progress("appliance stopped")
        left = subprocess.run(["pgrep", "-af", str(work)], capture_output=True, text=True).stdout
        if left.strip():
            print(f"warning: processes of this run still alive:\n{left}", file=sys.stderr)
        elif finished:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"the run's files and logs: {work}", file=sys.stderr)

    print(
        f"\nOn {os.cpu_count()} cores; bare servers with OMP_NUM_THREADS="
        f"{bare['iris'][2]} on CPUs {bare['iris'][3]} as the replicas; ResNet-18 at "
        f"{image_size}x{image_size}, a {sizes['jpeg_bytes']} B JPEG ({sizes['body_bytes']} B "
        f"request); batching: max_batch_size {BATCH_SIZE}, max_wait_ms {BATCH_WAIT_MS:g}; "
        f"{seconds:g} s (sklearn) / {big_seconds:g} s (ResNet-18) per run, the median of "
        f"{rounds} round(s); load average {load_before:.2f} before the start."
    )
    print(
        f"Load generator ceiling (null server, 32 clients): {calibration['rps']:.0f} req/s, "
        f"p50 {calibration['p50_ms']:.2f} ms; its own CPU {calibration['loadgen_cpu_us']:.0f} "
        "us per request."
    )
    print(
        "CPU columns: microseconds of CPU per request of the web process (the gateway), the "
        "model server (replica or bare server), less what each spends idle, and of the load "
        f"generator. Idle: web process {IDLE_CPU[web] * 1000:.0f} ms/s, replicas "
        + ", ".join(f"{IDLE_CPU[s['pid']] * 1000:.0f}" for s in services.values())
        + " ms/s."
    )
    header = (
        f"{'model':<9} {'path':<18} {'c':>3} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} "
        f"{'web CPU':>8} {'model CPU':>10} {'client CPU':>10} {'n':>6}"
        + ("  req/s of each round" if rounds > 1 else "")
    )
    print(header)
    print("-" * len(header))
    for (model, where, concurrency), f in table.items():
        web = f"{f['cpu_us']['web']:.0f}" if "web" in f["cpu_us"] else "-"
        print(
            f"{model:<9} {where:<18} {concurrency:>3} {f['rps']:>8.1f} {f['p50_ms']:>8.2f} "
            f"{f['p99_ms']:>8.2f} {web:>8} {f['cpu_us']['model']:>10.0f} "
            f"{f['loadgen_cpu_us']:>10.0f} {f['requests']:>6}"
            + ("  " + " ".join(f"{r['rps']:.1f}" for r in runs[model, where, concurrency]))
            * (rounds > 1)
        )

    def rps(*key):
        return table[key]["rps"]

    ratio = rps("sklearn", "appliance", 32) / rps("sklearn", "bare", 32)
    resnet_ratio = rps("resnet18", "appliance", 32) / rps("resnet18", "bare", 32)
    added_p50 = table["sklearn", "appliance", 1]["p50_ms"] - table["sklearn", "bare", 1]["p50_ms"]
    speedup = rps("resnet18", "appliance batched", 32) / rps("resnet18", "appliance", 32)
    p99_ratio = (
        table["resnet18", "appliance batched", 32]["p99_ms"]
        / table["resnet18", "appliance", 32]["p99_ms"]
    )
    goals = {
        "throughput_ratio": ratio >= 0.8,
        "resnet_throughput_ratio": resnet_ratio >= 0.8,
        "added_p50_ms": added_p50 <= 1.0,
        "batching_speedup": speedup >= 2.0,
        "batching_p99_ratio": p99_ratio <= 2.0,
    }
    memory = run_memory(args.smoke)  # bare replicas, one at a time, the appliance stopped
    goals["replica_memory"] = memory["replica_memory_meets"]
    print(
        f"\nsklearn c=32: {ratio:.2f} of the bare server's throughput (goal >= 0.8); "
        f"ResNet-18 c=32: {resnet_ratio:.2f} (goal >= 0.8)\n"
        f"sklearn c=1: {added_p50:+.2f} ms p50 over the bare server (goal <= 1 ms)\n"
        f"ResNet-18 c=32 batching: {speedup:.2f}x the throughput (goal >= 2x), "
        f"p99 {p99_ratio:.2f}x unbatched (goal <= 2x)"
    )
    result = {
        "figure": "serving throughput through the appliance vs a bare server (sklearn, c=32)",
        "ours": round(rps("sklearn", "appliance", 32), 1),
        "peer": round(rps("sklearn", "bare", 32), 1),
        "ratio": round(ratio, 3),
        "goal": ">= 0.8",
        "meets": None if args.smoke else all(goals.values()),
        "throughput_meets": goals["throughput_ratio"],
        "resnet_throughput_ratio": round(resnet_ratio, 3),
        "resnet_throughput_meets": goals["resnet_throughput_ratio"],
        "added_p50_ms": round(added_p50, 3),
        "added_p50_goal": "<= 1 ms",
        "added_p50_meets": goals["added_p50_ms"],
        "batching_speedup": round(speedup, 2),
        "batching_speedup_goal": ">= 2",
        "batching_speedup_meets": goals["batching_speedup"],
        "batching_p99_ratio": round(p99_ratio, 2),
        "batching_p99_goal": "<= 2",
        "batching_p99_meets": goals["batching_p99_ratio"],
        **memory,
        "appliance_replica_memory_mb": appliance_memory,
        "loadgen_ceiling_rps": round(calibration["rps"]),
        "image_size": image_size,
        "rounds": rounds,
        "quick": args.quick,
        "smoke": args.smoke,
    }
    print("RESULT " + json.dumps(result))


def _start(appliance):
    try:
        return appliance.start(timeout=300)
    except BaseException as exc:  # handed to the main thread
        return exc


if __name__ == "__main__":
    if sys.argv[1:2] == ["--loadgen"]:
        print(json.dumps(loadgen(json.loads(sys.argv[2]))))
    elif sys.argv[1:2] == ["--bare-server"]:
        bare_server(*sys.argv[2:6])
    elif sys.argv[1:2] == ["--null-server"]:
        null_server()
    else:
        main()
