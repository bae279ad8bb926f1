"""The spec's machine learning jobs: data standardization, logistic regression dichotomy,
KMeans clustering and GBDT on standardized data, as algorithms of the job engine. Each
validates its parameters against the spec's ranges and runs a module of workers/runners/
(data-parallel over the job's instances); outputs land where the spec says:
`<output>/<job_id>/data | model | evaluate | predict | cluster`.
"""

import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path

from django.core.exceptions import ValidationError

from apps.jobs.algorithms import CUSTOM_CODE, Algorithm, Release, register

KIND = "machine_learning"
PARAMS_FILE = "ml_params.json"
FORMATS = ("SPARSE_ID", "SPARSE_ID_WEIGHT", "DENSE")
DATA_TYPES = ("classification", "regression")
DISTANCES = (
    "DISTANCE_EUCLIDEAN",
    "DISTANCE_SQUAREEUCLIDEAN",
    "DISTANCE_MANHATTAN",
    "DISTANCE_COSINE",
    "DISTANCE_TANIMOTO",
)


# -- parameter rules ---------------------------------------------------------------------


def choice(params: dict, field: str, choices, default=None) -> str:
    value = params.get(field, default)
    if not isinstance(value, str) or value not in choices:
        raise ValidationError({field: f"{field} must be one of {', '.join(choices)}."})
    return value


def number(params, field, low, high, default=None, *, integer=False, open_low=False) -> float:
    """A number in [low, high] ((low, high] with open_low); the message names the range."""
    raw = params.get(field, default)
    kind = "a whole number" if integer else "a number"
    shown = f"{'(' if open_low else '['}{low:g}, {high:g}]"
    try:
        value = float(raw)
        if integer and value != int(value):
            raise ValueError
    except (TypeError, ValueError, OverflowError):
        raise ValidationError({field: f"{field} must be {kind} in {shown}."}) from None
    if not math.isfinite(value) or value > high or value < low or (open_low and value == low):
        raise ValidationError({field: f"{field} must be {kind} in {shown}; got {raw}."})
    return int(value) if integer else value


def flag(params: dict, field: str, default: bool) -> bool:
    value = params.get(field, default)
    if not isinstance(value, bool):
        raise ValidationError({field: f"{field} must be true or false."})
    return value


def folder(uri: str) -> str:
    return uri if uri.endswith("/") else uri + "/"


# -- inputs: standardized data -----------------------------------------------------------


def check_standardized(inputs: dict) -> None:
    """Training (and evaluation/prediction) paths must be a standardization job's data
    output, recognised by its dataset.info."""
    from apps.storage.client import ObjectNotFound, get_client, translate_errors
    from apps.storage.paths import parse_bos_uri

    for field in ("train_data_path", "test_data_path", "predict_data_path"):
        if not inputs.get(field):
            continue
        path = parse_bos_uri(folder(inputs[field]), field)
        try:
            with translate_errors():
                get_client().stat_object(path.bucket, path.key + "dataset.info")
        except ObjectNotFound:
            raise ValidationError(
                {
                    field: f"{inputs[field]} is not standardized data (no dataset.info): give "
                    "the data output path of a data standardization job, "
                    "<output path>/<job_id>/data/."
                }
            ) from None


def standardized_stage(uri: str, dest: str) -> list[dict]:
    """Stage a standardized folder: its description to every instance, its samples shared
    (by part files, or by rows when there are fewer parts than instances)."""
    base = folder(uri)
    samples = {"uri": base + "preprocess_out/", "dest": f"{dest}/preprocess_out"}
    return [
        {"uri": base + "dataset.info", "dest": dest},
        {"uri": base + "preprocess_dictionary/", "dest": f"{dest}/preprocess_dictionary"},
        samples | {"shard": True, "split_rows": True},
    ]


def runner(module: str, workspace: Path, runner_params: dict) -> list[str]:
    (workspace / PARAMS_FILE).write_text(json.dumps(runner_params))
    return [sys.executable, "-m", f"workers.runners.{module}", "--params", PARAMS_FILE]


# -- data standardization ----------------------------------------------------------------


def _validate_standardize(params: dict) -> dict:
    return {
        "format": choice(params, "format", FORMATS),
        "type": choice(params, "type", DATA_TYPES, "classification"),
    }


def _prepare_standardize(params: dict, workspace: Path):
    command = runner(
        "ml_standardize",
        workspace,
        {"format": params["format"], "type": params["type"], "input": "train_data"}
        | {"output_dir": "data"},
    )
    return command, []


STANDARDIZE = register(
    Algorithm(
        kind=KIND,
        name="standardize",
        title="Data standardization",
        validate=_validate_standardize,
        prepare=_prepare_standardize,
        outputs=("data",),
        outputs_from_every_instance=True,
        split_data_rows=True,  # "No,label,..." sample lines
        needs_train_data=True,
        reports_curves=False,
    )
)


# -- logistic regression dichotomy -------------------------------------------------------


