"""Prediction services for real: replicas started by the real scheduler process, requests
through the real gateway (uvicorn on bml_site.asgi), both reading the test database."""

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from apps.projects.models import Project
from apps.serving.models import Replica
from apps.storage import services as storage
from apps.warehouse import services as warehouse
from bml_site import config
from tests.conftest import ROOT, child_env, wait_until
from tests.warehouse.conftest import iris_joblib


@pytest.fixture
def owner(make_user, transactional_db):
    return make_user()


@pytest.fixture
def project(owner):
    return Project.objects.get(owner=owner)


@pytest.fixture
def iris_version(owner, project):
    """A real scikit-learn model in the warehouse (4 features -> iris class)."""
    import io

    bucket = storage.create_bucket(owner, project, "serving-src")
    data = iris_joblib()
    storage.upload_object(owner, bucket, "iris/model.joblib", io.BytesIO(data), len(data))
    return warehouse.import_model(
        owner, project, name="iris", model_type="sklearn", path="bos://serving-src/iris/"
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


METRICS_TOKEN = "serving-tests-metrics-token"


def _start(command, log_name):
    log = open(config.var_dir() / log_name, "ab")  # noqa: SIM115
    return subprocess.Popen(
        command,
        cwd=ROOT,
        env={**child_env(), "BML_METRICS_TOKEN": METRICS_TOKEN},
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


class Stack:
    def __init__(self, port: int):
        self.port = port
        self.url = f"http://127.0.0.1:{port}"

    def get_text(self, path: str, headers=None) -> str:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        connection.request("GET", path, headers=headers or {})
        text = connection.getresponse().read().decode()
        connection.close()
        return text

    def post(self, path: str, body, headers=None, raw: bytes | None = None):
        """-> (status, parsed JSON body, response headers)."""
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        payload = raw if raw is not None else json.dumps(body).encode()
        connection.request(
            "POST", path, payload, {"Content-Type": "application/json", **(headers or {})}
        )
        response = connection.getresponse()
        data = response.read()
        connection.close()
        return response.status, json.loads(data), dict(response.getheaders())


@pytest.fixture
def stack(transactional_db):
    """The scheduler loop (which supervises replicas) and the web process with the gateway."""
    port = free_port()
    scheduler = _start([sys.executable, "manage.py", "run_scheduler"], "scheduler-test.log")
    web = _start(
        [sys.executable, "-m", "uvicorn", "bml_site.asgi:application", "--port", str(port),
         "--lifespan", "off", "--loop", "uvloop", "--no-access-log",
         "--http", "bml_site.zero_copy_http:ZeroCopyHttpToolsProtocol"],
        "web-test.log",
    )  # fmt: skip

    def web_up():
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return True
        except OSError:
            return False

    wait_until(web_up, 60, what="the web process")
    yield Stack(port)
    for process in (scheduler, web):
        process.send_signal(signal.SIGTERM)
    for process in (scheduler, web):
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
    for replica in Replica.objects.exclude(pid=None):
        try:
            os.killpg(replica.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def wait_running(service, timeout=90):
    def running():
        service.refresh_from_db()
        if service.status == "failed":
            raise AssertionError(f"service failed: {service.reason}")
        return service.status == "running"

    wait_until(running, timeout, interval=0.2, what=f"service {service.name} running")
    time.sleep(1.2)  # the gateway's table refresh
