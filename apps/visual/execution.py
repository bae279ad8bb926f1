"""Running an experiment: a run is a version of the history; its nodes start as soon as
their inputs are ready, each as a job-engine run (apps.visual.node_jobs), and a node
whose settings and inputs are unchanged since a successful run reuses that output.

The cache key of a node is a hash of its component, its checked settings, the sample
size and the content ids of its inputs (sha256 of the upstream output files, written by
the runner; a data set version's id for a data set). So a forced rerun upstream that
writes the same bytes leaves everything below it cached.

`advance(run)` is called when a run starts and whenever one of its node jobs ends (the
job_finished signal, apps.visual.signals); node runs are claimed with compare-and-set
updates, so two ticks advancing the same run at once start each node once.
"""

import hashlib
import json
import logging

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Max
from django.http import Http404
from django.utils import timezone

from apps.billing.models import Module, ResourcePackage
from apps.jobs import selectors as job_selectors
from apps.jobs import services as jobs
from apps.jobs.models import ACTIVE, Job, JobStatus
from apps.projects.models import Role
from apps.projects.services import require_role
from apps.visual import graph as graphs
from apps.visual import node_jobs
from apps.visual.models import (
    NODE_DONE,
    NODE_ENDED,
    NODE_FAILED,
    Experiment,
    ExperimentRun,
    NodeRun,
    NodeStatus,
    RunMode,
    RunStatus,
)
from workers.runners.visual import registry

logger = logging.getLogger(__name__)
MAX_SAMPLE_ROWS = 100_000
DEFAULT_SAMPLE_ROWS = 100


def start_run(user, experiment: Experiment, mode=RunMode.ALL, node=None, sample_rows=None):
    """Run the saved graph (all of it, or the part `mode` and `node` say)."""
    require_role(user, experiment.project, Role.DEVELOPER)
    if mode not in RunMode.values:
        raise ValidationError({"mode": f"Mode must be one of {', '.join(RunMode.values)}."})
    if experiment.runs.filter(status=RunStatus.RUNNING).exists():
        raise ValidationError({"run": "A run of this experiment is under way; cancel it first."})
    checked = graphs.check_settings(user, experiment.project, experiment.graph, strict=True)
    if not checked.order:
        raise ValidationError({"graph": "The graph is empty: drag components onto the canvas."})
    selected = _selected(checked.graph, mode, node)
    wanted = set(selected)
    for node_id in selected:
        wanted |= graphs.ancestors(checked.graph, node_id)
    forced = selected if mode in (RunMode.FROM_HERE, RunMode.NODE) else set()
    if mode == RunMode.SAMPLE:
        sample_rows = _sample_rows(sample_rows)
    else:
        sample_rows = None
    with transaction.atomic():
        number = (experiment.runs.aggregate(n=Max("number"))["n"] or 0) + 1
        run = ExperimentRun.objects.create(
            experiment=experiment,
            number=number,
            graph=checked.graph,
            mode=mode,
            target=node or "",
            sample_rows=sample_rows,
            created_by=user,
        )
        components = {n["id"]: n["component"] for n in checked.graph["nodes"]}
        NodeRun.objects.bulk_create(
            NodeRun(
                run=run,
                node_id=node_id,
                component=components[node_id],
                params=checked.nodes[node_id].params,
                forced=node_id in forced,
            )
            for node_id in checked.order
            if node_id in wanted
        )
    plan(run)
    advance(run)
    run.refresh_from_db()
    return run


def _selected(graph: dict, mode: str, node) -> set[str]:
    ids = {n["id"] for n in graph["nodes"]}
    if mode in (RunMode.ALL, RunMode.SAMPLE) and not node:
        return ids
    if node not in ids:
        raise ValidationError({"node": f"No node '{node}' in the saved graph (save first)."})
    if mode == RunMode.FROM_HERE:
        return {node} | graphs.descendants(graph, node)
    if mode == RunMode.TO_HERE or mode == RunMode.SAMPLE:
        return {node} | graphs.ancestors(graph, node)
    return {node}


