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
