"""Visual modeling (issue 23): wall time of a 6-node pipeline on a SUSY-shaped data set run
through the appliance, beside the same steps as one plain scikit-learn/pandas script.
Goal: our first run <= 1.5x the script's wall time, and a rerun after changing only the
logistic regression's C <= 0.5x our first run.

    .venv/bin/python benchmarks/visual.py [--quick | --smoke] [--rows N]

Full: 1,000,000 rows; --quick: 100,000; --smoke (tests/benchmarks/test_smoke.py): 2,000
rows, the goal not judged.

The data: 18 float features and an int 0/1 label (~46% positives), generated with numpy
from a fixed seed: the label is drawn from a logistic function of a random linear
combination of the features, so logistic regression reaches an AUC of ~0.86. It is
uploaded as a CSV and converted into a data set through the REST API (not timed).

The pipeline (REST API, /api/v1/visual-experiments/): data set -> split (0.8, seed 1) ->
standardize (the 18 features, on the training rows) -> logistic regression (binary, the
node's defaults: C 1.0, lbfgs, 100 iterations); LR.model and split.test -> prediction (it
repeats the model's fitted standardize step on the test rows: standardized once, with the
training statistics) -> binary evaluation.

"Ours": from POST runs/ to the moment GET runs/<n>/ no longer says "running" (polled every
0.1 s), so it holds everything a user waits for: each node's job start, its process start
and imports, staging its inputs in from the object store and its outputs out, the work.
The rerun: the graph PUT again with only C changed, timed the same way; its run detail must
show split and standardize "cached" (the data set node runs no job) and only LR, prediction
and evaluation run, or the benchmark fails.

"Peer": one fresh Python process (`python -c`, so its interpreter start and imports count
as ours do) that reads the data set's own parquet parts (downloaded from the appliance to a
local folder first, not timed), splits them with the split node's exact rule (same seed,
same rows), fits StandardScaler on the training rows and transforms both sets, fits
LogisticRegression with the node's settings, predicts probabilities and computes AUC and
accuracy. The parquet parts rather than the CSV: ours reads those parts, and parsing the
CSV would add seconds to the peer only (flattering us). Same rows, same model: the AUCs
must agree to 1e-6.

Same conditions on both sides, best of each: three projects, each given the data set and
one experiment of the graph (its first run computes every node, then its rerun), then two
more experiments in the last project; the script runs right before each experiment, with
the appliance up. Before every timed command, ours or the script's, the benchmark waits
until the machine is idle (under 15% CPU over a quarter second, 3 times in a row), so what
the appliance does in the background after a run (a warm start's imports) lands in neither.
Why interleaved: this VM hands memory its processes freed back to its host a couple of
seconds later (virtio balloon's free page reporting), so a process that starts after a
pause pays for every fresh page it touches: reading the same 143 MB of parquet took 1.55 s
after a 4 s pause and 0.08 s right after another run. Three script runs back to back, after
the appliance stopped, gave the script warm memory and a quiet machine that no run of ours
has (its first of three always the slowest: 6.38 s against 1.98 s for the third).

Which first run is "our first run": a pipeline's first run in a project that has run no
visual job in the last 15 minutes, so no warm start (workers.warm_starts) waits for it;
that is the goal's first run, best of three projects. Its rerun, with C changed, finds the
warm start the first run left (a user changing one setting takes longer than the ~1 s of
imports it needs). The first runs of the two later experiments of the last project find a
warm start too: printed as warm_first_s and rerun_ratio_to_warm_first, not judged.
warm_start_used says which runs took one.

Where our time goes is printed per segment job (the nodes that ran share one process,
apps.visual.execution): dispatch, stage_in (supervisor start, inputs copied from this host
or downloaded), runner (the node process: interpreter, imports, the nodes' work, their
outputs written, then uploaded), end; and per node its own compute and write seconds.
Outside any figure, the fixed cost of a fresh process importing what a runner imports is
printed too.

Measured on the 2-core development VM (1,000,000 rows; the script interleaved as above):
- Now (warm starts, the scheduler woken by datagrams, outputs converted to Arrow once):
  first runs (no warm start) 5.53 s
  (best of 6.10, 7.37, 5.53) against the script's 5.81 s (0.95x); rerun 1.83 s (best of
  2.25, 2.33, 2.13, 1.83, 2.59, each in a warm start): 0.33x. First run: dispatch 0.01 s,
  stage in 0.08, the node process 5.23 (split 0.85, standardize 1.03, LR 2.08 of which
  1.2 s waiting for scikit-learn's import, prediction 0.27), end 0.03. Rerun: dispatch
  0.01, stage in 0.03, the node process 1.69 (LR 0.88 with the fit 0.67, prediction 0.37
  and its write 0.25), end 0.03. A second run: 5.00 s against 5.93 (0.84x), rerun 1.66 s
  (0.33x). First runs that found a warm start (a later experiment in the same project):
  3.18 and 4.66 s, 2.19 and 5.06 s in the second; the best rerun is 0.58x and 0.76x of
  those, so against a first run that is itself warm the goal is not met. Earlier code of
  this session (before outputs were converted to Arrow once and a prediction's scores
  lost their parquet dictionary) measured 0.41x, 0.53x and 0.63x: the last against a
  first run of 3.65 s that caught warm memory. This VM's first runs vary from 3.6 to 7.4 s
  with its memory's state; reruns from 1.7 to 2.7 s.
- Before warm starts (views, host copies, inputs shown read-only, scikit-learn imported
  ahead; every run a fresh process, dispatch and end on the scheduler's 4 Hz tick): first
  run 5.49 s against the script's 6.20 s (0.89x), rerun 3.42 s: 0.62x. The rerun's floor
  was a fresh confined process's interpreter and imports (~1.3 s warm, ~2 s on cold
  memory) and ~0.3 s of waiting for ticks.
- Before views, script after the appliance stopped (the old, unfair way): ours 11.61 s,
  the script 2.55 s (4.56x), rerun 0.55x: every table handed on was written as parquet and
  uploaded (~300 MB), the data set's parts copied in.
- Before segments (one process per node): ours 37.2 s, the script 3.22 s: 11.5x.
"""

