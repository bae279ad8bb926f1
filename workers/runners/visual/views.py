"""Tables stored as views: how to make a table again from a stored one (its base) instead
of its rows. No Django import.

Most preprocessing outputs are their input with rows taken out (split, filter, dropping
rows with missing values), a fitted step applied to every row (standardize, normalize,
fill, cast, one-hot, select/drop) or columns added (prediction). Storing each as parquet
wrote and uploaded the same million rows again and again (~300 MB and most of the first
run's time for the benchmark's six nodes, benchmarks/visual.py); a view stores what makes
the difference: a packed bit mask of the rows kept (125 KB per million rows), the step's
JSON, the added columns. Reading one reads its base and repeats the operations, which costs
about what reading the materialized table did (the steps are vectorised; the same
pipeline.apply_step made the table in the first place, so the rows come back identical).

A view folder holds view.json and the files its operations name:

    {"format": 1,
     "base": {"node_run": <pk>, "port": "<port>"},   # a stored, materialized table
     "base_rows": <n> | null,                        # its first n rows (a sample run)
     "ops": [{"op": "rows", "file": "rows-0.npy", "count": <rows before>, "kept": <after>},
             {"op": "step", "step": {...pipeline step...}},
             {"op": "keep", "columns": [...]},
             {"op": "columns", "file": "columns-3.parquet"}],
     "steps": [...], "source_columns": [...]}           # the table's lineage (tables.Table)

The control plane knows bases by their node runs (apps.visual.node_jobs stages a view's
base next to it, in `base/`); in memory a Table carries its `origin`, the same with masks
and frames in place of files, so the tables derived from it are views too.
"""

from __future__ import annotations

import json
from pathlib import Path

VIEW_FILE = "view.json"
BASE_DIR = "base"
FORMAT = 1
# The rows of a large view, kept on the host that made it (never uploaded): Arrow's IPC
# format, read memory-mapped without a copy. A rerun that finds it there (a training node's
# settings changed, its input unchanged) skips reading the base and repeating the
# operations: ~400 MB of fresh memory less for the benchmark's million rows, which on a VM
# that hands freed memory back to its host cost more than the reading itself.
HOST_COPY = "table.arrow"
HOST_COPIES_DIR = "host"  # in a segment's workspace: <node>/<port>/table.arrow
HOST_COPY_MIN_CELLS = 200_000


def is_view(folder: Path | str) -> bool:
    return (Path(folder) / VIEW_FILE).is_file()


def origin_of(ref: dict | None, base_rows: int | None) -> dict | None:
    """The origin of a table read as it is stored (no operation yet)."""
    return None if ref is None else {"base": ref, "base_rows": base_rows, "ops": []}


def extended(origin: dict | None, op: dict) -> dict | None:
    return None if origin is None else {**origin, "ops": [*origin["ops"], op]}


def apply_ops(frame, ops: list[dict], at: list | None = None):
    """The frame after the in-memory operations `ops` (masks and frames in place).

    `at` (page_positions' second answer): `frame` is only the base's rows a page needs,
    taken already; the row operations are then skipped and each `columns` frame is read
    at its positions."""
    import numpy as np
    import pandas as pd

    from workers.runners.visual.pipeline import apply_step

    if at is not None:
        frame = frame.reset_index(drop=True)
    for index, op in enumerate(ops):
        kind = op["op"]
        if kind == "rows":
            if at is not None:
                continue
            mask = op["mask"]
            if len(mask) != len(frame):
                raise ValueError(
                    f"a stored view's rows do not fit its base ({len(mask)} rows marked, "
                    f"{len(frame)} read): the table it was made from changed"
                )
            frame = frame.take(np.flatnonzero(mask))
            frame.index = range(len(frame))
        elif kind == "step":
            frame = apply_step(frame, op["step"])
        elif kind == "keep":
            frame = frame[op["columns"]]
        elif kind == "columns":
            added = op["frame"] if at is None else op["frame"].iloc[at[index]]
            if len(added) != len(frame):
                raise ValueError("a stored view's added columns do not fit its rows")
            frame = pd.concat([frame.reset_index(drop=True), added.reset_index(drop=True)], axis=1)
        else:
            raise ValueError(f"unknown view operation '{kind}'")
    return frame


