"""The warehouse/serving model type bml_visual: a visual modeling training node's model
folder, loaded by workers.runners.model_loaders like every type, answering raw rows (dicts
or lists in the source column order) put through the training table's preprocessing. No
database: the model folders are trained here by the runner of one node."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from workers.runners import model_loaders
from workers.runners.model_loaders import BadInput, ModelLoadError
from workers.runners.visual import pipeline, tables
from workers.runners.visual.run import run_node


def train(tmp_path, frame: pd.DataFrame, component: str, params: dict, steps=(), source=None):
    tables.write_table(tables.Table(frame, list(steps), source), tmp_path / "data")
    spec = {"component": component, "params": params, "inputs": {"table": "data"}}
    run_node(spec, tmp_path)
    return tmp_path / "output" / "model"


def pets(n: int = 200) -> pd.DataFrame:
    """Raw rows: a number, a text category and a binary label that depends on both."""
    rng = np.random.default_rng(0)
    weight = rng.normal(10.0, 3.0, size=n)
    kind = rng.choice(["cat", "dog", "bird"], size=n)
    big = (weight + np.where(kind == "dog", 4.0, 0.0)) > 12.0
    return pd.DataFrame(
        {"weight": weight, "kind": kind.astype(object), "big": np.where(big, "yes", "no")}
    ).astype({"kind": object, "big": object})


def test_a_model_trained_on_standardized_one_hot_rows_answers_raw_rows(tmp_path):
    raw = pets()
    scale = pipeline.step(
        "standardize",
        columns={"weight": {"mean": float(raw.weight.mean()), "std": float(raw.weight.std())}},
    )
    encode = pipeline.step("one_hot", columns={"kind": ["bird", "cat", "dog"]})
    prepared = pipeline.apply_steps(raw, [scale, encode])
    features = ["weight", "kind_bird", "kind_cat", "kind_dog"]
    source = tables.Table(raw).schema()["columns"]
    folder = train(
        tmp_path,
        prepared,
        "logistic_regression_binary",
        {"features": features, "label": "big", "C": 100.0, "max_iter": 1000},
        [scale, encode],
        source,
    )
    model = model_loaders.load("bml_visual", folder)
    info = model.info
    assert info["type"] == "bml_visual" and info["task"] == "binary"
    assert info["columns"] == ["weight", "kind"] and info["n_features"] == 2
    assert info["classes"] == ["no", "yes"] and info["positive_label"] == "yes"
    assert info["steps"] == ["standardize", "one_hot"]

    answers = model.predict(
        [
            {"weight": 20.0, "kind": "cat"},
            {"weight": 11.0, "kind": "dog"},
            [3.0, "bird"],
            {"weight": 11.0, "kind": "dog", "big": "no"},  # the label is ignored
        ]
    )
    assert [a["label"] for a in answers] == ["yes", "yes", "no", "yes"]
    first = answers[0]
    assert set(first["probabilities"]) == {"no", "yes"}
    assert first["probability"] == pytest.approx(first["probabilities"]["yes"], abs=1e-6)
    assert sum(first["probabilities"].values()) == pytest.approx(1.0, abs=1e-5)
    assert answers[1] == answers[3]

    with pytest.raises(BadInput, match="missing: kind"):
        model.predict([{"weight": 3.0}])
    with pytest.raises(BadInput, match="unknown: colour"):
        model.predict([{"weight": 3.0, "kind": "cat", "colour": "red"}])
    with pytest.raises(BadInput, match="expected 2 values"):
        model.predict([[3.0]])
    with pytest.raises(BadInput, match="column 'weight' takes a number"):
        model.predict([{"weight": "heavy", "kind": "cat"}])


def test_regression_and_clustering_models_answer_their_shapes(tmp_path):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(100, 2))
    frame = pd.DataFrame({"a": x[:, 0], "b": x[:, 1], "y": 2 * x[:, 0] - x[:, 1] + 3})
    folder = train(
        tmp_path / "r", frame, "linear_regression", {"features": ["a", "b"], "label": "y"}
    )
    model = model_loaders.load("bml_visual", folder)
    assert model.info["columns"] == ["a", "b"] and model.info["classes"] is None
    [answer] = model.predict([{"a": 1.0, "b": 1}])
    assert answer == {"value": pytest.approx(4.0, abs=1e-4)}

    blobs = pd.DataFrame({"a": np.r_[x[:50, 0], x[50:, 0] + 20], "b": x[:, 1]})
    folder = train(tmp_path / "k", blobs, "kmeans", {"features": ["a", "b"], "k": 2})
    model = model_loaders.load("bml_visual", folder)
    near, far = model.predict([[0.0, 0.0], {"a": 20.0, "b": 0.0}])
    assert near["cluster"] != far["cluster"] and 0 <= near["distance"] < 3


def test_gbdt_multiclass_answers_every_class(tmp_path):
    from sklearn.datasets import load_iris

    data = load_iris(as_frame=True)
    frame = data.frame.rename(columns=lambda c: c.replace(" (cm)", "").replace(" ", "_"))
    names = list(frame.columns[:4])
    folder = train(
        tmp_path,
        frame,
        "gbdt",
        {"features": names, "label": "target", "objective": "multiclass", "n_estimators": 10},
    )
    model = model_loaders.load("bml_visual", folder)
    assert model.info["framework"] == "xgboost" and model.info["columns"] == names
    [answer] = model.predict([[6.7, 3.0, 5.2, 2.3]])
    assert answer["label"] == 2 and set(answer["probabilities"]) == {"0", "1", "2"}
    assert "probability" not in answer


def test_a_folder_that_is_not_a_visual_model_is_refused(tmp_path):
    (tmp_path / "model.json").write_text('{"algorithm": "kmeans"}')
    with pytest.raises(ModelLoadError, match="not a visual modeling model"):
        model_loaders.load("bml_visual", tmp_path)
