"""The built-in model types of the platform's own machine learning jobs
(workers/runners/model_loaders_bml.py): each job trains for real in a temporary workspace, its
model/ folder is loaded as the warehouse and a replica would, and raw samples (as the job read
them before standardization) get what the job's own prediction step wrote.

No Django and no database: also runs with `pytest tests/workers/test_model_loaders_bml.py
-p no:django`.
"""

import json
import shutil

import numpy as np
import pytest

from tests.workers.storeless import empty_store_after_each_test, object_store  # noqa: F401
from tests.workers.test_ml_kmeans import km_params
from tests.workers.test_ml_lr import lr_params, run_in_process, sample_lines, write_standardized
from workers.runners import ml_gbdt, ml_kmeans, ml_lr, model_loaders
from workers.runners.model_loaders import BadInput, ModelLoadError


def predicted(workspace) -> list[list[str]]:
    return [line.split(",") for line in (workspace / "predict" / "part-00000").read_text().split()]


def test_logistic_regression_answers_raw_dense_samples_as_its_job_did(tmp_path, monkeypatch):
    rng = np.random.default_rng(3)
    X = rng.standard_normal((200, 3)).round(4)
    y = (X @ [2.0, -1.0, 0.5] + rng.standard_normal(200) * 0.3 > 0).astype(float)
    numbers = [f"s{i}" for i in range(200)]
    write_standardized(tmp_path / "train_data", X, y, label_names=["no", "yes"], numbers=numbers)
    write_standardized(tmp_path / "predict_data", X[:8], None, numbers=numbers[:8])
    params = lr_params(evaluate=None, predict="predict_data", l2=0.01)
    assert run_in_process(ml_lr, tmp_path, params, monkeypatch) == 0
    assert json.loads((tmp_path / "model" / "model.json").read_text())["format"] == "DENSE"

    model = model_loaders.load("bml_logistic_regression", tmp_path / "model", {})
    assert model.info["classes"] == ["no", "yes"] and model.info["n_features"] == 3
    raw = sample_lines(X[:8], y[:8], numbers[:8])  # "No,label,values": the job's input
    answers = model.predict(raw)
    for answer, (no, probability, label) in zip(answers, predicted(tmp_path), strict=True):
        assert answer["no"] == no and answer["label"] == label
        assert answer["probability"] == pytest.approx(float(probability), abs=1e-5)
    # the values alone, a list, an object by column name: the same answer
    values = ",".join(raw[0].split(",")[2:])
    same = model.predict([values, X[0].tolist(), {"0": X[0][0], "1": X[0][1], "2": X[0][2]}])
    assert {a["probability"] for a in same} == {answers[0]["probability"]}
    assert model.predict([{"0": 1.0, "zzz": 2.0}])[0]["unknown_features"] == 1

    for bad, message in [
        ("1,2", "fields"),
        (",,1,x,3", "not a number"),
        (",,1,nan,3", "finite"),
        ([1, 2], "3 feature values"),
        ({"0": "a"}, "must be a number"),
        (None, "expected"),
    ]:
        with pytest.raises(BadInput, match=message):
            model.predict([bad])


def test_logistic_regression_on_sparse_named_features(tmp_path, monkeypatch):
    rng = np.random.default_rng(5)
    names = ["age", "income", "visits", "clicks"]
    X = (rng.random((160, 4)) * (rng.random((160, 4)) > 0.4)).round(3)
    y = (X[:, 0] - X[:, 1] > 0).astype(float)
    write_standardized(
        tmp_path / "train_data", X, y, label_names=["0", "1"], feature_names=names, dense=False
    )
    assert run_in_process(ml_lr, tmp_path, lr_params(evaluate=None), monkeypatch) == 0
    with pytest.raises(ModelLoadError, match="format"):  # SPARSE_ID is not SPARSE_ID_WEIGHT
        model_loaders.load("bml_logistic_regression", tmp_path / "model", {"format": "CSV"})
    model = model_loaders.load("bml_logistic_regression", tmp_path / "model", {})
    w = np.asarray(json.loads((tmp_path / "model" / "model.json").read_text())["weights"])
    b = json.loads((tmp_path / "model" / "model.json").read_text())["intercept"]
    line = "u7,,age 0.9,income 0.1,unseen 3"
    answer = model.predict([line])[0]
    expected = 1 / (1 + np.exp(-(0.9 * w[0] + 0.1 * w[1] + b)))
    assert answer["probability"] == pytest.approx(expected, abs=1e-6)
    assert answer["no"] == "u7" and answer["unknown_features"] == 1
    with pytest.raises(BadInput, match="feature weight"):
        model.predict(["u7,,age"])


