"""AutoML logistic regression (issue 21): how few trials our search needs to come as close
as a 100-point grid, beside a random search; and its trials per minute beside a plain
Optuna + scikit-learn script doing the same search. Data: generated SUSY-shaped dense sets
(18 features, a 0/1 label from a noisy rule, see generate()), offline, deterministic. Two
RESULT lines: the efficiency first, the throughput last.

    .venv/bin/python benchmarks/automl.py [--quick | --smoke] [--rows N] [--small-rows N]
                                          [--budget N]

Full (about 3 minutes on 2 cores): 5 draws of 60 trials; throughput on 30,000 + 30,000
rows, 60 trials, two alternated rounds. --quick (about a minute): 3 draws; throughput on
10,000 rows, 30 trials, one round. --smoke (tests/benchmarks/test_smoke.py, seconds): 2
draws of 8 trials against a 3x3 grid, 2,000-row sets; the goals are not judged.

Space: the job's defaults (the console's form): L1 and L2 log-uniform in [1e-6, 0.1],
iterations 10-100. Both figures use the job's own trial (automl_lr.trial_objective: ml_lr's
L-BFGS on tuning-train, AUC on tuning-test every tenth of the iterations for pruning, the
final AUC as the score) on an automl_data.Prepared made by automl_data.prepare from raw DENSE
files, as the job makes it.

1. Search efficiency. For each of 5 seeds s: tuning-train is a 300-row draw (its own, s),
   tuning-test one 20,000-row draw. The target is the best tuning-test AUC of the 100-point
   grid (L1 and L2 each 10 log-spaced points over their ranges, iterations = 100, the range's
   high). automl_search.Search (in-process, one instance: world size 1, the job's warm-up and
   start-up settings, seed s) runs `budget` (60) trials; the count is the number of the trial
   at which the best finished (COMPLETE) trial came within 0.001 AUC of the target, pruned
   trials counted (they spend the budget), budget + 1 if it never did. The peer is random
   search: the same Search, its TPE sampler swapped for Optuna's RandomSampler (seed s), so
   the same objective with the same pruning - only the sampler differs (TPE's random start-up
   then draws the same first trials as the peer). Figure: the median count over the seeds,
   ours and random. Goal: ours <= 33 (the issue's: a third of the grid).
   Why 300 rows: on 18 features a linear model fitted on tens of thousands of rows has a
   broad plateau - at 30,000 rows 55 of the 100 grid points are within 0.001 of the best
   (measured), every search gets there in 1-3 trials and the figure would say nothing. On a
   small tuning-train the setting matters (the optimum is inside the ranges), and the draws
   differ, so each seed has its own; "target_share" says for each how many grid points are
   within 0.001 of its best, i.e. how hard its target is.
2. Throughput. One process each, timed wall-clock from start to exit (Python start, data
   load from the same .npy arrays, the search), 30,000 rows each of tuning-train and
   tuning-test. Ours runs Search with the job's trial for `budget` trials; the peer is the
   plain script one would write: an Optuna study (default TPESampler, same seed, no pruning:
   a scikit-learn fit reports no per-iteration score) whose trial fits scikit-learn's
   LogisticRegression (solver saga, its defaults otherwise: tol 1e-4) and scores AUC on
   tuning-test. The penalty mapping: ours minimises mean log loss + l1 |w|_1 + l2/2 |w|^2,
   scikit-learn's elastic net C * sum log loss + r |w|_1 + (1 - r)/2 |w|^2; divided by n C
   that is the same objective with C = 1 / (n (l1 + l2)) and r = l1 / (l1 + l2) (the
   intercept unpenalised on both sides); max_iter = iterations (saga counts epochs, L-BFGS
   iterations: each one pass over the data or a few). The two run alternately, twice, and
   the faster of each is kept (the 2 cores are shared). Figure: trials per minute, ours /
   peer. Goal: >= 1.0. The best AUC each found is printed beside it (not part of the goal).
"""

import argparse
import contextlib
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
for _key in ("WORLD_SIZE", "RANK"):  # one instance: the search runs in this process alone
    os.environ.pop(_key, None)

import optuna  # noqa: E402

from workers.runners import automl_data, automl_lr, automl_search  # noqa: E402

RANGES = {"l1_range": (1e-6, 0.1), "l2_range": (1e-6, 0.1), "iterations_range": (10, 100)}
TOLERANCE = 0.001
GOAL_TRIALS = 33
GOAL_RATIO = 1.0


