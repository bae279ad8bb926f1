"""Release a succeeded job's results to the model warehouse ("Release to model warehouse" on
every job page and `POST /api/v1/models/release/`): the type, path and fields come filled in
from the job's algorithm (apps.jobs.algorithms.Release), and the version keeps its lineage,
a snapshot of its job taken at release (the job may be deleted or its results overwritten
later): job, algorithm, parameters, evaluation metrics, data paths. The version page and the
API (`lineage`) show it, the job page lists what it released: what MLflow users expect of a
registered model version."""

import json

from django.core.exceptions import ValidationError

from apps.jobs import algorithms
from apps.jobs.models import Job, JobStatus
from apps.jobs.selectors import result_json
from apps.projects.models import Role
from apps.projects.services import require_role
from apps.warehouse.models import Model, ModelVersion, Source
from apps.warehouse.services import (
    _create_model,
    _new_version,
    _require_own,
    _source_path,
    validate_name,
)

MAX_PARAM_TEXT = 200  # a parameter shown in full up to this length (code is summarised)
METRICS_FILES = ("evaluate/metrics.json", "output/metrics.json")


def release_defaults(job: Job) -> algorithms.Release | None:
    """What "Release to model warehouse" fills in for this job (None: nothing servable)."""
    try:
        algorithm = algorithms.get(job.kind, job.algorithm)
    except Exception:  # an algorithm of an older version
        return None
    return algorithm.release(job.params) if algorithm.release else None


def job_metrics(job: Job) -> dict:
    """The job's evaluation metrics: the first metrics file its results hold (a machine
    learning job's evaluate/metrics.json, a template's output/metrics.json), numbers only."""
    for name in METRICS_FILES:
        raw = result_json(job, name)
        if isinstance(raw, dict):
            return {
                str(k): v
                for k, v in raw.items()
                if isinstance(v, int | float) and not isinstance(v, bool)
            }
    return {}


def _shown(value):
    text = value if isinstance(value, str) else json.dumps(value)
    return value if len(text) <= MAX_PARAM_TEXT else f"{text[:MAX_PARAM_TEXT]}… ({len(text)} chars)"


def data_paths(job: Job) -> dict:
    """Every bos:// path the job read: its data paths and the path parameters."""
    paths = {"train_data_path": job.train_data_path, "test_data_path": job.test_data_path}
    for name, value in job.params.items():
        if isinstance(value, str) and value.startswith("bos:/"):
            paths[name] = value
    return {name: path for name, path in paths.items() if path}


def of_job(job: Job, subpath: str) -> dict:
    try:
        title = algorithms.get(job.kind, job.algorithm).title
    except Exception:
        title = job.algorithm
    params = {k: _shown(v) for k, v in job.params.items() if k not in ("code",)}
    if isinstance(job.params.get("code"), str):
        params["code"] = f"{len(job.params['code'].splitlines())} lines (on the job's page)"
    return {
        "job_id": job.job_id,
        "job_name": job.name,
        "kind": job.kind,
        "algorithm": job.algorithm,
        "algorithm_title": title,
        "params": params,
        "metrics": job_metrics(job),
        "data_paths": data_paths(job),
        "output": job.output_path.rstrip("/") + f"/{job.job_id}/{subpath}",
        "instances": job.instances,
        "package": job.package.name,
        "started_at": job.started_at.isoformat() if job.started_at else None,
        "ended_at": job.ended_at.isoformat() if job.ended_at else None,
    }


def released_by(job: Job):
    """The versions released from this job, newest first (the job page lists them)."""
    return (
        ModelVersion.objects.filter(source_job=job).select_related("model").order_by("-created_at")
    )


def release_from_job(
    user, job: Job, *, model_type="", name="", model: Model | None = None, subpath="",
    fields=None, description="", lineage=None,
) -> ModelVersion:  # fmt: skip
    """Release a succeeded job's results (or a folder/file of them) to the warehouse: as a
    new model (`name`), or as a new version of one of the project's models (`model`). A type,
    subpath or fields left out take the algorithm's defaults. `lineage` adds to the job's
    (visual modeling: the experiment, its run and the graph)."""
    require_role(user, job.project, Role.DEVELOPER)
    if job.status != JobStatus.SUCCEEDED:
        raise ValidationError({"job": f"Only a succeeded job can be released; it is {job.status}."})
    defaults = release_defaults(job)
    if not model_type:
        if defaults is None:
            raise ValidationError(
                {"model_type": "This job's results hold no model; choose a model type."}
            )
        model_type = defaults.model_type
    same_type = defaults is not None and defaults.model_type == model_type
    subpath = subpath or (defaults.subpath if same_type else "output/")
    if fields in (None, "", {}) and same_type:
        fields = defaults.fields
    subpath = subpath.lstrip("/")
    if ".." in subpath.split("/"):
        raise ValidationError({"subpath": "The path inside the job's output cannot use '..'."})
    # The job's output folder was its project's when it ran; the bucket must still be.
    output = job.output_path.rstrip("/") + f"/{job.job_id}/{subpath}"
    copy_from = _source_path(user, job.project, output, "subpath")
    if model is None:
        model = _create_model(user, job.project, validate_name(name))
        created = True
    else:
        _require_own(user, model)
        if model.project_id != job.project_id:
            raise ValidationError({"model": "The model belongs to another project."})
        created = False
    try:
        return _new_version(
            user,
            model,
            model_type=model_type,
            fields=fields,
            description=description,
            copy_from=copy_from,
            source=Source.JOB,
            source_detail=f"{job.name} ({job.job_id}): {subpath}",
            source_job=job,
            lineage={**of_job(job, subpath), **(lineage or {})},
        )
    except BaseException:
        if created:
            model.delete()
        raise