def test_a_model_without_a_recorded_format_needs_the_field(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((60, 2))
    write_standardized(tmp_path / "train_data", X, (X[:, 0] > 0).astype(float))
    assert run_in_process(ml_lr, tmp_path, lr_params(evaluate=None), monkeypatch) == 0
    meta_file = tmp_path / "model" / "model.json"
    meta = json.loads(meta_file.read_text())
    del meta["format"]  # as written before the format was recorded
    meta_file.write_text(json.dumps(meta))
    with pytest.raises(ModelLoadError, match="field 'format'"):
        model_loaders.load("bml_logistic_regression", tmp_path / "model", {})
    model = model_loaders.load("bml_logistic_regression", tmp_path / "model", {"format": "DENSE"})
    assert model.predict([[1.0, 0.0]])[0]["label"] in {"0", "1"}
    with pytest.raises(ModelLoadError, match="not a KMeans job's model"):
        model_loaders.load("bml_kmeans", tmp_path / "model", {})
    with pytest.raises(ModelLoadError, match="not valid JSON"):
        model_loaders.load("bml_logistic_regression", tmp_path / "train_data" / "dataset.info")


@pytest.mark.parametrize("sparse_centers", [False, True])
def test_kmeans_answers_cluster_and_distance_as_its_job_did(tmp_path, monkeypatch, sparse_centers):
    from sklearn.datasets import load_iris

    X, y = load_iris(return_X_y=True)
    names = ["setosa", "versicolor", "virginica"]
    write_standardized(tmp_path / "train_data", X, y, label_names=names)
    shutil.copytree(tmp_path / "train_data", tmp_path / "predict_data")
    params = km_params(predict="predict_data", output_cluster=False, sparse_centers=sparse_centers)
    assert run_in_process(ml_kmeans, tmp_path, params, monkeypatch) == 0
    model = model_loaders.load("bml_kmeans", tmp_path / "model", {})
    assert model.info["clusters"] == 3
    raw = sample_lines(X, y)
    answers = model.predict(raw)
    written = [int(line.rsplit(";", 1)[1]) for line in (tmp_path / "predict" / "part-00000")
               .read_text().split()]  # fmt: skip
    assert [a["cluster"] for a in answers] == written
    centers = json.loads((tmp_path / "model" / "model.json").read_text())["centers"]
    center = centers[answers[0]["cluster"]]
    if sparse_centers:
        dense = np.zeros(4)
        dense[center["ids"]] = center["weights"]
        center = dense
    assert answers[0]["distance"] == pytest.approx(np.linalg.norm(X[0] - center), abs=1e-5)


def test_gbdt_answers_labels_by_name(tmp_path, monkeypatch):
    from sklearn.datasets import load_iris

    X, y = load_iris(return_X_y=True)
    names = ["setosa", "versicolor", "virginica"]
    write_standardized(tmp_path / "train_data", X, y, label_names=names)
    shutil.copytree(tmp_path / "train_data", tmp_path / "predict_data")
    params = {"num_round": 20, "max_depth": 3, "train": "train_data", "predict": "predict_data"}
    monkeypatch.chdir(tmp_path)
    (tmp_path / "params.json").write_text(json.dumps(params))
    assert ml_gbdt.main(["--params", "params.json"]) == 0
    info = json.loads((tmp_path / "model" / "model_info.json").read_text())
    assert info["format"] == "DENSE" and info["label_names"] == names
    model = model_loaders.load("bml_gbdt", tmp_path / "model", {})
    answers = model.predict(sample_lines(X, y))
    assert [a["label"] for a in answers] == [row[2] for row in predicted(tmp_path)]
    assert sum(a["label"] == names[int(t)] for a, t in zip(answers, y, strict=True)) > 140
    assert set(answers[0]["probabilities"]) == set(names)
    with pytest.raises(ModelLoadError, match="model_info.json"):
        (tmp_path / "model" / "model_info.json").unlink()
        model_loaders.load("bml_gbdt", tmp_path / "model", {})
