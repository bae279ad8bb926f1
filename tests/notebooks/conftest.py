"""Notebook instances for real: Jupyter servers started by the real scheduler loop, reached
through the appliance's proxy in the real web process (tests/serving/conftest.py's stack)."""

import json
import uuid

import httpx
import pytest
from django.test import Client
from websockets.sync.client import connect

from apps.billing.models import Module, ResourcePackage
from apps.notebooks import services, workspace
from apps.notebooks.models import Notebook
from tests.conftest import wait_until
from tests.serving.conftest import owner, project, stack  # noqa: F401  (fixtures)
from workers.processes import kill_processes_under


@pytest.fixture
def cpu_package(db):
    return ResourcePackage.objects.get(module=Module.WORKAREA, device_kind="cpu")


@pytest.fixture
def stop_servers_at_end(transactional_db):
    """Set up before the stack, so torn down after it: once the scheduler loop has stopped
    (it would start a killed server again), every server and kernel under the test's
    notebooks folder is killed (servers outlive the scheduler by design, like job runs)."""
    yield
    kill_processes_under(workspace.notebooks_root())


@pytest.fixture
def notebooks(stop_servers_at_end, stack):  # noqa: F811
    return stack


def create(user, in_project, package, **kwargs) -> Notebook:
    kwargs.setdefault("name", f"nb-{uuid.uuid4().hex[:8]}")
    return services.create_notebook(user, in_project, package_id=package.pk, **kwargs)


def wait_status(notebook: Notebook, status: str, timeout: float = 60) -> Notebook:
    def reached():
        notebook.refresh_from_db()
        if notebook.status == "failed" and status != "failed":
            raise AssertionError(f"instance failed: {notebook.reason}")
        return notebook.status == status

    wait_until(reached, timeout, interval=0.1, what=f"instance {notebook.name} {status}")
    return notebook


def session_for(user) -> str:
    client = Client()
    client.force_login(user)
    return client.cookies["sessionid"].value


class Jupyter:
    """A member's way into an instance: the proxy, with their console session cookie."""

    def __init__(self, stack, notebook: Notebook, session: str):  # noqa: F811
        self.port = stack.port
        self.base = f"/notebooks/{notebook.pk}/"
        self.http = httpx.Client(
            base_url=f"http://127.0.0.1:{stack.port}",
            cookies={"sessionid": session} if session else {},
            timeout=60,
        )
        self.session = session

    def get(self, path: str, **kwargs) -> httpx.Response:
        return self.http.get(self.base + path, **kwargs)

    def post(self, path: str, body=None, **kwargs) -> httpx.Response:
        return self.http.post(self.base + path, json=body, **kwargs)

    def put(self, path: str, body) -> httpx.Response:
        return self.http.put(self.base + path, json=body)

    def start_kernel(self) -> str:
        response = self.post("api/kernels", {"name": "python3"})
        assert response.status_code == 201, response.text
        return response.json()["id"]

    def execute(self, kernel_id: str, code: str, timeout: float = 120) -> dict:
        """Run code on the kernel over the proxied websocket: {"stdout", "result", "error"}."""
        url = f"ws://127.0.0.1:{self.port}{self.base}api/kernels/{kernel_id}/channels"
        msg_id = uuid.uuid4().hex
        request = {
            "header": {
                "msg_id": msg_id,
                "username": "test",
                "session": uuid.uuid4().hex,
                "msg_type": "execute_request",
                "version": "5.3",
            },
            "parent_header": {},
            "metadata": {},
            "content": {"code": code, "silent": False, "store_history": False},
            "buffers": [],
            "channel": "shell",
        }
        out = {"stdout": "", "result": None, "error": None}
        headers = {"Cookie": f"sessionid={self.session}"}
        with connect(url, additional_headers=headers, open_timeout=30) as ws:
            ws.send(json.dumps(request))
            while True:
                message = json.loads(ws.recv(timeout=timeout))
                if message.get("parent_header", {}).get("msg_id") != msg_id:
                    continue
                kind, content = message["msg_type"], message["content"]
                if kind == "stream":
                    out["stdout"] += content["text"]
                elif kind == "execute_result":
                    out["result"] = content["data"].get("text/plain")
                elif kind == "error":
                    out["error"] = f"{content['ename']}: {content['evalue']}"
                elif kind == "status" and content["execution_state"] == "idle":
                    return out
