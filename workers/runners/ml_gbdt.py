"""GBDT on standardized data (XGBoost, `hist` trees): the spec's risk-control and 1:5000
marketing cases. Binary classification (with class weighting), multi-class or regression,
as the data's type and labels say.

    python -m workers.runners.ml_gbdt --params params.json      (cwd: the job's workspace)

params.json: num_round, max_depth, eta, subsample, colsample_bytree, min_child_weight,
gamma, reg_lambda, reg_alpha, scale_pos_weight (a number, or "auto" for negatives /
positives of the training data), train / evaluate / predict (standardized folders or null),
model_dir, evaluate_dir, predict_dir.

With several instances each trains on its share of the rows and XGBoost's own collective
(a tracker on instance 0, its address passed over torch.distributed) builds every tree from
all of them: data-parallel, one model. Outputs: model/model.json (XGBoost's format),
model/model_info.json (format, type, feature_names, label_names, objective: for serving on raw
samples), model/feature_importance ("gain id original_name", most important first), evaluate/
metrics, predict/part-<rank> ("No,prediction,label"). No Django import.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from workers.runners import ml_data, ml_dist, ml_metrics


def report(**values) -> None:
    try:
        import bml

        bml.report(**values)
    except Exception:  # curves are a nicety; training goes on without the SDK
        pass


def objective_for(train: ml_data.Standardized, classes: int) -> dict:
    if train.info["type"] == "regression":
        return {"objective": "reg:squarederror", "eval_metric": "rmse"}
    if classes == 2:
        return {"objective": "binary:logistic", "eval_metric": ["logloss", "auc"]}
    return {"objective": "multi:softprob", "num_class": classes, "eval_metric": "mlogloss"}


def booster_params(params: dict, train: ml_data.Standardized, classes: int) -> dict:
    settings = {
        "tree_method": "hist",
        "max_depth": int(params.get("max_depth", 6)),
        "eta": float(params.get("eta", 0.3)),
        "subsample": float(params.get("subsample", 1.0)),
        "colsample_bytree": float(params.get("colsample_bytree", 1.0)),
        "min_child_weight": float(params.get("min_child_weight", 1.0)),
        "gamma": float(params.get("gamma", 0.0)),
        "lambda": float(params.get("reg_lambda", 1.0)),
        "alpha": float(params.get("reg_alpha", 0.0)),
        "seed": int(params.get("seed", 0)),
        **objective_for(train, classes),
    }
    weight = params.get("scale_pos_weight", 1.0)
    if settings["objective"] == "binary:logistic":
        if weight == "auto":  # the spec's 1:5000 case: weigh the rare class up
            positives, total = ml_dist.allreduce_sum([np.sum(train.y == 1), len(train.y)])
            weight = (total - positives) / positives if positives else 1.0
            print(f"class weighting: scale_pos_weight = {weight:.3f}", flush=True)
        settings["scale_pos_weight"] = float(weight)
    return settings


def matrix(data: ml_data.Standardized):
    import xgboost as xgb

    return xgb.DMatrix(data.X, label=data.y, missing=np.nan)


def train_model(params: dict, train: ml_data.Standardized):
    import xgboost as xgb

    classes = int(train.info.get("label_num") or 0) or len(np.unique(train.y))
    settings = booster_params(params, train, classes)
    evals_result: dict = {}

    class Curves(xgb.callback.TrainingCallback):
        def after_iteration(self, model, epoch, evals_log):
            if ml_dist.rank() == 0:
                latest = {
                    f"{name}_{metric}": values[-1]
                    for name, metrics in evals_log.items()
                    for metric, values in metrics.items()
                }
                report(step=epoch + 1, **latest)
                if (epoch + 1) % 10 == 0:
                    shown = ", ".join(f"{k} {v:.5f}" for k, v in latest.items())
                    print(f"round {epoch + 1}: {shown}", flush=True)
            return False

    dtrain = matrix(train)
    booster = xgb.train(
        settings,
        dtrain,
        num_boost_round=int(params.get("num_round", 100)),
        evals=[(dtrain, "train")],
        evals_result=evals_result,
        callbacks=[Curves()],
        verbose_eval=False,
    )
    return booster, settings


def write_model(booster, train: ml_data.Standardized, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    booster.save_model(str(folder / "model.json"))
    # What serving the model on raw samples needs (workers/runners/model_loaders_bml.py).
    info = {
        "algorithm": "gbdt",
        "format": train.info.get("format"),
        "type": train.info.get("type"),
        "feature_names": train.feature_names or [str(i) for i in range(train.X.shape[1])],
        "label_names": train.label_names,
        "objective": json.loads(booster.save_config())["learner"]["objective"]["name"],
    }
    (folder / "model_info.json").write_text(json.dumps(info, indent=1))
    gains = booster.get_score(importance_type="gain")  # keys "f<id>"
    ranked = sorted(((float(v), int(k[1:])) for k, v in gains.items()), reverse=True)
    with (folder / "feature_importance").open("w") as out:
        for gain, fid in ranked:
            name = train.feature_names[fid] if fid < len(train.feature_names) else str(fid)
            out.write(f"{gain:.6g} {fid} {name}\n")


def predictions(booster, data: ml_data.Standardized, settings: dict) -> np.ndarray:
    return booster.predict(matrix(data))


def evaluate(booster, data: ml_data.Standardized, settings: dict) -> dict:
    scores = predictions(booster, data, settings)
    objective = settings["objective"]
    if objective == "binary:logistic":
        return ml_metrics.binary_metrics(data.y, scores)
    if objective == "multi:softprob":
        correct, total = ml_dist.allreduce_sum([np.sum(scores.argmax(1) == data.y), len(data.y)])
        return {"samples": int(total), "accuracy": float(correct / total) if total else None}
    error = scores - data.y
    sums = ml_dist.allreduce_sum(
        [len(error), np.sum(error**2), np.sum(np.abs(error)), np.sum(data.y), np.sum(data.y**2)]
    )
    n, squared, absolute, y_sum, y_squares = sums
    variance = y_squares - y_sum**2 / n if n else 0.0
    return {
        "samples": int(n),
        "rmse": float(np.sqrt(squared / n)) if n else None,
        "mae": float(absolute / n) if n else None,
        "r2": float(1 - squared / variance) if variance else None,
    }


def write_predictions(booster, data, settings, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    scores = predictions(booster, data, settings)
    names = data.label_names
    with (folder / f"part-{ml_dist.rank():05d}").open("w") as out:
        for number, score in zip(data.numbers, scores, strict=True):
            if settings["objective"] == "binary:logistic":
                label_id, shown = int(score >= 0.5), f"{score:.6f}"
            elif settings["objective"] == "multi:softprob":
                label_id, shown = int(np.argmax(score)), f"{float(np.max(score)):.6f}"
            else:
                out.write(f"{number},{score:.6g},\n")
                continue
            label = names[label_id] if label_id < len(names) else str(label_id)
            out.write(f"{number},{shown},{label}\n")


def run(params: dict) -> None:
    import xgboost as xgb

    ml_dist.init()
    train = ml_data.load(Path(params.get("train") or "train_data"))
    print(f"training on {train.X.shape[0]:,} samples x {train.X.shape[1]} features", flush=True)
    if ml_dist.world() > 1:
        from xgboost.tracker import RabitTracker

        tracker = None
        if ml_dist.rank() == 0:
            tracker = RabitTracker(n_workers=ml_dist.world(), host_ip="127.0.0.1")
            tracker.start()
        args = ml_dist.broadcast(tracker.worker_args() if tracker else None)
        with xgb.collective.CommunicatorContext(**args):
            booster, settings = train_model(params, train)
        if tracker:
            tracker.wait_for()
    else:
        booster, settings = train_model(params, train)
    if ml_dist.rank() == 0:
        write_model(booster, train, Path(params.get("model_dir", "model")))
    if params.get("evaluate"):
        metrics = evaluate(booster, ml_data.load(Path(params["evaluate"])), settings)
        if ml_dist.rank() == 0:
            ml_metrics.write_metrics(Path(params.get("evaluate_dir", "evaluate")), metrics)
            print("evaluation: " + json.dumps(metrics), flush=True)
    if params.get("predict"):
        data = ml_data.load(Path(params["predict"]))
        write_predictions(booster, data, settings, Path(params.get("predict_dir", "predict")))
    ml_dist.finish()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", required=True, type=Path)
    args = parser.parse_args(argv)
    try:
        run(json.loads(args.params.read_text()))
    except ml_data.StandardizedDataError as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        return 1
    return 0


if __name__ == "__main__":
    ml_dist.exit(main())