def _sample_rows(value) -> int:
    if value in (None, ""):
        return DEFAULT_SAMPLE_ROWS
    try:
        rows = int(value)
    except (TypeError, ValueError):
        rows = 0
    if not 1 <= rows <= MAX_SAMPLE_ROWS:
        raise ValidationError({"sample_rows": f"Sample rows must be 1 to {MAX_SAMPLE_ROWS:,}."})
    return rows


# -- planning and advancing a run ------------------------------------------------------------


def content_id(key: str, port: str) -> str:
    """The content id of a node's output: derived from its cache key (its component,
    settings and inputs' content ids), so known before it runs; components are
    deterministic (seeded), so the same key makes the same content."""
    return hashlib.sha256(f"{key}:{port}".encode()).hexdigest()


def plan(run: ExperimentRun) -> None:
    """Before anything runs: every node's cache key, in topological order. A data set node
    is its version's parts; a node whose key a successful earlier run of this experiment
    has (and was not forced) reuses that output; the rest wait to run."""
    nodes = {n.node_id: n for n in run.nodes.all()}
    graph = run.graph
    now = timezone.now()
    for node_id in [i for i in graphs.topological_order(graph) if i in nodes]:
        node = nodes[node_id]
        if getattr(registry.get(node.component), "reads_dataset", False):
            _read_dataset(run, node, now)
            continue
        upstream = _upstream(graph, node_id)
        if any(nodes[s].status in NODE_FAILED for s, _ in upstream.values()):
            _end_node(node, NodeStatus.SKIPPED, "an input did not succeed")
            continue
        inputs = {port: {"node_run": nodes[s].pk, "port": p} for port, (s, p) in upstream.items()}
        contents = {port: _content_of(nodes[s], p) for port, (s, p) in upstream.items()}
        key = cache_key(node.component, node.params, run.sample_rows, contents)
        hit = None if node.forced else _cached(run, key, node)
        if hit is not None:
            _claim(
                node,
                NodeStatus.CACHED,
                cache_key=key,
                cached_from=hit,
                outputs=hit.outputs,
                facts={**hit.facts, "inputs": inputs},
                job=hit.job,
                started_at=now,
                ended_at=now,
            )
        else:
            NodeRun.objects.filter(pk=node.pk).update(cache_key=key, facts={"inputs": inputs})
            node.cache_key, node.facts = key, {"inputs": inputs}


def _content_of(node: NodeRun, port: str) -> str:
    if node.outputs.get(port, {}).get("content_id"):
        return node.outputs[port]["content_id"]
    return content_id(node.cache_key, port)


def _cached(run: ExperimentRun, key: str, node: NodeRun) -> NodeRun | None:
    """The newest successful run of the same key whose outputs are all still stored (a
    view's base too: workers.runners.visual.views)."""
    candidates = (
        NodeRun.objects.filter(
            run__experiment_id=run.experiment_id,
            cache_key=key,
            status=NodeStatus.SUCCEEDED,
            run__cleared=False,
        )
        .exclude(pk=node.pk)
        .select_related("job")
        .order_by("-pk")
    )
    return next((c for c in candidates[:20] if not c.bases_cleared()), None)


def advance(run: ExperimentRun) -> None:
    """Start what is due: the waiting nodes whose inputs from outside are ready, grouped
    into segments that run in one process each (workers.runners.visual.run)."""
    run.refresh_from_db()
    if run.status != RunStatus.RUNNING:
        return
    nodes = {n.node_id: n for n in run.nodes.all()}
    graph = run.graph
    order = [i for i in graphs.topological_order(graph) if i in nodes]
    for node_id in order:  # below a failure nothing runs
        node = nodes[node_id]
        sources = [nodes[s] for s, _ in _upstream(graph, node_id).values()]
        if node.status == NodeStatus.PENDING and any(s.status in NODE_FAILED for s in sources):
            _end_node(node, NodeStatus.SKIPPED, "an input did not succeed")
    for segment in _segments(graph, order, nodes):
        _start_segment(run, segment, nodes)
    _settle(run, nodes.values())