import argparse
import json
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bml_site.running import RunningAppliance  # noqa: E402

BASE = "/api/v1/visual-experiments/"
FEATURES = [f"f{i}" for i in range(1, 19)]
COLUMNS = ["label", *FEATURES]
SEED, RATIO = 1, 0.8

PEER = """
import json, sys
import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, roc_auc_score
from sklearn.preprocessing import StandardScaler

folder, seed, ratio, C = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
features = [f"f{i}" for i in range(1, 19)]
frame = pd.read_parquet(folder)
n = len(frame)
order = np.random.default_rng(seed).permutation(n)
train_rows = np.zeros(n, dtype=bool)
train_rows[order[: min(n, max(1, int(round(n * ratio))))]] = True
train, test = frame[train_rows], frame[~train_rows]
scaler = StandardScaler().fit(train[features])
model = LogisticRegression(C=C, max_iter=100, solver="lbfgs", random_state=0)
model.fit(scaler.transform(train[features]), train["label"])
score = model.predict_proba(scaler.transform(test[features]))[:, 1]
truth = test["label"].to_numpy()
auc, accuracy = roc_auc_score(truth, score), accuracy_score(truth, score >= 0.5)
print(json.dumps({"auc": auc, "accuracy": accuracy}))
"""


def write_csv(rows: int, path: Path) -> float:
    """The SUSY-shaped CSV (header line, label first); returns the share of positives."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.csv as csv

    shape = np.random.default_rng(23)
    scale, offset = shape.uniform(0.5, 2, 18), shape.uniform(-1, 1, 18)
    weights = shape.normal(0, 1, 18) / scale
    rng = np.random.default_rng(7)
    schema = pa.schema([("label", pa.int64())] + [(name, pa.float64()) for name in FEATURES])
    positives = 0
    with csv.CSVWriter(path, schema) as out:
        for start in range(0, rows, 250_000):
            n = min(250_000, rows - start)
            X = rng.normal(0, 1, (n, 18)) * scale + offset
            z = (X - offset) @ weights / np.sqrt((weights**2 * scale**2).sum())
            label = (rng.random(n) < 1 / (1 + np.exp(-(2.0 * z - 0.3)))).astype(np.int64)
            positives += int(label.sum())
            X = np.round(X, 7)
            out.write(pa.record_batch([label, *X.T], schema=schema))
    return positives / rows


def node(node_id: str, component: str, **params) -> dict:
    return {"id": node_id, "component": component, "x": 0, "y": 0, "params": params}


def edge(source: str, port: str, target: str, target_port: str = "table") -> dict:
    return {"from": source, "from_port": port, "to": target, "to_port": target_port}


def graph(dataset: int, C: float) -> dict:
    return {
        "nodes": [
            node("data", "dataset", dataset=dataset),
            node("split", "split", ratio=RATIO, seed=SEED),
            node("standardize", "standardize", columns=FEATURES),
            node("lr", "logistic_regression_binary", features=FEATURES, label="label", C=C),
            node("predict", "predict"),
            node("eval", "evaluate_binary", label="label"),
        ],
        "edges": [
            edge("data", "table", "split"),
            edge("split", "train", "standardize"),
            edge("standardize", "table", "lr"),
            edge("lr", "model", "predict", "model"),
            edge("split", "test", "predict"),
            edge("predict", "table", "eval"),
        ],
    }


def upload(api, project: int, csv_path: Path, rows: int, tag: str) -> int:
    """A converted data set of the CSV (not timed); its id."""
    bucket = f"bench-visual-{tag}"
    api.post("/api/v1/buckets/", json={"project": project, "name": bucket})
    with csv_path.open("rb") as body:
        stored = api.put(f"/api/v1/buckets/{bucket}/objects/susy.csv", content=body)
    assert stored.status_code == 201, stored.text
    created = api.post("/api/v1/datasets/", json={"project": project, "name": f"susy-{tag}"})
    assert created.status_code == 201, created.text
    dataset = created.json()["id"]
    types = {"label": "int"}
    response = api.post(
        f"/api/v1/datasets/{dataset}/versions/",
        json={
            "source": f"bos://{bucket}/susy.csv",
            "mode": "replace",
            "header": True,
            "columns": [{"name": name, "type": types.get(name, "float")} for name in COLUMNS],
        },
    )
    assert response.status_code == 202, response.text
    while True:
        version = api.get(f"/api/v1/datasets/{dataset}/versions/").json()[0]
        if version["status"] != "processing":
            break
        time.sleep(0.3)
    assert version["status"] == "succeeded", version["reason"]
    assert version["rows"] == rows, version["rows"]
    return dataset


def download_parts(api, dataset: int, folder: Path) -> None:
    listed = api.get(f"/api/v1/datasets/{dataset}/parquet/").json()
    folder.mkdir(parents=True)
    for index in range(len(listed["parts"])):
        response = api.get(f"/api/v1/datasets/{dataset}/parquet/?part={index}")
        assert response.status_code == 200, response.text[:300]
        (folder / f"part-{index:04d}.parquet").write_bytes(response.content)


POLLS: list[float] = []  # seconds each status request took (the polling's own load)


def settle(timeout: float = 30.0) -> float:
    """Wait until the machine is idle (under 15% CPU over a quarter second, 3 times in a row,
    at most `timeout`): what the appliance does in the background after a run (a warm
    start's imports, workers.warm_starts) must not land in the next timed command, ours
    or the script's. Returns the seconds waited."""
    started = time.monotonic()
    quiet = 0
    psutil.cpu_percent()
    while quiet < 3 and time.monotonic() - started < timeout:
        quiet = quiet + 1 if psutil.cpu_percent(interval=0.25) < 15 else 0
    return time.monotonic() - started


def timed_run(api, experiment: int) -> tuple[float, dict]:
    """(wall seconds from POST runs/ to the run no longer running, the run's detail)."""
    settle()
    started = time.monotonic()
    response = api.post(f"{BASE}{experiment}/runs/", json={})
    assert response.status_code == 201, response.text
    url = f"{BASE}{experiment}/runs/{response.json()['number']}/"
    while True:
        asked = time.monotonic()
        detail = api.get(url).json()
        POLLS.append(time.monotonic() - asked)
        if detail["status"] != "running":
            break
        time.sleep(0.1)
    seconds = time.monotonic() - started
    assert detail["status"] == "succeeded", (detail["reason"], detail["nodes"])
    return seconds, detail


def _stamp(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def breakdown(api, experiment: int, number: int, detail: dict) -> dict:
    """Where a run's time went. Its nodes that ran share segment jobs (one process each,
    apps.visual.execution): per job, from its record and its log's [bml] lines: dispatch
    (job created to its process started), stage_in (supervisor start and its inputs
    copied from this host or downloaded), runner (the node process: interpreter, imports,
    every node's work and the writing of its outputs), stage_out (the upload of the
    outputs) and end (stored to the nodes marked ended); per node, its own compute
    seconds and its outputs' write seconds (a background thread, overlapping the next
    node)."""
    jobs, nodes = {}, {}
    for node_id, view in detail["nodes"].items():
        if view["status"] != "succeeded" or not view["job_id"]:
            continue
        nodes[node_id] = {
            "compute": view["facts"].get("seconds"),
            "write": view["facts"].get("write_seconds"),
            **{
                k: view["facts"][k]
                for k in ("prepare_seconds", "fit_seconds")
                if k in view["facts"]
            },
        }
        if view["job_id"] in jobs:
            jobs[view["job_id"]]["nodes"].append(node_id)
            continue
        job = api.get(f"/api/v1/jobs/{view['job_id']}/").json()
        log = api.get(f"{BASE}{experiment}/runs/{number}/nodes/{node_id}/log/").json()["text"]
        marks = [
            (_stamp(line[1 : line.index("]")]), line)
            for line in log.splitlines()
            if line.startswith("[") and "] [bml] " in line
        ]
        staged_in = [t for t, line in marks if "] [bml] staged in" in line]
        staged_out = [t for t, line in marks if "] [bml] staged out" in line]
        instance = (job.get("runs") or [{}])[0]
        created, ended = _stamp(view["started_at"]), _stamp(view["ended_at"])
        began = _stamp(instance["started_at"]) if instance.get("started_at") else created
        entry = {
            "nodes": [node_id],
            "total": round((ended - created).total_seconds(), 2),
            "dispatch": round((began - created).total_seconds(), 2),
            "from_host": sum("from this host" in line for _, line in marks),
            "warm_start": any("handed to its warm start" in line for _, line in marks),
        }
        if staged_in and staged_out:
            entry.update(
                stage_in=round((max(staged_in) - began).total_seconds(), 2),
                runner=round((min(staged_out) - max(staged_in)).total_seconds(), 2),
                stage_out=round((max(staged_out) - min(staged_out)).total_seconds(), 2),
                end=round((ended - max(staged_out)).total_seconds(), 2),
            )
        jobs[view["job_id"]] = entry
    return {"jobs": list(jobs.values()), "nodes": nodes}


def ours(csv_path: Path, rows: int, work: Path, tag: str, tries: int) -> dict:
    """`tries` projects, each with the data set and one experiment: its first run (the
    project's first visual run: no warm start) computes every node, then its rerun. Then
    `tries - 1` more experiments in the last project, whose first runs find the warm start
    the project keeps (workers.warm_starts). The fastest of each kind counts, as the
    script's fastest run does."""
    appliance = RunningAppliance.for_benchmark("bench-admin-pass-1")
    appliance.start(timeout=300)
    try:
        api = appliance.login()
        cold, warm, scripts = [], [], []
        for k in range(tries):
            made = api.post("/api/v1/projects/", json={"name": f"bench-visual-{tag}-{k}"})
            assert made.status_code == 201, made.text
            project = made.json()["id"]
            dataset = upload(api, project, csv_path, rows, f"{tag}-{k}")
            if k == 0:
                download_parts(api, dataset, work / "parts")
            # The script right before each experiment, on the same machine in the same
            # state (the appliance up, idle): see the module's docstring.
            scripts.append(peer(work / "parts"))
            cold.append(one_experiment(api, project, dataset, f"{tag}-{k}"))
        for k in range(tries - 1):
            scripts.append(peer(work / "parts"))
            warm.append(one_experiment(api, project, dataset, f"{tag}-warm-{k}"))
    finally:
        appliance.stop()
    best = min(cold, key=lambda m: m["first_s"])
    rerun = min(cold + warm, key=lambda m: m["rerun_s"])
    return {
        **best,
        "first_runs_s": [round(m["first_s"], 2) for m in cold],
        "warm_first_runs_s": [round(m["first_s"], 2) for m in warm],
        "warm_first_s": min((m["first_s"] for m in warm), default=None),
        "reruns_s": [round(m["rerun_s"], 2) for m in cold + warm],
        "rerun_s": rerun["rerun_s"],
        "rerun_parts": rerun["rerun_parts"],
        "warm_start_used": {
            "first_runs": [any(j["warm_start"] for j in m["parts"]["jobs"]) for m in cold + warm],
            "reruns": [any(j["warm_start"] for j in m["rerun_parts"]["jobs"]) for m in cold + warm],
        },
        "scripts": scripts,
    }


def one_experiment(api, project: int, dataset: int, tag: str) -> dict:
    created = api.post(BASE, json={"project": project, "name": f"susy-{tag}"})
    assert created.status_code == 201, created.text
    experiment = created.json()["id"]
    saved = api.put(f"{BASE}{experiment}/graph/", json={"graph": graph(dataset, 1.0)})
    assert saved.status_code == 200, saved.text

    first_s, first = timed_run(api, experiment)
    first_parts = breakdown(api, experiment, first["number"], first)
    report = api.get(f"{BASE}{experiment}/runs/{first['number']}/nodes/eval/report/").json()

    saved = api.put(f"{BASE}{experiment}/graph/", json={"graph": graph(dataset, 0.5)})
    assert saved.status_code == 200, saved.text
    rerun_s, rerun = timed_run(api, experiment)
    statuses = {n: v["status"] for n, v in rerun["nodes"].items()}
    expected = {
        "data": "succeeded",
        "split": "cached",
        "standardize": "cached",
        "lr": "succeeded",
        "predict": "succeeded",
        "eval": "succeeded",
    }
    if statuses != expected or rerun["nodes"]["data"]["job_id"] is not None:
        raise SystemExit(f"the rerun did not reuse the unchanged nodes: {statuses}")
    return {
        "first_s": first_s,
        "first_api_s": first["duration_s"],
        "rerun_s": rerun_s,
        "parts": first_parts,
        "rerun_parts": breakdown(api, experiment, rerun["number"], rerun),
        "auc": report["metrics"]["auc"],
        "accuracy": report["metrics"]["accuracy"],
    }


def peer(parts: Path) -> dict:
    settle()
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-c", PEER, str(parts), str(SEED), str(RATIO), "1.0"],
        capture_output=True,
        text=True,
        check=True,
    )
    seconds = time.monotonic() - started
    return {"seconds": seconds, **json.loads(done.stdout.strip().splitlines()[-1])}


PROBES = {
    "interpreter": "pass",
    "supervisor_module": "import workers.supervise",
    "runner_module": "import workers.runners.visual.run",
    "runner_sklearn_skops": (
        "import workers.runners.visual.run, sklearn.linear_model, sklearn.metrics; "
        "from workers.runners.visual import models; models._skops()"
    ),
}


def process_costs() -> dict:
    """Seconds of a fresh process that only imports what a node's runner imports (the
    fixed cost every node pays before its work; best of 3, not part of any figure)."""
    costs = {}
    for name, code in PROBES.items():
        samples = []
        for _ in range(3):
            started = time.monotonic()
            subprocess.run([sys.executable, "-c", code], check=True)
            samples.append(time.monotonic() - started)
        costs[name] = round(min(samples), 2)
    return costs


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="100,000 rows")
    parser.add_argument("--smoke", action="store_true", help="2,000 rows: runs, no figure")
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    rows = 2_000 if args.smoke else 100_000 if args.quick else args.rows

    work = Path(tempfile.mkdtemp(prefix="bml-bench-visual-"))
    csv_path = work / "susy.csv"
    share = write_csv(rows, csv_path)
    size_mb = csv_path.stat().st_size / 1e6
    print(f"{rows:,} rows x {len(COLUMNS)} columns, {share:.1%} positives, {size_mb:.0f} MB CSV")

    tag = f"{rows}-{int(time.time() * 1000) % 10**8}"  # unique on a shared appliance
    tries = 1 if args.smoke else 3
    mine = ours(csv_path, rows, work, tag, tries)
    # The fastest of each side counts: other work on the machine only ever slows a run
    # down, so the best is each one's own time.
    runs = mine["scripts"]
    other = min(runs, key=lambda r: r["seconds"])
    for path in sorted(work.rglob("*"), reverse=True):
        path.rmdir() if path.is_dir() else path.unlink()
    work.rmdir()

    print(
        f"appliance: first run {mine['first_s']:.2f} s (best of {mine['first_runs_s']}; with a "
        f"warm start {mine['warm_first_runs_s']}; API "
        f"{mine['first_api_s']} s), rerun {mine['rerun_s']:.2f} s (best of {mine['reruns_s']}), "
        f"AUC {mine['auc']:.6f}; {len(POLLS)} status requests of "
        f"{sum(POLLS) / len(POLLS) * 1000:.0f} ms on average while runs ran"
    )
    shown = ", ".join(f"{r['seconds']:.2f}" for r in runs)
    print(f"script: {other['seconds']:.2f} s (best of {shown}), AUC {other['auc']:.6f}")
    for label, parts in (("first run", mine["parts"]), ("rerun", mine["rerun_parts"])):
        print(f"{label}: per segment job (s): {json.dumps(parts['jobs'])}")
        print(f"{label}: per node (s): {json.dumps(parts['nodes'])}")
    if abs(mine["auc"] - other["auc"]) > 1e-6:
        raise SystemExit(f"AUCs differ: ours {mine['auc']} vs the script's {other['auc']}")

    if not args.smoke:
        print(f"fixed cost of a fresh process (s): {json.dumps(process_costs())}")

    ratio = mine["first_s"] / other["seconds"]
    rerun_ratio = mine["rerun_s"] / mine["first_s"]
    warm_first = mine["warm_first_s"]
    result = {
        "figure": (
            "visual modeling: 6-node SUSY pipeline first run vs one sklearn/pandas script (wall s)"
        ),
        "ours": round(mine["first_s"], 2),
        "peer": round(other["seconds"], 2),
        "ratio": round(ratio, 2),
        "goal": "<= 1.5 and rerun <= 0.5 x first",
        "meets": None if args.smoke else ratio <= 1.5 and rerun_ratio <= 0.5,
        "rerun_s": round(mine["rerun_s"], 2),
        "rerun_ratio": round(rerun_ratio, 2),
        "rows": rows,
        "node_compute_s": {n: v["compute"] for n, v in mine["parts"]["nodes"].items()},
        "first_jobs": mine["parts"]["jobs"],
        "auc_ours": round(mine["auc"], 6),
        "auc_peer": round(other["auc"], 6),
        "peer_runs_s": [round(r["seconds"], 2) for r in runs],
        "first_runs_s": mine["first_runs_s"],
        "reruns_s": mine["reruns_s"],
        # A first run that finds a warm start (the project ran visual jobs in the last 15
        # minutes), and the rerun against it: not the goal's first run, shown all the same.
        "warm_first_s": round(warm_first, 2) if warm_first else None,
        "warm_first_runs_s": mine["warm_first_runs_s"],
        "rerun_ratio_to_warm_first": round(mine["rerun_s"] / warm_first, 2) if warm_first else None,
        "warm_start_used": mine["warm_start_used"],
        "smoke": args.smoke,
    }
    print("RESULT " + json.dumps(result))


if __name__ == "__main__":
    main()
