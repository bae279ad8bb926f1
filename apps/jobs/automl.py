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


def iterations_range(params: dict) -> list[int]:
    field = "iterations_range"
    raw = params.get(field, [10, 100])
    if isinstance(raw, str):
        raw = [part for part in re.split(r"[,\s]+", raw.strip()) if part]
    if not isinstance(raw, (list, tuple)) or len(raw) != 2:
        raise ValidationError({field: "iterations_range is [low, high], whole numbers 10 to 200."})
    low = number({field: raw[0]}, field, 10, 200, integer=True)
    high = number({field: raw[1]}, field, 10, 200, integer=True)
    if low > high:
        raise ValidationError({field: f"iterations_range: low {low} is above high {high}."})
    return [low, high]


def _validate(params: dict) -> dict:
    model_path = params.get("model_train_data_path")
    if not model_path:
        raise ValidationError(
            {"model_train_data_path": "The model training data path is required."}
        )
    return {
        "l1_range": coefficient_range(params, "l1_range"),
        "l2_range": coefficient_range(params, "l2_range"),
        "iterations_range": iterations_range(params),
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


def _prepare(params: dict, workspace: Path):
    stage = [
        {"uri": params["train_data_path"], "dest": "tune_train"},
        {"uri": params["test_data_path"], "dest": "tune_test"},
        {"uri": params["model_train_data_path"], "dest": "model_train"},
    ]
    settings = {
        key: params[key]
        for key in ("l1_range", "l2_range", "iterations_range", "trials", "format", "seed")
    }
    folders = {role: role for role in ("tune_train", "tune_test", "model_train")}
    folders["resume"] = None
    if params.get("resume_journal_path"):
        stage.append({"uri": params["resume_journal_path"], "dest": "resume"})
        folders["resume"] = "resume"
    return runner("automl_lr", workspace, settings | folders), stage


LOGISTIC_REGRESSION = register(
    Algorithm(
        kind=KIND,
        name="logistic_regression",
        title="AutoML: logistic regression",
        validate=_validate,
        prepare=_prepare,
        outputs=("model", "log"),
        stages_data_paths=False,
        needs_train_data=True,
        check_inputs=_check_inputs,
        path_params=("model_train_data_path", "resume_journal_path"),
        instances=INSTANCES,
        # The job page's Search box draws the trials (automl.js); the per-trial curves
        # (auc, best_auc) stay in the metrics API.
        reports_curves=False,
        release=lambda params: Release("bml_logistic_regression", "model/"),
    )
)


JOURNAL = "log/trials.jsonl"  # where automl_lr stores its trials after every round
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
FORMS = {
    "logistic_regression": {
        "fields": [
            Field("l1_low", "L1 regularization coefficient range: low", "1e-6", help="0 < x < 1"),
            Field("l1_high", "L1 regularization coefficient range: high", "0.1", help="0 < x < 1"),
            Field("l2_low", "L2 regularization coefficient range: low", "1e-6", help="0 < x < 1"),
            Field("l2_high", "L2 regularization coefficient range: high", "0.1", help="0 < x < 1"),
            Field("iterations_low", "Iterations in a single trial: from", 10, help="10 to 200"),
            Field("iterations_high", "Iterations in a single trial: to", 100, help="10 to 200"),
            Field("trials", "Number of trials", 20, help="10 to 100"),
            Field("format", "Input data format", "DENSE", FORMATS, kind="choice"),
        ],
        "paths": PATH_LABELS,
    },
}


def params_from_form(algorithm: str, form) -> dict:
    """The algorithm's parameters from the console's form (validated by the algorithm)."""
    return {
        "l1_range": [form.get("l1_low", ""), form.get("l1_high", "")],
        "l2_range": [form.get("l2_low", ""), form.get("l2_high", "")],
        "iterations_range": [form.get("iterations_low", ""), form.get("iterations_high", "")],
        "trials": form.get("trials", ""),
        "format": form.get("format", ""),
        "model_train_data_path": form.get("model_train_data_path", ""),
    }


def form_from_params(params: dict) -> dict:
    """A stored job's parameters as the form's fields (clone)."""
    return {
        "l1_low": params["l1_range"][0],
        "l1_high": params["l1_range"][1],
        "l2_low": params["l2_range"][0],
        "l2_high": params["l2_range"][1],
        "iterations_low": params["iterations_range"][0],
        "iterations_high": params["iterations_range"][1],
        "trials": params["trials"],
        "format": params["format"],
        "model_train_data_path": params["model_train_data_path"],
    }
