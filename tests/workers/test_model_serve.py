"""The prediction replica (workers/runners/model_serve.py): real processes, real HTTP."""

import json
import os
import signal
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.workers.storeless import empty_store_after_each_test, object_store  # noqa: F401

REPO = Path(__file__).resolve().parents[2]


class Replica:
    def __init__(self, *args: str):
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "workers.runners.model_serve", "--port", "0", *args],
            cwd=REPO,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        timer = threading.Timer(60, self.proc.kill)
        timer.start()
        line = self.proc.stdout.readline()
        timer.cancel()
        if not line.startswith("ready "):
            self.proc.kill()
            raise AssertionError(f"no ready line: {line!r} {self.proc.stderr.read()}")
        self.url = f"http://127.0.0.1:{int(line.split()[1])}"
        self.client = httpx.Client(base_url=self.url, timeout=30)

    def stop(self) -> int:
        self.client.close()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=20)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()


@pytest.fixture(scope="module")
def iris(tmp_path_factory):
    import joblib
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    x, y = load_iris(return_X_y=True)
    model = LogisticRegression(max_iter=500).fit(x, y)
    path = tmp_path_factory.mktemp("model") / "model.joblib"
    joblib.dump(model, path)
    return path, model, x


@pytest.fixture(scope="module")
def server(iris):
    replica = Replica("--type", "sklearn", "--path", str(iris[0]), "--max-body-mb", "0.01")
    yield replica
    assert replica.stop() == 0


def expected(model, rows):
    labels = model.predict(rows)
    probabilities = model.predict_proba(rows)
    return labels.tolist(), probabilities


def check_results(results, model, rows):
    labels, probabilities = expected(model, rows)
    assert [r["label"] for r in results] == labels
    for result, row in zip(results, probabilities, strict=True):
        got = [result["probabilities"][str(c)] for c in model.classes_]
        assert got == pytest.approx(row.tolist(), abs=1e-5)


def test_predict_matches_the_model(server, iris):
    _, model, x = iris
    rows = x[::10].tolist()
    response = server.client.post("/predict", json={"instances": rows})
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    check_results(response.json()["result"], model, rows)


def test_a_fast_model_moves_into_the_event_loop_and_still_answers_and_refuses(server, iris):
    _, model, x = iris
    rows = x[:2].tolist()
    for _ in range(40):  # past the probe of the first calls' speed
        assert server.client.post("/predict", json={"instances": rows}).status_code == 200
    assert server.client.get("/healthz").json()["predict_in_event_loop"] is True
    check_results(server.client.post("/predict", json={"instances": rows}).json()["result"],
                  model, rows)  # fmt: skip
    bad = server.client.post("/predict", json={"instances": [[1, 2, 3]]})
    assert bad.status_code == 400 and "4 features" in bad.json()["error"]


DEEP = b'{"instances": ' + b"[" * 5000 + b"]" * 5000 + b"}"  # under the 0.01 MB limit


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"instances": [[1, 2', "not valid JSON"),
        (b'{"rows": [[1, 2, 3, 4]]}', "instances"),
        (b'{"instances": "abc"}', "non-empty list"),
        (b'{"instances": []}', "non-empty list"),
        (b'{"instances": [[1, 2, 3]]}', "4 features"),
        (b'{"instances": [["a", 2, 3, 4]]}', "number"),
        (b'{"instances": [[NaN, 1, 1, 1]]}', "instances[0]: values must be finite numbers"),
        (b'{"instances": [[1, 2, 3, 4], [1e400, 1, 1, 1]]}', "instances[1]: values must be"),
        (b'{"instances": [[1, -Infinity, 1, 1]]}', "(NaN/Infinity refused)"),
        (DEEP, "JSON nesting depth limit exceeded"),
    ],
)
def test_bad_requests_are_400(server, body, message):
    response = server.client.post("/predict", content=body)
    assert response.status_code == 400
    error = response.json()["error"]
    assert message in error
    assert "Traceback" not in response.text


def test_oversize_body_is_413(server):
    rows = [[5.1, 3.5, 1.4, 0.2]] * 2000  # ~40 KB, the limit is 0.01 MB
    response = server.client.post("/predict", json={"instances": rows})
    assert response.status_code == 413
    assert "error" in response.json()
    # the replica still answers
    assert server.client.get("/healthz").status_code == 200


def test_unknown_path_is_404(server):
    response = server.client.get("/nope")
    assert response.status_code == 404
    assert "error" in response.json()


def test_healthz(server):
    response = server.client.get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ready"
    assert body["info"]["framework"] == "sklearn"
    assert body["info"]["n_features"] == 4
    assert isinstance(body["predict_calls"], int)


