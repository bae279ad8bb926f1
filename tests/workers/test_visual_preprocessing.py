"""Visual modeling's data and preprocessing components and the fitted pipeline: each
component runs through the node runner on a tiny parquet table, the schema its check()
predicts is the schema its run wrote, and the fitted steps repeat the change on fresh rows
(raw request rows at serving time, without the label). No database."""

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from workers.runners.visual import base, pipeline, registry, tables
from workers.runners.visual.run import run_node


def iris_like(rows: int = 40) -> pd.DataFrame:
    rng = np.random.default_rng(7)
    species = np.array(["setosa"] * (rows // 2) + ["virginica"] * (rows - rows // 2))
    return pd.DataFrame(
        {
            "length": rng.normal(5.0, 1.0, rows).round(2),
            "width": rng.integers(1, 9, rows),
            "species": species,
        }
    )


def run_component(tmp_path, name, params, frame=None, port="table", sample_rows=None):
    """Run one node on `frame` staged as its input; returns (manifest, outputs by port,
    the schemas check() predicted)."""
    component = registry.get(name)
    schema = tables.Table(frame).schema() if frame is not None else None
    cleaned, predicted = component.validate(params, {port: schema} if schema else {})
    workspace = tmp_path / name
    spec = {"component": name, "params": cleaned, "inputs": {}, "sample_rows": sample_rows}
    if frame is not None:
        tables.write_table(tables.Table(frame), workspace / "inputs" / port)
        if component.inputs:
            spec["inputs"][port] = f"inputs/{port}"
    manifest = run_node(spec, workspace)
    outputs = {p.name: tables.read_table(workspace / "output" / p.name) for p in component.outputs}
    for port_name, table in outputs.items():
        wrote = table.schema()
        assert manifest["ports"][port_name]["schema"] == wrote
        if predicted[port_name].get("dynamic"):  # one-hot: the kept columns are known
            names = {c["name"] for c in predicted[port_name]["columns"]}
            wrote = {**wrote, "dynamic": True}
            wrote["columns"] = [c for c in wrote["columns"] if c["name"] in names]
        assert predicted[port_name] == wrote, port_name
    return manifest, outputs, predicted


def refused(name, params, frame):
    with pytest.raises(base.ComponentError) as caught:
        registry.get(name).validate(params, {"table": tables.Table(frame).schema()})
    return caught.value


def test_the_palette_lists_the_data_and_preprocessing_components():
    groups = {c["name"]: c["group"] for c in registry.palette()}
    for name in ("dataset", "write_dataset"):
        assert groups[name] == "Data"
    for name in (
        "split", "missing_values", "normalize", "standardize", "type_cast", "filter_rows",
        "select_columns", "one_hot",
    ):  # fmt: skip
        assert groups[name] == "Preprocessing"
    assert registry.get("dataset").reads_dataset and not registry.get("dataset").runs_as_job
    split = next(c for c in registry.palette() if c["name"] == "split")
    assert [p["label"] for p in split["outputs"]] == ["Training set", "Test set"]


# -- data --------------------------------------------------------------------------------------


def test_dataset_reads_its_staged_parts_and_a_sample(tmp_path):
    component = registry.get("dataset")
    schema = tables.Table(iris_like()).schema()
    assert component.validate({"dataset": 3}, {"dataset": schema})[1] == {"table": schema}
    with pytest.raises(base.ComponentError, match="dataset: choose a data set"):
        component.validate({"dataset": 3}, {})
    manifest, out, _ = run_component(
        tmp_path, "dataset", {"dataset": 3}, iris_like(), port="dataset", sample_rows=5
    )
    assert manifest["ports"]["table"]["rows"] == 5
    assert out["table"].frame["species"].tolist() == ["setosa"] * 5


def test_write_dataset_passes_rows_and_summarizes_them(tmp_path):
    frame = iris_like(10)
    frame.loc[3, "length"] = None
    manifest, out, _ = run_component(tmp_path, "write_dataset", {"name": "iris_clean"}, frame)
    assert len(out["table"].frame) == 10
    summary = manifest["facts"]["dataset_summary"]
    assert summary["rows"] == 10
    assert summary["columns"] == tables.Table(frame).schema()["columns"]
    by_name = {s["name"]: s for s in summary["stats"]}
    assert by_name["length"]["missing"] == 1
    assert by_name["width"]["min"] >= 1 and by_name["width"]["max"] <= 8
    for bad in ("9lives", "a b", "x" * 51, "_x"):
        error = refused("write_dataset", {"name": bad}, frame)
        assert error.field == "name" and "starting with a letter" in error.rule


# -- preprocessing -----------------------------------------------------------------------------


def test_split_by_ratio_is_deterministic_and_stratified(tmp_path):
    frame = iris_like(40)
    frame.loc[39, "species"] = "rare"  # a class of one row goes to training
    params = {"ratio": 0.75, "seed": 4, "stratify": "species"}
    manifest, out, _ = run_component(tmp_path / "a", "split", params, frame)
    train, test = out["train"].frame, out["test"].frame
    assert manifest["facts"]["rows"] == {"train": 30, "test": 10}
    assert train["species"].value_counts().to_dict() == {"setosa": 15, "virginica": 14, "rare": 1}
    assert test["species"].value_counts().to_dict() == {"setosa": 5, "virginica": 5}
    again = run_component(tmp_path / "b", "split", params, frame)[1]
    assert again["train"].frame.equals(train)
    other = run_component(tmp_path / "c", "split", {**params, "seed": 5}, frame)[1]
    assert not other["train"].frame.equals(train)
    plain = run_component(tmp_path / "d", "split", {"ratio": 0.5}, frame)[0]
    assert plain["facts"]["rows"] == {"train": 20, "test": 20}
    assert refused("split", {"ratio": 1.5}, frame).field == "ratio"
    assert "no column 'kind'" in refused("split", {"stratify": "kind"}, frame).rule


def test_missing_values_fill_and_drop(tmp_path):
    frame = pd.DataFrame(
        {
            "x": [1.0, None, 3.0, None],
            "city": ["a", None, "b", "b"],
            "n": [1, 2, 3, 4],
        }
    )
    out = run_component(tmp_path / "mean", "missing_values", {}, frame)[1]
    table = out["table"]
    assert table.frame["x"].tolist() == [1.0, 2.0, 3.0, 2.0]
    assert table.steps[-1]["op"] == "fill_missing"
    assert table.steps[-1]["columns"] == {"x": 2.0, "n": 2.5}  # the numeric columns
    assert str(table.frame["n"].dtype) == "float64"  # as check() said: a mean is a float
    median = run_component(tmp_path / "med", "missing_values", {"strategy": "median"}, frame)
    assert median[1]["table"].frame["x"].tolist() == [1.0, 2.0, 3.0, 2.0]
    frequent = run_component(
        tmp_path / "mf", "missing_values", {"strategy": "most_frequent"}, frame
    )[1]["table"]
    assert frequent.frame["city"].tolist() == ["a", "b", "b", "b"]
    assert frequent.frame["x"].tolist() == [1.0, 1.0, 3.0, 1.0]  # a tie: the smallest
    constant = run_component(
        tmp_path / "c", "missing_values", {"strategy": "constant", "fill_value": "-1"}, frame
    )[1]["table"]
    assert constant.frame["x"].tolist() == [1.0, -1.0, 3.0, -1.0]
    assert constant.frame["city"].tolist() == ["a", "-1", "b", "b"]
    # the fitted fill repeats on fresh rows
    fresh = pipeline.apply_steps(pd.DataFrame({"x": [None], "city": [None]}), constant.steps)
    assert fresh.iloc[0].to_dict() == {"x": -1.0, "city": "-1"}
    dropped = run_component(tmp_path / "d", "missing_values", {"strategy": "drop_rows"}, frame)
    assert dropped[1]["table"].frame["n"].tolist() == [1, 3]
    assert dropped[1]["table"].steps == [] and dropped[0]["facts"]["rows_dropped"] == 2
    error = refused("missing_values", {"columns": ["city"], "strategy": "median"}, frame)
    assert error.field == "columns" and "column 'city' is string" in error.rule
    error = refused(
        "missing_values", {"columns": ["n"], "strategy": "constant", "fill_value": "1.5"}, frame
    )
    assert error.field == "fill_value" and "not a valid int for column 'n'" in error.rule
    error = refused("missing_values", {"strategy": "constant"}, frame)
    assert error.field == "fill_value"


def test_standardize_and_normalize_fit_steps_that_repeat(tmp_path):
    frame = iris_like(30)
    standard = run_component(
        tmp_path / "s", "standardize", {"columns": ["length", "width"]}, frame
    )[1]["table"]
    for name in ("length", "width"):
        assert abs(standard.frame[name].mean()) < 1e-9
        assert standard.frame[name].std(ddof=0) == pytest.approx(1.0)
    assert standard.schema()["columns"][1] == {"name": "width", "type": "float"}
    repeated = pipeline.apply_steps(frame, standard.steps)
    pd.testing.assert_frame_equal(repeated, standard.frame)
    scaled = run_component(tmp_path / "n", "normalize", {"columns": ["length"]}, frame)[1]
    values = scaled["table"].frame["length"]
    assert values.min() == 0.0 and values.max() == 1.0
    error = refused("standardize", {"columns": ["species"]}, frame)
    assert error.field == "columns"
    assert error.rule == "column 'species' is string; it must be int or float"
    assert "no column 'height'" in refused("normalize", {"columns": ["height"]}, frame).rule
    assert refused("standardize", {}, frame).rule == "is required"


def test_type_cast_converts_or_names_the_bad_value(tmp_path):
    frame = pd.DataFrame({"code": ["1", "2", "30"], "ok": ["yes", "no", "true"], "n": [1, 2, 3]})
    out = run_component(tmp_path / "a", "type_cast", {"columns": ["code"], "to": "int"}, frame)
    assert out[1]["table"].frame["code"].tolist() == [1, 2, 30]
    flags = run_component(tmp_path / "b", "type_cast", {"columns": ["ok"], "to": "bool"}, frame)
    assert flags[1]["table"].frame["ok"].tolist() == [True, False, True]
    text = run_component(tmp_path / "c", "type_cast", {"columns": ["n"], "to": "string"}, frame)
    assert text[1]["table"].frame["n"].tolist() == ["1", "2", "3"]
    bad = frame.assign(code=["1", "two", "3"])
    with pytest.raises(ValueError, match="column 'code': cannot cast 'two' to float"):
        run_component(tmp_path / "d", "type_cast", {"columns": ["code"], "to": "float"}, bad)
    dated = frame.assign(when=pd.to_datetime(["2024-01-01"] * 3))
    error = refused("type_cast", {"columns": ["when"], "to": "int"}, dated)
    assert "can only be cast to string" in error.rule


def test_filter_rows_by_a_safe_expression(tmp_path):
    frame = iris_like(20)
    expression = "length > 5 and species == 'setosa' or width >= 8"
    out = run_component(tmp_path / "a", "filter_rows", {"expression": expression}, frame)[1]
    expected = frame[
        ((frame.length > 5) & (frame.species == "setosa")) | (frame.width >= 8)
    ].reset_index(drop=True)
    pd.testing.assert_frame_equal(out["table"].frame, expected)
    assert out["table"].steps == []
    pandas_style = "(width * 2 - 1 > 9) & ~(species != 'virginica')"
    out = run_component(tmp_path / "b", "filter_rows", {"expression": pandas_style}, frame)[1]
    assert set(out["table"].frame["species"]) <= {"virginica"}
    assert (out["table"].frame["width"] > 5).all() and len(out["table"].frame)
    flagged = frame.assign(big=frame["width"] > 4)
    out = run_component(tmp_path / "c", "filter_rows", {"expression": "not big"}, flagged)[1]
    assert (out["table"].frame["width"] <= 4).all() and len(out["table"].frame)
    for bad, said in (
        ("length > ", "is not a valid condition"),
        ("__import__('os').system('x') == 0", "is not allowed"),
        ("length.real > 1", "is not allowed"),
        ("height > 2", "no column 'height'"),
        ("length + 1", "must be a condition"),
        ("length ** 99 > 1", "is not allowed"),
    ):
        error = refused("filter_rows", {"expression": bad}, frame)
        assert error.field == "expression" and said in error.rule, bad


def test_select_and_drop_columns_are_steps(tmp_path):
    frame = iris_like(6)
    kept = run_component(
        tmp_path / "k", "select_columns", {"columns": ["species", "length"]}, frame
    )[1]["table"]
    assert list(kept.frame.columns) == ["species", "length"]
    fresh = pd.DataFrame({"length": [1.0], "width": [2], "species": ["x"]})
    assert list(pipeline.apply_steps(fresh, kept.steps).columns) == ["species", "length"]
    dropped = run_component(
        tmp_path / "d", "select_columns", {"columns": ["width"], "mode": "drop"}, frame
    )[1]["table"]
    assert list(dropped.frame.columns) == ["length", "species"]
    error = refused(
        "select_columns", {"columns": ["length", "width", "species"], "mode": "drop"}, frame
    )
    assert "leaves no column" in error.rule


def test_one_hot_encodes_in_category_order_with_a_dynamic_schema(tmp_path):
    frame = pd.DataFrame(
        {"color": ["red", "blue", None, "red"], "size": [3, 1, 2, 1], "y": [1.0, 0.0, 1.0, 0.0]}
    )
    manifest, out, predicted = run_component(
        tmp_path / "a", "one_hot", {"columns": ["color", "size"]}, frame
    )
    table = out["table"]
    assert predicted["table"]["dynamic"] is True
    assert list(table.frame.columns) == [
        "color_blue", "color_red", "size_1", "size_2", "size_3", "y",
    ]  # fmt: skip
    assert table.frame["color_red"].tolist() == [1, 0, 0, 1]
    assert table.frame["color_blue"].tolist() == [0, 1, 0, 0]
    assert table.frame["size_2"].tolist() == [0, 0, 1, 0]
    assert manifest["facts"]["categories"] == {"color": 2, "size": 3}
    # a later check on the gained columns is deferred to the run
    downstream = registry.get("standardize").validate(
        {"columns": ["size_1"]}, {"table": predicted["table"]}
    )[1]
    assert downstream["table"]["dynamic"] is True
    # serving: an unseen colour is all zeros, the label y absent
    served = pipeline.apply_steps(
        pd.DataFrame({"color": ["green"], "size": [3]}), table.steps, lenient=True
    )
    assert served.iloc[0].to_dict() == {
        "color_blue": 0, "color_red": 0, "size_1": 0, "size_2": 0, "size_3": 1,
    }  # fmt: skip
    with pytest.raises(ValueError, match="column 'size' has 3 distinct values; max_categories"):
        run_component(tmp_path / "b", "one_hot", {"columns": ["size"], "max_categories": 2}, frame)
    error = refused("one_hot", {"columns": ["y"]}, frame)
    assert error.rule == "column 'y' is float; it must be string or int or bool"


def test_a_chain_repeats_on_a_test_table_and_on_raw_rows(tmp_path):
    """split -> missing values -> one-hot -> standardize on the training rows; the steps
    the last table carries turn the raw test rows into the same columns."""
    frame = iris_like(30).assign(color=["red", "blue", None] * 10)
    frame.loc[[2, 7], "length"] = None
    split = run_component(tmp_path / "s", "split", {"ratio": 0.7, "seed": 1}, frame)[1]
    train = split["train"].frame
    filled = run_component(tmp_path / "m", "missing_values", {"columns": ["length"]}, train)
    hot = run_component(tmp_path / "o", "one_hot", {"columns": ["color"]}, filled[1]["table"].frame)
    hot_table = hot[1]["table"]
    # the framework keeps the lineage: feed the derived table itself to the next node
    staged = tmp_path / "chain"
    steps = filled[1]["table"].steps + hot_table.steps
    tables.write_table(tables.Table(hot_table.frame, steps), staged / "inputs" / "table")
    manifest = run_node(
        {
            "component": "standardize",
            "params": {"columns": ["length", "width"]},
            "inputs": {"table": "inputs/table"},
        },
        staged,
    )
    final = tables.read_table(staged / "output" / "table")
    assert [s["op"] for s in final.steps] == ["fill_missing", "one_hot", "standardize"]
    assert manifest["ports"]["table"]["rows"] == 21
    repeated = pipeline.apply_steps(train, final.steps)
    pd.testing.assert_frame_equal(repeated, final.frame)
    test = split["test"].frame
    on_test = pipeline.apply_steps(test, final.steps)
    assert list(on_test.columns) == list(final.frame.columns)
    raw = test.drop(columns=["species"]).head(2).to_dict("records")
    served = pipeline.apply_steps(pd.DataFrame(raw), final.steps, lenient=True)
    assert list(served.columns) == ["length", "width", "color_blue", "color_red"]


# -- the pipeline ------------------------------------------------------------------------------


def test_steps_have_deterministic_ids_over_their_content():
    one = pipeline.step("standardize", columns={"x": {"mean": 1.0, "std": 2.0}})
    again = pipeline.step("standardize", columns={"x": {"std": 2.0, "mean": 1.0}})
    other = pipeline.step("standardize", columns={"x": {"mean": 1.5, "std": 2.0}})
    assert one["id"] == again["id"] != other["id"]
    assert len(one["id"]) == 16 and pipeline.step_id(one) == one["id"]
    with pytest.raises(ValueError, match="unknown preprocessing step"):
        pipeline.step("explode", columns=[])


def test_apply_steps_repeats_every_op_on_raw_rows():
    raw = pa.table(
        {
            "age": pa.array([30, None, 50], pa.int64()),  # read back as float with NaN
            "city": ["Paris", None, "Rome"],
            "score": [1.0, 3.0, 5.0],
            "flag": ["yes", "no", "1"],
            "label": ["a", "b", "a"],
        }
    ).to_pandas()
    steps = [
        pipeline.step("fill_missing", columns={"age": 40, "city": "Oslo"}),
        pipeline.step("standardize", columns={"score": {"mean": 3.0, "std": 2.0}}),
        pipeline.step("normalize", columns={"age": {"min": 30, "max": 50}}),
        pipeline.step("cast", columns={"flag": "bool"}),
        pipeline.step("one_hot", columns={"city": ["Oslo", "Paris", "Rome", "New York"]}),
        pipeline.step("drop", columns=["label"]),
    ]
    out = pipeline.apply_steps(raw, steps)
    assert list(out.columns) == [
        "age", "city_Oslo", "city_Paris", "city_Rome", "city_New_York", "score", "flag",
    ]  # fmt: skip
    assert out["age"].tolist() == [0.0, 0.5, 1.0]
    assert out["score"].tolist() == [-1.0, 0.0, 1.0]
    assert out["flag"].tolist() == [True, False, True]
    assert out["city_Oslo"].tolist() == [0, 1, 0] and out["city_Rome"].tolist() == [0, 0, 1]
    assert str(out["city_Paris"].dtype) == "int64"
    # an unknown city is all zeros; the label absent at serving time is skipped when lenient
    fresh = pd.DataFrame({"age": [None], "city": ["Lima"], "score": [3.0], "flag": ["no"]})
    served = pipeline.apply_steps(fresh, steps, lenient=True)
    assert served.iloc[0].to_dict() == {
        "age": 0.5, "city_Oslo": 0, "city_Paris": 0, "city_Rome": 0, "city_New_York": 0,
        "score": 0.0, "flag": False,
    }  # fmt: skip
    with pytest.raises(ValueError, match="column 'label' is missing"):
        pipeline.apply_steps(fresh, steps)
    assert "label" in raw.columns  # the caller's frame is left alone


def test_zero_spread_and_cast_failures():
    frame = pd.DataFrame({"x": [2.0, 2.0], "t": ["1", "2.5"]})
    same = pipeline.apply_steps(
        frame,
        [
            pipeline.step("standardize", columns={"x": {"mean": 2.0, "std": 0.0}}),
        ],
    )
    assert same["x"].tolist() == [0.0, 0.0]
    flat = pipeline.apply_step(
        frame, pipeline.step("normalize", columns={"x": {"min": 2, "max": 2}})
    )
    assert flat["x"].tolist() == [0.0, 0.0]
    with pytest.raises(ValueError, match="column 't': cannot cast '2.5' to int"):
        pipeline.apply_step(frame, pipeline.step("cast", columns={"t": "int"}))
    as_float = pipeline.apply_step(frame, pipeline.step("cast", columns={"t": "float"}))
    assert as_float["t"].tolist() == [1.0, 2.5]
    kept = pipeline.apply_step(frame, pipeline.step("select", columns=["t", "x"]))
    assert list(kept.columns) == ["t", "x"]
