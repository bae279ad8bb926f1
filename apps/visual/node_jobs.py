"""A node of a visual modeling run is a job of its own kind on the job engine: leased cores
(the node's resource package), its own process under workers.supervise, a time limit, a
log, adoption after a restart. Its code is `workers.runners.visual.run`; the outputs of the
nodes upstream are staged in as `inputs/<port>/`, and `output/` (a folder per output port
and manifest.json) is staged out to `<experiment folder>/runs/<number>/<job_id>/output/`.

The job's params name node runs, not paths: the inputs are resolved when the run starts,
from the upstream node runs' recorded outputs (a data set's parquet parts, or an earlier
run's cached output)."""

import json
import sys
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ValidationError

from apps.jobs import algorithms

KIND = "visual"
ALGORITHM = "node"
PARAMS_FILE = "node.json"
TIME_LIMIT_S = 24 * 3600


def _validate(params: dict) -> dict:
    if not isinstance(params.get("node_run"), int):
        raise ValidationError({"params": "A visual modeling node job names its node run."})
    return {"node_run": params["node_run"]}


def _prepare(params: dict, workspace: Path):
    from apps.visual.models import NodeRun

    node_run = NodeRun.objects.select_related("run").get(pk=params["node_run"])
    stage, inputs = [], {}
    for port, source in (node_run.facts.get("inputs") or {}).items():
        upstream = NodeRun.objects.select_related("job").get(pk=source["node_run"])
        output = upstream.outputs[source["port"]]
        local = _local_output(upstream, source["port"])
        inputs[port] = f"inputs/{port}"
        uris = output["uris"]
        # One folder (a node's output) lands as the folder itself; several files (a data
        # set's parts) each in a numbered folder, so their order is the read order.
        for index, uri in enumerate(uris):
            dest = f"inputs/{port}" if len(uris) == 1 else f"inputs/{port}/{index:04d}"
            stage.append({"uri": uri, "dest": dest, **({"local": local} if local else {})})
    spec = {
        "component": node_run.component,
        "params": node_run.params,
        "inputs": inputs,
        "output_dir": "output",
        "seed": 0,
        "sample_rows": node_run.run.sample_rows,
    }
    (workspace / PARAMS_FILE).write_text(json.dumps(spec, ensure_ascii=False))
    return [sys.executable, "-m", "workers.runners.visual.run", "--params", PARAMS_FILE], stage


def _local_output(upstream, port: str) -> str | None:
    """Where the upstream node's job left this output on this host (its workspace's
    output/<port>/), so the next node copies it instead of reading it back from the store.
    A data set's parts (no job) and a run of another host have none."""
    job = upstream.job
    if job is None:
        return None
    run = job.runs.filter(index=0).first()
    if run is None or not run.run_dir or run.host != settings.HOST_NAME:
        return None
    folder = Path(run.run_dir) / "workspace" / "output" / port
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