def _segments(graph: dict, order: list[str], nodes: dict) -> list[list[NodeRun]]:
    """The waiting nodes as segments, in topological order: a node joins the segment of
    its waiting upstream nodes when they all are in one and it asks for the same resource
    package; otherwise it starts a segment of its own (so no two segments wait on each
    other). Only segments whose inputs from outside are all done are returned."""
    packages = {n["id"]: n.get("package") for n in graph["nodes"]}
    segment_of: dict[str, int] = {}
    segments: list[list[str]] = []
    for node_id in order:
        if nodes[node_id].status != NodeStatus.PENDING:
            continue
        waiting = {segment_of[s] for s, _ in _upstream(graph, node_id).values() if s in segment_of}
        if len(waiting) == 1:
            index = waiting.pop()
            if packages[segments[index][0]] == packages[node_id]:
                segments[index].append(node_id)
                segment_of[node_id] = index
                continue
        segment_of[node_id] = len(segments)
        segments.append([node_id])
    due = []
    for members in segments:
        inside = set(members)
        outside = [
            nodes[s]
            for node_id in members
            for s, _ in _upstream(graph, node_id).values()
            if s not in inside
        ]
        if all(s.status in NODE_DONE for s in outside):
            due.append([nodes[i] for i in members])
    return due


def _upstream(graph: dict, node_id: str) -> dict[str, tuple[str, str]]:
    return {e["to_port"]: (e["from"], e["from_port"]) for e in graph["edges"] if e["to"] == node_id}


def _claim(node: NodeRun, status, **values) -> bool:
    """Compare-and-set from pending; mirrors the change on `node`."""
    claimed = NodeRun.objects.filter(pk=node.pk, status=NodeStatus.PENDING).update(
        status=status, **values
    )
    if claimed:
        node.status = status
        for key, value in values.items():
            setattr(node, key, value)
    else:
        node.refresh_from_db()
    return bool(claimed)


def _end_node(node: NodeRun, status, error: str = "") -> bool:
    now = timezone.now()
    return _claim(node, status, error=error, started_at=node.started_at or now, ended_at=now)


def _start_segment(run: ExperimentRun, segment: list[NodeRun], nodes: dict) -> None:
    """Claim the segment's nodes (all or none: two advancers see the same segments) and
    start its job."""
    pks = [n.pk for n in segment]
    claimed = NodeRun.objects.filter(pk__in=pks, status=NodeStatus.PENDING).update(
        status=NodeStatus.QUEUED
    )
    if claimed != len(pks):
        if claimed:  # a race lost halfway: give back what was taken
            NodeRun.objects.filter(pk__in=pks, status=NodeStatus.QUEUED, job=None).update(
                status=NodeStatus.PENDING
            )
        for node in segment:
            node.refresh_from_db()
        return
    try:
        job = _create_job(run, segment)
    except Exception as exc:  # e.g. the package went away: the nodes fail, naming why
        logger.warning("segment %s could not start: %r", pks, exc)
        message = "; ".join(exc.messages) if isinstance(exc, ValidationError) else str(exc)
        NodeRun.objects.filter(pk__in=pks).update(
            status=NodeStatus.FAILED, error=f"could not start: {message}", ended_at=timezone.now()
        )
        for node in segment:
            node.status = NodeStatus.FAILED
        return
    now = timezone.now()
    NodeRun.objects.filter(pk__in=pks).update(job=job, started_at=now)
    for node in segment:
        node.status, node.job, node.started_at = NodeStatus.QUEUED, job, now


