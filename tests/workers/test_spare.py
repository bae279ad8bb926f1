"""workers.spare: a warm start (code started ahead, confined) given a job later; the real
store, real processes, real code waiting on its FIFO."""

import io
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
from datetime import timedelta

import pytest

from apps.storage import grants
from apps.storage.client import get_client
from tests.conftest import ROOT, wait_until
from workers import sandbox

# The code a warm start runs: with --wait it waits for its order on the FIFO (as
# workers.runners.visual.run does), with --params it is the fresh start of the same program.
CODE = """
import json, os, sys
started = os.getpid()
if sys.argv[1] == "--wait":
    open(".bml/ready", "w").write("0")
    order = json.loads(open(sys.argv[2], "rb").readline())
    os.environ.update(order["env"])
    params = order["params"]
else:
    params = sys.argv[2]
print("how", "warm" if sys.argv[1] == "--wait" else "fresh", "run", os.environ["BML_RUN_ID"])
print("params", open(params).read())
print("input", open("inputs/a.bin").read(), open("inputs/b.bin").read())
try:
    open("inputs/a.bin", "w").write("changed")
    wrote = "wrote"
except OSError as exc:
    wrote = type(exc).__name__
print("write", wrote)
print("cpus", sorted(os.sched_getaffinity(0)))
open("output/result.txt", "w").write("done")
"""


SANDBOX = {"uid": sandbox.run_uid(7), "group": "warm-test"}


@pytest.fixture
def bucket(object_store):
    get_client().make_bucket("runs")
    get_client().put_object("runs", "data/in/a.bin", io.BytesIO(b"stored!"), 7)
    get_client().put_object("runs", "data/in/b.bin", io.BytesIO(b"stored"), 6)
    return "runs"


def start_spare(folder, command=None):
    workspace = folder / "workspace"
    workspace.mkdir(parents=True)
    (workspace / "main.py").write_text(textwrap.dedent(CODE))
    spare = {
        "project_id": 7,
        "command": command or [sys.executable, "main.py", "--wait", ".bml/go"],
        "sandbox": SANDBOX,
    }
    (folder / "spare.json").write_text(json.dumps(spare))
    return subprocess.Popen(
        [sys.executable, "-m", "workers.supervise", "--config", str(folder / "run.json")]
        + ["--spare"],
        cwd=ROOT,
        env={**os.environ, "BML_SANDBOX": sandbox.mode()},
    )


def give_job(folder, process, earlier, command_name="main.py"):
    """What workers.scheduler does when a job takes the warm start; the scheduler's wake-up
    socket gets its datagram once the result is written."""
    workspace = folder / "workspace"
    loop = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    loop.bind(str(folder.parent / "loop.sock"))
    os.rename(folder / "spare.json", folder / "claimed.json")
    (workspace / "node.json").write_text('{"nodes": []}')
    stage_in = {
        "dest": "inputs",
        **grants.input_files("bos://runs/data/in/"),
        "local": str(earlier),
    }
    config = {
        "run_id": "job-9-0",
        "workspace": str(workspace),
        "command": [sys.executable, command_name, "--params", "node.json"],
        "time_limit_s": 60,
        "cpu_affinity": [0],
        "sandbox": SANDBOX,
        "grant": grants.upload_grant("bos://runs/out/job-9/", timedelta(minutes=10)),
        "stage_in": [stage_in],
        "stage_out": [{"src": "output", "uri": "bos://runs/out/job-9/output/"}],
        "log_uri": "bos://runs/out/job-9/log/",
        "wake": str(folder.parent / "loop.sock"),
    }
    (folder / "run.json.tmp").write_text(json.dumps(config))
    os.replace(folder / "run.json.tmp", folder / "run.json")
    process.send_signal(signal.SIGUSR1)
    assert process.wait(60) == 0
    loop.settimeout(5)
    assert loop.recv(64) == b"ended"
    loop.close()
    result = json.loads((folder / "result.json").read_text())
    log = get_client().get_object("runs", "out/job-9/log/job-9-0.log").read().decode()
    assert result["status"] == "succeeded", (result, log)
    output = get_client().get_object("runs", "out/job-9/output/result.txt").read()
    assert output == b"done"
    return log


@pytest.fixture
def earlier(tmp_path):
    """An earlier run's output on this host: a.bin as the store has it, b.bin stale."""
    folder = tmp_path / "earlier"
    folder.mkdir()
    (folder / "a.bin").write_bytes(b"local!!")
    (folder / "b.bin").write_bytes(b"stale, other size")
    return folder


def test_a_warm_start_runs_the_job_it_is_given_as_a_fresh_start_would(tmp_path, bucket, earlier):
    """Started ahead with no job: it waits (its imports done) until taken. The job then
    runs in it with its own environment, cores, inputs and log: the input this host has is
    a hard link it sees read-only (its write refused, the host's file untouched), the other
    comes from the store; outputs are staged out as for any run."""
    folder = tmp_path / "warm"
    process = start_spare(folder)
    wait_until(lambda: (folder / "workspace/.bml/ready").exists(), 30, 0.05, "the warm start")
    warm_pid = int((folder / "child.pid").read_text())
    assert process.poll() is None

    log = give_job(folder, process, earlier)
    assert "how warm run job-9-0" in log
    assert 'params {"nodes": []}' in log
    assert "input local!! stored" in log
    assert "the run was handed to its warm start" in log
    assert "1 file(s) of bos://runs/data/in/ linked read-only from this host" in log
    assert "cpus [0]" in log
    if sandbox.active():
        assert "write OSError" in log
    assert int((folder / "child.pid").read_text()) == warm_pid  # no new process
    assert (earlier / "a.bin").read_bytes() == b"local!!"
    assert (folder / "inputs/a.bin").stat().st_ino == (earlier / "a.bin").stat().st_ino


def test_a_warm_start_that_does_not_fit_the_job_is_put_aside(tmp_path, bucket, earlier):
    """A job that runs another program gets a fresh start in the same folder, with the same
    inputs, read-only; the waiting code is ended."""
    folder = tmp_path / "warm"
    process = start_spare(folder)
    wait_until(lambda: (folder / "workspace/.bml/ready").exists(), 30, 0.05, "the warm start")
    warm_pid = int((folder / "child.pid").read_text())
    (folder / "workspace/other.py").write_text(textwrap.dedent(CODE))

    log = give_job(folder, process, earlier, command_name="other.py")
    assert "put aside (the job runs another program): the run starts fresh" in log
    assert "how fresh run job-9-0" in log and "input local!! stored" in log
    if sandbox.active():
        assert "write OSError" in log
    assert int((folder / "child.pid").read_text()) != warm_pid


def test_a_warm_start_stops_unused(tmp_path, bucket):
    folder = tmp_path / "warm"
    process = start_spare(folder)
    wait_until(lambda: (folder / "workspace/.bml/ready").exists(), 30, 0.05, "the warm start")
    process.terminate()
    assert process.wait(30) == 0
    assert "the warm start was stopped unused" in (folder / "log.txt").read_text()
    assert not (folder / "result.json").exists()
