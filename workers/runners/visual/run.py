"""Run the nodes of a visual modeling run that are due, in one process:

    python -m workers.runners.visual.run --params segment.json
    python -m workers.runners.visual.run --wait .bml/go     # a warm start (workers.spare)

segment.json (written by apps.visual at start; inputs from outside staged in by
workers.supervise):
    {"nodes": [{"id": "n2", "component": "split", "params": {...checked...},
                "inputs": {"<input port>": {"node": "n1", "port": "table"}      # in this run
                                         | {"path": "<folder in the workspace>"}}}, ...],
     "output_dir": "output", "seed": 0, "sample_rows": null}

Why one process for the due nodes, not one per node: a node's own process paid ~1.5 s of
interpreter and imports (pandas, pyarrow, scikit-learn) and a parquet write, upload,
download and read of every table it handed on (benchmarks/visual.py measured 11x the plain
script at 1M rows). Here tables pass in memory, the nodes in topological order; each still
has its own outputs, log and outcome:

    <output_dir>/<node id>/<port>/   a table (parquet, or a view of the stored table it
                                     was made from: views.py), a model folder, or
                                     report.json
    <output_dir>/<node id>/log.txt   what the node said
    <output_dir>/<node id>/running   while it runs (the canvas's spinner)
    <output_dir>/<node id>/manifest.json  {"ports": {port: {kind, schema, rows?, stats?}},
                                           "facts": {...}, "seconds": s}  once it succeeded
    <output_dir>/<node id>/error.json     {"error", "field"}: the rule it broke
A node fed by a failed node is not run (error.json says which input). The process exits 0
unless it crashes: a node's failure is the node's, and the others' outputs are kept.

A node's spec names its node run (`node_run`) and an input staged from outside the stored
table it is made of (`ref`), so the tables made from them are stored as views (views.py);
without them (run_node: tests and tools) every table is parquet.

Outputs are written by a background thread (pyarrow and the disk release the GIL) while
the next node computes; a manifest appears only once its node's files are complete.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
import threading
import time
import traceback
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from workers.runners.visual import base, registry, tables, views

RULE_ERRORS = (base.ComponentError, ValueError, KeyError)


def _read_input(kind: str, folder: Path, sample_rows: int | None, ref=None, bases=None):
    if kind == "table":
        return tables.read_table(folder, sample_rows, ref, bases)
    if kind == "model":
        from workers.runners.visual import models

        return models.read_model(folder)
    return json.loads((folder / "report.json").read_text())


def _write_output(kind: str, value, folder: Path, as_view: bool = False, arrow=None) -> dict:
    folder.mkdir(parents=True, exist_ok=True)
    if kind == "table":
        arrow = arrow if arrow is not None else tables.arrow_of(value.frame)
        stored = views.write_view(value, folder) if as_view else {}
        if not as_view:
            tables.write_table(value, folder, arrow)
        return {
            "kind": kind,
            "schema": value.schema(),
            "rows": len(value.frame),
            "stats": tables.basic_stats(value.frame, arrow),
            **stored,
        }
    if kind == "model":
        from workers.runners.visual import models

        models.write_model(value, folder)
        return {"kind": kind, "schema": value.schema()}
    (folder / "report.json").write_text(json.dumps(value, allow_nan=False))
    return {"kind": kind, "schema": {"kind": "report", "task": value.get("task")}}


class NodeLog:
    """A node's log: its own file, and the job's log (stdout) with the node's id."""

    def __init__(self, node_id: str, path: Path):
        self.node_id = node_id
        self.path = path
        self.lock = threading.Lock()

    def __call__(self, message: str) -> None:
        stamp = time.strftime("%H:%M:%S")
        with self.lock, self.path.open("a") as fh:
            fh.write(f"[{stamp}] {message}\n")
        print(f"[{_now()}] [{self.node_id}] {message}", flush=True)


def _now() -> str:
    """The job log's time of a line, to the millisecond (the [bml] lines have theirs)."""
    return time.strftime("%H:%M:%S.") + f"{time.time() % 1:.3f}"[2:]


def _error_text(exc: BaseException) -> str:
    return f"missing column {exc}" if isinstance(exc, KeyError) else str(exc)


