"""The nodes of a visual modeling run run as jobs of their own kind on the job engine:
leased cores (the nodes' resource package), a process under workers.supervise, a time limit,
a log, adoption after a restart. One job runs a segment of due nodes
(apps.visual.execution._segments) in one process, `workers.runners.visual.run`: tables pass
in memory between its nodes; outputs computed earlier (upstream segments, cached nodes, data
sets) are staged in as `inputs/<node>/<port>/` (a view with its base in `base/`,
workers.runners.visual.views), and `output/` (a folder per node: its
ports, log.txt, manifest.json or error.json) is staged out to
`<experiment folder>/runs/<number>/<job_id>/output/`.

The job's params name node runs, not paths: the inputs are resolved when the job starts,
from the upstream node runs' recorded outputs (a data set's parquet parts, or an earlier
run's cached output)."""

import json
import sys
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ValidationError

from apps.jobs import algorithms
from workers.runners.visual import views

KIND = "visual"
ALGORITHM = "node"
PARAMS_FILE = "node.json"
TIME_LIMIT_S = 24 * 3600


def _validate(params: dict) -> dict:
    runs = params.get("node_runs")
    if not isinstance(runs, list) or not runs or not all(isinstance(i, int) for i in runs):
        raise ValidationError({"params": "A visual modeling job names its node runs."})
    return {"node_runs": runs}


def _prepare(params: dict, workspace: Path):
    from apps.visual.models import NodeRun

    segment = list(
        NodeRun.objects.select_related("run").filter(pk__in=params["node_runs"]).order_by("pk")
    )
    inside = {n.pk: n for n in segment}
    stage, nodes = [], []
    for node_run in segment:
        inputs = {}
        for port, source in (node_run.facts.get("inputs") or {}).items():
            if source["node_run"] in inside:  # computed in this process: handed in memory
                inputs[port] = {"node": inside[source["node_run"]].node_id, "port": source["port"]}
                continue
            folder = f"inputs/{node_run.node_id}/{port}"
            upstream = NodeRun.objects.get(pk=source["node_run"])
            stage += _staged(upstream, source["port"], folder)
            inputs[port] = {"path": folder, "ref": stored_ref(upstream, source["port"])}
        nodes.append(
            {
                "id": node_run.node_id,
                "node_run": node_run.pk,
                "component": node_run.component,
                "params": node_run.params,
                "inputs": inputs,
            }
        )
    spec = {
        "nodes": nodes,
        "output_dir": "output",
        "seed": 0,
        "sample_rows": segment[0].run.sample_rows,
    }
    (workspace / PARAMS_FILE).write_text(json.dumps(spec, ensure_ascii=False))
    return [*runner(), "--params", PARAMS_FILE], stage


def runner() -> list[str]:
    """The segment runner's command, without its arguments (a warm start, workers.spare,
    is the same command waiting for them)."""
    # numpy's huge-page advice made the first touch of a 100 MB array cost 0.5-0.7 s
    # instead of 0.05 s on the development VM (tables of a million rows are made of them).
    return ["env", "NUMPY_MADVISE_HUGEPAGE=0", sys.executable, "-m", "workers.runners.visual.run"]


def stored_ref(upstream, port: str) -> dict:
    """The stored table an output is made of: a view's base, or the output itself (its
    node run, or the one it is cached from)."""
    output = upstream.outputs.get(port) or {}
    if output.get("base"):
        return output["base"]
    return {"node_run": upstream.cached_from_id or upstream.pk, "port": port}


def _staged(upstream, port: str, folder: str) -> list[dict]:
    """Stage-in items of an output computed earlier: one folder (a node's output) lands as
    the folder itself; several files (a data set's parts) each in a numbered folder, so
    their order is the read order. Each names where this host still has the files. A view
    (workers.runners.visual.views) brings its base along, in its `base/`."""
    from apps.visual.models import NodeRun

    output = upstream.outputs[port]
    uris = output["uris"]
    local = local_output(upstream, port)
    items = []
    for index, uri in enumerate(uris):
        dest = folder if len(uris) == 1 else f"{folder}/{index:04d}"
        items.append({"uri": uri, "dest": dest, **({"local": local} if local else {})})
    if output.get("base"):
        base = NodeRun.objects.filter(pk=output["base"]["node_run"]).first()
        if base is None or output["base"]["port"] not in base.outputs:
            raise ValueError(f"the table {upstream.node_id}.{port} was made from is gone")
        copy = _host_copy(upstream, port)
        if copy:  # the view's rows as they were made: read instead of base and operations
            items[0]["host_files"] = [{"path": copy, "name": views.HOST_COPY}]
        items += _staged(base, output["base"]["port"], f"{folder}/base")
    return items


def _host_copy(upstream, port: str) -> str | None:
    """Where this host keeps the rows of a view output (workers.runners.visual.run writes
    them beside its outputs, never staged out), or None."""
    source = upstream.cached_from or upstream
    workspace = workspace_here(source.job)
    if workspace is None:
        return None
    path = workspace / views.HOST_COPIES_DIR / source.node_id / port / views.HOST_COPY
    return str(path) if path.is_file() else None


def workspace_here(job) -> Path | None:
    """The workspace of a job's (first) run when it ran on this host, else None."""
    run = job.runs.filter(index=0).first() if job else None
    if run is None or not run.run_dir or run.host != settings.HOST_NAME:
        return None
    return Path(run.run_dir) / "workspace"


def local_output(upstream, port: str) -> str | None:
    """Where this host still has the upstream output's files, so the next job copies them
    instead of reading them back from the store: a node's job's workspace output/<node>/<port>/,
    or a data set's conversion job's output/ (the parts). None when not on this host."""
    output = upstream.outputs.get(port) or {}
    if output.get("dataset"):
        from apps.datasets.models import DatasetVersion

        version = (
            DatasetVersion.objects.filter(
                dataset_id=output["dataset"]["id"], number=output["dataset"]["version"]
            )
            .select_related("job")
            .first()
        )
        job, relative = (version.job if version else None), Path("output")
    else:
        job, relative = upstream.job, Path("output") / upstream.node_id / port
    workspace = workspace_here(job)
    if workspace is None:
        return None
    folder = workspace / relative
    return str(folder) if folder.is_dir() else None


NODE = algorithms.register(
    algorithms.Algorithm(
        kind=KIND,
        name=ALGORITHM,
        title="Visual modeling: one node of an experiment",
        validate=_validate,
        prepare=_prepare,
        internal=True,
        reports_curves=False,
    )
)
