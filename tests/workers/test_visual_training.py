"""Visual modeling's training, prediction and evaluation components, each run as the runner
runs a node (workers.runners.visual.run.run_node) on small real data: iris, a small
regression set, blobs. No database."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from workers.runners.visual import base, models, registry, tables
from workers.runners.visual.run import run_node


def iris_frame() -> pd.DataFrame:
    from sklearn.datasets import load_iris

    data = load_iris(as_frame=True)
    frame = data.frame.rename(columns=lambda c: c.replace(" (cm)", "").replace(" ", "_"))
    names = np.asarray(data.target_names)
    frame["species"] = names[frame.pop("target").to_numpy()].astype(object)
    return frame


IRIS_FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]


def binary_frame() -> pd.DataFrame:
    """Iris versicolor vs virginica (overlapping a little), label 0/1 as int."""
    frame = iris_frame()
    frame = frame[frame["species"] != "setosa"].reset_index(drop=True)
    frame["is_virginica"] = (frame.pop("species") == "virginica").astype("int64")
    return frame


def regression_frame(n: int = 200) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, 3))
    y = 3.0 * x[:, 0] - 2.0 * x[:, 1] + 0.5 * x[:, 2] + 1.0 + rng.normal(scale=0.1, size=n)
    return pd.DataFrame({"a": x[:, 0], "b": x[:, 1], "c": x[:, 2], "target": y})


def blobs_frame() -> pd.DataFrame:
    from sklearn.datasets import make_blobs

    X, _ = make_blobs(n_samples=300, centers=3, cluster_std=0.6, random_state=1)
    return pd.DataFrame({"x": X[:, 0], "y": X[:, 1]})


class Workspace:
    def __init__(self, root: Path):
        self.root = root
        self.nodes = 0

    def table(self, frame: pd.DataFrame, steps=None, source=None) -> str:
        self.nodes += 1
        folder = f"data{self.nodes}"
        tables.write_table(tables.Table(frame, steps or [], source), self.root / folder)
        return folder

    def run(self, component: str, params: dict, inputs: dict[str, str]) -> tuple[dict, str]:
        """(manifest, output folder) of one node."""
        self.nodes += 1
        out = f"node{self.nodes}"
        spec = {"component": component, "params": params, "inputs": inputs, "output_dir": out}
        return run_node(spec, self.root), out

    def schema(self, folder: str, port: str | None = None) -> dict:
        if port is None:
            return tables.read_table(self.root / folder).schema()
        manifest = json.loads((self.root / folder / "manifest.json").read_text())
        return manifest["ports"][port]["schema"]

    def report(self, out: str) -> dict:
        return json.loads((self.root / out / "report" / "report.json").read_text())

    def output(self, out: str) -> pd.DataFrame:
        return tables.read_table(self.root / out / "table").frame


@pytest.fixture
def ws(tmp_path) -> Workspace:
    return Workspace(tmp_path)


def checked(component: str, params: dict, inputs: dict) -> dict:
    return registry.get(component).validate(params, inputs)[1]


def same_model_schema(static: dict, trained: dict) -> None:
    """check()'s model schema is the trained one, classes aside (known once trained)."""
    assert static["classes"] is None
    assert {**trained, "classes": None} == static


# ---- training ------------------------------------------------------------------------------


def test_binary_logistic_regression_trains_and_its_schema_is_the_checked_one(ws):
    data = ws.table(binary_frame())
    params = {"features": IRIS_FEATURES, "label": "is_virginica"}
    static = checked("logistic_regression_binary", params, {"table": ws.schema(data)})
    manifest, out = ws.run("logistic_regression_binary", params, {"table": data})
    schema = manifest["ports"]["model"]["schema"]
    same_model_schema(static["model"], schema)
    assert schema["classes"] == [0, 1] and schema["task"] == "binary"
    facts = manifest["facts"]
    assert facts["rows"] == 100 and facts["training_accuracy"] > 0.9 and facts["seconds"] >= 0
    artifact = models.read_model(ws.root / out / "model")
    assert artifact.features == IRIS_FEATURES and artifact.label == "is_virginica"
    assert sorted(p.name for p in (ws.root / out / "model").iterdir()) == [
        "estimator.skops",
        "model.json",
    ]


def test_binary_logistic_regression_refuses_three_classes_naming_the_label(ws):
    data = ws.table(iris_frame())
    params = {"features": IRIS_FEATURES, "label": "species"}
    with pytest.raises(base.ComponentError) as caught:
        ws.run("logistic_regression_binary", params, {"table": data})
    assert caught.value.field == "label"
    assert caught.value.rule == (
        "binary logistic regression needs exactly 2 classes in 'species', found 3"
    )


def test_training_refuses_a_string_feature_and_the_label_as_a_feature(ws):
    schema = ws.schema(ws.table(iris_frame()))
    with pytest.raises(base.ComponentError) as caught:
        checked(
            "logistic_regression_multiclass",
            {"features": ["sepal_length", "species"], "label": "species"},
            {"table": schema},
        )
    assert caught.value.field == "features" and "it must be int or float or bool" in str(
        caught.value
    )
    with pytest.raises(base.ComponentError) as caught:
        checked(
            "logistic_regression_multiclass",
            {"features": ["sepal_length", "petal_width"], "label": "petal_width"},
            {"table": schema},
        )
    assert caught.value.field == "label" and "also a feature" in caught.value.rule


def test_a_dynamic_table_defers_its_column_checks_to_the_run(ws):
    schema = {**ws.schema(ws.table(binary_frame())), "dynamic": True}
    params = {"features": ["sepal_length", "color=red"], "label": "is_virginica"}
    static = checked("logistic_regression_binary", params, {"table": schema})
    assert static["model"]["features"] == ["sepal_length", "color=red"]
    with pytest.raises(base.ComponentError) as caught:
        ws.run("logistic_regression_binary", params, {"table": ws.table(binary_frame())})
    assert caught.value.field == "features" and "color=red" in caught.value.rule
