import json
import os
from pathlib import Path

from django.http import Http404

from apps.jobs import algorithms
from apps.jobs.models import Job
from apps.projects.models import Membership

MAX_JSON_BYTES = 1 << 20

LOG_TAIL_BYTES = 256 * 1024


def jobs_for(user, project=None, status=None):
    """The user's jobs (steps of other modules, such as data set conversions, left out)."""
    jobs = (
        Job.objects.filter(project__memberships__user=user)
        .exclude(kind__in=algorithms.internal_kinds())
        .select_related("package")
    )
    if project is not None:
        jobs = jobs.filter(project=project)
    if status:
        jobs = jobs.filter(status__in=status.split(","))
    return jobs.distinct()


def get_job(user, job_id: str) -> Job:
    job = Job.objects.select_related("project", "package").filter(job_id=job_id).first()
    if job is None or not Membership.objects.filter(project=job.project, user=user).exists():
        raise Http404("No such job.")
    return job


def instance_logs(job: Job, tail_bytes: int = LOG_TAIL_BYTES) -> list[dict]:
    """The log of each instance as it is now (it grows while the run is live)."""
    logs = []
    for run in job.runs.all():
        path = Path(run.run_dir) / "log.txt" if run.run_dir else None
        text, size = "", 0
        if path and path.exists():
            size = path.stat().st_size
            with path.open("rb") as fh:
                fh.seek(max(0, size - tail_bytes))
                text = fh.read().decode("utf-8", errors="replace")
        entry = {"instance": run.index, "status": run.status, "size": size, "text": text}
        if run.status in ("failed", "timed_out"):
            from apps.jobs.loganalysis import analyze

            entry["analysis"] = analyze(text, run.reason)
        logs.append(entry)
    return logs


METRIC_SHAPES = ("points", "columns")


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not a metric value")  # NaN/Infinity would break the answer


def instance_metrics(job: Job, shape: str = "points") -> list[dict]:
    """Metrics each instance reported with bml.report, in order; unreadable lines skipped
    (and lines with NaN or Infinity, which user code can write to the file directly).
    shape "points": {"instance", "points": [record, ...]}; "columns": {"instance", "count",
    "columns": {name: [...]}} (apps.jobs.metric_columns)."""
    import json

    from apps.jobs.metric_columns import metric_columns
    from workers.supervise import METRICS_FILE

    series = []
    for run in job.runs.all():
        points = []
        path = Path(run.run_dir) / "workspace" / METRICS_FILE if run.run_dir else None
        if path and path.exists():
            for line in path.read_text(errors="replace").splitlines():
                try:
                    record = json.loads(line, parse_constant=_refuse_constant)
                except ValueError:
                    continue  # a line being written right now, or garbage from user code
                if isinstance(record, dict):
                    points.append(record)
        if shape == "columns":
            series.append({"instance": run.index, **metric_columns(points)})
        else:
            series.append({"instance": run.index, "points": points})
    return series


def output_location(job: Job) -> dict:
    """Where the job's results are: its folder's bucket and key, for the storage browser."""
    from apps.storage.paths import parse_bos_uri

    base = parse_bos_uri(job.output_path.rstrip("/") + f"/{job.job_id}/")
    return {"result_bucket": base.bucket, "result_prefix": base.key}


MAX_RESULT_JSON = 1 << 20  # a results file read into the page: metrics, not data


def result_bytes(job: Job, relative: str, limit: int = MAX_RESULT_JSON) -> bytes | None:
    """A file of the job's results in the store (`<output>/<job_id>/<relative>`, at most
    `limit` bytes read), or None when it is not there or the store is away."""
    from apps.storage.client import (
        ObjectNotFound,
        StorageUnavailable,
        get_client,
        translate_errors,
    )

    where = output_location(job)
    try:
        with translate_errors():
            answer = get_client().get_object(
                where["result_bucket"], where["result_prefix"] + relative
            )
            try:
                return answer.read(limit)
            finally:
                answer.close()
                answer.release_conn()
    except (ObjectNotFound, StorageUnavailable):
        return None


def result_json(job: Job, relative: str):
    """A JSON file of the job's results in the store (at most 1 MB read), or None when it
    is not there, the store is away or it is not JSON."""
    data = result_bytes(job, relative)
    try:
        return None if data is None else json.loads(data)
    except ValueError:
        return None


def workspace_json(job: Job, relative: str):
    """The first instance's `relative` file in its workspace on this host (while it runs,
    and after a failure, when nothing was staged out), not following a link planted there,
    at most 1 MB; None when absent or unreadable."""
    run = job.runs.filter(index=0).first()
    if run is None or not run.run_dir:
        return None
    workspace = (Path(run.run_dir) / "workspace").resolve()
    path = workspace / relative
    try:
        if workspace not in path.resolve().parents:
            return None
        descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
        with open(descriptor, "rb") as fh:
            return json.loads(fh.read(MAX_JSON_BYTES))
    except (OSError, ValueError):
        return None


def run_json(job: Job, relative: str):
    """A JSON file the job wrote under its workspace: from this host's copy, else from the
    store (where its outputs were staged)."""
    found = workspace_json(job, relative)
    return found if found is not None else result_json(job, relative)


def ml_results(job: Job) -> dict:
    """A machine learning job's result folders (links into the storage browser) and, once
    it succeeded, its evaluation metrics."""
    from apps.jobs.algorithms import get

    where = output_location(job)
    prefix = where["result_prefix"]
    folders = [(name, f"{prefix}{name}/") for name in get(job.kind, job.algorithm).outputs]
    metrics = None
    if job.status == "succeeded" and "evaluate" in dict(folders):
        # None: no evaluation data was given, or the store is away
        metrics = result_json(job, "evaluate/metrics.json")
    shown = {
        k: v for k, v in (metrics if isinstance(metrics, dict) else {}).items()
        if not isinstance(v, dict)
    }  # fmt: skip
    return {**where, "result_folders": folders, "metrics": shown}
