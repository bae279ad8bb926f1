"""benchmarks/gpu_check.py --cpu: the GPU host check's steps for real on this machine's CPU
(workers.supervise in the sandbox, a keyed model_serve replica, the load generator, the
AutoDL trainers supervised and bare), with the figures only a GPU can give reported as
skipped, never as met."""

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.workers.storeless import empty_store_after_each_test, object_store  # noqa: F401

ROOT = Path(__file__).resolve().parents[2]
GPU_ONLY = (
    "devices found by workers.detect",
    "training steps/s, supervised vs bare",
    "replica req/s at 32 clients, batching vs none",
    "AutoDL transfer epoch seconds, supervised vs bare",
)


def test_cpu_mode_runs_every_step_and_skips_the_gpu_figures():
    done = subprocess.run(
        [sys.executable, "benchmarks/gpu_check.py", "--cpu"],
        cwd=ROOT,
        env=dict(os.environ),  # BML_SANDBOX=required from the test settings goes along
        capture_output=True,
        text=True,
        timeout=600,
    )
    output = done.stdout + done.stderr[-4000:]
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    results = {r["figure"]: r for r in (json.loads(line[len("RESULT ") :]) for line in lines)}
    assert done.returncode == 0, output
    assert done.stdout.strip().splitlines()[-1].startswith("RESULT "), output
    assert "WARNING: django" not in done.stdout

    imports = results["data plane imports without Django"]
    assert imports["meets"] is True and imports["django_modules"] == [], imports

    run = results["run under workers.supervise sees its lease"]
    assert run["status"] == "succeeded" and run["gpus_seen"] == 0 and run["meets"] is True, run
    assert run["loss_fell"] is True and run["var_secret_visible"] is False, run

    no_gpu = results["run leased no GPU sees none"]
    assert no_gpu["status"] == "succeeded" and no_gpu["ours"] == 0 and no_gpu["meets"] is True
    assert no_gpu["device_nodes_seen"] == [] and no_gpu["cuda_visible_devices"] == ""

    replica = results["model_serve replica answers"]
    assert replica["meets"] is True and replica["ours"] == 200, replica
    assert replica["status_without_key"] == 403 and replica["device"] == "cpu"

    transfer = results["AutoDL transfer learning on the leased GPU"]
    assert transfer["meets"] is True and transfer["status"] == "succeeded", transfer
    assert transfer["device"] == "cpu" and transfer["pretrained"] is True, transfer
    assert all(transfer["files"].values()) and 0 <= transfer["ours"] <= 1, transfer
    speed = results["AutoDL transfer epoch seconds, supervised vs bare"]
    assert speed["ours"] > 0 and speed["peer"] > 0 and speed["bare_device"] == "cpu", speed

    enas = results["AutoDL ENAS run on the leased GPU"]
    assert enas["meets"] is True and enas["status"] == "succeeded", enas
    assert enas["ours"] == "cpu" and enas["model_h5"] is True, enas

    for figure in GPU_ONLY:
        assert results[figure]["skipped"].startswith("no GPU"), results[figure]
        assert results[figure].get("meets") is None, results[figure]

    summary = results["gpu check"]
    assert summary["meets"] is True and summary["failed"] == [], summary
    if os.environ.get("BML_SANDBOX") == "required":  # the suite's setting: runs are confined
        assert run["confined"] and no_gpu["confined"] and summary["sandbox"] == "on"
