"""Tables stored as views (workers.runners.visual.views): a segment whose input the control
plane names stores what its nodes took, applied or added instead of their rows, and a view
read back with its base (or a page of it) is exactly the table the node made in memory.
No database."""

import json
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


def split_then_fill(strategy: str) -> list[dict]:
    """The data set split (stratified), then its training rows' missing lengths filled."""
    return [
        node("split", "split", 1, {"table": {"path": "inputs/data", "ref": BASE_REF}},
             ratio=0.7, seed=2, stratify="label"),
        node("fill", "missing_values", 2, {"table": from_node("split", "train")},
             columns=["length"], strategy=strategy),
    ]  # fmt: skip


@pytest.fixture
def segment(tmp_path):
    tables.write_table(tables.Table(base_frame()), tmp_path / "inputs" / "data")
    features = ["length", "width", "colour_red", "colour_green", "colour_blue"]
    spec = {
        "nodes": [
            *split_then_fill("mean"),
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
    ops = views.loaded_ops(view, views.folder_reader(folder))
    made = run.values[("predict", "table")].frame
    base = tables.read_table(folder / views.BASE_DIR).frame
    for offset, limit in ((0, 5), (37, 11), (len(made) - 3, 50), (len(made) + 5, 5)):
        positions, at = views.page_positions(ops, len(made), offset, limit)
        page = views.apply_ops(base.iloc[positions], ops, at)
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


def test_components_run_on_inputs_mapped_from_host_copies(tmp_path, monkeypatch):
    """A rerun's inputs mapped from host copies are read-only memory: every kind of
    component still runs on them (none changes its input in place) and gets what it got
    from the same table in memory."""
    monkeypatch.setattr(views, "HOST_COPY_MIN_CELLS", 1)
    tables.write_table(tables.Table(base_frame()), tmp_path / "inputs" / "data")
    first = {
        "nodes": [
            *split_then_fill("median"),
        ],
        "output_dir": "output", "seed": 0, "sample_rows": None,
    }  # fmt: skip
    assert set(Segment(first, tmp_path).run().values()) == {"succeeded"}
    rerun = tmp_path / "rerun"
    for node_id, port in (("fill", "table"), ("split", "test")):
        folder = rerun / "inputs" / node_id / port
        shutil.copytree(tmp_path / "output" / node_id / port, folder)
        copy = tmp_path / views.HOST_COPIES_DIR / node_id / port / views.HOST_COPY
        shutil.copyfile(copy, folder / views.HOST_COPY)  # the base is not there: unused
    train = {"path": "inputs/fill/table", "ref": BASE_REF}
    test = {"path": "inputs/split/test", "ref": BASE_REF}
    features = ["length", "width"]
    nodes = [
        node("norm", "normalize", 10, {"table": train}, columns=features),
        node("cast", "type_cast", 11, {"table": from_node("norm")}, columns=["width"], to="float"),
        node("hot", "one_hot", 12, {"table": from_node("cast")}, columns=["colour"]),
        node("keep", "select_columns", 13, {"table": from_node("hot")}, mode="drop",
             columns=["colour_red"]),
        node("big", "filter_rows", 14, {"table": from_node("keep")}, expression="width > 0.1"),
        node("lr", "logistic_regression_binary", 15, {"table": from_node("big")},
             features=features, label="label"),
        node("lrm", "logistic_regression_multiclass", 16, {"table": train},
             features=["width"], label="colour"),
        node("lin", "linear_regression", 17, {"table": train}, features=["width"],
             label="length"),
        node("gbdt", "gbdt", 18, {"table": train}, features=features, label="label",
             n_estimators=5),
        node("rf", "random_forest", 19, {"table": train}, features=features, label="label",
             n_estimators=5),
        node("km", "kmeans", 20, {"table": train}, features=features, k=3),
    ]  # fmt: skip
    for model in ("lr", "lrm", "lin", "gbdt", "rf", "km"):
        inputs = {"model": from_node(model, "model"), "table": test}
        nodes.append(node(f"p_{model}", "predict", 30, inputs))
    nodes += [
        node("e_lr", "evaluate_binary", 40, {"table": from_node("p_lr")}, label="label"),
        node("e_lrm", "evaluate_multiclass", 41, {"table": from_node("p_lrm")}, label="colour"),
        node("e_lin", "evaluate_regression", 42, {"table": from_node("p_lin")}, label="length"),
        node("e_km", "evaluate_clustering", 43, {"table": from_node("p_km")}, features=features),
        node("out", "write_dataset", 44, {"table": test}, name="again"),
    ]  # fmt: skip
    spec = {"nodes": nodes, "output_dir": "output", "seed": 0, "sample_rows": None}
    run = Segment(spec, rerun)
    outcome = run.run()
    errors = {
        n: (rerun / "output" / n / "error.json").read_text()
        for n, result in outcome.items()
        if result != "succeeded"
    }
    assert not errors
    mapped = tables.read_table(rerun / "inputs" / "fill" / "table")
    assert not mapped.frame["length"].to_numpy().flags.writeable  # mapped, not copied
    report = json.loads((rerun / "output" / "e_lr" / "report" / "report.json").read_text())
    assert 0 <= report["metrics"]["auc"] <= 1
