"""Writes and rules of visual modeling experiments: create, copy, rename, save the graph,
delete, clear data and release. Runs: apps.visual.execution."""

import re
import shutil
from pathlib import Path

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from apps.jobs import services as jobs
from apps.jobs.models import Job
from apps.projects.models import Role
from apps.projects.services import require_role
from apps.storage import services as storage
from apps.storage.paths import parse_bos_uri
from apps.storage.selectors import data_buckets_for
from apps.visual import execution
from apps.visual import graph as graphs
from apps.visual.models import (
    NODE_DONE,
    Experiment,
    ExperimentRun,
    NodeRun,
    NodeStatus,
    RunStatus,
    empty_graph,
)
from apps.visual.node_jobs import workspace_here
from workers.runners.visual import registry, views

# The spec asks for a name (required) and a description (optional); names as data sets'.
NAME_RULE = re.compile(r"^[^\W\d_][\w-]{0,49}$")
NAME_HELP = "1-50 characters: letters, digits, '_' and '-', starting with a letter."
FOLDER = "visual"


def validate_name(name) -> str:
    name = (name or "").strip() if isinstance(name, str) else ""
    if not NAME_RULE.match(name):
        raise ValidationError({"name": f"Invalid experiment name '{name}'. {NAME_HELP}"})
    return name


def _storage_path(user, project, experiment_pk: int) -> str:
    bucket = data_buckets_for(user, project).order_by("created_at").first()
    if bucket is None:
        bucket = storage.create_bucket(user, project, f"bml-visual-p{project.pk}")
    return f"bos://{bucket.name}/{FOLDER}/{experiment_pk}/"


def create_experiment(user, project, *, name, description="", graph=None) -> Experiment:
    require_role(user, project, Role.DEVELOPER)
    name = validate_name(name)
    checked = graphs.check_structure(user, project, graph).graph if graph else empty_graph()
    taken = ValidationError({"name": f"This project already has an experiment named '{name}'."})
    if Experiment.objects.filter(project=project, name=name).exists():
        raise taken
    try:
        with transaction.atomic():
            experiment = Experiment.objects.create(
                project=project,
                name=name,
                description=(description or "")[:2000],
                graph=checked,
                created_by=user,
                storage_path="",
            )
            experiment.storage_path = _storage_path(user, project, experiment.pk)
            experiment.save(update_fields=["storage_path"])
    except IntegrityError:
        raise taken from None
    return experiment


def copy_experiment(user, experiment: Experiment, name="") -> Experiment:
    """The graph and its settings, not its results."""
    name = name or _copy_name(experiment)
    return create_experiment(
        user,
        experiment.project,
        name=name,
        description=experiment.description,
        graph=experiment.graph,
    )


def _copy_name(experiment: Experiment) -> str:
    for n in range(1, 1000):
        suffix = f"_copy{n if n > 1 else ''}"
        name = f"{experiment.name[: 50 - len(suffix)]}{suffix}"
        if not Experiment.objects.filter(project=experiment.project, name=name).exists():
            return name
    raise ValidationError({"name": "Give the copy a name."})


def update_experiment(user, experiment: Experiment, *, name=None, description=None):
    require_role(user, experiment.project, Role.DEVELOPER)
    if name is not None:
        name = validate_name(name)
        if (
            Experiment.objects.filter(project=experiment.project, name=name)
            .exclude(pk=experiment.pk)
            .exists()
        ):
            raise ValidationError(
                {"name": f"This project already has an experiment named '{name}'."}
            )
        experiment.name = name
    if description is not None:
        experiment.description = str(description)[:2000]
    experiment.save()
    return experiment


def save_graph(user, experiment: Experiment, graph) -> Experiment:
    """Refused unless the graph is a DAG of known components with every required input
    connected (naming the node); settings problems are kept and shown on the canvas."""
    require_role(user, experiment.project, Role.DEVELOPER)
    experiment.graph = graphs.check_structure(user, experiment.project, graph).graph
    experiment.save(update_fields=["graph", "updated_at"])
    return experiment


def delete_experiment(user, experiment: Experiment) -> None:
    """A running experiment is cancelled first; its results in the store go with it."""
    require_role(user, experiment.project, Role.DEVELOPER)
    for run in experiment.runs.filter(status=RunStatus.RUNNING):
        execution.cancel_run(user, run)
    _delete_results(experiment, experiment.runs.all())
    node_jobs = list(
        Job.objects.filter(
            pk__in=NodeRun.objects.filter(run__experiment=experiment).values("job_id")
        )
    )
    experiment.delete()
    for job in node_jobs:  # internal jobs of its nodes (a stopping one goes when it ends)
        jobs.delete_job(user, job)


# -- clear data ------------------------------------------------------------------------------


def _run_prefix(experiment: Experiment, run: ExperimentRun):
    path = parse_bos_uri(f"{experiment.storage_path}runs/{run.number}/")
    return path.bucket, path.key


