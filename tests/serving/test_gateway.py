"""The issue's "Done when" for serving, end to end: two versions at 3:7 with two replicas
each, the split of 1,000 requests, a replica killed under load, bad requests as 4xx that
are counted in the quality figures."""

import base64
import os
import signal
import threading
import time
from collections import Counter

from apps.serving import replicas, services
from apps.serving.models import QualityBucket, Replica
from tests.conftest import wait_until
from tests.serving.conftest import METRICS_TOKEN, wait_running

ROW = [5.1, 3.5, 1.4, 0.2]


def invoke(stack, service, body, **headers):
    path = f"/v1/endpoints/{service.endpoint}/invocations?interface=predict&action=predict"
    return stack.post(path, body, {"X-BML-Access-Key": service.access_key, **headers})


def released_from_a_job(owner, project):
    """The sklearn digits template run as a job (by the stack's scheduler), its output
    released to the warehouse."""
    from apps.storage import services as storage
    from apps.warehouse import releases as warehouse
    from tests.jobs.helpers import submit_template

    storage.create_bucket(owner, project, "serving-jobs")
    job = submit_template(owner, project, "sklearn_digits", "digits", "bos://serving-jobs/jobs/")

    def ended():
        job.refresh_from_db()
        return job.status not in ("queued", "running")

    wait_until(ended, 180, what="the job")
    assert job.status == "succeeded", job.reason
    return warehouse.release_from_job(
        owner, job, model_type="sklearn", name="digits", subpath="output/model.joblib"
    )


def test_released_model_split_3_to_7_and_a_killed_replica(owner, project, stack):
    from sklearn.datasets import load_digits

    released = released_from_a_job(owner, project)
    service = services.create_service(
        owner,
        project,
        name="digits-ab",
        version=services.VersionConfig(1, released, proportion=3, replicas=2),
    )
    services.add_version(
        owner, service, services.VersionConfig(2, released, proportion=7, replicas=2)
    )
    wait_running(service)
    assert Replica.objects.filter(version__service=service, status="running").count() == 4
    row = load_digits().data[0].tolist()

    answered = Counter()
    for _ in range(1000):
        status, body, headers = invoke(stack, service, {"instances": [row]})
        assert status == 200, body
        assert "label" in body["result"][0]
        answered[headers["x-bml-version"]] += 1
    # 3:7 of 1,000 (smooth weighted round robin is exact; the binomial tolerance is ±45)
    assert abs(answered["1"] - 300) <= 45 and abs(answered["2"] - 700) <= 45, answered

    # Kill one replica of version 2 while four clients keep sending requests.
    victim = Replica.objects.get(version__service=service, version__number=2, index=0)
    statuses, stop = Counter(), threading.Event()

    def load():
        while not stop.is_set():
            status, _, _ = invoke(stack, service, {"instances": [row]})
            statuses[status] += 1

    clients = [threading.Thread(target=load) for _ in range(4)]
    for client in clients:
        client.start()
    time.sleep(0.5)
    os.killpg(victim.pid, signal.SIGKILL)

    def back():
        victim.refresh_from_db()
        return victim.status == "running" and victim.restarts == 1

    # (how soon is a figure for benchmarks/serving.py: tests assert no wall-clock time)
    wait_until(back, 60, interval=0.05, what="the killed replica to come back")
    time.sleep(1.5)  # the gateway routes to it again
    stop.set()
    for client in clients:
        client.join()
    assert set(statuses) == {200}, statuses  # no request was lost
    assert sum(statuses.values()) > 50
    service.refresh_from_db()
    assert service.status == "running"


