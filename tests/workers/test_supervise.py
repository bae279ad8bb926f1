"""workers.supervise: a real child process, the real store, real user code."""

import io
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from datetime import timedelta

import psutil
import pytest
from django.conf import settings

from apps.storage import grants
from apps.storage.client import get_client
from tests.conftest import ROOT, wait_until


@pytest.fixture
def bucket(object_store):
    client = get_client()
    client.make_bucket("runs")
    return "runs"


@pytest.fixture
def make_run(tmp_path, bucket):
    def make(code: str, **overrides):
        run_dir = tmp_path / "run"
        workspace = tmp_path / "workspace"
        run_dir.mkdir()
        workspace.mkdir()
        (workspace / "main.py").write_text(textwrap.dedent(code))
        stage_in = [
            {
                "dest": item["dest"],
                **grants.input_files(item["uri"], item.get("shard"), item.get("split_rows")),
                **({"local": item["local"]} if item.get("local") else {}),
                **({"host_files": item["host_files"]} if item.get("host_files") else {}),
            }
            for item in overrides.pop("stage_in", [])
        ]
        config = {
            "run_id": "job-1-worker-0",
            "workspace": str(workspace),
            "command": [sys.executable, "main.py"],
            "env": {"CUDA_VISIBLE_DEVICES": "1"},
            "time_limit_s": 60,
            "grant": grants.upload_grant("bos://runs/out/job-1/", timedelta(minutes=10)),
            "stage_in": stage_in,
            "stage_out": [{"src": "output", "uri": "bos://runs/out/job-1/output/"}],
            "log_uri": "bos://runs/out/job-1/log/",
            **overrides,
        }
        (run_dir / "run.json").write_text(json.dumps(config))
        return run_dir

    return make


def supervise(run_dir, wait=True):
    env = {**os.environ, "BML_SECRET_KEY": "appliance-secret-that-must-not-leak"}
    process = subprocess.Popen(
        [sys.executable, "-m", "workers.supervise", "--config", str(run_dir / "run.json")],
        cwd=ROOT,
        env=env,
        start_new_session=True,
    )
    if wait:
        process.wait(120)
    return process


def result_of(run_dir) -> dict:
    return json.loads((run_dir / "result.json").read_text())


def stored(key: str) -> bytes:
    return get_client().get_object("runs", key).read()


def test_success_stages_in_runs_and_stages_out(make_run):
    client = get_client()
    client.put_object("runs", "data/train/a.csv", io.BytesIO(b"1,2\n3,4\n"), 8)
    run_dir = make_run(
        """
        import os
        rows = open("train_data/a.csv").read().splitlines()
        open("output/model.txt", "w").write(f"rows={len(rows)}")
        print("trained on", len(rows), "rows; sees GPU", os.environ["CUDA_VISIBLE_DEVICES"])
        """,
        stage_in=[{"uri": "bos://runs/data/train/", "dest": "train_data"}],
    )
    assert supervise(run_dir).returncode == 0
    result = result_of(run_dir)
    assert result["status"] == "succeeded" and result["exit_code"] == 0
    assert stored("out/job-1/output/model.txt") == b"rows=2"
    log = stored("out/job-1/log/job-1-worker-0.log").decode()
    assert "trained on 2 rows; sees GPU 1" in log
    assert "staged in 1 file(s)" in log


