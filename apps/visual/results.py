"""What a run's nodes produced, for the canvas: the run and its nodes as the API shows
them, a page of a node's output table, an evaluation report, a node's log, and two runs
side by side (history's compare)."""

import json
from pathlib import Path

from django.http import Http404
from rest_framework.exceptions import APIException

from apps.datasets.selectors import MAX_PAGE_ROWS, read_parquet_rows
from apps.jobs import selectors as job_selectors
from apps.storage.client import get_client, translate_errors
from apps.storage.paths import parse_bos_uri
from apps.visual import services, view_pages
from apps.visual.models import ExperimentRun, NodeRun, NodeStatus
from workers.runners.visual import registry

LOG_BYTES = 256 * 1024


class NotReady(APIException):
    status_code = 409
    default_detail = "This node has no such output yet."
    default_code = "not_ready"


class Cleared(APIException):
    status_code = 410
    default_detail = "The run's data was cleared."
    default_code = "cleared"


def _seconds(start, end):
    return round((end - start).total_seconds(), 1) if start and end else None


def run_summary(run: ExperimentRun) -> dict:
    return {
        "number": run.number,
        "status": run.status,
        "mode": run.mode,
        "target": run.target,
        "sample_rows": run.sample_rows,
        "started_at": run.started_at,
        "ended_at": run.ended_at,
        "duration_s": _seconds(run.started_at, run.ended_at),
        "reason": run.reason,
        "cleared": run.cleared,
    }


def node_view(node: NodeRun) -> dict:
    return {
        "status": services.node_status(node),
        "component": node.component,
        "cached_from_run": node.cached_from.run.number if node.cached_from_id else None,
        "error": node.error,
        "job_id": node.job.job_id if node.job_id else None,
        "started_at": node.started_at,
        "ended_at": node.ended_at,
        "duration_s": _seconds(node.started_at, node.ended_at),
        "outputs": {
            port: {
                k: v for k, v in out.items() if k in ("kind", "rows", "schema", "stats", "dataset")
            }
            for port, out in node.outputs.items()
        },
        "facts": {k: v for k, v in node.facts.items() if k != "inputs"},
        "params": node.params,
    }


def run_detail(run: ExperimentRun) -> dict:
    nodes = run.nodes.select_related("job", "cached_from__run")
    return {
        **run_summary(run),
        "graph": run.graph,
        "nodes": {node.node_id: node_view(node) for node in nodes},
        "releasable": [n.node_id for n in services.release_candidates(run)]
        if run.status != "running"
        else [],
    }


def _output(node: NodeRun, port: str | None, kind: str) -> tuple[str, dict]:
    candidates = {p: o for p, o in node.outputs.items() if o.get("kind") == kind}
    if not candidates:
        raise NotReady(f"This node has no {kind} output (its status: {node.status}).")
    if port in (None, ""):
        port = next(iter(candidates))
    if port not in candidates:
        raise Http404(f"No {kind} output '{port}' (outputs: {', '.join(candidates)}).")
    if _cleared(node):
        raise Cleared()
    return port, candidates[port]


def _cleared(node: NodeRun) -> bool:
    """Its outputs live in the run that computed them: gone once that run was cleared (a
    data set's parts are the data set's, never cleared here), and so are the views made
    from a table of a cleared run."""
    source = node.cached_from or node
    if source.run.cleared and not (source.outputs.get("table") or {}).get("dataset"):
        return True
    return source.bases_cleared()


def stored_files(uris: list[str], suffix: str) -> list[str]:
    """The files under the output folders (a data set's parts are files already)."""
    client = get_client()
    files = []
    with translate_errors():
        for uri in uris:
            if not uri.endswith("/"):
                files.append(uri)
                continue
            path = parse_bos_uri(uri)
            found = client.list_objects(path.bucket, prefix=path.key, recursive=True)
            names = sorted(o.object_name for o in found if o.object_name.endswith(suffix))
            files.extend(f"bos://{path.bucket}/{name}" for name in names)
    return files


