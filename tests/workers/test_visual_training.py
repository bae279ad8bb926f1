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
    assert facts["rows"] == 100 and facts["training_accuracy"] > 0.9 and facts["fit_seconds"] >= 0
    artifact = models.read_model(ws.root / out / "model")
    assert artifact.features == IRIS_FEATURES and artifact.label == "is_virginica"
    assert sorted(p.name for p in (ws.root / out / "model").iterdir()) == [
        "coefficients.json",
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


def train(ws, component: str, params: dict, frame: pd.DataFrame) -> tuple[str, str, dict]:
    """(data folder, model folder, manifest) of a trained node."""
    data = ws.table(frame)
    static = checked(component, params, {"table": ws.schema(data)})
    manifest, out = ws.run(component, params, {"table": data})
    same_model_schema(static["model"], manifest["ports"]["model"]["schema"])
    return data, f"{out}/model", manifest


def predict(ws, model: str, data: str, params: dict | None = None) -> tuple[str, pd.DataFrame]:
    """(predictions folder, frame); the output schema is the one check() gave."""
    params = params or {}
    model_schema = models.read_model(ws.root / model).schema()
    static = checked("predict", params, {"model": model_schema, "table": ws.schema(data)})
    manifest, out = ws.run("predict", params, {"model": model, "table": data})
    assert manifest["ports"]["table"]["schema"] == static["table"]
    return f"{out}/table", ws.output(out)


def evaluate(ws, component: str, params: dict, data: str) -> dict:
    static = checked(component, params, {"table": ws.schema(data)})
    manifest, out = ws.run(component, params, {"table": data})
    assert manifest["ports"]["report"]["schema"] == static["report"]
    report = ws.report(out)
    json.dumps(report, allow_nan=False)
    return report


@pytest.mark.parametrize(
    "component,params",
    [
        ("logistic_regression_binary", {"C": 10.0, "max_iter": 500}),
        ("gbdt", {"objective": "binary", "n_estimators": 20, "max_depth": 3}),
        ("random_forest", {"task": "classification_binary", "n_estimators": 20}),
    ],
)
def test_binary_models_predict_and_evaluate(ws, component, params):
    params = {"features": IRIS_FEATURES, "label": "is_virginica", **params}
    data, model, _ = train(ws, component, params, binary_frame())
    predicted, frame = predict(ws, model, data)
    assert list(frame.columns) == [
        *IRIS_FEATURES,
        "is_virginica",
        "prediction_result",
        "prediction_score",
        "prediction_detail",
    ]
    assert frame["prediction_result"].dtype == "int64"  # the label's own type
    assert set(frame["prediction_result"]) <= {0, 1}
    detail = json.loads(frame["prediction_detail"][0])
    assert set(detail) == {"0", "1"} and detail["1"] == pytest.approx(
        frame["prediction_score"][0], abs=1e-6
    )
    report = evaluate(ws, "evaluate_binary", {"label": "is_virginica"}, predicted)
    m = report["metrics"]
    assert report["task"] == "binary" and report["positive"] == 1
    assert m["auc"] > 0.9 and m["accuracy"] > 0.85 and m["samples"] == 100
    assert 0 < m["logloss"] < 1 and 0 <= m["precision"] <= 1 and 0 <= m["f1"] <= 1
    assert 2 <= len(report["roc"]) <= 200 and report["roc"][-1] == [1.0, 1.0]
    assert 2 <= len(report["pr"]) <= 200


def test_multiclass_models_predict_and_evaluate(ws):
    frame = iris_frame()
    for component, extra in (
        ("logistic_regression_multiclass", {"max_iter": 500}),
        ("gbdt", {"objective": "multiclass", "n_estimators": 20}),
        ("random_forest", {"task": "classification_multiclass", "n_estimators": 20}),
    ):
        params = {"features": IRIS_FEATURES, "label": "species", **extra}
        data, model, manifest = train(ws, component, params, frame)
        assert manifest["ports"]["model"]["schema"]["classes"] == [
            "setosa",
            "versicolor",
            "virginica",
        ]
        predicted, out = predict(ws, model, data, {"keep_columns": ["species"]})
        assert list(out.columns) == [
            "species",
            "prediction_result",
            "prediction_score",
            "prediction_detail",
        ]
        assert set(out["prediction_result"]) <= {"setosa", "versicolor", "virginica"}
        assert (out["prediction_score"] >= 1 / 3 - 1e-9).all()
        report = evaluate(ws, "evaluate_multiclass", {"label": "species"}, predicted)
        assert report["labels"] == ["setosa", "versicolor", "virginica"]
        assert sum(map(sum, report["confusion"])) == 150
        assert [sum(row) for row in report["confusion"]] == [50, 50, 50]
        assert report["metrics"]["accuracy"] > 0.9 and report["metrics"]["macro_f1"] > 0.9
        assert [c["support"] for c in report["per_class"]] == [50, 50, 50]


def test_binary_evaluation_fed_a_multiclass_is_refused(ws):
    data, model, _ = train(
        ws,
        "logistic_regression_multiclass",
        {"features": IRIS_FEATURES, "label": "species", "max_iter": 500},
        iris_frame(),
    )
    predicted, _ = predict(ws, model, data)
    with pytest.raises(base.ComponentError) as caught:
        ws.run("evaluate_binary", {"label": "species"}, {"table": predicted})
    assert caught.value.field == "label"
    assert "needs at most 2 classes in 'species', found 3" in caught.value.rule
    with pytest.raises(base.ComponentError) as caught:
        checked("evaluate_binary", {"label": "species"}, {"table": ws.schema(data)})
    assert caught.value.field == "score" and "no column 'prediction_score'" in caught.value.rule


def test_regression_models_predict_and_evaluate(ws):
    frame = regression_frame()
    for component, extra, rmse in (
        ("linear_regression", {}, 0.2),
        ("linear_regression", {"alpha": 1.0}, 0.2),
        ("gbdt", {"objective": "regression", "n_estimators": 50}, 1.0),
        ("random_forest", {"task": "regression", "n_estimators": 30}, 1.0),
    ):
        params = {"features": ["a", "b", "c"], "label": "target", **extra}
        data, model, manifest = train(ws, component, params, frame)
        assert manifest["facts"]["training_r2"] > 0.9
        predicted, out = predict(ws, model, data)
        assert out["prediction_result"].dtype == "float64"
        report = evaluate(ws, "evaluate_regression", {"label": "target"}, predicted)
        m = report["metrics"]
        assert m["rmse"] < rmse and m["mae"] <= m["rmse"] and m["r2"] > 0.9, component
        assert m["samples"] == 200


def test_regression_refuses_a_text_label(ws):
    schema = ws.schema(ws.table(iris_frame()))
    for component, extra in (("linear_regression", {}), ("gbdt", {"objective": "regression"})):
        with pytest.raises(base.ComponentError) as caught:
            checked(
                component,
                {"features": IRIS_FEATURES, "label": "species", **extra},
                {"table": schema},
            )
        assert caught.value.field == "label" and "'species' is string" in str(caught.value)


def test_kmeans_clusters_blobs(ws):
    params = {"features": ["x", "y"], "k": 3, "seed": 1}
    data, model, manifest = train(ws, "kmeans", params, blobs_frame())
    schema = manifest["ports"]["model"]["schema"]
    assert schema["task"] == "clustering" and schema["label"] is None
    predicted, out = predict(ws, model, data)
    assert out["prediction_result"].dtype == "int64" and set(out["prediction_result"]) == {0, 1, 2}
    assert (out["prediction_score"] >= 0).all()
    report = evaluate(ws, "evaluate_clustering", {"features": ["x", "y"]}, predicted)
    assert report["metrics"]["silhouette"] > 0.5
    assert report["metrics"]["clusters"] == 3 and report["metrics"]["samples"] == 300
    assert report["sampled"] is None
    with pytest.raises(base.ComponentError) as caught:
        ws.run("kmeans", {**params, "k": 500}, {"table": data})
    assert caught.value.field == "k"


def test_prediction_repeats_the_steps_the_rows_have_not_been_through(ws):
    from workers.runners.visual import pipeline

    raw = binary_frame()
    fitted = {
        f: {"mean": float(raw[f].mean()), "std": float(raw[f].std(ddof=0))} for f in IRIS_FEATURES
    }
    scale = pipeline.step("standardize", columns=fitted)
    source = tables.Table(raw).schema()["columns"]
    trained = ws.table(pipeline.apply_steps(raw, [scale]), [scale], source)
    params = {"features": IRIS_FEATURES, "label": "is_virginica"}
    _, out = ws.run("logistic_regression_binary", params, {"table": trained})
    model = f"{out}/model"
    assert models.read_model(ws.root / model).steps == [scale]
    _, on_scaled = predict(ws, model, trained)
    _, on_raw = predict(ws, model, ws.table(raw.drop(columns=["is_virginica"])))
    assert np.allclose(on_raw["prediction_score"], on_scaled["prediction_score"])
    assert set(on_raw["prediction_result"]) == {"0", "1"}  # no label column: string
    assert list(on_raw["sepal_length"]) == list(raw["sepal_length"])  # rows as they came
    with pytest.raises(ValueError, match="petal_width"):
        ws.run(
            "predict", {}, {"model": model, "table": ws.table(raw.drop(columns=["petal_width"]))}
        )


def test_training_reports_missing_and_non_numeric_values_by_column(ws):
    frame = binary_frame()
    frame.loc[3, "sepal_width"] = np.nan
    data = ws.table(frame)
    params = {"features": IRIS_FEATURES, "label": "is_virginica"}
    with pytest.raises(ValueError, match="missing values: sepal_width"):
        ws.run("logistic_regression_binary", params, {"table": data})
    manifest, _ = ws.run("gbdt", {**params, "n_estimators": 5}, {"table": data})  # takes them
    assert manifest["facts"]["rows"] == 100


def test_every_component_imports_light_and_describes_itself():
    import subprocess
    import sys

    code = (
        "import sys; from workers.runners.visual import registry; c = registry.load_all(); "
        "[x.describe() for x in c.values()]; "
        "print(sorted(m for m in ('numpy', 'pandas', 'sklearn', 'xgboost') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_silhouette_is_computed_on_a_seeded_sample_of_large_tables(ws, monkeypatch):
    from workers.runners.visual.components import evaluate_clustering

    monkeypatch.setattr(evaluate_clustering, "MAX_SILHOUETTE_ROWS", 120)
    frame = blobs_frame()
    frame["group"] = (frame["x"] > frame["x"].median()).astype("int64")
    data = ws.table(frame)
    params = {"features": ["x", "y"], "cluster": "group"}
    first, second = (evaluate(ws, "evaluate_clustering", params, data) for _ in range(2))
    assert first["sampled"] == 120 and first["metrics"]["samples"] == 300
    assert first == second  # the same seed, the same sample


def test_binary_evaluation_takes_the_positive_class_by_its_text(ws):
    frame = pd.DataFrame({"truth": ["no", "yes", "yes", "no"], "p": [0.1, 0.8, 0.7, 0.3]})
    data = ws.table(frame)
    report = evaluate(ws, "evaluate_binary", {"label": "truth", "score": "p"}, data)
    assert report["positive"] == "yes" and report["metrics"]["auc"] == 1.0
    flipped = evaluate(
        ws, "evaluate_binary", {"label": "truth", "score": "p", "positive": "no"}, data
    )
    assert flipped["positive"] == "no" and flipped["metrics"]["auc"] == 0.0
    with pytest.raises(base.ComponentError) as caught:
        ws.run(
            "evaluate_binary",
            {"label": "truth", "score": "p", "positive": "maybe"},
            {"table": data},
        )
    assert caught.value.field == "positive" and "'maybe' is not a label value" in caught.value.rule


# ---- speed-minded paths: the same answers as the plain ones ---------------------------------


def test_logistic_regression_solver_auto_picks_by_scaling_and_model_size(ws):
    from workers.runners.visual import pipeline, tables
    from workers.runners.visual.components.logistic_regression_binary import (
        pick_solver,
        scaled_upstream,
    )

    assert pick_solver("auto", 18, scaled=True) == "lbfgs"
    assert pick_solver("auto", 18) == "newton-cholesky"
    assert pick_solver("auto", 501) == "lbfgs"
    assert pick_solver("auto", 100, classes=5) == "newton-cholesky"
    assert pick_solver("auto", 101, classes=5) == "lbfgs"
    assert pick_solver("saga", 18) == "saga"
    params = {"features": IRIS_FEATURES, "label": "is_virginica"}
    manifest, _ = ws.run("logistic_regression_binary", params, {"table": ws.table(binary_frame())})
    assert manifest["facts"]["solver"] == "newton-cholesky"
    params["solver"] = "lbfgs"
    manifest, _ = ws.run("logistic_regression_binary", params, {"table": ws.table(binary_frame())})
    assert manifest["facts"]["solver"] == "lbfgs"
    frame = binary_frame()
    standardized = pipeline.step(
        "standardize", columns={c: {"mean": 0.0, "std": 1.0} for c in IRIS_FEATURES}
    )
    assert scaled_upstream(tables.Table(frame, [standardized]), IRIS_FEATURES)
    assert not scaled_upstream(tables.Table(frame, [standardized]), [*IRIS_FEATURES, "other"])
    assert not scaled_upstream(tables.Table(frame), IRIS_FEATURES)


def test_the_training_score_of_a_large_table_is_a_seeded_sample(ws, monkeypatch):
    from workers.runners.visual import training

    monkeypatch.setattr(training, "SCORE_ROWS", 50)
    data = ws.table(binary_frame())
    params = {"features": IRIS_FEATURES, "label": "is_virginica"}
    one, _ = ws.run("logistic_regression_binary", params, {"table": data})
    two, _ = ws.run("logistic_regression_binary", params, {"table": data})
    assert one["facts"]["training_score_rows"] == 50 and one["facts"]["rows"] == 100
    assert one["facts"]["training_accuracy"] == two["facts"]["training_accuracy"] > 0.8
    assert list(training.score_rows(100, 0)) == sorted(set(training.score_rows(100, 0)))


@pytest.mark.parametrize(
    "values, classes",
    [
        ([1, 0, 1, 1], [0, 1]),
        (["b", "a", "c", "a"], ["a", "b", "c"]),
        ([True, False, False], [False, True]),
        ([2.5, 1.0, 2.5], [1.0, 2.5]),
    ],
)
def test_class_indices_match_a_lookup_per_row(values, classes):
    from workers.runners.visual import training

    series = pd.Series(values)
    index = {c: i for i, c in enumerate(classes)}
    expected = [index[models.plain_value(v)] for v in series]
    assert training.class_indices(series, classes).tolist() == expected


def test_prediction_detail_is_the_json_text_of_the_rounded_probabilities():
    rng = np.random.default_rng(3)
    proba = rng.dirichlet([1, 1, 1], size=500)
    proba[0] = [1.0, 0.0, 0.0]
    proba[1] = [1e-9, 0.5 - 1e-9, 0.5]
    names = ["a", 'q"uote', "100%"]
    expected = [
        json.dumps({n: round(float(p), 6) for n, p in zip(names, row, strict=True)})
        for row in proba
    ]
    assert models.detail_texts(proba, names) == expected


@pytest.mark.parametrize(
    "make, task",
    [
        ("LogisticRegression(solver='lbfgs')", "binary"),
        ("LogisticRegression(solver='newton-cholesky')", "multiclass"),
        ("LinearRegression()", "regression"),
        ("Ridge(alpha=0.5)", "regression"),
    ],
)
def test_linear_models_are_stored_as_coefficients_and_predict_the_same(tmp_path, make, task):
    from sklearn import linear_model

    rng = np.random.default_rng(5)
    X = rng.normal(size=(300, 4))
    score = X @ np.array([1.0, -2.0, 0.5, 0.0])
    y = {
        "binary": (score > 0).astype(int),
        "multiclass": np.digitize(score, [-1, 1]),
        "regression": score + 3.0,
    }[task]
    estimator = eval(f"linear_model.{make}", {"linear_model": linear_model}).fit(X, y)
    classes = sorted(set(y.tolist())) if task != "regression" else None
    artifact = models.ModelArtifact("m", task, ["a", "b", "c", "d"], "y", classes, estimator)
    models.write_model(artifact, tmp_path / "model")
    assert sorted(p.name for p in (tmp_path / "model").iterdir()) == [
        "coefficients.json",
        "model.json",
    ]
    back = models.read_model(tmp_path / "model").estimator
    assert isinstance(back, models.LinearEstimator)
    new = rng.normal(size=(200, 4)) * 3
    assert np.array_equal(back.predict(new), estimator.predict(new)) or np.allclose(
        back.predict(new), estimator.predict(new), rtol=1e-12, atol=1e-12
    )
    if task != "regression":
        assert np.allclose(back.predict_proba(new), estimator.predict_proba(new), atol=1e-12)
    models.write_model(models.read_model(tmp_path / "model"), tmp_path / "again")
    assert (tmp_path / "again" / "coefficients.json").read_text() == (
        tmp_path / "model" / "coefficients.json"
    ).read_text()


def test_a_linear_model_is_read_and_predicts_without_importing_sklearn(ws):
    import subprocess
    import sys

    params = {"features": IRIS_FEATURES, "label": "is_virginica"}
    _, out = ws.run("logistic_regression_binary", params, {"table": ws.table(binary_frame())})
    code = (
        "import sys, numpy as np, pandas as pd\n"
        "from workers.runners.visual import models\n"
        f"a = models.read_model({str(ws.root / out / 'model')!r})\n"
        "f = pd.DataFrame(np.ones((3, 4)), columns=a.features)\n"
        "models.predict_frame(a, f)\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'sklearn', 'skops', 'scipy'}))\n"
    )
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "[]"


@pytest.mark.parametrize("case", ["continuous", "ties", "rounded", "tiny"])
def test_binary_figures_are_sklearn_metrics(case):
    from sklearn import metrics

    from workers.runners.visual import evaluation

    rng = np.random.default_rng(11)
    n = {"continuous": 5000, "ties": 3000, "rounded": 4000, "tiny": 3}[case]
    truth = rng.integers(0, 2, n)
    scores = np.clip(truth * 0.3 + rng.random(n) * 0.7, 0, 1)
    if case == "ties":
        scores = rng.integers(0, 5, n) / 4.0
    elif case == "rounded":
        scores = scores.round(2)
    elif case == "tiny":
        truth, scores = np.array([0, 1, 1]), np.array([0.5, 0.5, 0.9])
    got = evaluation.binary_figures(truth, scores)
    predicted = (scores >= 0.5).astype(int)
    assert got["auc"] == pytest.approx(metrics.roc_auc_score(truth, scores), abs=1e-12)
    assert got["accuracy"] == pytest.approx(metrics.accuracy_score(truth, predicted), abs=1e-12)
    for name, fn in (
        ("precision", metrics.precision_score),
        ("recall", metrics.recall_score),
        ("f1", metrics.f1_score),
    ):
        assert got[name] == pytest.approx(fn(truth, predicted, zero_division=0), abs=1e-12)
    expected = metrics.log_loss(truth, scores, labels=[0, 1])
    assert got["logloss"] == pytest.approx(expected, abs=1e-12)
    fpr, tpr, _ = metrics.roc_curve(truth, scores)
    assert np.allclose(got["roc"][0], fpr) and np.allclose(got["roc"][1], tpr)
    precision, recall, _ = metrics.precision_recall_curve(truth, scores)
    assert np.allclose(got["pr"][0], precision) and np.allclose(got["pr"][1], recall)


def test_binary_figures_of_one_class_or_scores_beyond_probabilities():
    from workers.runners.visual import evaluation

    one = evaluation.binary_figures(np.array([1, 1, 1]), np.array([0.2, 0.7, 0.9]))
    assert one["auc"] is None and one["roc"] is None and one["recall"] == pytest.approx(2 / 3)
    wide = evaluation.binary_figures(np.array([0, 1, 1]), np.array([-1.0, 2.0, 0.7]))
    assert wide["logloss"] is None and wide["auc"] == 1.0
    none = evaluation.binary_figures(np.array([0, 0]), np.array([0.1, 0.2]))
    assert none["precision"] == 0.0 and none["f1"] == 0.0 and none["accuracy"] == 1.0