def cache_key(component: str, params: dict, sample_rows, contents: dict) -> str:
    canonical = json.dumps(
        [component, params, sample_rows, sorted(contents.items())], sort_keys=True, default=str
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def _read_dataset(run: ExperimentRun, node: NodeRun, now) -> bool:
    """A data set node runs nothing: its output is the version's parquet parts."""
    from apps.datasets.models import Dataset
    from apps.datasets.selectors import get_version

    dataset = Dataset.objects.filter(pk=node.params.get("dataset")).first()
    try:
        version = get_version(dataset, node.params.get("version")) if dataset else None
    except Http404:  # the version was deleted since the run was checked
        version = None
    if version is None or not version.parts:
        return _end_node(node, NodeStatus.FAILED, "the data set has no converted data")
    output = {
        "kind": "table",
        "uris": list(version.parts),
        "content_id": f"dataset-version:{version.pk}:{len(version.parts)}",
        "schema": {"kind": "table", "columns": list(version.columns)},
        "rows": version.rows,
        "stats": _dataset_stats(version),
        "dataset": {"id": dataset.pk, "name": dataset.name, "version": version.number},
    }
    key = cache_key(node.component, node.params, None, {"version": output["content_id"]})
    return _claim(
        node,
        NodeStatus.SUCCEEDED,
        cache_key=key,
        outputs={"table": output},
        started_at=now,
        ended_at=now,
    )


def _dataset_stats(version) -> list[dict]:
    """The version's statistics in the view-data panel's shape."""
    shown = []
    for column, stat in zip(version.columns, version.stats or [], strict=False):
        entry = {"name": column["name"], "type": column["type"]}
        if isinstance(stat, dict):
            for key in ("missing", "distinct", "mean", "std", "min", "max"):
                if key in stat:
                    entry[key] = stat[key]
        shown.append(entry)
    return shown


def _package(node_params_package) -> ResourcePackage:
    packages = ResourcePackage.objects.filter(module=Module.TRAIN, enabled=True)
    if node_params_package is not None:
        package = packages.filter(pk=node_params_package).first()
        if package is None:
            raise ValidationError({"package": "Choose an enabled training resource package."})
        return package
    # The largest CPU package: pandas/pyarrow and the estimators use the cores they get.
    package = packages.filter(device_kind="cpu").order_by("-cpu_cores").first()
    if package is None:
        raise ValidationError({"package": "No CPU training package is enabled."})
    return package


def _create_job(run: ExperimentRun, segment: list[NodeRun]) -> Job:
    experiment = run.experiment
    spec = next(n for n in run.graph["nodes"] if n["id"] == segment[0].node_id)
    return jobs.create_job(
        run.created_by,
        experiment.project,
        name=f"visual{experiment.pk}-{run.number}-{segment[0].node_id}"[:39],
        kind=node_jobs.KIND,
        algorithm=node_jobs.ALGORITHM,
        params={"node_runs": [n.pk for n in segment]},
        package_id=_package(spec.get("package")).pk,
        time_limit_s=node_jobs.TIME_LIMIT_S,
        output_path=f"{experiment.storage_path}runs/{run.number}/",
    )


def _settle(run: ExperimentRun, nodes) -> None:
    nodes = list(nodes)
    if any(n.status not in NODE_ENDED for n in nodes):
        return
    failed = [n for n in nodes if n.status == NodeStatus.FAILED]
    if any(n.status == NodeStatus.CANCELLED for n in nodes):
        status, reason = RunStatus.CANCELLED, "cancelled"
    elif failed:
        status, reason = RunStatus.FAILED, f"node {failed[0].node_id}: {failed[0].error}"
    else:
        status, reason = RunStatus.SUCCEEDED, ""
    ExperimentRun.objects.filter(pk=run.pk, status=RunStatus.RUNNING).update(
        status=status, reason=reason[:2000], ended_at=timezone.now()
    )


# -- a node's job ended ----------------------------------------------------------------------


def node_job_finished(job: Job) -> None:
    """A segment's job ended: each of its nodes succeeded (its manifest), failed (its
    error.json: the rule it broke, or "not run" below a failure), or ended with the job
    (crashed, timed out, terminated) when it left neither or its outputs were not stored."""
    segment = list(
        NodeRun.objects.select_related("run")
        .filter(job=job, status__in=(NodeStatus.QUEUED, NodeStatus.RUNNING))
        .order_by("pk")
    )
    if not segment:
        return
    now = timezone.now()
    stored = job.status == JobStatus.SUCCEEDED
    prefix = f"{job.output_path.rstrip('/')}/{job.job_id}/output/"
    for node in segment:
        manifest = job_selectors.run_json(job, f"output/{node.node_id}/manifest.json")
        error = job_selectors.run_json(job, f"output/{node.node_id}/error.json")
        if stored and manifest is not None:
            outputs = {
                port: {
                    **entry,
                    "uris": [f"{prefix}{node.node_id}/{port}/"],
                    "content_id": content_id(node.cache_key, port),
                }
                for port, entry in (manifest.get("ports") or {}).items()
            }
            facts = {
                **node.facts,
                **(manifest.get("facts") or {}),
                "seconds": manifest.get("seconds"),
                "write_seconds": manifest.get("write_seconds"),
            }
            NodeRun.objects.filter(pk=node.pk).update(
                status=NodeStatus.SUCCEEDED, outputs=outputs, facts=facts, ended_at=now
            )
            node.outputs, node.facts = outputs, facts
            _after_success(node)
            continue
        if error is not None:
            text = error.get("error") or "failed"
            status = NodeStatus.SKIPPED if text.startswith("not run:") else NodeStatus.FAILED
        elif job.status == JobStatus.TERMINATED:
            status, text = NodeStatus.CANCELLED, job.reason or "terminated"
        else:
            status, text = NodeStatus.FAILED, job.reason or "the node did not finish"
        NodeRun.objects.filter(pk=node.pk).update(status=status, error=text[:4000], ended_at=now)
    advance(segment[0].run)


def _after_success(node: NodeRun) -> None:
    """What a component's success means outside the run (a written data set)."""
    if node.component == "write_dataset":
        from apps.visual import datasets_out

        try:
            datasets_out.register(node)
        except Exception as exc:  # the node's data stays; say why no data set came of it
            logger.warning("write_dataset %s: %r", node, exc)
            message = "; ".join(exc.messages) if isinstance(exc, ValidationError) else str(exc)
            NodeRun.objects.filter(pk=node.pk).update(
                status=NodeStatus.FAILED, error=f"the data set was not written: {message}"
            )


# -- cancel ----------------------------------------------------------------------------------


def cancel_run(user, run: ExperimentRun) -> ExperimentRun:
    """Stop the running nodes; finished nodes keep their outputs."""
    require_role(user, run.experiment.project, Role.DEVELOPER)
    if run.status != RunStatus.RUNNING:
        raise ValidationError({"status": f"The run is already {run.status}."})
    now = timezone.now()
    ExperimentRun.objects.filter(pk=run.pk, status=RunStatus.RUNNING).update(
        status=RunStatus.CANCELLED, reason="cancelled by request", ended_at=now
    )
    run.nodes.filter(status=NodeStatus.PENDING).update(
        status=NodeStatus.CANCELLED, error="cancelled by request", ended_at=now
    )
    live = list(run.nodes.filter(status__in=(NodeStatus.QUEUED, NodeStatus.RUNNING)))
    segment_jobs = {n.job_id: n.job for n in live if n.job_id}  # one job runs several nodes
    for job in segment_jobs.values():
        if job.status in ACTIVE:
            jobs.terminate_job(user, job)  # refreshes it: a queued one ends at once
    # A node whose job has ended (or never started) is cancelled now; a running job's nodes
    # end with it (node_job_finished).
    ended = [n.pk for n in live if not n.job_id or segment_jobs[n.job_id].status not in ACTIVE]
    NodeRun.objects.filter(pk__in=ended, status__in=(NodeStatus.QUEUED, NodeStatus.RUNNING)).update(
        status=NodeStatus.CANCELLED, error="cancelled by request", ended_at=now
    )
    run.refresh_from_db()
    return run