class Segment:
    def __init__(self, spec: dict, workspace: Path):
        self.spec = spec
        self.workspace = workspace
        self.out_dir = workspace / spec.get("output_dir", "output")
        self.values: dict[tuple[str, str], object] = {}  # (node, port) -> value, in memory
        self.outcome: dict[str, str] = {}  # node -> succeeded | failed | skipped
        self.writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="outputs")
        self.copier = ThreadPoolExecutor(max_workers=1, thread_name_prefix="host-copies")
        self.pending: list[Future] = []
        self.stored_rows: set[tuple[str, str]] = set()  # tables stored as parquet, not views
        self.bases: dict[str, object] = {}  # the views' bases read, each once
        self.node_specs = {node["id"]: node for node in spec["nodes"]}

    def run(self) -> dict[str, str]:
        _import_ahead(self.spec["nodes"])
        for node in self.spec["nodes"]:
            self.run_node(node)
        for future in self.pending:
            future.result()
        self.writer.shutdown()
        self.copier.shutdown()
        return self.outcome

    def run_node(self, node: dict) -> None:
        node_id = node["id"]
        folder = self.out_dir / node_id
        folder.mkdir(parents=True, exist_ok=True)
        failed_inputs = [
            f"{port} (from {source['node']})"
            for port, source in node.get("inputs", {}).items()
            if "node" in source and self.outcome.get(source["node"]) != "succeeded"
        ]
        if failed_inputs:
            self.fail(node_id, f"not run: its input {', '.join(failed_inputs)} did not succeed")
            self.outcome[node_id] = "skipped"
            return
        (folder / "running").touch()
        log = NodeLog(node_id, folder / "log.txt")
        started = time.monotonic()
        try:
            component = registry.get(node["component"])
            log(f"{component.label} ({component.name}) starts")
            inputs = self.inputs(component, node)
            context = base.RunContext(
                str(self.workspace),
                seed=int(self.spec.get("seed") or 0),
                sample_rows=self.spec.get("sample_rows"),
            )
            context.log = log
            outputs = component.run(node.get("params") or {}, inputs, context)
            missing = [p.name for p in component.outputs if p.name not in outputs]
            if missing:
                raise RuntimeError(f"component {component.name} produced no {missing}")
        except RULE_ERRORS as exc:
            log(f"failed: {_error_text(exc)}")
            self.fail(node_id, _error_text(exc), getattr(exc, "field", None))
            return
        except Exception as exc:  # a component's own bug: the node fails with its traceback
            log(traceback.format_exc())
            self.fail(node_id, f"{type(exc).__name__}: {exc}")
            return
        for port in component.outputs:
            value = outputs[port.name]
            if isinstance(value, tables.Table) and (value.origin is None or component.materializes):
                # only its rows can tell (or its consumer wants rows, a data set): parquet,
                # the base of the views made from it downstream
                ref = (
                    {"node_run": node["node_run"], "port": port.name}
                    if "node_run" in node
                    else None
                )
                origin = views.origin_of(ref, None)
                value = tables.Table(value.frame, value.steps, value.source_columns, origin)
                outputs[port.name] = value
                self.stored_rows.add((node_id, port.name))
            self.values[(node_id, port.name)] = value
        self.outcome[node_id] = "succeeded"
        computed = round(time.monotonic() - started, 3)
        self.pending.append(
            self.writer.submit(self.store, node_id, component, outputs, context, log, computed)
        )

    def inputs(self, component, node: dict) -> dict:
        found = {}
        for port in component.inputs:
            source = node.get("inputs", {}).get(port.name)
            if source is None:
                continue
            if "node" in source:
                found[port.name] = _handed(self.values[(source["node"], source["port"])])
            else:
                folder = self.workspace / source["path"]
                found[port.name] = _read_input(
                    port.kind, folder, self.spec.get("sample_rows"), source.get("ref"), self.bases
                )
        return found

    def store(self, node_id, component, outputs, context, log, computed) -> None:
        started = time.monotonic()
        folder = self.out_dir / node_id
        manifest = {"ports": {}, "facts": context.facts, "seconds": computed}
        for port in component.outputs:
            value = outputs[port.name]
            as_view = (node_id, port.name) not in self.stored_rows
            arrow = tables.arrow_of(value.frame) if port.kind == "table" else None
            copying = None
            if as_view and port.kind == "table" and "node_run" in self.node_specs[node_id]:
                cells = value.frame.shape[0] * value.frame.shape[1]
                if cells >= views.HOST_COPY_MIN_CELLS:  # written beside the rest, not after
                    kept = self.workspace / views.HOST_COPIES_DIR / node_id / port.name
                    copying = self.copier.submit(
                        views.write_host_copy, value.frame, kept / views.HOST_COPY, arrow
                    )
            manifest["ports"][port.name] = _write_output(
                port.kind, value, folder / port.name, as_view, arrow
            )
            if copying is not None:
                copying.result()
        manifest["write_seconds"] = round(time.monotonic() - started, 3)
        _write_json(folder / "manifest.json", manifest)
        (folder / "running").unlink(missing_ok=True)
        log(f"done in {computed} s (outputs written in {manifest['write_seconds']} s)")

    def fail(self, node_id: str, message: str, field: str | None = None) -> None:
        self.outcome[node_id] = "failed"
        folder = self.out_dir / node_id
        _write_json(folder / "error.json", {"error": message, "field": field})
        (folder / "running").unlink(missing_ok=True)