def generate(rows: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """SUSY's shape: 8 "low-level" columns (4 momenta: positive, heavy-tailed; 4 angles) and
    10 "high-level" ones derived from them (missing-energy-like magnitude, products, ratios,
    logs, cosines) or pure noise; the label a noisy rule: a sparse linear signal over the
    columns, an interaction a linear model cannot hold, and logistic noise."""
    rng = np.random.default_rng(seed)
    mom = rng.exponential(1.0, (rows, 4)) + 0.2
    ang = rng.uniform(-np.pi, np.pi, (rows, 4))
    met = np.sqrt(
        mom[:, 0] ** 2 + mom[:, 1] ** 2 + 2 * mom[:, 0] * mom[:, 1] * np.cos(ang[:, 0] - ang[:, 1])
    )
    high = np.column_stack(
        [
            met,
            mom[:, 0] * mom[:, 1],
            np.abs(np.cos(ang[:, 2])),
            mom.sum(axis=1),
            mom[:, 2] / (mom[:, 3] + 0.5),
            np.log(mom[:, 0]),
            np.cos(ang[:, 0] - ang[:, 1]),
            rng.normal(0, 1, rows),
            rng.normal(0, 1, rows),
            rng.exponential(1.0, rows),
        ]
    )
    X = np.column_stack([mom, ang, high])
    weights = np.array(
        [0.6, -0.4, 0.3, 0, 0, 0.1, 0, 0, 0.5, 0.3, -0.8, 0.2, 0, 0.4, 0, 0, 0, 0], dtype=float
    )
    # centred by the rule's own fixed means, not the sample's: both sets share one rule
    centre = np.array([1.2] * 4 + [0] * 4 + [1.6, 1.44, 0.64, 4.8, 1.0, -0.3, 0, 0, 0, 1.0])
    logit = (X - centre) @ weights + 0.5 * np.sin(ang[:, 3]) * mom[:, 2] + rng.logistic(0, 1, rows)
    return np.round(X, 6), (logit > 0).astype(np.int64)


def write_dense(path: Path, X: np.ndarray, y: np.ndarray) -> None:
    """The raw DENSE format the job reads: "No,label,w1,...,w18" (No empty)."""
    path.mkdir(parents=True)
    body = np.column_stack([y.astype(np.float64), X])
    with (path / "part-00000").open("w") as out:
        for row in body:
            out.write(f",{int(row[0])}," + ",".join(f"{v:.6f}" for v in row[1:]) + "\n")


def prepared(work: Path, train: tuple[int, int], test: tuple[int, int]) -> automl_data.Prepared:
    """The job's path: raw files (train and test: rows, draw) standardized and put on one map
    by automl_data.prepare."""
    folder = work / f"draw-{train[1]}-{test[1]}"
    for role, (rows, draw) in (("tune_train", train), ("tune_test", test)):
        write_dense(folder / "raw" / role, *generate(rows, draw))
    inputs = {role: folder / "raw" / role for role in ("tune_train", "tune_test")}
    with contextlib.redirect_stdout(io.StringIO()):  # ml_standardize's log, not ours
        return automl_data.prepare("DENSE", inputs, folder / "standardized")


def space() -> dict:
    return automl_lr.space(dict(RANGES))


def warmup_steps() -> int:
    return max(5, RANGES["iterations_range"][0] // 2)  # as automl_lr.run sets it


def grid_target(data: automl_data.Prepared, points: int) -> tuple[float, list[float]]:
    X_train, y_train = data.sets["tune_train"]
    X_test, y_test = data.sets["tune_test"]
    scores = []
    for l1 in np.geomspace(*RANGES["l1_range"], points):
        for l2 in np.geomspace(*RANGES["l2_range"], points):
            theta, _ = automl_lr.train(
                X_train, y_train, l1, l2, RANGES["iterations_range"][1], lambda *_: None
            )
            scores.append(automl_lr.auc(y_test, X_test, theta))
    return max(scores), scores


def search(data: automl_data.Prepared, budget: int, seed: int, *, random: bool) -> list:
    found = automl_search.Search(space(), budget, seed=seed, warmup_steps=warmup_steps())
    if random:  # the same study, pruner and objective: only the sampler differs
        found.study.sampler = optuna.samplers.RandomSampler(seed=seed)
    return found.run(automl_lr.trial_objective(data))


def trials_to_target(records: list, target: float, budget: int) -> int:
    for record in records:
        if record.state == automl_search.COMPLETE and record.value >= target - TOLERANCE:
            return record.number + 1
    return budget + 1


OURS = """
import json, os, sys, time
started = time.monotonic()
import numpy as np
from benchmarks.automl import RANGES, space, warmup_steps
from workers.runners import automl_data, automl_lr, automl_search
folder, budget, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
sets = {role: (np.load(f"{folder}/{role}_X.npy"), np.load(f"{folder}/{role}_y.npy"))
        for role in ("tune_train", "tune_test")}
names = [str(i) for i in range(sets["tune_train"][0].shape[1])]
data = automl_data.Prepared(sets=sets, feature_names=names, label_names=["0", "1"], format="DENSE")
loop = time.monotonic()
found = automl_search.Search(space(), budget, seed=seed, warmup_steps=warmup_steps())
records = found.run(automl_lr.trial_objective(data))
print(json.dumps({"best": found.best().value, "loop_s": time.monotonic() - loop,
                  "pruned": sum(r.state == automl_search.PRUNED for r in records),
                  "iterations": [r.params["iterations"] for r in records]}))
"""

PEER = """
import json, sys, time, warnings
import numpy as np
import optuna
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
folder, budget, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
X, y = np.load(f"{folder}/tune_train_X.npy"), np.load(f"{folder}/tune_train_y.npy")
X_test, y_test = np.load(f"{folder}/tune_test_X.npy"), np.load(f"{folder}/tune_test_y.npy")
warnings.simplefilter("ignore", ConvergenceWarning)
optuna.logging.set_verbosity(optuna.logging.WARNING)
loop = time.monotonic()

def objective(trial):
    l1 = trial.suggest_float("l1", 1e-6, 0.1, log=True)
    l2 = trial.suggest_float("l2", 1e-6, 0.1, log=True)
    iterations = trial.suggest_int("iterations", 10, 100)
    model = LogisticRegression(solver="saga", C=1 / (len(y) * (l1 + l2)), l1_ratio=l1 / (l1 + l2),
                               max_iter=iterations)
    model.fit(X, y)
    return roc_auc_score(y_test, model.decision_function(X_test))

study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed))
study.optimize(objective, n_trials=budget)
print(json.dumps({"best": study.best_value, "loop_s": time.monotonic() - loop, "pruned": 0,
                  "iterations": [t.params["iterations"] for t in study.trials]}))
"""


def timed_process(script: str, folder: Path, budget: int, seed: int) -> tuple[float, dict]:
    env = {k: v for k, v in os.environ.items() if k not in ("WORLD_SIZE", "RANK")}
    env["PYTHONPATH"] = str(ROOT)
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-c", script, str(folder), str(budget), str(seed)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    seconds = time.monotonic() - started
    if done.returncode != 0:
        raise RuntimeError(f"search process failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    return seconds, json.loads(done.stdout.strip().splitlines()[-1])


def efficiency(work: Path, sizes: dict, seeds: int, budget: int, points: int, smoke: bool):
    counts, best, pruned, shares, targets = {"ours": [], "random": []}, {}, {}, [], []
    for side in counts:
        best[side], pruned[side] = [], []
    for seed in range(seeds):
        started = time.monotonic()
        data = prepared(work, (sizes["small_rows"], 100 + seed), (sizes["test_rows"], 2))
        target, grid = grid_target(data, points)
        shares.append(sum(score >= target - TOLERANCE for score in grid))
        targets.append(round(target, 5))
        print(f"draw {seed}: grid of {len(grid)}, best AUC {target:.5f}, {shares[-1]} within "
              f"{TOLERANCE} ({time.monotonic() - started:.1f} s)", flush=True)  # fmt: skip
        for side in counts:
            started = time.monotonic()
            records = search(data, budget, seed, random=side == "random")
            counts[side].append(trials_to_target(records, target, budget))
            complete = [r.value for r in records if r.state == automl_search.COMPLETE]
            best[side].append(round(max(complete, default=float("nan")), 5))
            pruned[side].append(sum(r.state == automl_search.PRUNED for r in records))
            print(f"  {side}: within {TOLERANCE} at trial {counts[side][-1]}, best "
                  f"{best[side][-1]:.5f}, {pruned[side][-1]} pruned "
                  f"({time.monotonic() - started:.1f} s)", flush=True)  # fmt: skip
    ours_n = statistics.median(counts["ours"])
    random_n = statistics.median(counts["random"])
    return {
        "figure": "AutoML LR trials until within 0.001 AUC of a 100-point grid's best, median",
        "ours": ours_n,
        "peer": random_n,
        "ratio": round(ours_n / random_n, 3),
        "goal": f"<= {GOAL_TRIALS} trials (peer: random search, same objective and pruning)",
        "meets": None if smoke else ours_n <= GOAL_TRIALS,
        "tune_train_rows": sizes["small_rows"],
        "tune_test_rows": sizes["test_rows"],
        "budget": budget,
        "seeds": seeds,
        "grid_points": points * points,
        "grid_best_auc": targets,
        "target_share": shares,
        "ours_per_seed": counts["ours"],
        "random_per_seed": counts["random"],
        "ours_best_auc": best["ours"],
        "random_best_auc": best["random"],
        "ours_pruned": pruned["ours"],
        "random_pruned": pruned["random"],
        "smoke": smoke,
    }


def throughput(work: Path, rows: int, trials: int, rounds: int, smoke: bool) -> dict:
    data = prepared(work, (rows, 1), (rows, 2))
    arrays = work / "arrays"
    arrays.mkdir()
    for role, (X, y) in data.sets.items():
        np.save(arrays / f"{role}_X.npy", np.asarray(X))
        np.save(arrays / f"{role}_y.npy", np.asarray(y))
    runs = {"ours": [], "peer": []}
    for _ in range(rounds):  # alternated, the fastest of each kept: 2 cores shared with others
        for side, script in (("ours", OURS), ("peer", PEER)):
            seconds, said = timed_process(script, arrays, trials, 0)
            runs[side].append((seconds, said))
            print(f"{side}: {trials} trials in {seconds:.1f} s (search {said['loop_s']:.1f} s, "
                  f"{said['pruned']} pruned), best AUC {said['best']:.5f}", flush=True)  # fmt: skip
    (ours_s, ours), (peer_s, peer) = min(runs["ours"]), min(runs["peer"])
    ours_rate, peer_rate = trials / ours_s * 60, trials / peer_s * 60
    return {
        "figure": "AutoML LR trials per minute, one process, vs Optuna + scikit-learn (saga)",
        "ours": round(ours_rate, 1),
        "peer": round(peer_rate, 1),
        "ratio": round(ours_rate / peer_rate, 3),
        "goal": f">= {GOAL_RATIO}",
        "meets": None if smoke else ours_rate / peer_rate >= GOAL_RATIO,
        "rows": rows,
        "trials": trials,
        "rounds": rounds,
        "ours_s": [round(s, 2) for s, _ in runs["ours"]],
        "peer_s": [round(s, 2) for s, _ in runs["peer"]],
        "ours_search_s": round(ours["loop_s"], 2),
        "peer_search_s": round(peer["loop_s"], 2),
        "ours_best_auc": round(ours["best"], 5),
        "peer_best_auc": round(peer["best"], 5),
        "ours_pruned": ours["pruned"],
        "ours_mean_iterations": round(statistics.mean(ours["iterations"]), 1),
        "peer_mean_iterations": round(statistics.mean(peer["iterations"]), 1),
        "smoke": smoke,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="3 seeds; 10,000 rows, 30 trials")
    parser.add_argument("--smoke", action="store_true", help="tiny: runs, no figure")
    parser.add_argument("--rows", type=int, default=30_000, help="throughput's sets")
    parser.add_argument("--small-rows", type=int, default=300, help="efficiency's tuning-train")
    parser.add_argument("--budget", type=int, default=60)
    args = parser.parse_args()
    sizes = {"small_rows": args.small_rows, "test_rows": 20_000}
    seeds, points, rows, trials, rounds = 5, 10, args.rows, args.budget, 2
    if args.quick:
        seeds, rows, trials, rounds = 3, 10_000, 30, 1
    if args.smoke:
        sizes["test_rows"] = 2_000
        seeds, points, rows, trials, rounds = 2, 3, 2_000, 8, 1
    budget = 8 if args.smoke else args.budget

    with tempfile.TemporaryDirectory(prefix="bml-bench-automl-") as tmp:
        result = efficiency(Path(tmp), sizes, seeds, budget, points, args.smoke)
        print("RESULT " + json.dumps(result), flush=True)
        result = throughput(Path(tmp), rows, trials, rounds, args.smoke)
    print("RESULT " + json.dumps(result))


if __name__ == "__main__":
    main()