def test_inputs_this_host_holds_are_shown_read_only_or_copied(make_run, tmp_path):
    """An input an earlier run left on this host (`local`, same size as the store's) is
    not fetched: a confined run sees the host's file through a read-only bind (nothing
    copied, nothing it can change); an unconfined one gets a copy. A file whose size
    differs comes from the store. `host_files` (files the store does not have) are shown
    the same way while they are there; one that is gone is only noted."""
    from workers import sandbox

    get_client().put_object("runs", "data/in/a.bin", io.BytesIO(b"stored!"), 7)
    get_client().put_object("runs", "data/in/b.bin", io.BytesIO(b"stored"), 6)
    earlier = tmp_path / "earlier"
    earlier.mkdir()
    (earlier / "a.bin").write_bytes(b"local!!")  # same size as the store's: used
    (earlier / "b.bin").write_bytes(b"stale, other size")  # not used
    (earlier / "fast.arrow").write_bytes(b"kept here")
    host_files = [
        {"path": str(earlier / "fast.arrow"), "name": "fast.arrow"},
        {"path": str(earlier / "gone.arrow"), "name": "gone.arrow"},
    ]
    run_dir = make_run(
        """
        import os
        print("extra", open("inputs/fast.arrow").read(), os.path.exists("inputs/gone.arrow"))
        a, b = open("inputs/a.bin").read(), open("inputs/b.bin").read()
        try:
            open("inputs/a.bin", "w").write("changed")
            wrote = "wrote"
        except OSError as exc:
            wrote = type(exc).__name__
        print(f"a={a} b={b} {wrote}")
        """,
        stage_in=[
            {
                "uri": "bos://runs/data/in/",
                "dest": "inputs",
                "local": str(earlier),
                "host_files": host_files,
            }
        ],
    )
    assert supervise(run_dir).returncode == 0
    log = stored("out/job-1/log/job-1-worker-0.log").decode()
    assert "extra kept here False" in log and "gone.arrow of" in log
    if sandbox.active():
        assert "a=local!! b=stored OSError" in log
        assert "1 file(s) of bos://runs/data/in/ shown read-only from this host" in log
    else:
        assert "a=local!! b=stored wrote" in log and "copied from this host" in log
    assert (earlier / "a.bin").read_bytes() == b"local!!"  # the host's file is untouched


def test_failure_keeps_the_log_and_skips_outputs(make_run):
    run_dir = make_run(
        """
        open("output/partial.txt", "w").write("half")
        raise RuntimeError("bad learning rate")
        """
    )
    supervise(run_dir)
    result = result_of(run_dir)
    assert result["status"] == "failed"
    assert result["reason"] == "user code exited with code 1"
    assert "RuntimeError: bad learning rate" in stored("out/job-1/log/job-1-worker-0.log").decode()
    assert not list(get_client().list_objects("runs", prefix="out/job-1/output/"))


def test_time_limit_ends_the_run_timed_out_with_its_log(make_run):
    run_dir = make_run(
        """
        import time
        print("starting a long epoch", flush=True)
        time.sleep(60)
        """,
        time_limit_s=1,
    )
    started = time.monotonic()
    supervise(run_dir)
    assert time.monotonic() - started < 20
    result = result_of(run_dir)
    assert result["status"] == "timed_out"
    assert "maximum running time of 1 s" in result["reason"]
    assert "starting a long epoch" in stored("out/job-1/log/job-1-worker-0.log").decode()


def test_terminate_kills_the_whole_process_tree(make_run):
    run_dir = make_run(
        """
        import subprocess, sys, time
        marker = "import time; time.sleep(120)  # grandchild-of-supervise-test"
        child = subprocess.Popen([sys.executable, "-c", marker])
        open("grandchild.pid", "w").write(str(child.pid))
        print("running", flush=True)
        time.sleep(120)
        """
    )
    process = supervise(run_dir, wait=False)
    workspace = run_dir.parent / "workspace"
    wait_until(lambda: (workspace / "grandchild.pid").exists(), what="user code to start")

    def grandchildren():  # by command line: inside the sandbox's pid namespace pids differ
        found = []
        for p in psutil.process_iter(["cmdline", "status"]):
            cmdline = " ".join(p.info["cmdline"] or [])
            if "grandchild-of-supervise-test" in cmdline and p.info["status"] != "zombie":
                found.append(p)
        return found

    wait_until(grandchildren, what="the grandchild to be seen")
    process.send_signal(signal.SIGTERM)
    process.wait(30)
    assert result_of(run_dir)["status"] == "terminated"
    wait_until(lambda: not grandchildren(), timeout=10, what="the grandchild to die")
    assert b"running" in stored("out/job-1/log/job-1-worker-0.log")