def clear_size(experiment: Experiment) -> dict:
    """What clear data would free: the runs' intermediate results and logs in the store,
    and the rows of their large views kept on this host (workers.runners.visual.views)."""
    runs = list(experiment.runs.exclude(status=RunStatus.RUNNING).filter(cleared=False))
    total = 0
    for run in runs:
        bucket, prefix = _run_prefix(experiment, run)
        total += storage.prefix_size(bucket, prefix)
        total += sum(_size(folder) for folder in _host_copies(run))
    return {"runs": len(runs), "bytes": total}


def _host_copies(run: ExperimentRun) -> list[Path]:
    """The folders of this host holding the run's segments' kept rows."""
    ran = run.nodes.filter(job__isnull=False, cached_from__isnull=True).values("job_id")
    workspaces = [workspace_here(job) for job in Job.objects.filter(pk__in=ran)]
    folders = [w / views.HOST_COPIES_DIR for w in workspaces if w is not None]
    return [folder for folder in folders if folder.is_dir()]


def _size(folder: Path) -> int:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())


def clear_data(user, experiment: Experiment) -> dict:
    require_role(user, experiment.project, Role.DEVELOPER)
    runs = list(experiment.runs.exclude(status=RunStatus.RUNNING).filter(cleared=False))
    freed = _delete_results(experiment, runs)
    ExperimentRun.objects.filter(pk__in=[r.pk for r in runs]).update(cleared=True)
    return {"runs": len(runs), "bytes": freed}


def _delete_results(experiment: Experiment, runs) -> int:
    freed = 0
    for run in runs:
        bucket, prefix = _run_prefix(experiment, run)
        freed += storage.prefix_size(bucket, prefix)
        storage.delete_prefix(bucket, prefix)
        for folder in _host_copies(run):
            freed += _size(folder)
            shutil.rmtree(folder, ignore_errors=True)
    return freed


# -- release ---------------------------------------------------------------------------------


def release_candidates(run: ExperimentRun | None) -> list:
    """The trained models of the run that a succeeded prediction used: release is enabled
    once an algorithm component and a prediction component succeeded in the last run."""
    if run is None or run.cleared:
        return []
    components = registry.load_all()
    nodes = {n.node_id: n for n in run.nodes.select_related("job")}
    done = {i: n for i, n in nodes.items() if n.status in NODE_DONE}
    found = []
    for edge in run.graph["edges"]:
        source, target = done.get(edge["from"]), done.get(edge["to"])
        if source is None or target is None:
            continue
        if components[source.component].is_algorithm and components[target.component].is_prediction:
            if source not in found:
                found.append(source)
    return found


def release(user, experiment: Experiment, *, node_id="", name="", model=None, description=""):
    from apps.warehouse.releases import release_from_job

    require_role(user, experiment.project, Role.DEVELOPER)
    run = experiment.runs.exclude(status=RunStatus.RUNNING).order_by("-number").first()
    candidates = release_candidates(run)
    if not candidates:
        raise ValidationError(
            {
                "release": "Release needs an algorithm component and a prediction component "
                "that succeeded in the last run."
            }
        )
    node = next((n for n in candidates if n.node_id == node_id), None) if node_id else candidates[0]
    if node is None:
        known = ", ".join(n.node_id for n in candidates)
        raise ValidationError({"node": f"Node '{node_id}' is not a releasable model ({known})."})
    uri = node.outputs["model"]["uris"][0]
    job = node.job
    prefix = f"{job.output_path.rstrip('/')}/{job.job_id}/"
    if job is None or job.status != "succeeded" or not uri.startswith(prefix):
        raise ValidationError({"node": "The model's results are gone; run the experiment again."})
    return release_from_job(
        user,
        job,
        model_type="bml_visual",
        name=name,
        model=model,
        subpath=uri[len(prefix) :],
        description=description,
        lineage={
            "experiment": {"id": experiment.pk, "name": experiment.name},
            "run": run.number,
            "node": node.node_id,
            "component": node.component,
            "params": node.params,
        },
    )


def node_status(node) -> str:
    """The status a user sees. While its segment's job runs, a node's own progress is in
    the job's workspace (workers.runners.visual.run): running, then done or failed; it is
    recorded once the job has ended and its outputs are stored."""
    if node.status != NodeStatus.QUEUED or not node.job_id or node.job.status != "running":
        return node.status
    folder = _workspace_folder(node)
    if folder is None:
        return NodeStatus.QUEUED
    if (folder / "error.json").exists():
        return NodeStatus.FAILED
    if (folder / "manifest.json").exists():
        return NodeStatus.SUCCEEDED
    if (folder / "running").exists():
        return NodeStatus.RUNNING
    return NodeStatus.QUEUED


def _workspace_folder(node):
    from pathlib import Path

    run = node.job.runs.filter(index=0).first()
    if run is None or not run.run_dir:
        return None
    return Path(run.run_dir) / "workspace" / "output" / node.node_id