def test_bad_requests_are_4xx_and_counted(owner, project, iris_version, stack):
    service = services.create_service(
        owner, project, name="iris", version=services.VersionConfig(1, iris_version)
    )
    wait_running(service)
    base = f"/v1/endpoints/{service.endpoint}/invocations?interface=predict&action=predict"
    key = {"X-BML-Access-Key": service.access_key}

    cases = {
        "malformed JSON": stack.post(base, None, key, raw=b'{"instances": [1, 2'),
        "wrong feature count": invoke(stack, service, {"instances": [[1.0, 2.0]]}),
        "not numbers": invoke(stack, service, {"instances": [["a", "b", "c", "d"]]}),
        "bad base64": invoke(stack, service, {"instances": [{"data": "%%%not base64"}]}),
        "no instances": invoke(stack, service, {"rows": []}),
        "oversize": stack.post(base, None, key, raw=b"[" + b"1," * (17 * 1024 * 1024) + b"1]"),
        "no key": stack.post(base, {"instances": [ROW]}),
        "wrong key": stack.post(base, {"instances": [ROW]}, {"X-BML-Access-Key": "nope"}),
    }
    for what, (status, body, _) in cases.items():
        assert 400 <= status < 500, (what, status, body)
        assert body["error"], what
    assert cases["oversize"][0] == 413
    assert cases["no key"][0] == 401 and cases["wrong key"][0] == 401

    # The key as a query parameter (the spec's client changes only its URL) and as a bearer.
    status, body, _ = stack.post(f"{base}&access_key={service.access_key}", {"instances": [ROW]})
    assert status == 200 and body["result"][0]["label"] == 0
    auth = {"Authorization": f"Bearer {service.access_key}"}
    assert len(stack.post(base, {"instances": [ROW, ROW]}, auth)[1]["result"]) == 2

    # The console's address for the spec's client, pasted as ENDPOINT_URL: the client itself
    # appends "?interface=predict&action=predict" to it.
    import re

    from django.test import Client

    console = Client()
    console.force_login(owner)
    page = console.get(f"/services/{service.pk}/").content.decode()
    endpoint_url = re.search(r'id="client-url"[^>]*value="([^"]+)"', page).group(1)
    assert endpoint_url.endswith(f"/invocations?access_key={service.access_key}")
    path = endpoint_url.split("://", 1)[1].partition("/")[2]
    status, body, _ = stack.post(f"/{path}?interface=predict&action=predict", {"instances": [ROW]})
    assert status == 200 and body["result"][0]["label"] == 0, body

    def counted():
        rows = QualityBucket.objects.filter(service=service)
        return (
            sum(r.status_4xx for r in rows) == len(cases)
            and sum(r.status_2xx for r in rows) == 3
            and sum(r.status_5xx for r in rows) == 0
        )

    wait_until(counted, 10, what="the quality figures")
    total = sum(r.requests for r in QualityBucket.objects.filter(service=service))
    assert total == len(cases) + 3
    # ... and exported for Prometheus (refusals before a version was chosen are version 0)
    metrics = stack.get_text("/metrics", {"Authorization": f"Bearer {METRICS_TOKEN}"})
    # (no key, wrong key and the oversize body are refused before a version is chosen)
    assert 'bml_serving_requests_total{code="4xx",service="iris",version="1"} 5.0' in metrics
    assert 'bml_serving_requests_total{code="4xx",service="iris",version="0"} 3.0' in metrics
    assert 'bml_serving_replicas{service="iris",status="running",version="1"} 1.0' in metrics


def test_open_inference_protocol_v2(owner, project, iris_version, stack):
    service = services.create_service(
        owner, project, name="iris-v2", version=services.VersionConfig(7, iris_version)
    )
    wait_running(service)
    body = {"id": "r1", "inputs": [{"name": "x", "shape": [2, 4], "datatype": "FP64",
                                    "data": ROW + [6.7, 3.0, 5.2, 2.3]}]}  # fmt: skip
    key = {"X-BML-Access-Key": service.access_key}
    status, answer, _ = stack.post(f"/v2/models/{service.endpoint}/infer", body, key)
    assert status == 200, answer
    assert answer["id"] == "r1" and answer["outputs"][0]["data"] == [0, 2]
    pinned = f"/v2/models/{service.endpoint}/versions/7/infer"
    assert stack.post(pinned, body, key)[0] == 200
    missing = f"/v2/models/{service.endpoint}/versions/8/infer"
    assert stack.post(missing, body, key)[0] == 404
    assert base64  # image bodies are covered by the console test


