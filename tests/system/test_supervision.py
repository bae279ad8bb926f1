"""The launcher (`make up`) supervises what it starts: the real appliance, real processes.

One appliance is started, stopped and started again on the same var/ (the store keeps its
address), then its store and its Q cluster are killed with SIGKILL under it."""

import contextlib
import json
import os
import signal
import types

import psutil
import pytest
import urllib3
from minio import Minio

from bml_site.running import RunningAppliance
from tests.conftest import wait_until

ADMIN_PASSWORD = "supervision-admin-pass-42"
PARTS = ("qcluster", "run_scheduler", "uvicorn", "weed")


def start(var) -> RunningAppliance:
    try:
        return RunningAppliance(var, ADMIN_PASSWORD).start()
    except RuntimeError as exc:
        pytest.fail(str(exc))


def part(appliance, word: str) -> psutil.Process | None:
    """The launcher's child whose command line has `word` (weed: the store)."""
    for child in psutil.Process(appliance.process.pid).children():
        with contextlib.suppress(psutil.Error):
            if any(word in arg for arg in child.cmdline()):
                return child
    return None


def group_members(pgid: int) -> list[int]:
    members = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError):
                if os.getpgid(int(entry)) == pgid:
                    members.append(int(entry))
    return members


def processes_of(var, word: str) -> list[psutil.Process]:
    """Every process, wherever it was reparented to, started for the appliance of `var`
    (BML_VAR_DIR in its environment) whose command line has `word`."""
    found = []
    for process in psutil.process_iter():
        with contextlib.suppress(psutil.Error):
            if process.environ().get("BML_VAR_DIR") == str(var) and any(
                word in arg for arg in process.cmdline()
            ):
                found.append(process)
    return found


def endpoint_of(var) -> str:
    return (var / "objectstore-endpoint").read_text().strip()


@pytest.fixture(scope="module")
def restarted(tmp_path_factory):
    """An appliance that wrote an object, was stopped with Ctrl-C and started again."""
    var = tmp_path_factory.mktemp("supervised")
    first = start(var)
    try:
        with contextlib.closing(first.login()) as client:
            project = client.get("/api/v1/projects/").json()["results"][0]["id"]
            made = client.post("/api/v1/buckets/", json={"project": project, "name": "kept-bkt"})
            assert made.status_code == 201, made.text
            put = client.put("/api/v1/buckets/kept-bkt/objects/notes/a.txt", content=b"kept")
            assert put.status_code == 201, put.text
        endpoint = endpoint_of(var)
    finally:
        first.stop()
    again = start(var)
    yield types.SimpleNamespace(appliance=again, var=var, endpoint=endpoint)
    again.stop()
    # Nothing of any part (old or replaced) outlives the stop.
    for word in PARTS:
        assert processes_of(var, word) == [], word


def test_a_restart_of_the_appliance_keeps_the_store_s_address(restarted):
    var = restarted.var
    assert endpoint_of(var) == restarted.endpoint
    weed = part(restarted.appliance, "weed")
    assert f"-s3.port={restarted.endpoint.rsplit(':', 1)[1]}" in weed.cmdline()
    # Straight to that S3 port, with the appliance's keys, as a job's grant would go.
    creds = json.loads((var / "objectstore-credentials.json").read_text())
    s3 = Minio(
        restarted.endpoint,
        access_key=creds["access_key"],
        secret_key=creds["secret_key"],
        secure=False,
        http_client=urllib3.PoolManager(timeout=10, retries=False),
    )
    response = s3.get_object("kept-bkt", "notes/a.txt")
    try:
        assert response.read() == b"kept"
    finally:
        response.close()
        response.release_conn()


def test_a_killed_store_is_restarted_on_its_address_and_pages_recover(restarted):
    appliance = restarted.appliance
    weed = part(appliance, "weed")
    command = weed.cmdline()
    os.killpg(weed.pid, signal.SIGKILL)

    def listing():
        with contextlib.closing(appliance.login()) as client:
            response = client.get("/api/v1/buckets/kept-bkt/objects/")
            return response if response.status_code == 200 else None

    def restarted_store():
        new = part(appliance, "weed")
        return new if new is not None and new.pid != weed.pid else None

    new = wait_until(restarted_store, timeout=60, what="the launcher to start the store again")
    assert new.cmdline() == command  # same ports, data dir and security.toml
    assert "notes/" in json.dumps(wait_until(listing, timeout=60, what="the listing").json())

    def content():
        with contextlib.closing(appliance.login()) as client:
            response = client.get("/api/v1/buckets/kept-bkt/objects/notes/a.txt")
            return response.content if response.status_code == 200 else None

    # The filer may list before the volume server has registered again (a CI run read a
    # 500 right after the listing): the object's bytes come back once it has.
    assert wait_until(content, timeout=60, what="the object's bytes") == b"kept"
    assert endpoint_of(restarted.var) == restarted.endpoint
    # store.start() returns (and the launcher says so) once its readiness checks pass, which
    # can be after the listing above already answered: wait for the line, not read it once.
    wait_until(
        lambda: "object store is back" in appliance.log_path.read_text(),
        timeout=60,
        what="the launcher to say the store is back",
    )
    assert "The object store exited" in appliance.log_path.read_text()
    assert not group_members(weed.pid)


def test_a_killed_q_cluster_is_replaced_and_leaves_no_process_behind(restarted):
    appliance, var = restarted.appliance, restarted.var
    cluster = part(appliance, "qcluster")
    old_group = cluster.pid
    # Its sentinel, monitor, pusher and workers are up (they share its process group).
    wait_until(lambda: len(group_members(old_group)) >= 4, what="the Q cluster's workers")
    os.kill(cluster.pid, signal.SIGKILL)  # the main process only, as `kill -9 <pid>` does

    def replaced():
        new = part(appliance, "qcluster")
        return new if new is not None and new.pid != old_group else None

    new = wait_until(replaced, timeout=30, what="a new Q cluster")
    wait_until(lambda: not group_members(old_group), timeout=15, what="the old group to go")
    wait_until(lambda: len(group_members(new.pid)) >= 4, what="the new cluster's workers")
    # Every Q cluster process of this appliance belongs to the new one.
    assert {os.getpgid(p.pid) for p in processes_of(var, "qcluster")} == {new.pid}

    def one_cluster():
        report = appliance.login().get("/healthz").json()
        return report["queue"].get("clusters") == 1

    wait_until(one_cluster, timeout=30, what="/healthz to count one Q cluster")
    assert "qcluster exited (-9)" in appliance.log_path.read_text()