def _validate_lr(params: dict) -> dict:
    return {
        "l1": number(params, "l1", 0, 1, 0.0),
        "l2": number(params, "l2", 0, 1, 0.0),
        "termination": number(params, "termination", 0, 0.1, 1e-6, open_low=True),
        "max_iter": number(params, "max_iter", 20, 200, 100, integer=True),
        "predict_data_path": params.get("predict_data_path") or "",
    }


def _inputs_stage(params: dict) -> tuple[list[dict], dict]:
    """Stage items and runner paths for training, evaluation (the job's test data path)
    and prediction data, each a standardized folder."""
    stage = standardized_stage(params["train_data_path"], "train_data")
    paths = {"train": "train_data", "evaluate": None, "predict": None}
    if params.get("test_data_path"):
        stage += standardized_stage(params["test_data_path"], "test_data")
        paths["evaluate"] = "test_data"
    if params.get("predict_data_path"):
        stage += standardized_stage(params["predict_data_path"], "predict_data")
        paths["predict"] = "predict_data"
    return stage, paths


def supervised(name: str, title: str, module: str, validate, model_type: str) -> Algorithm:
    """A trainer on standardized data with optional evaluation and prediction data (the
    spec's layout: model/, evaluate/, predict/, every instance writing its share)."""

    def prepare(params: dict, workspace: Path):
        stage, paths = _inputs_stage(params)
        settings = {k: v for k, v in params.items() if not k.endswith("_data_path")}
        folders = {"model_dir": "model", "evaluate_dir": "evaluate", "predict_dir": "predict"}
        return runner(module, workspace, settings | paths | folders), stage

    return register(
        Algorithm(
            kind=KIND,
            name=name,
            title=title,
            validate=validate,
            prepare=prepare,
            outputs=("model", "evaluate", "predict"),
            outputs_from_every_instance=True,
            stages_data_paths=False,
            needs_train_data=True,
            check_inputs=check_standardized,
            path_params=("predict_data_path",),
            release=lambda params: Release(model_type, "model/"),
        )
    )


LOGISTIC_REGRESSION = supervised(
    "logistic_regression",
    "Logistic regression dichotomy",
    "ml_lr",
    _validate_lr,
    "bml_logistic_regression",
)


# -- KMeans clustering -------------------------------------------------------------------


def _validate_kmeans(params: dict) -> dict:
    return {
        "k": number(params, "k", 2, 3000, None, integer=True),
        "max_iter": number(params, "max_iter", 6, 10000, 100, integer=True),
        "tol": number(params, "tol", 0, 0.5, 1e-4),
        "init": choice(params, "init", ("INITCLUSTER_RANDOM",), "INITCLUSTER_RANDOM"),
        "distance": choice(params, "distance", DISTANCES, "DISTANCE_EUCLIDEAN"),
        "sparse_centers": flag(params, "sparse_centers", False),
        "output_cluster": flag(params, "output_cluster", False),
        "predict_data_path": params.get("predict_data_path") or "",
    }


def _prepare_kmeans(params: dict, workspace: Path):
    stage, paths = _inputs_stage(params)
    keys = ("k", "max_iter", "tol", "init", "distance", "sparse_centers", "output_cluster")
    command = runner(
        "ml_kmeans",
        workspace,
        {k: params[k] for k in keys}
        | {"train": paths["train"], "predict": paths["predict"]}
        | {"model_dir": "model", "cluster_dir": "cluster", "predict_dir": "predict"},
    )
    return command, stage


KMEANS = register(
    Algorithm(
        kind=KIND,
        name="kmeans",
        title="KMeans clustering",
        validate=_validate_kmeans,
        prepare=_prepare_kmeans,
        outputs=("model", "cluster", "predict"),
        outputs_from_every_instance=True,
        reports_curves=False,
        stages_data_paths=False,
        needs_train_data=True,
        check_inputs=check_standardized,
        path_params=("predict_data_path",),
        release=lambda params: Release("bml_kmeans", "model/"),
    )
)


# -- GBDT (XGBoost) ----------------------------------------------------------------------


def _validate_gbdt(params: dict) -> dict:
    weight = params.get("scale_pos_weight", "auto")
    if weight != "auto":
        weight = number(params, "scale_pos_weight", 0, 1e6, 1.0, open_low=True)
    return {
        "num_round": number(params, "num_round", 1, 10000, 100, integer=True),
        "max_depth": number(params, "max_depth", 1, 20, 6, integer=True),
        "eta": number(params, "eta", 0, 1, 0.3, open_low=True),
        "subsample": number(params, "subsample", 0, 1, 1.0, open_low=True),
        "colsample_bytree": number(params, "colsample_bytree", 0, 1, 1.0, open_low=True),
        "min_child_weight": number(params, "min_child_weight", 0, 1e6, 1.0),
        "gamma": number(params, "gamma", 0, 1e6, 0.0),
        "reg_lambda": number(params, "reg_lambda", 0, 1e6, 1.0),
        "reg_alpha": number(params, "reg_alpha", 0, 1e6, 0.0),
        "scale_pos_weight": weight,
        "predict_data_path": params.get("predict_data_path") or "",
    }


GBDT = supervised("gbdt", "GBDT (XGBoost)", "ml_gbdt", _validate_gbdt, "bml_gbdt")


