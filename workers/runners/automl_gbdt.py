"""AutoML GBDT (the spec's "AutoML Job" on XGBoost trees): a hyper-parameter search over
the GBDT job's settings, each trial trained on the tuning-train data with early stopping on
the tuning-test AUC, then the best setting trains the final model on the model-training
data. No Django import.

Run by the job engine on each instance (2-4), the workspace as cwd:

    python -m workers.runners.automl_gbdt --params params.json

params.json (each range [low, high], the default when absent; "log" ranges are drawn
log-uniform):
    eta_range               within [1e-4, 1], default [0.01, 0.3], log
    max_depth_range         integers within [1, 16], default [2, 10]
    subsample_range         within [0.05, 1], default [0.5, 1]
    colsample_bytree_range  within [0.05, 1], default [0.5, 1]
    min_child_weight_range  within [1e-4, 1000], default [0.1, 10], log
    reg_lambda_range        within [1e-6, 1000], default [0.001, 10], log
    reg_alpha_range         within [1e-6, 1000], default [0.001, 10], log
    num_round_range         integers within [10, 2000], default [50, 500]: a trial's most
                            boosting rounds; early stopping ends it sooner
    scale_pos_weight        "auto" (default: negatives / positives of the tuning-train data,
                            not searched) or [low, high] within [1e-3, 1e5], log (the spec's
                            1:5000 marketing case)
    trials, format, seed, resume, tune_train, tune_test, model_train   as automl_lr's

A trial is the GBDT job's training (ml_gbdt.booster_params: binary:logistic, CPU `hist`
trees; ml_gbdt trains on the CPU, so does this) with the instance's CPU cores as threads.
It reports the tuning-test AUC every REPORT_EVERY rounds to the search (pruning) and scores
the AUC of its best round. The final model is trained for the best trial's best round count.

Outputs (instance 0):
    model/model.json, model/model_info.json, model/feature_importance   ml_gbdt.write_model's
                       (the warehouse's bml_gbdt type serves it); model_info.json also holds
                       the search's best setting
    log/trials.csv, log/trials.json   the trial table: trial, each parameter, num_round,
                       rounds (the best round count; for a pruned trial the rounds it ran),
                       auc, seconds, state, instance, error
    log/trials.jsonl   the journal (one trial per line, appended each round)
    log/search.json    budget, best trial, final model's AUC on the tuning-test data
Curves (bml.report, step = trial number): auc of each finished trial and best_auc so far.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import optuna
from scipy import sparse
from sklearn.metrics import roc_auc_score

from workers.runners import (
    automl_common,
    automl_data,
    automl_search,
    ml_data,
    ml_dist,
    ml_gbdt,
    ml_lr,
)
from workers.runners.ml_lr import RunnerError, say

REPORT_EVERY = 5  # boosting rounds between the AUCs a trial reports for pruning
WARMUP_ROUNDS = 10  # the first trees swing the AUC most; no pruning before them
ROUNDS = "rounds"  # kept in a trial's params: the record is what instances and journal share


@dataclass(frozen=True)
class Setting:
    """A searched setting: where its range may lie, its range when absent, its scale."""

    limits: tuple[float, float]
    default: tuple[float, float] | None
    log: bool = False
    integer: bool = False

    def distribution(self, low, high) -> optuna.distributions.BaseDistribution:
        if self.integer:
            return optuna.distributions.IntDistribution(low, high)
        return optuna.distributions.FloatDistribution(low, high, log=self.log)


SEARCHED = {
    "eta": Setting((1e-4, 1), (0.01, 0.3), log=True),
    "max_depth": Setting((1, 16), (2, 10), integer=True),
    "subsample": Setting((0.05, 1), (0.5, 1)),
    "colsample_bytree": Setting((0.05, 1), (0.5, 1)),
    "min_child_weight": Setting((1e-4, 1e3), (0.1, 10), log=True),
    "reg_lambda": Setting((1e-6, 1e3), (1e-3, 10), log=True),
    "reg_alpha": Setting((1e-6, 1e3), (1e-3, 10), log=True),
    "num_round": Setting((10, 2000), (50, 500), integer=True),
}
CLASS_WEIGHT = Setting((1e-3, 1e5), None, log=True)
PARAMETERS = (*SEARCHED, "scale_pos_weight", ROUNDS)  # the trial table's parameter columns


# -- settings ------------------------------------------------------------------------------


def parse_class_weight(raw: dict):
    value = raw.get("scale_pos_weight", "auto")
    if value in (None, "auto"):
        return "auto"
    if not isinstance(value, (list, tuple)):
        raise RunnerError(f'scale_pos_weight must be "auto" or [low, high], got {value!r}')
    return automl_common.parse_range(raw, "scale_pos_weight", *CLASS_WEIGHT.limits)


def parse_params(raw: dict) -> dict:
    ranges = {
        name: automl_common.parse_range(
            raw, f"{name}_range", *s.limits, integer=s.integer, default=s.default
        )
        for name, s in SEARCHED.items()
    }
    return {
        "ranges": ranges,
        "scale_pos_weight": parse_class_weight(raw),
        **automl_common.parse_shared(raw),
    }


def space(params: dict) -> dict:
    searched = {name: SEARCHED[name].distribution(*r) for name, r in params["ranges"].items()}
    if params["scale_pos_weight"] != "auto":
        searched["scale_pos_weight"] = CLASS_WEIGHT.distribution(*params["scale_pos_weight"])
    return searched


def fixed_settings(params: dict, data: automl_data.Prepared) -> dict:
    """The settings every trial shares: the class weight when "auto" (the tuning-train
    data's negatives per positive, one number for the whole search and the final model)."""
    if params["scale_pos_weight"] != "auto":
        return {}
    y = data.sets["tune_train"][1]
    positives = float(np.sum(y == 1))
    weight = (len(y) - positives) / positives if positives else 1.0
    say(f"class weighting: scale_pos_weight = {weight:.4g} (tuning-train negatives/positives)")
    return {"scale_pos_weight": weight}


# -- training ------------------------------------------------------------------------------


def cpu_threads() -> int:
    """The instance's cores: the job engine sets OMP_NUM_THREADS from the run's CPU lease;
    XGBoost would otherwise take every core of the machine."""
    try:
        return max(1, int(os.environ["OMP_NUM_THREADS"]))
    except (KeyError, ValueError):
        return len(os.sched_getaffinity(0))


def standardized(data: automl_data.Prepared, role: str) -> ml_data.Standardized:
    """A prepared set as the GBDT job's own code takes it (booster_params, write_model)."""
    X, y = data.sets[role]
    info = {"format": data.format, "type": "classification", "label_num": 2}
    return ml_data.Standardized(info, X, y, [], data.feature_names, data.label_names)


def booster_settings(data: automl_data.Prepared, settings: dict, seed: int) -> dict:
    """The GBDT job's booster parameters for `settings`, scored by AUC alone."""
    chosen = {k: v for k, v in settings.items() if k not in ("num_round", ROUNDS)}
    booster = ml_gbdt.booster_params(chosen | {"seed": seed}, standardized(data, "tune_train"), 2)
    return booster | {"eval_metric": "auc", "nthread": cpu_threads()}


def matrix(X, y):
    import xgboost as xgb

    return xgb.DMatrix(X, label=y, missing=np.nan)


def pruning_callback(trial: automl_search.Trial):
    import xgboost as xgb

    class ReportToSearch(xgb.callback.TrainingCallback):
        """The tuning-test AUC every few rounds to the search, which may prune the trial
        (optuna.TrialPruned leaves xgb.train through this callback)."""

        def after_iteration(self, model, epoch: int, evals_log: dict) -> bool:
            rounds = epoch + 1
            if rounds % REPORT_EVERY == 0:
                trial.record.params[ROUNDS] = rounds  # how far a pruned trial got
                trial.report(rounds, evals_log["tune_test"]["auc"][-1])
            return False

    return ReportToSearch()


def early_stopping_rounds(num_round: int, eta: float) -> int:
    """Rounds without a better tuning-test AUC before a trial stops: a tenth of its rounds,
    and longer for a small eta, whose trees move the scores slowly (on rare-class data the
    first trees of such a trial may not split at all, the AUC flat at 0.5)."""
    return max(10, num_round // 10, math.ceil(0.5 / eta))


def trial_objective(data: automl_data.Prepared, fixed: dict, seed: int):
    dtrain, dtest = matrix(*data.sets["tune_train"]), matrix(*data.sets["tune_test"])

    def objective(trial: automl_search.Trial) -> float:
        import xgboost as xgb

        settings = fixed | trial.params
        history: dict = {}
        xgb.train(
            booster_settings(data, settings, seed),
            dtrain,
            num_boost_round=settings["num_round"],
            evals=[(dtest, "tune_test")],
            early_stopping_rounds=early_stopping_rounds(settings["num_round"], settings["eta"]),
            evals_result=history,
            callbacks=[pruning_callback(trial)],
            verbose_eval=False,
        )
        aucs = history["tune_test"]["auc"]
        best = int(np.argmax(aucs))  # the first of equal AUCs: the fewer rounds
        trial.record.params[ROUNDS] = best + 1
        return float(aucs[best])

    return objective


# -- the log -------------------------------------------------------------------------------


def describe(p: dict) -> str:
    weight = p.get("scale_pos_weight")
    return (
        f"eta {p['eta']:.3g}, depth {p['max_depth']}, subsample {p['subsample']:.2f}, "
        f"colsample {p['colsample_bytree']:.2f}, min_child_weight {p['min_child_weight']:.3g}, "
        f"lambda {p['reg_lambda']:.3g}, alpha {p['reg_alpha']:.3g}"
        + (f", scale_pos_weight {weight:.3g}" if weight is not None else "")
        + f", {p.get(ROUNDS, '?')}/{p['num_round']} rounds"
    )


def write_table(folder: Path, records: list[automl_search.TrialRecord], fixed: dict) -> None:
    automl_common.write_table(folder, records, PARAMETERS, fixed)


# -- the job -------------------------------------------------------------------------------


def run(raw: dict) -> None:
    params = parse_params(raw)
    data = automl_common.prepare_data(params)
    fixed = fixed_settings(params, data)
    search = automl_search.Search(
        space(params),
        params["trials"],
        seed=params["seed"],
        journal=automl_common.JOURNAL,
        warmup_steps=WARMUP_ROUNDS,
    )
    automl_common.resume(search, params["resume"])
    on_round = automl_common.round_reporter(
        search, describe, lambda records: write_table(Path("log"), records, fixed)
    )
    search.run(trial_objective(data, fixed, params["seed"]), on_round)
    best = automl_common.best_trial(search)
    if ml_dist.rank() == 0:
        final_model(data, search, best, fixed, params["seed"])


def final_model(
    data: automl_data.Prepared,
    search: automl_search.Search,
    best: automl_search.TrialRecord,
    fixed: dict,
    seed: int,
) -> None:
    """The best setting trained on the model-training data for the best trial's round
    count, written by the GBDT job's write_model; and log/search.json."""
    import xgboost as xgb

    X, y = data.sets["model_train"]
    settings = fixed | best.params
    rounds = int(settings[ROUNDS])
    booster = xgb.train(booster_settings(data, settings, seed), matrix(X, y), rounds)
    X_test, y_test = data.sets["tune_test"]
    final_auc = float(roc_auc_score(y_test, booster.predict(matrix(X_test, y_test))))

    ml_gbdt.write_model(booster, standardized(data, "model_train"), Path("model"))
    info_path = Path("model/model_info.json")
    info = json.loads(info_path.read_text())
    info["search"] = {"best_trial": best.number, "tuning_auc": best.value, "params": settings}
    info_path.write_text(json.dumps(info, indent=1))

    automl_common.write_summary(
        search,
        automl_common.table_rows([best], PARAMETERS, fixed)[0],
        {
            "samples": int(X.shape[0]),
            "rounds": rounds,
            "scale_pos_weight": settings.get("scale_pos_weight"),
            "tuning_test_auc": final_auc,
            "sparse": bool(sparse.issparse(X)),
        },
    )
    say(
        f"final model trained on {X.shape[0]:,} model-training samples ({rounds} rounds): "
        f"AUC {final_auc:.5f} on the tuning-test data; written to model/"
    )


def main(argv: list[str] | None = None) -> int:
    return ml_lr.cli(run, "AutoML GBDT", argv)


if __name__ == "__main__":
    ml_dist.exit(main())
