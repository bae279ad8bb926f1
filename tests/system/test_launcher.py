"""The launcher's own checks before it starts anything."""

import socket

import pytest

from bml_site.launcher import port_is_free


def test_a_port_left_in_time_wait_by_a_stopped_server_is_free_again():
    """Ctrl-C then `make up` at once: the old server's connections linger in TIME_WAIT."""
    listener = socket.create_server(("127.0.0.1", 0))  # SO_REUSEADDR, as uvicorn binds
    port = listener.getsockname()[1]
    assert not port_is_free("127.0.0.1", port)  # someone listens: refused
    client = socket.create_connection(("127.0.0.1", port))
    served, _ = listener.accept()
    served.close()  # the server closes first, as a stopping server does: TIME_WAIT is its
    client.recv(1)
    client.close()
    listener.close()
    with socket.socket() as plain, pytest.raises(OSError):
        plain.bind(("127.0.0.1", port))  # the state the check met before: a plain bind fails
    assert port_is_free("127.0.0.1", port)


def test_runs_left_running_are_named_at_stop_and_make_down_ends_them(tmp_path):
    """Job runs and notebook servers outlive the appliance (adopted on the next start);
    the launcher says so when it stops, and `launcher down` (make down) ends them."""
    import subprocess
    import sys

    from workers.processes import end_runs, runs_left

    var = tmp_path / "var"
    (var / "runs" / "job-1" / "0").mkdir(parents=True)
    work = var / "notebooks" / "1-1" / "work"
    work.mkdir(parents=True)
    sleeper = [sys.executable, "-c", "import time; time.sleep(120)"]
    job = subprocess.Popen(
        [*sleeper, "workers.supervise", "--config", str(var / "runs/job-1/0/run.json")],
        start_new_session=True,
    )
    server = subprocess.Popen(
        [*sleeper, "--ServerApp.base_url=/notebooks/1/"], cwd=work, start_new_session=True
    )
    elsewhere = subprocess.Popen(  # another appliance's run: not ours to count or end
        [*sleeper, "workers.supervise", "--config", str(tmp_path / "other/runs/x/0/run.json")],
        start_new_session=True,
    )
    try:
        left = runs_left(var)
        assert [p.pid for p in left["job runs"]] == [job.pid]
        assert [p.pid for p in left["notebook servers"]] == [server.pid]
        assert end_runs(var, grace=5) == 2
        assert job.wait(5) is not None and server.wait(5) is not None
        assert elsewhere.poll() is None
    finally:
        for process in (job, server, elsewhere):
            process.kill()
            process.wait()