# -- RAPIDS-cuML: the user's own code ----------------------------------------------------


def _validate_rapids(params: dict) -> dict:
    return CUSTOM_CODE.validate({**params, "framework": "rapids"})


def _prepare_rapids(params: dict, workspace: Path):
    return CUSTOM_CODE.prepare(params, workspace)


RAPIDS = register(
    Algorithm(
        kind=KIND,
        name="rapids_cuml",
        title="RAPIDS-cuML (your code)",
        validate=_validate_rapids,
        prepare=_prepare_rapids,
        path_params=CUSTOM_CODE.path_params,
        # the template pickles an XGBoost classifier and a KMeans: one of them, by default
        # the classifier (a scikit-learn estimator for the loader)
        release=lambda params: Release("sklearn", "output/xgboost.pkl"),
    )
)


# -- the console's form: fields per algorithm, in the spec's words -----------------------


@dataclass(frozen=True)
class Field:
    name: str
    label: str
    default: object = ""
    choices: tuple = ()
    help: str = ""
    kind: str = "number"  # number | choice | bool


PATH_LABELS = {
    "train_data_path": "Training data path (standardized: <output>/<job_id>/data/)",
    "test_data_path": "Evaluation data path (standardized, optional)",
    "predict_data_path": "Prediction data path (standardized, optional)",
}
FORMS = {
    "standardize": {
        "fields": [
            Field("format", "Input data format", "DENSE", FORMATS, kind="choice"),
            Field("type", "Input data type", "classification", DATA_TYPES, kind="choice"),
        ],
        "paths": {"train_data_path": "Input data path (a file or a folder)"},
    },
    "logistic_regression": {
        "fields": [
            Field("l1", "L1 regularization coefficient", 0, help="0 ≤ L1 ≤ 1"),
            Field("l2", "L2 regularization coefficient", 0.001, help="0 ≤ L2 ≤ 1"),
            Field("termination", "Convergence condition", 1e-6, help="0 < termination ≤ 0.1"),
            Field("max_iter", "Maximum number of iterations", 100, help="20 ≤ maxIter ≤ 200"),
        ],
        "paths": PATH_LABELS,
    },
    "kmeans": {
        "fields": [
            Field("k", "Number of clusters", 3, help="2 to 3000"),
            Field("max_iter", "Maximum number of iterations", 100, help="6 to 10000"),
            Field(
                "tol",
                "Convergence condition",
                1e-4,
                help="0 to 0.5: change rate of the "
                "summed distances below it for 5 consecutive rounds",
            ),  # fmt: skip
            Field(
                "init",
                "Initialization of cluster centers",
                "INITCLUSTER_RANDOM",
                ("INITCLUSTER_RANDOM",),
                kind="choice",
            ),  # fmt: skip
            Field("distance", "Distance calculation", DISTANCES[0], DISTANCES, kind="choice"),
            Field(
                "sparse_centers",
                "Sparse center storage",
                False,
                kind="bool",
                help="for very many features",
            ),  # fmt: skip
            Field("output_cluster", "Output training set clustering results", True, kind="bool"),
        ],
        "paths": {k: v for k, v in PATH_LABELS.items() if k != "test_data_path"},
    },
    "gbdt": {
        "fields": [
            Field("num_round", "Boosting rounds", 100, help="1 to 10000"),
            Field("max_depth", "Maximum tree depth", 6, help="1 to 20"),
            Field("eta", "Learning rate (eta)", 0.3, help="0 < eta ≤ 1"),
            Field("subsample", "Row subsample", 1.0, help="0 < subsample ≤ 1"),
            Field("colsample_bytree", "Column subsample per tree", 1.0, help="(0, 1]"),
            Field("min_child_weight", "Minimum child weight", 1.0, help="≥ 0"),
            Field("gamma", "Minimum split loss (gamma)", 0.0, help="≥ 0"),
            Field("reg_lambda", "L2 regularization (lambda)", 1.0, help="≥ 0"),
            Field("reg_alpha", "L1 regularization (alpha)", 0.0, help="≥ 0"),
            Field(
                "scale_pos_weight",
                "Class weighting (scale_pos_weight)",
                "auto",
                help="'auto' = negatives / positives, or a number",
            ),  # fmt: skip
        ],
        "paths": PATH_LABELS,
    },
    "rapids_cuml": {
        "fields": [],
        "paths": {
            "train_data_path": "Training data path (optional; each instance its share)",
            "test_data_path": "Test data path (optional)",
        },
        "code": True,
    },
}


def params_from_form(algorithm: str, form) -> dict:
    """The algorithm's parameters from a submitted form (validated by the algorithm)."""
    spec = FORMS[algorithm]
    params = {}
    for field in spec["fields"]:
        if field.kind == "bool":
            params[field.name] = form.get(field.name) in ("on", "1", "true")
        elif form.get(field.name, "") != "":
            params[field.name] = form.get(field.name)
    if "predict_data_path" in spec["paths"]:
        params["predict_data_path"] = form.get("predict_data_path", "")
    if spec.get("code"):
        params["code"] = form.get("code", "")
    return params