def test_oip_v2_infer(server, iris):
    _, model, x = iris
    rows = x[:3]
    response = server.client.post(
        "/v2/models/iris/infer",
        json={
            "id": "r1",
            "inputs": [
                {"name": "x", "shape": [3, 4], "datatype": "FP64", "data": rows.ravel().tolist()}
            ],
        },
    )
    assert response.status_code == 200
    body = response.json()
    assert body["model_name"] == "iris"
    assert body["id"] == "r1"
    (output,) = body["outputs"]
    assert output["name"] == "output-0"
    assert output["shape"] == [3]
    assert output["datatype"] == "INT64"
    assert output["data"] == model.predict(rows).tolist()
    bad = server.client.post(
        "/v2/models/iris/infer",
        json={"inputs": [{"name": "x", "shape": [2, 4], "datatype": "FP64", "data": [1, 2]}]},
    )
    assert bad.status_code == 400
    assert "shape" in bad.json()["error"]
    nan = {"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP64", "data": [1, 2, 3]}]}
    nan["inputs"][0]["data"].insert(0, float("nan"))
    for body, message in (
        (json.dumps(nan).encode(), "inputs[0].data: values must be finite numbers"),
        (DEEP.replace(b"instances", b"inputs"), "JSON nesting depth limit exceeded"),
    ):
        bad = server.client.post("/v2/models/iris/infer", content=body)
        assert bad.status_code == 400 and message in bad.json()["error"], bad.text


def test_batching_and_sigterm(iris):
    path, model, x = iris
    replica = Replica(
        "--type", "sklearn", "--path", str(path), "--max-batch-size", "8", "--max-wait-ms", "20"
    )
    try:
        requests = [x[i : i + 1 + i % 2].tolist() for i in range(0, 150, 10)]  # 15 good
        requests.insert(7, [[1.0, 2.0]])  # a bad request fails alone
        barrier = threading.Barrier(len(requests))

        def ask(rows):
            with httpx.Client(base_url=replica.url, timeout=30) as client:
                barrier.wait()
                return client.post("/predict", json={"instances": rows})

        with ThreadPoolExecutor(len(requests)) as pool:
            responses = list(pool.map(ask, requests))
        for rows, response in zip(requests, responses, strict=True):
            if len(rows[0]) == 2:
                assert response.status_code == 400
                assert "4 features" in response.json()["error"]
            else:
                assert response.status_code == 200, response.text
                check_results(response.json()["result"], model, rows)
        health = replica.client.get("/healthz").json()
        assert health["requests"] == len(requests)
        assert health["predict_calls"] < len(requests)
    finally:
        assert replica.stop() == 0


def test_sequential_latency_has_no_nagle_stall(server):
    # Headers and body go out in two writes: without TCP_NODELAY each answer waits ~40 ms.
    import time

    body = json.dumps({"instances": [[5.1, 3.5, 1.4, 0.2]]})
    times = []
    for _ in range(20):
        started = time.perf_counter()
        assert server.client.post("/predict", content=body).status_code == 200
        times.append(time.perf_counter() - started)
    assert sorted(times)[10] < 0.02


def test_sigterm_finishes_requests_in_flight(iris):
    import time

    path, model, x = iris
    replica = Replica(
        "--type", "sklearn", "--path", str(path), "--max-batch-size", "4", "--max-wait-ms", "700"
    )
    with ThreadPoolExecutor(1) as pool:
        pending = pool.submit(replica.client.post, "/predict", json={"instances": x[:1].tolist()})
        time.sleep(0.3)  # the request waits in the batcher
        replica.proc.send_signal(signal.SIGTERM)
        response = pending.result(timeout=20)
    assert response.status_code == 200
    check_results(response.json()["result"], model, x[:1].tolist())
    assert replica.stop() == 0


def test_load_failure_exits_1(tmp_path):
    (tmp_path / "model.joblib").write_bytes(b"not a model")
    proc = subprocess.run(
        [sys.executable, "-m", "workers.runners.model_serve", "--type", "sklearn"]
        + ["--path", str(tmp_path / "model.joblib"), "--port", "0"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 1
    assert "ready" not in proc.stdout
    assert "error: model.joblib is not a readable" in proc.stderr


def test_fields_must_be_json(iris):
    proc = subprocess.run(
        [sys.executable, "-m", "workers.runners.model_serve", "--type", "sklearn"]
        + ["--path", str(iris[0]), "--port", "0", "--fields", json.dumps([1])],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 1
    assert "--fields" in proc.stderr
