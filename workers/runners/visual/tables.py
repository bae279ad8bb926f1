"""Tables between nodes: a folder of parquet parts (a node writes `part-0.parquet`; a data
set's version is its own parts, read in order). A table carries the fitted preprocessing
steps applied to it so far (`steps`) and the columns of its source before the first step
(`source_columns`), in the parquet's key-value metadata, so a model trained on it can
repeat them on raw rows (workers.runners.visual.pipeline). A table made from another by
taking rows, applying a fitted step or adding columns is stored as a view of it instead
(workers.runners.visual.views). No Django import."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from workers.runners.visual import views

META_KEY = b"bml.visual"
PART_NAME = "part-0.parquet"

# pyarrow/pandas dtypes -> the data sets' column types (base.COLUMN_TYPES)
_TYPE_NAMES = (
    (pa.types.is_boolean, "bool"),
    (pa.types.is_integer, "int"),
    (pa.types.is_floating, "float"),
    (pa.types.is_timestamp, "datetime"),
    (pa.types.is_date, "datetime"),
)


def column_type(arrow_type: pa.DataType) -> str:
    for test, name in _TYPE_NAMES:
        if test(arrow_type):
            return name
    return "string"


@dataclass
class Table:
    frame: pd.DataFrame
    steps: list[dict] = field(default_factory=list)
    source_columns: list[dict] | None = None
    # How to make this table again from a stored one (workers.runners.visual.views): its
    # base and the operations since; None when only its rows can tell (stored as parquet).
    origin: dict | None = None

    def schema(self) -> dict:
        arrow = pa.Schema.from_pandas(self.frame, preserve_index=False)
        return {
            "kind": "table",
            "columns": [{"name": f.name, "type": column_type(f.type)} for f in arrow],
        }

    def _lineage(self) -> list[dict]:
        return self.source_columns or self.schema()["columns"]

    def derive(self, frame: pd.DataFrame, step: dict | None = None) -> Table:
        """A new table from this one that only its rows can tell (stored as parquet): same
        lineage, plus `step` if the change is a fitted preprocessing step that prediction
        must repeat. A step applied to every row is `apply`."""
        steps = self.steps + [step] if step else list(self.steps)
        return Table(frame, steps, self._lineage())

    def apply(self, step: dict) -> Table:
        """This table through a fitted step (pipeline.apply_step): stored as a view."""
        from workers.runners.visual.pipeline import apply_step

        op = {"op": "step", "step": step}
        return Table(
            apply_step(self.frame, step),
            [*self.steps, step],
            self._lineage(),
            views.extended(self.origin, op),
        )

    def take_rows(self, mask) -> Table:
        """The rows where `mask` (a bool per row) is true, in order: stored as a view."""
        mask = np.asarray(mask, dtype=bool)
        frame = self.frame.take(np.flatnonzero(mask))
        frame.index = range(len(frame))
        op = {"op": "rows", "mask": mask}
        return Table(frame, list(self.steps), self._lineage(), views.extended(self.origin, op))

    def with_columns(self, keep: list[str], added: pd.DataFrame) -> Table:
        """Columns `keep` of this table, then `added` (as many rows): stored as a view."""
        frame = pd.concat(
            [self.frame[keep].reset_index(drop=True), added.reset_index(drop=True)], axis=1
        )
        origin = views.extended(self.origin, {"op": "keep", "columns": list(keep)})
        origin = views.extended(origin, {"op": "columns", "frame": added.reset_index(drop=True)})
        return Table(frame, list(self.steps), self._lineage(), origin)


def _parts(folder: Path) -> list[Path]:
    return sorted(p for p in Path(folder).rglob("*.parquet") if p.is_file())


def read_table(
    folder: Path | str,
    sample_rows: int | None = None,
    ref: dict | None = None,
    bases: dict | None = None,
) -> Table:
    """The table stored in `folder`: parquet parts, or a view (views.py) with its base in
    `base/`. `ref`: how the control plane knows the stored table (its origin's base).
    `bases`: the bases read so far by this process (two views of one table read it once)."""
    folder = Path(folder)
    if views.is_view(folder):
        return _read_view(folder, sample_rows, {} if bases is None else bases)
    parts = _parts(folder)
    if not parts:
        raise ValueError(f"no parquet file in {folder}")
    pieces, metadata, left = [], None, sample_rows
    for part in parts:
        parquet = pq.ParquetFile(part)
        if metadata is None:
            metadata = (parquet.schema_arrow.metadata or {}).get(META_KEY)
        if left is None:
            pieces.append(parquet.read())
            continue
        for batch in parquet.iter_batches(batch_size=min(max(left, 1), 65536)):
            pieces.append(pa.Table.from_batches([batch]).slice(0, left))
            left -= min(left, batch.num_rows)
            if left <= 0:
                break
        if left <= 0:
            break
    table = pa.concat_tables(pieces, promote_options="default") if len(pieces) > 1 else pieces[0]
    table = table.replace_schema_metadata(None)
    meta = json.loads(metadata) if metadata else {}
    # A block per column, each taken over from Arrow's buffers where it can be (numbers
    # without missing values) and those freed as it goes: a million rows of floats read in
    # a third of the time, with 150 MB less memory touched.
    frame = table.to_pandas(split_blocks=True, self_destruct=True)
    del table
    return Table(
        frame,
        meta.get("steps") or [],
        meta.get("source_columns"),
        views.origin_of(ref, sample_rows),
    )


def _read_view(folder: Path, sample_rows: int | None, bases: dict) -> Table:
    view = views.read_spec(folder)
    ops = views.loaded_ops(view, views.folder_reader(folder))
    origin = {"base": view["base"], "base_rows": view.get("base_rows"), "ops": ops}
    copy = folder / views.HOST_COPY
    if copy.is_file() and sample_rows is None:  # the rows as they were made, on this host
        frame = views.read_host_copy(copy)
        return Table(frame, view.get("steps") or [], view.get("source_columns"), origin)
    key = json.dumps([view["base"], view.get("base_rows")], sort_keys=True)
    if key not in bases:  # never changed in place: every operation makes a new frame
        bases[key] = read_table(folder / views.BASE_DIR, view.get("base_rows")).frame
    frame = views.apply_ops(bases[key], ops)
    if frame is bases[key]:  # no operation: a copy-on-write copy, like tables handed on
        frame = frame.copy(deep=False)
    if sample_rows is not None and len(frame) > sample_rows:
        # a sample run reads at most its rows of any input (never the case for a view it
        # made itself: its base was read with the same sample)
        frame, origin = frame.iloc[:sample_rows].reset_index(drop=True), None
    return Table(frame, view.get("steps") or [], view.get("source_columns"), origin)


def arrow_of(frame: pd.DataFrame) -> pa.Table:
    """A frame as Arrow (NaN/None -> null): made once per output table, shared by its
    statistics, its parquet and its host copy (a column of text converts slowly)."""
    return pa.Table.from_pandas(frame, preserve_index=False)


def write_table(table: Table, folder: Path | str, arrow: pa.Table | None = None) -> Path:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    arrow = arrow if arrow is not None else arrow_of(table.frame)
    meta = {
        "steps": table.steps,
        "source_columns": table.source_columns or table.schema()["columns"],
    }
    arrow = arrow.replace_schema_metadata({META_KEY: json.dumps(meta).encode()})
    path = folder / PART_NAME
    views.write_parquet(arrow, path)
    return path


def basic_stats(frame: pd.DataFrame, arrow: pa.Table | None = None) -> list[dict]:
    """Per column, what the view-data panel shows: type, missing, distinct (strings),
    mean/std/min/max of the finite values (numbers). Arrow's kernels (multithreaded C++,
    ~2.5x numpy's time on 800k x 19 floats, which every output table of a run pays)."""
    import pyarrow.compute as pc

    arrow = arrow if arrow is not None else arrow_of(frame)
    stats = []
    for f, values in zip(arrow.schema, arrow.columns, strict=True):
        entry = {"name": f.name, "type": column_type(f.type), "missing": values.null_count}
        kind = entry["type"]
        if kind in ("int", "float", "bool") and len(values) > values.null_count:
            numbers = values.cast(pa.float64())
            bounds = pc.min_max(numbers).as_py()
            if not all(np.isfinite([bounds["min"], bounds["max"]])):
                numbers = pc.filter(numbers, pc.is_finite(numbers))  # infinities left out
                bounds = pc.min_max(numbers).as_py()
            if len(numbers) > numbers.null_count:
                entry.update(
                    mean=pc.mean(numbers).as_py(),
                    std=pc.stddev(numbers, ddof=0).as_py(),
                    min=bounds["min"],
                    max=bounds["max"],
                )
        elif kind == "string":
            entry["distinct"] = pc.count_distinct(values, mode="only_valid").as_py()
        stats.append(entry)
    return stats
