"""Visual modeling's data and preprocessing components and the fitted pipeline: each
component runs through the node runner on a tiny parquet table, the schema its check()
predicts is the schema its run wrote, and the fitted steps repeat the change on fresh rows
(raw request rows at serving time, without the label). No database."""

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from workers.runners.visual import pipeline


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
