"""Run one node of a visual modeling experiment:

    python -m workers.runners.visual.run --params node.json

node.json (written by apps.visual at start, inputs staged in by workers.supervise):
    {"component": "split", "params": {...checked...},
     "inputs": {"<input port>": "<folder in the workspace>"},
     "output_dir": "output", "seed": 0, "sample_rows": null}

Writes `<output_dir>/<output port>/` per output (table: parquet; model: the model folder;
report: report.json) and `<output_dir>/manifest.json`:
    {"ports": {"<port>": {"kind", "content_id", "schema", "rows"?, "stats"?}},
     "facts": {...}, "seconds": float}
A rule broken by the data (a ComponentError, a ValueError) writes `error.json`
{"error", "field"} instead and exits 1, so the node shows the rule, not a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from workers.runners.visual import base, registry, tables


def _read_input(kind: str, folder: Path, sample_rows: int | None):
    if kind == "table":
        return tables.read_table(folder, sample_rows)
    if kind == "model":
        from workers.runners.visual import models

        return models.read_model(folder)
    return json.loads((folder / "report.json").read_text())


def _write_output(kind: str, value, folder: Path) -> dict:
    folder.mkdir(parents=True, exist_ok=True)
    if kind == "table":
        tables.write_table(value, folder)
        entry = {
            "schema": value.schema(),
            "rows": len(value.frame),
            "stats": tables.basic_stats(value.frame),
        }
    elif kind == "model":
        from workers.runners.visual import models

        models.write_model(value, folder)
        entry = {"schema": value.schema()}
    else:
        (folder / "report.json").write_text(json.dumps(value, allow_nan=False))
        entry = {"schema": {"kind": "report", "task": value.get("task")}}
    return {"kind": kind, "content_id": tables.content_id(folder), **entry}


def run_node(spec: dict, workspace: Path) -> dict:
    started = time.monotonic()
    component = registry.get(spec["component"])
    sample_rows = spec.get("sample_rows")
    inputs = {}
    for port in component.inputs:
        folder = spec.get("inputs", {}).get(port.name)
        if folder is not None:
            inputs[port.name] = _read_input(port.kind, workspace / folder, sample_rows)
    context = base.RunContext(
        str(workspace), seed=int(spec.get("seed") or 0), sample_rows=sample_rows
    )
    outputs = component.run(spec.get("params") or {}, inputs, context)
    out_dir = workspace / spec.get("output_dir", "output")
    manifest = {"ports": {}, "facts": context.facts}
    for port in component.outputs:
        if port.name not in outputs:
            raise RuntimeError(f"component {component.name} did not produce output {port.name}")
        manifest["ports"][port.name] = _write_output(
            port.kind, outputs[port.name], out_dir / port.name
        )
    manifest["seconds"] = round(time.monotonic() - started, 3)
    (out_dir / "manifest.json").write_text(json.dumps(manifest, allow_nan=False))
    return manifest


def main(argv=None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--params", required=True)
    args = parser.parse_args(argv)
    workspace = Path.cwd()
    spec = json.loads(Path(args.params).read_text())
    out_dir = workspace / spec.get("output_dir", "output")
    out_dir.mkdir(parents=True, exist_ok=True)
    try:
        manifest = run_node(spec, workspace)
    except (base.ComponentError, ValueError, KeyError) as exc:
        field = getattr(exc, "field", None)
        message = str(exc) if not isinstance(exc, KeyError) else f"missing column {exc}"
        (out_dir / "error.json").write_text(json.dumps({"error": message, "field": field}))
        print(f"Node failed: {message}", file=sys.stderr, flush=True)
        return 1
    print(f"Node done in {manifest['seconds']} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