def test_user_code_sees_none_of_the_appliances_secrets(make_run):
    run_dir = make_run(
        """
        import json, os
        json.dump(dict(os.environ), open("output/env.json", "w"))
        """
    )
    supervise(run_dir)
    env = json.loads(stored("out/job-1/output/env.json"))
    assert "BML_SECRET_KEY" not in env and "DJANGO_SETTINGS_MODULE" not in env
    assert not [k for k in env if k.startswith(("BML_VAR", "BML_DATABASE", "BML_DEVICES"))]
    assert env["HOME"].endswith("workspace") and env["CUDA_VISIBLE_DEVICES"] == "1"
    assert "appliance-secret-that-must-not-leak" not in json.dumps(env)
    # no store keys anywhere the user code can read: not in its environment, not in run.json
    store_secret = settings.S3["secret_key"]
    assert not [k for k in env if k.startswith("BML_S3")]
    assert store_secret not in json.dumps(env)
    assert store_secret not in (run_dir / "run.json").read_text()


def test_user_code_may_write_under_its_own_output_folder_only(make_run):
    get_client().put_object("runs", "other/keep.txt", io.BytesIO(b"keep"), 4)
    run_dir = make_run(
        """
        import json, os
        import httpx
        from bml import storage

        open("ckpt.txt", "w").write("epoch 1")
        print(storage.upload("ckpt.txt", "bos://runs/out/job-1/checkpoints/"))
        try:
            storage.upload("ckpt.txt", "bos://runs/other/keep.txt")
        except PermissionError as exc:
            print("refused by the sdk:", exc)
        try:
            storage.list("bos://runs/other/")
        except PermissionError as exc:
            print("no reading:", exc)
        # going around the SDK with the grant itself: the store refuses the key
        grant = json.load(open(os.environ["BML_STORAGE_GRANT"]))
        answer = httpx.post(grant["url"], data={**grant["fields"], "key": "other/keep.txt"},
                            files={"file": ("x", b"overwritten")})
        print("store answered", answer.status_code)
        """
    )
    supervise(run_dir)
    assert result_of(run_dir)["status"] == "succeeded"
    log = stored("out/job-1/log/job-1-worker-0.log").decode()
    assert "['bos://runs/out/job-1/checkpoints/ckpt.txt']" in log
    assert "refused by the sdk: This run may write only under bos://runs/out/job-1/" in log
    assert "no reading: A job run reads its data from train_data/" in log
    assert "store answered 403" in log
    assert stored("out/job-1/checkpoints/ckpt.txt") == b"epoch 1"
    assert stored("other/keep.txt") == b"keep"


def test_missing_training_data_fails_with_a_staging_reason(make_run):
    run_dir = make_run(
        "print('never runs')",
        stage_in=[{"uri": "bos://runs/no-such-folder/", "dest": "train_data"}],
    )
    supervise(run_dir)
    result = result_of(run_dir)
    assert result["status"] == "failed"
    assert "no-such-folder" in result["reason"]
    log = stored("out/job-1/log/job-1-worker-0.log").decode()
    assert "never runs" not in log and "run failed" in log


def test_stage_in_cannot_escape_the_workspace(make_run):
    run_dir = make_run("print('x')", stage_in=[{"uri": "bos://runs/d/", "dest": "../outside"}])
    supervise(run_dir)
    assert "escapes the workspace" in result_of(run_dir)["reason"]


def test_an_instance_stages_in_only_its_share_of_the_files(make_run):
    client = get_client()
    for name in ("a.csv", "b.csv", "c.csv"):
        client.put_object("runs", f"data/{name}", io.BytesIO(b"x"), 1)
    run_dir = make_run(
        """
        import os
        open("output/seen.txt", "w").write(",".join(sorted(os.listdir("train_data"))))
        """,
        stage_in=[{"uri": "bos://runs/data/", "dest": "train_data", "shard": [1, 2]}],
    )
    supervise(run_dir)
    assert result_of(run_dir)["status"] == "succeeded"
    assert stored("out/job-1/output/seen.txt") == b"b.csv"
    assert "(share 2 of 2)" in stored("out/job-1/log/job-1-worker-0.log").decode()


SHOW_TRAIN_DATA = """
import os
seen = {n: open(f"train_data/{n}", "rb").read().decode() for n in os.listdir("train_data")}
open("output/seen.txt", "w").write(repr(seen))
"""


