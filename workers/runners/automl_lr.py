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

import math
from pathlib import Path

import numpy as np
import optuna
from scipy import sparse
from scipy.stats import rankdata

from workers.runners import automl_common, automl_data, automl_search, ml_dist, ml_lr
from workers.runners.automl_common import publish_journal  # noqa: F401 - its old home
from workers.runners.ml_lr import say

TERMINATION = 1e-6  # the logistic regression job's default convergence condition
SCORED_ITERATIONS = 10  # per-epoch AUCs a trial reports for pruning (evenly spaced)
JOURNAL = automl_common.JOURNAL
PARAMETERS = ("l1", "l2", "iterations")
TABLE_FIELDS = automl_common.table_fields(PARAMETERS)


def parse_params(raw: dict) -> dict:
    return {
        "l1_range": automl_common.parse_range(raw, "l1_range", 1e-12, 1),
        "l2_range": automl_common.parse_range(raw, "l2_range", 1e-12, 1),
        "iterations_range": automl_common.parse_range(
            raw, "iterations_range", 10, 200, integer=True
        ),
        **automl_common.parse_shared(raw),
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
    return rank_auc(y, np.asarray(X @ theta[:-1]).ravel())  # the sigmoid keeps the order


def rank_auc(y: np.ndarray, scores: np.ndarray) -> float:
    """ROC AUC from the scores' ranks (Mann-Whitney U, ties at their mean rank): the value
    of sklearn's roc_auc_score in less than half its time, and scoring each trial's epochs
    was half of a search's time (benchmarks/automl.py)."""
    positive = np.asarray(y) > 0.5
    n1 = int(positive.sum())
    n0 = positive.size - n1
    if n1 == 0 or n0 == 0:
        raise ValueError("the AUC needs both labels in the tuning-test data")
    ranks = rankdata(scores)
    return float((ranks[positive].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


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
    return automl_common.table_rows(records, PARAMETERS)


def write_table(folder: Path, records: list[automl_search.TrialRecord]) -> None:
    automl_common.write_table(folder, records, PARAMETERS)


def describe(p: dict) -> str:
    return f"l1 {p['l1']:.3g}, l2 {p['l2']:.3g}, {p['iterations']} iterations"


def run(raw: dict) -> None:
    params = parse_params(raw)
    data = automl_common.prepare_data(params)
    search = automl_search.Search(
        space(params),
        params["trials"],
        seed=params["seed"],
        journal=JOURNAL,
        warmup_steps=max(5, params["iterations_range"][0] // 2),  # L-BFGS' first steps swing
    )
    automl_common.resume(search, params["resume"])
    on_round = automl_common.round_reporter(
        search, describe, lambda records: write_table(Path("log"), records)
    )
    search.run(trial_objective(data), on_round)
    best = automl_common.best_trial(search)
    if ml_dist.rank() == 0:
        final_model(data, search, best)


def final_model(
    data: automl_data.Prepared, search: automl_search.Search, best: automl_search.TrialRecord
) -> None:
    """The best setting trained on the model-training data, written to model/ in the spec's
    format, and log/search.json."""
    X, y = data.sets["model_train"]

    def progress(k: int, objective: float, _theta) -> None:
        if k % 10 == 0:
            say(f"final model: iteration {k}, objective {objective:.8g}")

    p = best.params
    theta, done = train(X, y, p["l1"], p["l2"], p["iterations"], progress)
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
        "params": {**p, "termination": TERMINATION},
        "search": {"best_trial": best.number, "tuning_auc": best.value},
    }
    ml_lr.write_model(Path("model"), model, nonzero_only=True)
    automl_common.write_summary(
        search,
        table_rows([best])[0],
        {
            "samples": int(X.shape[0]),
            "iterations": done,
            "nonzero_weights": model["nonzero_weights"],
            "tuning_test_auc": final_auc,
            "sparse": bool(sparse.issparse(X)),
        },
    )
    say(
        f"final model trained on {X.shape[0]:,} model-training samples ({done} iterations, "
        f"{model['nonzero_weights']} non-zero weights): AUC {final_auc:.5f} on the "
        "tuning-test data; written to model/"
    )


def main(argv: list[str] | None = None) -> int:
    return ml_lr.cli(run, "AutoML logistic regression", argv)


if __name__ == "__main__":
    ml_dist.exit(main())