def data_page(node: NodeRun, port=None, offset=0, limit=50) -> dict:
    port, output = _output(node, port, "table")
    try:
        offset, limit = max(0, int(offset)), max(1, min(int(limit), MAX_PAGE_ROWS))
    except (TypeError, ValueError):
        offset, limit = 0, 50
    if output.get("view"):
        try:
            rows = view_pages.page_rows(output, offset, limit)
        except view_pages.BaseGone as exc:
            raise Cleared(f"This output can no longer be shown: {exc}.") from None
    else:
        rows = read_parquet_rows(stored_files(output["uris"], ".parquet"), offset, limit)
    return {
        "port": port,
        "columns": output["schema"]["columns"],
        "rows": rows,
        "offset": offset,
        "limit": limit,
        "total": output.get("rows"),
        "stats": output.get("stats") or [],
    }


def report(node: NodeRun) -> dict:
    from apps.datasets.storage_io import read_object_bytes

    _, output = _output(node, None, "report")
    files = stored_files(output["uris"], "report.json")
    if not files:
        raise Cleared("The report is gone.")
    path = parse_bos_uri(files[0])
    return json.loads(read_object_bytes(path.bucket, path.key, 4 << 20))


def log_text(node: NodeRun) -> str:
    """The node's own log, after the job's lines about staging (its inputs, its outputs)."""
    source = node.cached_from or node
    if source.job_id is None:
        return "This node ran no process (a data set's parquet parts are its output)."
    job = source.job
    own = _node_log(job, source.node_id)
    staging = [
        line
        for entry in job_selectors.instance_logs(job)
        for line in (entry.get("text") or "").splitlines()
        if "[bml]" in line
    ]
    text = "\n".join(staging + ["", own])
    if node.cached_from_id:
        text = f"(cached: the log of run {source.run.number})\n{text}"
    return text


def _node_log(job, node_id: str) -> str:
    run = job.runs.filter(index=0).first()
    if run is not None and run.run_dir:
        local = Path(run.run_dir) / "workspace" / "output" / node_id / "log.txt"
        try:
            return local.read_text(errors="replace")[-LOG_BYTES:]
        except OSError:
            pass
    found = job_selectors.result_bytes(job, f"output/{node_id}/log.txt")
    return found.decode(errors="replace")[-LOG_BYTES:] if found else "(no log)"


def compare(a: ExperimentRun, b: ExperimentRun) -> dict:
    components = registry.load_all()
    nodes_a = {n.node_id: n for n in a.nodes.all()}
    nodes_b = {n.node_id: n for n in b.nodes.all()}
    labels = {n["id"]: n for n in a.graph["nodes"] + b.graph["nodes"]}
    rows = []
    for node_id, spec in labels.items():
        na, nb = nodes_a.get(node_id), nodes_b.get(node_id)
        params_a = _graph_params(a, node_id)
        params_b = _graph_params(b, node_id)
        component = components.get(spec["component"])
        rows.append(
            {
                "node_id": node_id,
                "label": spec.get("label") or (component.label if component else node_id),
                "component": spec["component"],
                "params_a": params_a,
                "params_b": params_b,
                "changed": params_a != params_b,
                "status_a": services.node_status(na) if na else None,
                "status_b": services.node_status(nb) if nb else None,
                "metrics_a": _metrics(na),
                "metrics_b": _metrics(nb),
            }
        )
    return {"a": run_summary(a), "b": run_summary(b), "nodes": rows}


def _graph_params(run: ExperimentRun, node_id: str):
    spec = next((n for n in run.graph["nodes"] if n["id"] == node_id), None)
    return None if spec is None else spec.get("params") or {}


def _metrics(node: NodeRun | None) -> dict | None:
    """An evaluation node's metrics (from its report), or a training node's facts."""
    if node is None or node.status not in (NodeStatus.SUCCEEDED, NodeStatus.CACHED):
        return None
    if any(o.get("kind") == "report" for o in node.outputs.values()):
        try:
            return report(node).get("metrics")
        except Exception:  # cleared, or the store is away: compare shows what it has
            return None
    facts = {k: v for k, v in node.facts.items() if isinstance(v, int | float)}
    return facts or None
