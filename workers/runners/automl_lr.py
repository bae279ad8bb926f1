"""AutoML logistic regression (the spec's "AutoML Job"): a hyper-parameter search over L1,
L2 and the iterations per trial, each trial trained on the tuning-train data and scored by
AUC on the tuning-test data, then the best setting trains the final model on the
model-training data. No Django import.

Run by the job engine on each instance (2-4), the workspace as cwd:

    python -m workers.runners.automl_lr --params params.json

params.json:
    l1_range, l2_range    [low, high], 0 < low < high < 1 (drawn log-uniform)
    iterations_range      [low, high] within 10-200 (L-BFGS iterations of a trial)
    trials                10-100
    format                SPARSE_ID | SPARSE_ID_WEIGHT | DENSE (raw samples)
    tune_train, tune_test, model_train   the staged raw data (a file or a folder each)
    seed                  the sampler's seed (default 0)
    resume                the staged journal of the run this job resumes, or null

Trials are the logistic regression dichotomy's own training (ml_lr: the same objective,
L-BFGS-B with the L1 split, termination 1e-6) on this instance's full copy of the data; the
search is automl_search (Optuna TPE, median pruning on the per-iteration AUC, trials in
parallel over the instances). A resumed job's journal (its earlier trials, staged in as
`resume`) is replayed first; the journal is stored after every round (publish_journal).

Outputs (instance 0):
    model/model        the spec's format: "weight internal_id original_name" per feature
                       with a non-zero weight, then "<intercept> -1 __intercept__"
    model/model.json   as the logistic regression job's (the warehouse's
                       bml_logistic_regression type serves it), plus the search's best trial
    log/trials.csv, log/trials.json   the trial table: trial, l1, l2, iterations, auc,
                       seconds, state (COMPLETE, PRUNED, FAIL), instance, error
    log/trials.jsonl   the journal (one trial per line, appended each round)
    log/search.json    budget, best trial, final model's AUC on the tuning-test data
Curves (bml.report, step = trial number): auc of each finished trial and best_auc so far.
"""

from __future__ import annotations

import csv
import json
import math
import os
import time
from pathlib import Path

import numpy as np
import optuna
from scipy import sparse
from sklearn.metrics import roc_auc_score

from workers.runners import automl_data, automl_search, ml_dist, ml_lr
from workers.runners.ml_lr import RunnerError, say

TERMINATION = 1e-6  # the logistic regression job's default convergence condition
SCORED_ITERATIONS = 10  # per-epoch AUCs a trial reports for pruning (evenly spaced)
JOURNAL = Path("log/trials.jsonl")
TABLE_FIELDS = ("trial", "l1", "l2", "iterations", "auc", "seconds", "state", "instance", "error")


def _range(raw: dict, name: str, low: float, high: float, *, integer: bool) -> tuple:
    value = raw.get(name)
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        raise RunnerError(f"{name} must be [low, high]")
    pair = [ml_lr.number({name: v}, name, low, high, integer=integer) for v in value]
    if pair[0] > pair[1] or (not integer and pair[0] == pair[1]):
        raise RunnerError(f"{name}: low must be below high, got {value}")
    return tuple(pair)


def parse_params(raw: dict) -> dict:
    data_format = raw.get("format")
    if data_format not in automl_data.ml_data.FORMATS:
        raise RunnerError(f"format must be one of {', '.join(automl_data.ml_data.FORMATS)}")
    return {
        "l1_range": _range(raw, "l1_range", 1e-12, 1, integer=False),
        "l2_range": _range(raw, "l2_range", 1e-12, 1, integer=False),
        "iterations_range": _range(raw, "iterations_range", 10, 200, integer=True),
        "trials": ml_lr.number(raw, "trials", 10, 100, integer=True),
        "format": data_format,
        "seed": int(raw.get("seed") or 0),
        "resume": ml_lr.folder_param(raw, "resume"),
        **{role: ml_lr.folder_param(raw, role, required=True) for role in automl_data.ROLES},
    }


