"""The spec's AutoML jobs: a hyper-parameter search for logistic regression (binary), run
by workers/runners/automl_lr.py over the job's 2-4 instances. Raw sample files in three
paths: tuning-train (the job's training data path), tuning-test (its test data path) and
model-training (`model_train_data_path`); outputs `<output>/<job_id>/model/` in the spec's
text format and `log/` with the trial table.
"""

import re
from pathlib import Path

from django.core.exceptions import ValidationError

from apps.jobs.algorithms import Algorithm, Release, register
from apps.jobs.machine_learning import FORMATS, Field, choice, number, runner

KIND = "automl"
INSTANCES = (2, 4)  # the spec: "Number of instances 2-4"
# The spec's coefficient ranges: "floating-point numbers greater than 0 and less than 1,
# support scientific counting".
_COEFFICIENT = re.compile(r"^\s*[+]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?\s*$")


def coefficient_range(params: dict, field: str) -> list[float]:
    raw = params.get(field)
    if isinstance(raw, str):
        raw = [part for part in re.split(r"[,\s]+", raw.strip()) if part]
    rule = (
        f"{field} is [low, high]: numbers greater than 0 and less than 1 (e.g. 1e-5), low < high."
    )
    if not isinstance(raw, (list, tuple)) or len(raw) != 2:
        raise ValidationError({field: rule})
    values = []
    for value in raw:
        if isinstance(value, bool) or not (
            isinstance(value, (int, float))
            or (isinstance(value, str) and _COEFFICIENT.match(value))
        ):
            raise ValidationError({field: f"{rule} Got {value!r}."})
        value = float(value)
        if not 0 < value < 1:
            raise ValidationError({field: f"{rule} Got {value:g}."})
        values.append(value)
    if values[0] >= values[1]:
        raise ValidationError({field: f"{rule} Got low {values[0]:g} >= high {values[1]:g}."})
    return values


def number_range(params: dict, field: str, low, high, default, *, integer=False) -> list:
    """[low, high] within the field's bounds (a whole-number range may be one value)."""
    raw = params.get(field, default)
    if raw in (None, ""):
        raw = default
    if isinstance(raw, str):
        raw = [part for part in re.split(r"[,\s]+", raw.strip()) if part]
    kind = "whole numbers" if integer else "numbers"
    if not isinstance(raw, (list, tuple)) or len(raw) != 2:
        raise ValidationError({field: f"{field} is [low, high], {kind} in [{low:g}, {high:g}]."})
    pair = [number({field: value}, field, low, high, integer=integer) for value in raw]
    if pair[0] > pair[1] or (not integer and pair[0] == pair[1]):
        raise ValidationError({field: f"{field}: low {pair[0]:g} must be below high {pair[1]:g}."})
    return pair


def iterations_range(params: dict) -> list[int]:
    return number_range(params, "iterations_range", 10, 200, [10, 100], integer=True)


def _validate(params: dict) -> dict:
    return {
        "l1_range": coefficient_range(params, "l1_range"),
        "l2_range": coefficient_range(params, "l2_range"),
        "iterations_range": iterations_range(params),
        **_common(params),
    }


def _common(params: dict) -> dict:
    """What every AutoML algorithm takes beside its search ranges."""
    model_path = params.get("model_train_data_path")
    if not model_path:
        raise ValidationError(
            {"model_train_data_path": "The model training data path is required."}
        )
    return {
        "trials": number(params, "trials", 10, 100, 20, integer=True),
        "format": choice(params, "format", FORMATS),
        "model_train_data_path": model_path,
        "seed": number(params, "seed", 0, 2**31 - 1, 0, integer=True),
    } | _resume(params)


def _resume(params: dict) -> dict:
    """The journal of the job this one resumes (services.resume_job): a path of the
    project, checked like every path param; absent for a new search."""
    path = params.get("resume_journal_path")
    return {"resume_journal_path": path} if path else {}


def _check_inputs(inputs: dict) -> None:
    if not inputs.get("test_data_path"):
        raise ValidationError(
            {"test_data_path": "The tuning test data path is required: each trial is scored on it."}
        )