def _import_ahead(nodes: list[dict]) -> None:
    """Import what the segment's components will import (Component.imports), in a daemon
    thread: scikit-learn's ~1 s of imports is Python work that overlaps the reading of
    parquet and the numpy work of the nodes before (both release the GIL). A node that gets
    there first waits on the import lock; a failed import here is only tried again there."""
    wanted = []
    for node in nodes:
        try:
            wanted += [m for m in registry.get(node["component"]).imports if m not in wanted]
        except base.ComponentError:
            continue  # an unknown component fails as its node
    if not wanted:
        return

    def load() -> None:
        import importlib

        started = time.monotonic()
        for module in wanted:
            try:
                importlib.import_module(module)
            except Exception:  # noqa: BLE001 - the node's own import reports it
                pass
        took = time.monotonic() - started
        names = ", ".join(wanted)
        print(f"[{_now()}] [segment] imported {names} ahead in {took:.2f} s", flush=True)

    threading.Thread(target=load, name="imports", daemon=True).start()


def _handed(value):
    """What a consumer gets of a value computed in this process. A table is a shallow copy
    (pandas' copy-on-write: no data is copied), so a component that assigns a column of
    its input changes its own copy, never the table another node reads or writes out."""
    if isinstance(value, tables.Table):
        return tables.Table(
            value.frame.copy(deep=False), list(value.steps), value.source_columns, value.origin
        )
    return value


def _write_json(path: Path, value) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(value, allow_nan=False))
    tmp.replace(path)


def run_node(spec: dict, workspace: Path) -> dict:
    """One node (tests, and tools): `spec` as a segment's node with its inputs as folders
    ({"component", "params", "inputs": {port: folder}, "sample_rows"?, "output_dir"?});
    its outputs go to <output_dir>/<port>/. Returns its manifest; raises its failure."""
    out = spec.get("output_dir", "output")
    node = {
        "id": "node",
        "component": spec["component"],
        "params": spec.get("params") or {},
        "inputs": {port: {"path": folder} for port, folder in (spec.get("inputs") or {}).items()},
    }
    segment = Segment(
        {"nodes": [node], "output_dir": f"{out}/.node", "seed": spec.get("seed") or 0,
         "sample_rows": spec.get("sample_rows")},
        workspace,
    )  # fmt: skip
    segment.run()
    folder = workspace / out / ".node" / "node"
    error = folder / "error.json"
    if error.exists():
        found = json.loads(error.read_text())
        if found.get("field"):
            raise base.ComponentError(found["field"], found["error"].split(": ", 1)[-1])
        raise ValueError(found["error"])
    for item in folder.iterdir():  # the outputs where a single node's caller looks
        if item.is_dir():
            item.replace(workspace / out / item.name)
    manifest = json.loads((folder / "manifest.json").read_text())
    _write_json(workspace / out / "manifest.json", manifest)
    return manifest


def wait_for_segment(go: Path) -> str:
    """A warm start (workers.spare): import what any component imports, say so in a
    `ready` file beside `go`, then wait for a segment, blocked on reading the FIFO `go`
    (no polling) until the supervisor writes one line: {"params": file, "env": {...}}.
    The segment then runs as in a fresh process, minus the interpreter's start and ~1-2 s
    of imports (pandas, pyarrow, scikit-learn, xgboost)."""
    started = time.monotonic()
    wanted = ["pandas", "pyarrow.parquet", "pyarrow.ipc"]
    for component in registry.load_all().values():
        wanted += [m for m in component.imports if m not in wanted]
    for module in wanted:
        importlib.import_module(module)
    took = time.monotonic() - started
    (go.parent / "ready").write_text(f"{took:.2f}")
    with open(go, "rb") as fifo:
        order = json.loads(fifo.readline() or b"{}")
    if "params" not in order:
        raise SystemExit("the warm start was stopped before it was given a segment")
    os.environ.update({str(k): str(v) for k, v in (order.get("env") or {}).items()})
    said = f"a warm start: its imports were done ahead ({took:.2f} s)"
    print(f"[{_now()}] [segment] {said}", flush=True)
    return order["params"]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--params")
    parser.add_argument("--wait", type=Path, help="a warm start's FIFO (workers.spare)")
    args = parser.parse_args(argv)
    if not (args.params or args.wait):
        parser.error("--params or --wait is required")
    workspace = Path.cwd()
    params = wait_for_segment(args.wait) if args.wait else args.params
    spec = json.loads(Path(params).read_text())
    outcome = Segment(spec, workspace).run()
    summary = ", ".join(f"{node} {result}" for node, result in outcome.items())
    print(f"[{_now()}] Nodes: {summary}", flush=True)
    return 0


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    # Every output is written and closed by now; the interpreter's teardown of pandas,
    # pyarrow and scikit-learn would add ~0.25 s to every segment for nothing.
    os._exit(code)