def test_replicas_answer_only_the_gateway(owner, project, iris_version, stack):
    """A replica's loopback port refuses any other process of the host: only the gateway
    knows its secret, which is on no command line and in no file the replica can write."""
    import asyncio
    import http.client
    import json
    import stat

    import psutil
    from django.db import connection

    from apps.serving.gateway import Gateway

    service = services.create_service(
        owner, project, name="iris-direct", version=services.VersionConfig(1, iris_version)
    )
    wait_running(service)
    replica = Replica.objects.get(version__service=service)
    key_file = replicas.key_file(replica.pk)
    key = key_file.read_text().strip()
    assert len(key) >= 32 and stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(key_file.parent.stat().st_mode) == 0o700
    assert not key_file.is_relative_to(replica.run_dir)  # the model's code writes there
    assert key not in " ".join(psutil.Process(replica.pid).cmdline())

    def direct(method, path, headers=None, body=None):
        connection = http.client.HTTPConnection("127.0.0.1", replica.port, timeout=30)
        connection.request(method, path, body and json.dumps(body), headers or {})
        response = connection.getresponse()
        answer = response.read()
        connection.close()
        return response.status, answer

    rows = {"instances": [ROW]}
    assert direct("POST", "/predict", body=rows)[0] == 403
    assert direct("POST", "/predict", {"X-BML-Replica-Key": "x" * len(key)}, rows)[0] == 403
    infer = {"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP64", "data": ROW}]}
    assert direct("POST", "/v2/models/m/infer", body=infer)[0] == 403
    status, answer = direct("GET", "/healthz")
    assert status == 403 and b"sklearn" not in answer  # the model's details stay private
    assert direct("GET", "/v2/health/live") == (200, b"{}")  # a bare probe: no more than connect()
    status, answer = direct("POST", "/predict", {"X-BML-Replica-Key": key}, rows)
    assert status == 200 and json.loads(answer)["result"][0]["label"] == 0

    # Through the gateway it works, and a gateway started afresh (an appliance restart that
    # adopts the running replica) finds the secret without being told.
    status, body, _ = invoke(stack, service, rows)
    assert status == 200 and body["result"][0]["label"] == 0

    async def through_a_new_gateway():
        gateway = Gateway()
        try:
            route = await gateway.route_for(service.endpoint)
            return await gateway.forward(route, "/predict", json.dumps(rows).encode(), None)
        finally:
            gateway.db.submit(lambda: connection.close()).result()  # its thread's connection
            gateway.db.shutdown()

    version, status, answer = asyncio.run(through_a_new_gateway())
    assert (version, status) == (1, 200) and json.loads(answer)["result"][0]["label"] == 0


def test_a_deploying_service_answers_503_with_retry_after(owner, project, iris_version, stack):
    service = services.create_service(
        owner, project, name="iris-early", version=services.VersionConfig(1, iris_version)
    )
    status, body, headers = invoke(stack, service, {"instances": [ROW]})  # no replica yet
    assert status == 503, body
    assert "deploying" in body["error"] and int(headers["retry-after"]) > 0
    wait_running(service)
    status, body, headers = invoke(stack, service, {"instances": [ROW]})
    assert status == 200 and "retry-after" not in headers


def test_kill_9_of_one_of_two_replicas_loses_no_request(owner, project, iris_version, stack):
    """One version, two replicas, one killed (kill -9) under continuous load: a request
    whose replica refused or reset the connection goes to the other one, never a 503."""
    from concurrent.futures import ThreadPoolExecutor
    from itertools import count

    service = services.create_service(
        owner,
        project,
        name="iris-pair",
        version=services.VersionConfig(1, iris_version, replicas=2),
    )
    wait_running(service)
    victim = Replica.objects.get(version__service=service, index=0)
    sent, killed = count(1), threading.Event()

    def one(_):
        answer = invoke(stack, service, {"instances": [ROW]})[:2]
        if next(sent) == 100:  # the other workers keep sending meanwhile
            os.killpg(victim.pid, signal.SIGKILL)
            killed.set()
        return answer

    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(one, range(400)))
    assert killed.is_set()
    failed = [(status, body) for status, body in answers if status != 200]
    assert not failed, failed[:3]
    assert all(body["result"][0]["label"] == 0 for _, body in answers)

    # Hostile bodies on both routes: 400 naming the rule (the replica's; the gateway
    # parses no body), never a 500.
    key = {"X-BML-Access-Key": service.access_key}
    v1 = f"/v1/endpoints/{service.endpoint}/invocations?interface=predict&action=predict"
    v2 = f"/v2/models/{service.endpoint}/infer"
    deep = b"[" * 100_000 + b"]" * 100_000
    tensor = b'{"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP64", "data": %s}]}'
    cases = [
        (v1, b'{"instances": ' + deep + b"}", "JSON nesting depth limit exceeded"),
        (v2, b'{"inputs": ' + deep + b"}", "JSON nesting depth limit exceeded"),
        (v1, b'{"instances": [[NaN, 1, 1, 1]]}', "instances[0]: values must be finite numbers"),
        (v1, b'{"instances": [[1e400, 1, 1, 1]]}', "(NaN/Infinity refused)"),
        (v2, tensor % b"[NaN, 1, 1, 1]", "inputs[0].data: values must be finite numbers"),
        (v2, tensor % b"[1, 1, 1, -Infinity]", "inputs[0].data: values must be finite numbers"),
    ]
    for path, raw, rule in cases:
        status, body, _ = stack.post(path, None, key, raw=raw)
        assert status == 400 and rule in body["error"], (path, raw[:40], status, body)