def _prepare(params: dict, workspace: Path, module: str):
    stage = [
        {"uri": params["train_data_path"], "dest": "tune_train"},
        {"uri": params["test_data_path"], "dest": "tune_test"},
        {"uri": params["model_train_data_path"], "dest": "model_train"},
    ]
    settings = {key: value for key, value in params.items() if not key.endswith("_path")}
    folders = {role: role for role in ("tune_train", "tune_test", "model_train")}
    folders["resume"] = None
    if params.get("resume_journal_path"):
        stage.append({"uri": params["resume_journal_path"], "dest": "resume"})
        folders["resume"] = "resume"
    return runner(module, workspace, settings | folders), stage


def _search(name: str, title: str, validate, module: str, model_type: str) -> Algorithm:
    """An AutoML algorithm: the search `module` over the three data paths, 2-4 instances,
    model/ and log/ out, released as `model_type`."""
    return register(
        Algorithm(
            kind=KIND,
            name=name,
            title=title,
            validate=validate,
            prepare=lambda params, workspace: _prepare(params, workspace, module),
            outputs=("model", "log"),
            stages_data_paths=False,
            needs_train_data=True,
            check_inputs=_check_inputs,
            path_params=("model_train_data_path", "resume_journal_path"),
            instances=INSTANCES,
            # The job page's Search box draws the trials (automl.js); the per-trial curves
            # (auc, best_auc) stay in the metrics API.
            reports_curves=False,
            release=lambda params: Release(model_type, "model/"),
        )
    )


LOGISTIC_REGRESSION = _search(
    "logistic_regression",
    "AutoML: logistic regression",
    _validate,
    "automl_lr",
    "bml_logistic_regression",
)


# -- GBDT (XGBoost): beyond the spec, the same search over the GBDT job's settings --------

# field: (bounds low, bounds high, default, whole numbers) as workers/runners/automl_gbdt.py
GBDT_RANGES = {
    "eta_range": (1e-4, 1, [0.01, 0.3], False),
    "max_depth_range": (1, 16, [2, 10], True),
    "subsample_range": (0.05, 1, [0.5, 1], False),
    "colsample_bytree_range": (0.05, 1, [0.5, 1], False),
    "min_child_weight_range": (1e-4, 1000, [0.1, 10], False),
    "reg_lambda_range": (1e-6, 1000, [0.001, 10], False),
    "reg_alpha_range": (1e-6, 1000, [0.001, 10], False),
    "num_round_range": (10, 2000, [50, 500], True),
}


def _validate_gbdt(params: dict) -> dict:
    ranges = {
        field: number_range(params, field, low, high, default, integer=integer)
        for field, (low, high, default, integer) in GBDT_RANGES.items()
    }
    weight = params.get("scale_pos_weight", "auto")
    if weight in ("auto", "", None):
        weight = "auto"
    else:  # the spec's 1:5000 marketing case: searched over a log range
        weight = number_range(params, "scale_pos_weight", 1e-3, 1e5, None)
    return {
        **ranges,
        "scale_pos_weight": weight,
        **_common(params),
    }


GBDT = _search("gbdt", "AutoML: GBDT (XGBoost)", _validate_gbdt, "automl_gbdt", "bml_gbdt")


# Where the AutoML runners store their trials after every round (automl_common.JOURNAL);
# Resume stages it, the trials API reads it.
JOURNAL = "log/trials.jsonl"
RESUME_SUFFIX = "-r"


def resume_settings(job) -> dict:
    """A new job's settings that go on with `job`'s search from its stored journal: the
    same settings, the name suffixed. Refused when there is nothing to go on from."""
    from apps.jobs.models import ACTIVE, JobStatus
    from apps.jobs.services import clone_settings
    from apps.storage.client import ObjectNotFound, get_client, translate_errors
    from apps.storage.paths import parse_bos_uri

    if job.kind != KIND:
        raise ValidationError({"job": "Only AutoML jobs can be resumed."})
    if job.status in ACTIVE or job.status == JobStatus.SUCCEEDED:
        raise ValidationError(
            {"job": f"Job is {job.status}: only a failed, terminated or timed-out search resumes."}
        )
    journal = f"{job.output_path.rstrip('/')}/{job.job_id}/{JOURNAL}"
    path = parse_bos_uri(journal)
    try:
        with translate_errors():
            get_client().stat_object(path.bucket, path.key)
    except ObjectNotFound:
        raise ValidationError(
            {"job": "No trial of this job finished, so there is nothing to resume: clone it."}
        ) from None
    settings = clone_settings(job)
    settings["name"] = job.name[: 39 - len(RESUME_SUFFIX)] + RESUME_SUFFIX
    settings["params"] = {**job.params, "resume_journal_path": journal}
    return settings


