"""Every benchmark runs at its --smoke size (the smallest run of its whole path), so none
rots: it exits 0 and its last RESULT line has DESIGN.md's fields, marked "smoke" and with
its goal not judged ("meets": null). benchmarks/*.py is globbed: a new benchmark is run
here the day it is added, and must take --smoke. No time is asserted.

The benchmarks that measure through a running appliance share one, started here
(BML_BENCH_APPLIANCE, RunningAppliance.for_benchmark): a start takes about a minute on 2
cores, and one per benchmark would make this file cost minutes more.
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bml_site.running import RunningAppliance
from tests.conftest import child_env
from tests.workers.storeless import empty_store_after_each_test, object_store  # noqa: F401

ROOT = Path(__file__).resolve().parents[2]
SKIPPED = {
    # GPU-only; its --cpu mode is run by tests/workers/test_gpu_check.py.
    "gpu_check.py",
}
BENCHMARKS = sorted(p.name for p in (ROOT / "benchmarks").glob("*.py") if p.name not in SKIPPED)
FIELDS = ("figure", "ours", "peer", "ratio", "goal", "meets")


@pytest.fixture(scope="module")
def shared_appliance():
    appliance = RunningAppliance.throwaway("bench-admin-pass-1")
    try:
        appliance.start()
    except RuntimeError as exc:
        pytest.fail(str(exc))
    yield appliance
    appliance.stop()


def test_every_benchmark_is_found():
    assert {"storage.py", "serving.py", "ml.py", "autodl.py"} <= set(BENCHMARKS)
    assert all((ROOT / "benchmarks" / name).is_file() for name in SKIPPED)


@pytest.mark.parametrize("script", BENCHMARKS)
def test_smoke_run_prints_an_unjudged_result(script, request):
    source = (ROOT / "benchmarks" / script).read_text()
    extra = {}
    if "RunningAppliance" in source:
        extra = request.getfixturevalue("shared_appliance").shared_env()
    done = subprocess.run(
        [sys.executable, f"benchmarks/{script}", "--smoke"],
        cwd=ROOT,
        env=child_env(**extra),
        capture_output=True,
        text=True,
        timeout=300,
    )
    output = f"{done.stdout[-3000:]}\n--- stderr ---\n{done.stderr[-3000:]}"
    assert done.returncode == 0, output
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    assert lines, output
    assert done.stdout.strip().splitlines()[-1] == lines[-1], "RESULT is not the last line"
    result = json.loads(lines[-1].removeprefix("RESULT "))
    assert set(FIELDS) <= result.keys(), result
    assert isinstance(result["figure"], str) and result["figure"], result
    assert result["smoke"] is True, result
    assert result["meets"] is None, result  # a goal is not judged at the smoke size
