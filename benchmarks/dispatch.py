"""Job dispatch: median time from submit (the API call) to the job's first line of user
code, and the time to run N trivial jobs, beside a bare `subprocess` start of the same
script, in the same run. Goal: median under 0.5 s on the embedded defaults, with the sandbox
on (jobs run confined); the RESULT line shows what the sandbox adds to a start.

    .venv/bin/python benchmarks/dispatch.py [--quick | --smoke] [--jobs N] [--samples N]

--smoke (tests/benchmarks/test_smoke.py): 1 sample, 2 jobs; the goal is not judged.
"""

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bml_site.running import RunningAppliance  # noqa: E402
from workers import sandbox  # noqa: E402

FIRST_LINE = "import time; open('output/t', 'w').write(repr(time.time()))\n"


def bare_start_seconds(samples: int, confined: bool = False) -> float:
    """The floor: a new Python process running the same first line (confined: in the
    sandbox a job gets, its own user and a hidden var/)."""
    var = Path(tempfile.mkdtemp())
    workspace = var / "runs" / "bench" / "workspace"
    (workspace / "output").mkdir(parents=True)
    rules = sandbox.Confinement(workdir=workspace, hidden=[var], uid=sandbox.run_uid(1))
    sandbox.give_to_run(workspace, rules.uid)
    command = [sys.executable, "-c", FIRST_LINE]
    if confined:
        command = sandbox.command(command, rules, force=True)
    times = []
    try:
        for _ in range(samples):
            started = time.time()
            subprocess.run(command, cwd=workspace, check=True, preexec_fn=sandbox.limits(rules))
            times.append(float((workspace / "output" / "t").read_text()) - started)
    finally:
        shutil.rmtree(var, ignore_errors=True)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="5 samples, 20 jobs")
    parser.add_argument("--samples", type=int, default=15)
    parser.add_argument("--jobs", type=int, default=100)
    parser.add_argument("--smoke", action="store_true", help="1 sample, 2 jobs: runs, no figure")
    args = parser.parse_args()
    samples, batch = (5, 20) if args.quick else (args.samples, args.jobs)
    if args.smoke:
        samples, batch = 1, 2

    appliance = RunningAppliance.for_benchmark("bench-admin-pass-1")
    appliance.start()
    try:
        api = appliance.login()
        project = api.get("/api/v1/projects/").json()["results"][0]["id"]
        api.post("/api/v1/buckets/", json={"project": project, "name": "bench-jobs"})
        packages = api.get("/api/v1/resource-packages/", params={"module": "train"}).json()
        cpu = next(p["id"] for p in packages["results"] if p["device_kind"] == "cpu")

        def submit(name: str) -> str:
            response = api.post(
                "/api/v1/jobs/",
                json={
                    "name": name,
                    "project": project,
                    "algorithm": "custom_code",
                    "params": {"code": FIRST_LINE},
                    "package": cpu,
                    "output_path": "bos://bench-jobs/out/",
                },
            )
            assert response.status_code == 201, response.text
            return response.json()["job_id"]

        def wait_done(job_ids, timeout=600):
            deadline = time.monotonic() + timeout
            pending = set(job_ids)
            while pending and time.monotonic() < deadline:
                for job_id in list(pending):
                    if api.get(f"/api/v1/jobs/{job_id}/").json()["status"] not in (
                        "queued",
                        "running",
                    ):
                        pending.discard(job_id)
                time.sleep(0.05)
            assert not pending, f"{len(pending)} jobs did not finish"

        latencies = []
        for i in range(samples):
            submitted = time.time()
            job_id = submit(f"latency-{i}")
            wait_done([job_id])
            first_line = appliance.var / "runs" / job_id / "0" / "workspace" / "output" / "t"
            latencies.append(float(first_line.read_text()) - submitted)

        started = time.monotonic()
        wait_done([submit(f"batch-{i}") for i in range(batch)])
        batch_seconds = time.monotonic() - started
    finally:
        appliance.stop()

    ours = round(statistics.median(latencies), 3)
    peer = round(bare_start_seconds(samples), 3)
    confined = round(bare_start_seconds(samples, confined=True), 3) if sandbox.active() else None
    print(sandbox.describe())
    if confined is not None:
        print(f"the same start confined by the sandbox: {confined} s")
    print(
        f"submit -> first line: median {ours} s over {samples} (min {min(latencies):.3f}, "
        f"max {max(latencies):.3f}); bare subprocess start {peer} s"
    )
    print(f"{batch} trivial jobs, submit to all done: {batch_seconds:.1f} s")
    result = {
        "figure": "median seconds from job submit to its first line of user code",
        "ours": ours,
        "peer": peer,
        "ratio": round(ours / peer, 2) if peer else None,
        "goal": "< 0.5 s",
        "meets": None if args.smoke else ours < 0.5,
        "batch_jobs": batch,
        "batch_seconds": round(batch_seconds, 1),
        "sandbox": sandbox.active(),
        "sandbox_added_s": round(confined - peer, 3) if confined is not None else None,
        "smoke": args.smoke,
    }
    print("RESULT " + json.dumps(result))


if __name__ == "__main__":
    main()