def write_parquet(arrow, path: Path) -> None:
    """How the runner writes parquet (a table's, a view's added columns). lz4: as fast to
    write as none (snappy took twice as long on 1M rows of floats) and still shrinks the
    repetitive columns real tables have. Dictionaries only for text: on distinct floats
    they cost 7x the write (a prediction's scores: 0.24 s instead of 0.03 s at 200k rows)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    numeric = (pa.types.is_boolean, pa.types.is_integer, pa.types.is_floating)
    temporal = (pa.types.is_timestamp, pa.types.is_date)
    texts = [f.name for f in arrow.schema if not any(t(f.type) for t in numeric + temporal)]
    pq.write_table(arrow, path, compression="lz4", use_dictionary=texts)


def write_view(table, folder: Path | str) -> dict:
    """Store `table` (a tables.Table with an origin) as a view in `folder`; returns the
    manifest entry's extra keys ({"view": True, "base": ref})."""
    import numpy as np
    import pyarrow as pa

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    origin = table.origin
    stored = []
    for index, op in enumerate(origin["ops"]):
        kind = op["op"]
        if kind == "rows":
            name = f"rows-{index}.npy"
            mask = np.asarray(op["mask"], dtype=bool)
            np.save(folder / name, np.packbits(mask), allow_pickle=False)
            stored.append({"op": "rows", "file": name, "count": len(mask), "kept": int(mask.sum())})
        elif kind == "columns":
            name = f"columns-{index}.parquet"
            write_parquet(pa.Table.from_pandas(op["frame"], preserve_index=False), folder / name)
            stored.append({"op": "columns", "file": name})
        elif kind == "step":
            stored.append({"op": "step", "step": op["step"]})
        else:
            stored.append({"op": kind, "columns": list(op["columns"])})
    view = {
        "format": FORMAT,
        "base": origin["base"],
        "base_rows": origin.get("base_rows"),
        "ops": stored,
        "steps": table.steps,
        "source_columns": table.source_columns or table.schema()["columns"],
    }
    (folder / VIEW_FILE).write_text(json.dumps(view, allow_nan=False))
    return {"view": True, "base": origin["base"]}


def read_spec(folder: Path | str) -> dict:
    return parse_spec((Path(folder) / VIEW_FILE).read_bytes())


def parse_spec(data: bytes) -> dict:
    view = json.loads(data)
    if view.get("format") != FORMAT:
        raise ValueError(f"a stored view of format {view.get('format')} (this reads {FORMAT})")
    return view


def loaded_ops(view: dict, read) -> list[dict]:
    """The view's operations with their files read (masks and frames in place); `read`
    gives a file of the view by name as bytes (from its folder, or from the store)."""
    import io

    import numpy as np
    import pyarrow.parquet as pq

    ops = []
    for op in view["ops"]:
        kind = op["op"]
        if kind == "rows":
            bits = np.load(io.BytesIO(read(op["file"])), allow_pickle=False)
            mask = np.unpackbits(bits, count=int(op["count"])).astype(bool)
            ops.append({"op": "rows", "mask": mask})
        elif kind == "columns":
            frame = pq.read_table(io.BytesIO(read(op["file"]))).to_pandas()
            ops.append({"op": "columns", "frame": frame})
        else:
            ops.append(dict(op))
    return ops


def folder_reader(folder: Path | str):
    """`read` for loaded_ops: a view's files in its folder, never outside it."""
    return lambda name: _inside(Path(folder), name).read_bytes()


def _inside(folder: Path, name: str) -> Path:
    """A file the view names, never outside its folder (view.json is data)."""
    path = (folder / name).resolve()
    if folder.resolve() not in path.parents:
        raise ValueError(f"a stored view names a file outside its folder: {name!r}")
    return path


def page_positions(ops: list[dict], total: int, offset: int, limit: int):
    """For a page of a view's `total` rows, [offset, offset + limit): the base rows to read
    (their positions, ascending) and, per operation, the positions its `columns` frame is
    read at. Every operation keeps row order, so a page of the view is the base's rows at
    the mapped positions with the row-wise steps applied to them alone (apply_ops with
    `at`)."""
    import numpy as np

    wanted = np.arange(min(offset, total), min(offset + limit, total))
    at = [None] * len(ops)
    for index in range(len(ops) - 1, -1, -1):
        at[index] = wanted
        if ops[index]["op"] == "rows":
            wanted = np.flatnonzero(ops[index]["mask"])[wanted]
    return wanted, at


def write_host_copy(frame, path: Path, arrow=None) -> None:
    import pyarrow as pa

    path.parent.mkdir(parents=True, exist_ok=True)
    table = arrow if arrow is not None else pa.Table.from_pandas(frame, preserve_index=False)
    tmp = path.with_suffix(".tmp")
    with pa.OSFile(str(tmp), "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table)
    tmp.replace(path)


def read_host_copy(path: Path):
    """The frame of a host copy, its numbers backed by the memory-mapped file."""
    import pyarrow as pa

    source = pa.memory_map(str(path))  # stays mapped while the frame's arrays use it
    table = pa.ipc.open_file(source).read_all()
    return table.to_pandas(split_blocks=True, self_destruct=True)