def test_an_instance_stages_in_only_its_rows_of_a_single_file(make_run):
    data = b"1,0,a\r\n2,1,bb\r\n3,0,c\r\n4,1,dd"
    get_client().put_object("runs", "data/samples.txt", io.BytesIO(data), len(data))
    item = {"uri": "bos://runs/data/samples.txt", "dest": "train_data", "split_rows": True}
    run_dir = make_run(SHOW_TRAIN_DATA, stage_in=[item | {"shard": [1, 2]}])
    supervise(run_dir)
    assert result_of(run_dir)["status"] == "succeeded"
    assert stored("out/job-1/output/seen.txt") == repr({"samples.txt": "3,0,c\r\n4,1,dd"}).encode()
    log = stored("out/job-1/log/job-1-worker-0.log").decode()
    assert "staged in 13 byte(s) of whole lines from 1 file(s)" in log
    assert "(share 2 of 2: the lines that begin in its 1/2 of the bytes)" in log
    assert "no data" not in log


@pytest.mark.parametrize(
    "source, split_rows, warning",
    [
        (
            "bos://runs/data/one.txt",
            True,
            "warning: instance 3 of 3 has no data: no line of bos://runs/data/one.txt "
            "(8 byte(s) in 1 file(s)) begins in its 1/3 of the bytes",
        ),
        (
            "bos://runs/data/",
            False,
            "warning: instance 3 of 3 has no data: bos://runs/data/ holds 1 file(s), fewer "
            "than the 3 instances",
        ),
    ],
)
def test_an_instance_left_without_data_says_so_and_runs(make_run, source, split_rows, warning):
    get_client().put_object("runs", "data/one.txt", io.BytesIO(b"1,0,2,3\n"), 8)
    item = {"uri": source, "dest": "train_data", "shard": [2, 3], "split_rows": split_rows}
    run_dir = make_run(SHOW_TRAIN_DATA, stage_in=[item])
    supervise(run_dir)
    assert result_of(run_dir)["status"] == "succeeded"
    assert stored("out/job-1/output/seen.txt") == b"{}"
    assert warning in stored("out/job-1/log/job-1-worker-0.log").decode()


def dead_store_grant() -> dict:
    """A grant like the scheduler issues, but for a store that no longer listens there (the
    appliance restarted and the store came up elsewhere, or it is down)."""
    from apps.storage.embedded import free_port

    grant = grants.upload_grant("bos://runs/out/job-1/", timedelta(minutes=10))
    return {**grant, "url": f"http://127.0.0.1:{free_port()}/runs"}


def test_outputs_the_store_could_not_take_wait_and_are_staged_out_again(make_run):
    run_dir = make_run(
        """
        open("output/model.txt", "w").write("weights")
        print("trained")
        """,
        grant=dead_store_grant(),
    )
    supervise(run_dir)
    result = result_of(run_dir)
    assert result["status"] == "staging" and result["outcome"] == "succeeded"
    assert result["pending"] == ["bos://runs/out/job-1/output/", "log"]
    assert "ConnectError" in result["staging_error"]
    workspace = run_dir.parent / "workspace"
    assert (workspace / "output" / "model.txt").read_text() == "weights"  # kept
    assert not list(get_client().list_objects("runs", prefix="out/", recursive=True))

    # The store answers again; the scheduler writes a fresh grant and asks for a retry.
    fresh = grants.upload_grant("bos://runs/out/job-1/", timedelta(minutes=10))
    (run_dir / "grant.json").write_text(json.dumps(fresh))
    retry = subprocess.run(
        [sys.executable, "-m", "workers.supervise", "--config", str(run_dir / "run.json")]
        + ["--stage-out"],
        cwd=ROOT,
        timeout=60,
    )
    assert retry.returncode == 0
    result = result_of(run_dir)
    assert result["status"] == "succeeded" and "pending" not in result
    assert stored("out/job-1/output/model.txt") == b"weights"
    log = stored("out/job-1/log/job-1-worker-0.log").decode()
    assert "trained" in log and "outputs not stored" in log and "staging out again" in log
