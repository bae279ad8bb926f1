"""Tables stored as views (workers.runners.visual.views): a segment whose input the control
plane names stores what its nodes took, applied or added instead of their rows, and a view
read back with its base (or a page of it) is exactly the table the node made in memory.
No database."""

import shutil

import numpy as np
import pandas as pd
import pytest

from workers.runners.visual import base, registry, tables, views
from workers.runners.visual.run import Segment

BASE_REF = {"node_run": 7, "port": "table"}
# every column a node's settings name, for cleaning them (each node checks its own input)
SCHEMA = {
    "kind": "table",
    "columns": [
        {"name": name, "type": kind}
        for name, kind in [("length", "float"), ("width", "int"), ("colour", "string"),
                           ("label", "int"), ("colour_red", "int"), ("colour_green", "int"),
                           ("colour_blue", "int")]
    ],
}  # fmt: skip


def base_frame(rows: int = 300) -> pd.DataFrame:
    rng = np.random.default_rng(3)
    length = rng.normal(5.0, 1.0, rows).round(2)
    length[::17] = np.nan
    return pd.DataFrame(
        {
            "length": length,
            "width": rng.integers(1, 9, rows),
            "colour": rng.choice(["red", "green", "blue"], rows),
            "label": rng.integers(0, 2, rows),
        }
    )


def node(node_id, component, node_run, inputs, **params):
    cleaned = base.clean_params(registry.get(component).params, params, {"table": SCHEMA})
    return {
        "id": node_id,
        "component": component,
        "node_run": node_run,
        "params": cleaned,
        "inputs": inputs,
    }


def from_node(node_id, port="table"):
    return {"node": node_id, "port": port}


@pytest.fixture
def segment(tmp_path):
    tables.write_table(tables.Table(base_frame()), tmp_path / "inputs" / "data")
    features = ["length", "width", "colour_red", "colour_green", "colour_blue"]
    spec = {
        "nodes": [
            node("split", "split", 1, {"table": {"path": "inputs/data", "ref": BASE_REF}},
                 ratio=0.7, seed=2, stratify="label"),
            node("fill", "missing_values", 2, {"table": from_node("split", "train")},
                 columns=["length"], strategy="mean"),
            node("hot", "one_hot", 3, {"table": from_node("fill")}, columns=["colour"]),
            node("z", "standardize", 4, {"table": from_node("hot")}, columns=["length"]),
            node("big", "filter_rows", 5, {"table": from_node("z")}, expression="width > 2"),
            node("lr", "logistic_regression_binary", 6, {"table": from_node("big")},
                 features=features, label="label"),
            node("predict", "predict", 8,
                 {"model": from_node("lr", "model"), "table": from_node("split", "test")},
                 keep_columns=["width", "label"]),
            node("written", "write_dataset", 9, {"table": from_node("predict")}, name="out"),
        ],
        "output_dir": "output",
        "seed": 0,
        "sample_rows": None,
    }  # fmt: skip
    run = Segment(spec, tmp_path)
    assert set(run.run().values()) == {"succeeded"}
    return run, tmp_path


def stored(workspace, node_id, port="table"):
    """The output folder as a consumer gets it: its files, its base staged in base/."""
    folder = workspace / "consumer" / node_id / port
    shutil.copytree(workspace / "output" / node_id / port, folder)
    if views.is_view(folder):
        shutil.copytree(workspace / "inputs" / "data", folder / views.BASE_DIR)
    return folder


@pytest.mark.parametrize(
    ("node_id", "port"),
    [("split", "train"), ("split", "test"), ("fill", "table"), ("hot", "table"),
     ("z", "table"), ("big", "table"), ("predict", "table")],
)  # fmt: skip
def test_each_table_is_stored_as_a_view_that_reads_back_identical(segment, node_id, port):
    run, workspace = segment
    folder = stored(workspace, node_id, port)
    assert views.is_view(folder) and not list(folder.glob("part-*.parquet"))
    assert views.read_spec(folder)["base"] == BASE_REF
    made = run.values[(node_id, port)]
    again = tables.read_table(folder)
    pd.testing.assert_frame_equal(again.frame, made.frame)
    assert again.steps == made.steps and again.source_columns == made.source_columns