def space(params: dict) -> dict:
    low, high = params["iterations_range"]
    return {
        "l1": optuna.distributions.FloatDistribution(*params["l1_range"], log=True),
        "l2": optuna.distributions.FloatDistribution(*params["l2_range"], log=True),
        "iterations": optuna.distributions.IntDistribution(low, high),
    }


def probabilities(X, theta: np.ndarray) -> np.ndarray:
    return ml_lr.sigmoid(np.asarray(X @ theta[:-1]).ravel() + theta[-1])


def auc(y: np.ndarray, X, theta: np.ndarray) -> float:
    return float(roc_auc_score(y, probabilities(X, theta)))


def train(X, y, l1: float, l2: float, iterations: int, progress=None):
    """The logistic regression dichotomy's training on this process's data alone."""
    loss = ml_lr.DistributedLoss(ml_lr.LocalLoss(X, y), X.shape[0], l1, l2, collective=False)
    rate = min(max(float(y.mean()), 1e-12), 1 - 1e-12)
    b0 = math.log(rate / (1 - rate))
    theta, done, _, _ = ml_lr.minimise(loss, l1, TERMINATION, iterations, b0, progress)
    return theta, done


def trial_objective(data: automl_data.Prepared):
    X_train, y_train = data.sets["tune_train"]
    X_test, y_test = data.sets["tune_test"]

    def objective(trial: automl_search.Trial) -> float:
        p = trial.params
        every = max(1, p["iterations"] // SCORED_ITERATIONS)

        def progress(k: int, _objective: float, theta: np.ndarray) -> None:
            if k % every == 0:
                trial.report(k, auc(y_test, X_test, theta))

        theta, done = train(X_train, y_train, p["l1"], p["l2"], p["iterations"], progress)
        score = auc(y_test, X_test, theta)
        return score

    return objective


def table_rows(records: list[automl_search.TrialRecord]) -> list[dict]:
    return [
        {
            "trial": r.number,
            "l1": r.params.get("l1"),
            "l2": r.params.get("l2"),
            "iterations": r.params.get("iterations"),
            "auc": r.value,
            "seconds": r.seconds,
            "state": r.state,
            "instance": r.instance,
            "error": r.error,
        }
        for r in records
    ]


def write_table(folder: Path, records: list[automl_search.TrialRecord]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    rows = table_rows(records)
    (folder / "trials.json").write_text(json.dumps(rows, indent=1))
    with (folder / "trials.csv").open("w", newline="") as out:
        writer = csv.DictWriter(out, fieldnames=TABLE_FIELDS)
        writer.writeheader()
        writer.writerows(rows)


def publish_journal() -> None:
    """The journal to <output>/<job_id>/log/trials.jsonl after every round, through the
    run's upload grant: a run killed later leaves its finished trials where "Resume" finds
    them (a failed run's outputs are not staged out). Never fails the search."""
    if not os.environ.get("BML_STORAGE_GRANT"):
        return  # not run by the job engine (tests of the runner alone)
    try:
        from bml import storage

        grant = json.loads(Path(os.environ["BML_STORAGE_GRANT"]).read_text())
        storage.upload(JOURNAL, grant["prefix"].rstrip("/") + "/" + JOURNAL.as_posix())
    except Exception as error:  # noqa: BLE001 - resuming is a help, not the job
        say(f"could not store the trial journal for a resume: {error}")


def run(raw: dict) -> None:
    params = parse_params(raw)
    started = time.monotonic()
    problem, data = None, None
    try:
        inputs = {role: Path(params[role]) for role in automl_data.ROLES}
        data = automl_data.prepare(params["format"], inputs, Path(".automl-data"))
    except automl_data.DataProblem as error:
        problem = str(error)
    ml_lr.agree(problem)  # every instance fails alike, before the first trial
    shapes = ", ".join(
        f"{automl_data.ROLES[role]} {X.shape[0]:,}" for role, (X, _) in data.sets.items()
    )
    say(
        f"standardized with one dictionary in {time.monotonic() - started:.1f} s: {shapes} "
        f"samples, {data.feature_num:,} features, labels {data.label_names} (positive "
        f"{data.label_names[1]!r})"
    )

    search = automl_search.Search(
        space(params),
        params["trials"],
        seed=params["seed"],
        journal=JOURNAL,
        warmup_steps=max(5, params["iterations_range"][0] // 2),  # L-BFGS' first steps swing
    )
    if params["resume"]:
        journal = Path(params["resume"])
        journal = journal / JOURNAL.name if journal.is_dir() else journal
        search.replay(automl_search.read_journal(journal))
        say(f"resumed: {len(search.records)} finished trials kept from the earlier run")

    def on_round(records: list[automl_search.TrialRecord]) -> None:
        best = search.best()
        for record in records:
            shown = f"AUC {record.value:.5f}" if record.value is not None else record.error
            say(
                f"trial {record.number + 1}/{params['trials']} on instance {record.instance}: "
                f"{record.state} {shown} (l1 {record.params['l1']:.3g}, l2 "
                f"{record.params['l2']:.3g}, {record.params['iterations']} iterations, "
                f"{record.seconds:.1f} s)"
            )
            if record.state == automl_search.COMPLETE:
                ml_lr.report(record.number, auc=record.value, best_auc=best.value if best else 0)
        if ml_dist.rank() == 0:
            write_table(Path("log"), search.records)
            publish_journal()

    search.run(trial_objective(data), on_round)
    best = search.best()
    if best is None:
        raise RunnerError("no trial finished: see the trial table in log/trials.csv")
    say(f"best trial {best.number + 1}: AUC {best.value:.5f} with {best.params}")

    if ml_dist.rank() == 0:
        X, y = data.sets["model_train"]

        def progress(k: int, objective: float, _theta) -> None:
            if k % 10 == 0:
                say(f"final model: iteration {k}, objective {objective:.8g}")

        theta, done = train(
            X, y, best.params["l1"], best.params["l2"], best.params["iterations"], progress
        )
        X_test, y_test = data.sets["tune_test"]
        final_auc = auc(y_test, X_test, theta)
        w, b = theta[:-1], float(theta[-1])
        model = {
            "algorithm": "logistic_regression",
            "format": data.format,
            "weights": w.tolist(),
            "intercept": b,
            "feature_num": data.feature_num,
            "feature_names": data.feature_names,
            "label_names": data.label_names,
            "positive_label": data.label_names[1],
            "iterations": done,
            "samples": int(X.shape[0]),
            "nonzero_weights": int(np.count_nonzero(w)),
            "params": {**best.params, "termination": TERMINATION},
            "search": {"best_trial": best.number, "tuning_auc": best.value},
        }
        ml_lr.write_model(Path("model"), model, nonzero_only=True)
        summary = {
            "trials": params["trials"],
            "finished": sum(r.state == automl_search.COMPLETE for r in search.records),
            "pruned": sum(r.state == automl_search.PRUNED for r in search.records),
            "failed": sum(r.state == automl_search.FAILED for r in search.records),
            "best": table_rows([best])[0],
            "final_model": {
                "samples": int(X.shape[0]),
                "iterations": done,
                "nonzero_weights": model["nonzero_weights"],
                "tuning_test_auc": final_auc,
                "sparse": bool(sparse.issparse(X)),
            },
        }
        Path("log").mkdir(exist_ok=True)
        Path("log/search.json").write_text(json.dumps(summary, indent=1))
        say(
            f"final model trained on {X.shape[0]:,} model-training samples ({done} iterations, "
            f"{model['nonzero_weights']} non-zero weights): AUC {final_auc:.5f} on the "
            "tuning-test data; written to model/"
        )


def main(argv: list[str] | None = None) -> int:
    return ml_lr.cli(run, "AutoML logistic regression", argv)


if __name__ == "__main__":
    ml_dist.exit(main())
