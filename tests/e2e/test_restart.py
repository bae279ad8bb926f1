import contextlib

import pytest

from tests.e2e.conftest import start_appliance

pytestmark = pytest.mark.e2e


def test_stop_with_ctrl_c_and_start_again_keeps_everything(tmp_path):
    appliance = start_appliance(tmp_path)
    with contextlib.closing(appliance.login()) as client:
        project = client.post("/api/v1/projects/", json={"name": "kept"}).json()
        client.post("/api/v1/buckets/", json={"project": project["id"], "name": "kept-bucket"})
        put = client.put("/api/v1/buckets/kept-bucket/objects/notes/a.txt", content=b"still here")
        assert put.status_code == 201, put.text
    stop_seconds = appliance.stop()
    assert stop_seconds < 10, f"Ctrl-C took {stop_seconds:.1f}s to stop everything"

    log = (tmp_path / "launcher.log").read_text()
    assert log.count("First login (shown once)") == 1

    again = start_appliance(tmp_path)  # same var/, a new port
    try:
        with contextlib.closing(again.login()) as client:
            names = [p["name"] for p in client.get("/api/v1/projects/").json()["results"]]
            assert "kept" in names
            body = client.get("/api/v1/buckets/kept-bucket/objects/notes/a.txt").content
            assert body == b"still here"
    finally:
        again.stop()
    # The first login is printed once, not on every start.
    assert (tmp_path / "launcher.log").read_text().count("First login (shown once)") == 1


def test_kill_9_of_the_appliance_mid_job_then_restart_adopts_the_run(tmp_path):
    import signal
    import socket
    import time

    from tests.conftest import wait_until

    appliance = start_appliance(tmp_path)
    with contextlib.closing(appliance.login()) as client:
        project = client.get("/api/v1/projects/").json()["results"][0]["id"]
        client.post("/api/v1/buckets/", json={"project": project, "name": "crash-out"})
        packages = client.get("/api/v1/resource-packages/", params={"module": "train"}).json()
        cpu = next(p for p in packages["results"] if p["device_kind"] == "cpu")
        code = (  # the model is written at the very end, after the restart
            "import os, time\nwhile not os.path.exists('go'):\n    time.sleep(0.1)\n"
            "os.makedirs('output', exist_ok=True)\n"
            "open('output/model.txt', 'w').write('trained after a restart')\nprint('done')"
        )
        job = client.post(
            "/api/v1/jobs/",
            json={
                "name": "survivor",
                "project": project,
                "algorithm": "custom_code",
                "params": {"code": code},
                "package": cpu["id"],
                "output_path": "bos://crash-out/out/",
            },
        ).json()
        job_url = f"/api/v1/jobs/{job['job_id']}/"
        wait_until(lambda: client.get(job_url).json()["status"] == "running", what="running")

    appliance.process.send_signal(signal.SIGKILL)  # the whole appliance, no clean-up at all
    appliance.process.wait(10)
    appliance.stop()

    def port_closed():
        with socket.socket() as probe:
            return probe.connect_ex(("127.0.0.1", appliance.port)) != 0

    wait_until(port_closed, timeout=15, what="the orphaned web server to go")
    time.sleep(1)

    again = start_appliance(tmp_path)
    try:
        with contextlib.closing(again.login()) as client:
            assert client.get(job_url).json()["status"] == "running"  # adopted, not lost
            (tmp_path / "runs" / job["job_id"] / "0" / "workspace" / "go").touch()
            wait_until(
                lambda: client.get(job_url).json()["status"] == "succeeded",
                timeout=60,
                what="the adopted job to finish",
            )
            model = client.get(
                f"/api/v1/buckets/crash-out/objects/out/{job['job_id']}/output/model.txt"
            )
            assert model.status_code == 200 and model.text == "trained after a restart"
    finally:
        again.stop()