def test_a_page_of_a_view_is_the_same_rows(segment):
    run, workspace = segment
    folder = stored(workspace, "predict")
    view = views.read_spec(folder)
    ops = views.loaded_ops(folder, view)
    made = run.values[("predict", "table")].frame
    base = tables.read_table(folder / views.BASE_DIR).frame
    for offset, limit in ((0, 5), (37, 11), (len(made) - 3, 50), (len(made) + 5, 5)):
        positions, at = views.page_positions(ops, len(made), offset, limit)
        page = views.page(ops, base.iloc[positions], at)
        expected = made.iloc[offset : offset + limit].reset_index(drop=True)
        pd.testing.assert_frame_equal(page[list(made.columns)], expected, check_dtype=False)


def test_views_are_small_and_a_written_data_set_is_parquet(segment):
    _, workspace = segment
    train = workspace / "output" / "split" / "train"
    assert sum(f.stat().st_size for f in train.iterdir()) < 2_000
    written = workspace / "output" / "written" / "table"
    assert list(written.glob("part-*.parquet")) and not views.is_view(written)


def test_a_view_whose_base_changed_is_refused(segment):
    _, workspace = segment
    folder = stored(workspace, "split", "train")
    shutil.rmtree(folder / views.BASE_DIR)
    tables.write_table(tables.Table(base_frame(200)), folder / views.BASE_DIR)
    with pytest.raises(ValueError, match="do not fit its base"):
        tables.read_table(folder)


def test_a_view_naming_a_file_outside_its_folder_is_refused(segment):
    _, workspace = segment
    folder = stored(workspace, "split", "train")
    spec = views.read_spec(folder)
    spec["ops"][0]["file"] = "../../../inputs/data/part-0.parquet"
    (folder / views.VIEW_FILE).write_text(__import__("json").dumps(spec))
    with pytest.raises(ValueError, match="outside its folder"):
        tables.read_table(folder)


def test_large_views_keep_their_rows_on_this_host_and_read_them_back(tmp_path, monkeypatch):
    """A view of many cells also leaves its rows beside the outputs (host/, Arrow's IPC
    format, never staged out); a consumer shown that file reads it instead of the base and
    the operations, and gets the same table."""
    monkeypatch.setattr(views, "HOST_COPY_MIN_CELLS", 1)
    tables.write_table(tables.Table(base_frame()), tmp_path / "inputs" / "data")
    spec = {
        "nodes": [
            node("split", "split", 1, {"table": {"path": "inputs/data", "ref": BASE_REF}},
                 ratio=0.7, seed=2),
            node("z", "standardize", 2, {"table": from_node("split", "train")},
                 columns=["width"]),
        ],
        "output_dir": "output", "seed": 0, "sample_rows": None,
    }  # fmt: skip
    run = Segment(spec, tmp_path)
    assert set(run.run().values()) == {"succeeded"}
    for node_id, port in (("split", "train"), ("split", "test"), ("z", "table")):
        copy = tmp_path / views.HOST_COPIES_DIR / node_id / port / views.HOST_COPY
        assert copy.is_file()
        folder = tmp_path / "consumer" / node_id / port
        shutil.copytree(tmp_path / "output" / node_id / port, folder)
        shutil.copyfile(copy, folder / views.HOST_COPY)  # no base: the copy is what is read
        again = tables.read_table(folder)
        made = run.values[(node_id, port)]
        pd.testing.assert_frame_equal(again.frame, made.frame)
        assert again.steps == made.steps and again.origin["base"] == BASE_REF
    assert not list((tmp_path / "output").rglob(views.HOST_COPY))  # not among the outputs