# -- the console's form ------------------------------------------------------------------

PATH_LABELS = {
    "train_data_path": "Tuning training data path (raw samples: a file or a folder)",
    "test_data_path": "Tuning test data path",
    "model_train_data_path": "Model training data path",
}


def _range_fields(field: str, label: str, default: list, bounds: str) -> list[Field]:
    """A [low, high] setting as two inputs, `<field>_low` and `<field>_high`."""
    name = field.removesuffix("_range")
    return [
        Field(f"{name}_low", f"{label}: low", default[0], help=bounds),
        Field(f"{name}_high", f"{label}: high", default[1], help=bounds),
    ]


_COMMON_FIELDS = [
    Field("trials", "Number of trials", 20, help="10 to 100"),
    Field("format", "Input data format", "DENSE", FORMATS, kind="choice"),
]
_GBDT_LABELS = {
    "eta_range": "Learning rate (eta)",
    "max_depth_range": "Maximum tree depth",
    "subsample_range": "Row subsample",
    "colsample_bytree_range": "Column subsample per tree",
    "min_child_weight_range": "Minimum child weight",
    "reg_lambda_range": "L2 regularization (lambda)",
    "reg_alpha_range": "L1 regularization (alpha)",
    "num_round_range": "Boosting rounds (early stopping on the tuning test AUC)",
}
FORMS = {
    "logistic_regression": {
        "fields": [
            *_range_fields(
                "l1_range", "L1 regularization coefficient range", ["1e-6", "0.1"], "0 < x < 1"
            ),
            *_range_fields(
                "l2_range", "L2 regularization coefficient range", ["1e-6", "0.1"], "0 < x < 1"
            ),
            *_range_fields(
                "iterations_range", "Iterations in a single trial", [10, 100], "10 to 200"
            ),
            *_COMMON_FIELDS,
        ],
        "paths": PATH_LABELS,
    },
    "gbdt": {
        "fields": [
            *(
                field
                for name, (low, high, default, _) in GBDT_RANGES.items()
                for field in _range_fields(
                    name, _GBDT_LABELS[name], default, f"{low:g} to {high:g}"
                )
            ),
            Field(
                "scale_pos_weight",
                "Class weighting (scale_pos_weight)",
                "auto",
                help="'auto' = negatives / positives, or a range 'low, high' to search",
            ),
            *_COMMON_FIELDS,
        ],
        "paths": PATH_LABELS,
    },
}


def params_from_form(algorithm: str, form) -> dict:
    """The algorithm's parameters from the console's form (validated by the algorithm):
    `<name>_low` and `<name>_high` inputs become the range `<name>_range`."""
    params = {"model_train_data_path": form.get("model_train_data_path", "")}
    for field in FORMS[algorithm]["fields"]:
        name = field.name
        if name.endswith("_low"):
            base = name.removesuffix("_low")
            pair = [form.get(f"{base}_low", ""), form.get(f"{base}_high", "")]
            if any(value != "" for value in pair):  # both left empty: the default range
                params[f"{base}_range"] = pair
        elif not name.endswith("_high"):
            params[name] = form.get(name, "")
    return params


def form_from_params(params: dict) -> dict:
    """A stored job's parameters as the form's fields (clone)."""
    form = {}
    for key, value in params.items():
        if key.endswith("_range") and isinstance(value, list) and len(value) == 2:
            base = key.removesuffix("_range")
            form[f"{base}_low"], form[f"{base}_high"] = value
        elif key == "scale_pos_weight" and isinstance(value, list):
            form[key] = ", ".join(f"{v:g}" for v in value)
        else:
            form[key] = value
    return form
