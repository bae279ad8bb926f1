"""The logistic regression runner (workers/runners/ml_lr.py): standardized folders written by
hand in a temporary workspace, trained for real, one instance in-process and two instances as
real data-parallel processes; parity with scikit-learn on the breast cancer data.

No Django and no database: also runs with `pytest tests/workers/test_ml_lr.py -p no:django`.
"""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import sparse

from tests.workers.storeless import empty_store_after_each_test, object_store  # noqa: F401
from workers.runners import ml_data, ml_lr

REPO = Path(__file__).resolve().parents[2]


# ---------------------------------------------------------------------------------------------
# Standardized folders, written exactly per ml_data's format (also used by test_ml_kmeans.py)


def sample_lines(X, y, numbers=None, dense=True) -> list[str]:
    X = sparse.csr_matrix(X) if not dense else np.asarray(X)
    lines = []
    for i in range(X.shape[0]):
        label = "" if y is None else f"{y[i]:g}"
        no = "" if numbers is None else numbers[i]
        if dense:
            cells = [repr(float(v)) for v in X[i]]
        else:
            row = X.getrow(i)
            cells = [f"{j} {v!r}" for j, v in zip(row.indices, row.data.tolist(), strict=True)]
        lines.append(",".join([no, label, *cells]))
    return lines


def write_standardized(
    folder: Path,
    X,
    y=None,
    *,
    label_names=None,
    feature_names=None,
    parts=1,
    numbers=None,
    dense=True,
    lines=None,
) -> Path:
    """A standardized folder holding X (rows split evenly over `parts` part files)."""
    n, d = X.shape
    out = folder / ml_data.OUT_DIR
    out.mkdir(parents=True)
    lines = lines if lines is not None else sample_lines(X, y, numbers, dense)
    for index, chunk in enumerate(np.array_split(np.arange(len(lines)), parts)):
        text = "".join(lines[i] + "\n" for i in chunk)
        (out / f"part-{index:05d}").write_text(text)
    ml_data.write_info(
        folder,
        {
            "sample_num": n,
            "feature_num": d,
            "label_num": len(label_names or []),
            "format": "DENSE" if dense else "SPARSE_ID_WEIGHT",
            "type": "classification",
            "skipped_num": 0,
        },
    )
    dictionary = folder / ml_data.DICTIONARY_DIR
    names = feature_names or [str(i) for i in range(d)]
    ml_data.write_id_map(dictionary / ml_data.FEATURE_MAP, names)
    if label_names:
        ml_data.write_id_map(dictionary / ml_data.LABEL_MAP, label_names)
    return folder


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def share_of(folder: Path, rank: int, world: int, target: Path) -> Path:
    """A copy of `folder` with only this rank's part files (as the job engine stages them)."""
    target.mkdir(parents=True)
    (target / ml_data.INFO_FILE).write_bytes((folder / ml_data.INFO_FILE).read_bytes())
    for path in folder.rglob("*"):
        relative = path.relative_to(folder)
        if path.is_dir() or relative.parts[0] == ml_data.OUT_DIR:
            continue
        (target / relative).parent.mkdir(parents=True, exist_ok=True)
        (target / relative).write_bytes(path.read_bytes())
    parts = ml_data.part_files(folder)
    (target / ml_data.OUT_DIR).mkdir()
    for index, path in enumerate(parts):
        if index % world == rank:
            (target / ml_data.OUT_DIR / path.name).write_bytes(path.read_bytes())
    return target


def run_distributed(module: str, workspaces: list[Path], params: dict, timeout=240) -> list:
    """Run `module` as len(workspaces) data-parallel instances, each in its own workspace."""
    port = free_port()
    processes = []
    for rank, workspace in enumerate(workspaces):
        (workspace / "params.json").write_text(json.dumps(params))
        env = {
            **os.environ,
            "PYTHONPATH": str(REPO),
            "RANK": str(rank),
            "WORLD_SIZE": str(len(workspaces)),
            "MASTER_ADDR": "127.0.0.1",
            "MASTER_PORT": str(port),
            "OMP_NUM_THREADS": "1",
        }
        env.pop("BML_METRICS_FILE", None)
        command = [sys.executable, "-m", module, "--params", "params.json"]
        processes.append(
            subprocess.Popen(
                command, cwd=workspace, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
            )
        )
    results = []
    for process in processes:
        out, err = process.communicate(timeout=timeout)
        results.append((process.returncode, out.decode(), err.decode()))
    for code, out, err in results:
        assert code == 0, out + err
    return results


def run_in_process(module, workspace: Path, params: dict, monkeypatch) -> tuple[int, str]:
    monkeypatch.chdir(workspace)
    for name in ("RANK", "WORLD_SIZE", "BML_METRICS_FILE"):
        monkeypatch.delenv(name, raising=False)
    (workspace / "params.json").write_text(json.dumps(params))
    return module.main(["--params", "params.json"])


# ---------------------------------------------------------------------------------------------
# Data


@pytest.fixture(scope="module")
def cancer():
    from sklearn.datasets import load_breast_cancer
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler

    X, y = load_breast_cancer(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.3, random_state=0, stratify=y
    )
    scaler = StandardScaler().fit(X_train)
    return scaler.transform(X_train), scaler.transform(X_test), y_train, y_test


def lr_params(**overrides) -> dict:
    params = {
        "l1": 0,
        "l2": 0.001,
        "termination": 1e-6,
        "max_iter": 200,
        "train": "train_data",
        "evaluate": "test_data",
        "predict": None,
        "model_dir": "model",
        "evaluate_dir": "evaluate",
        "predict_dir": "predict",
    }
    params.update(overrides)
    return params


def cancer_workspace(root: Path, cancer, parts=2, dense=True) -> Path:
    X_train, X_test, y_train, y_test = cancer
    names = ["malignant", "benign"]  # sklearn's target: 1 = benign
    write_standardized(
        root / "train_data", X_train, y_train, label_names=names, parts=parts, dense=dense
    )
    write_standardized(
        root / "test_data", X_test, y_test, label_names=names, parts=parts, dense=dense
    )
    return root


def objective(X, y, w, b, l1, l2) -> float:
    z = X @ w + b
    return float(np.mean(np.logaddexp(0, z) - y * z) + l1 * np.abs(w).sum() + l2 / 2 * w @ w)


def read_model(workspace: Path) -> dict:
    return json.loads((workspace / "model" / "model.json").read_text())


# ---------------------------------------------------------------------------------------------
# Parity with scikit-learn


def test_l2_parity_with_sklearn(tmp_path, cancer, monkeypatch):
    from sklearn.linear_model import LogisticRegression

    X_train, X_test, y_train, y_test = cancer
    l2 = 0.001
    assert (
        run_in_process(ml_lr, cancer_workspace(tmp_path, cancer), lr_params(l2=l2), monkeypatch)
        == 0
    )
    model = read_model(tmp_path)
    metrics = json.loads((tmp_path / "evaluate" / "metrics.json").read_text())

    reference = LogisticRegression(C=1 / (len(y_train) * l2), max_iter=5000, tol=1e-10)
    reference.fit(X_train, y_train)
    accuracy_sk = reference.score(X_test, y_test)
    print(f"L2 parity: accuracy ours {metrics['accuracy']:.4f}, sklearn {accuracy_sk:.4f}")
    assert abs(metrics["accuracy"] - accuracy_sk) <= 0.01
    ours = objective(X_train, y_train, np.array(model["weights"]), model["intercept"], 0, l2)
    theirs = objective(X_train, y_train, reference.coef_[0], reference.intercept_[0], 0, l2)
    print(f"L2 parity: objective ours {ours:.6f}, sklearn {theirs:.6f}")
    assert ours == pytest.approx(model["objective"], rel=1e-9)
    assert ours <= theirs * (1 + 1e-3)
    np.testing.assert_allclose(model["weights"], reference.coef_[0], atol=0.05)


def test_l1_parity_with_sklearn(tmp_path, cancer, monkeypatch):
    from sklearn.linear_model import LogisticRegression

    X_train, X_test, y_train, y_test = cancer
    l1 = 0.01
    params = lr_params(l1=l1, l2=0, termination=1e-7)
    assert run_in_process(ml_lr, cancer_workspace(tmp_path, cancer), params, monkeypatch) == 0
    model = read_model(tmp_path)
    metrics = json.loads((tmp_path / "evaluate" / "metrics.json").read_text())
    w = np.array(model["weights"])

    reference = LogisticRegression(
        l1_ratio=1.0, solver="saga", C=1 / (len(y_train) * l1), max_iter=20000, tol=1e-8
    )
    reference.fit(X_train, y_train)
    accuracy_sk = reference.score(X_test, y_test)
    ours = objective(X_train, y_train, w, model["intercept"], l1, 0)
    theirs = objective(X_train, y_train, reference.coef_[0], reference.intercept_[0], l1, 0)
    print(
        f"L1 parity: accuracy ours {metrics['accuracy']:.4f}, sklearn {accuracy_sk:.4f}; "
        f"objective ours {ours:.6f}, sklearn {theirs:.6f}; non-zero ours "
        f"{np.count_nonzero(w)}, sklearn {np.count_nonzero(reference.coef_)}"
    )
    assert abs(metrics["accuracy"] - accuracy_sk) <= 0.01
    assert ours <= theirs * (1 + 1e-3)
    # the L1 term makes exact zeros, on (nearly) the same features
    assert 0 < np.count_nonzero(w) < len(w)
    assert abs(np.count_nonzero(w) - np.count_nonzero(reference.coef_)) <= 2


def test_two_instances_train_data_parallel(tmp_path, cancer, monkeypatch):
    single = cancer_workspace(tmp_path / "single", cancer, parts=2)
    assert run_in_process(ml_lr, single, lr_params(predict="test_data"), monkeypatch) == 0
    one = read_model(single)

    workspaces = []
    for rank in range(2):
        workspace = tmp_path / f"rank{rank}"
        share_of(single / "train_data", rank, 2, workspace / "train_data")
        share_of(single / "test_data", rank, 2, workspace / "test_data")
        workspaces.append(workspace)
    results = run_distributed("workers.runners.ml_lr", workspaces, lr_params(predict="test_data"))
    two = read_model(workspaces[0])
    print(f"1 instance objective {one['objective']:.10f}, 2 instances {two['objective']:.10f}")
    assert two["objective"] == pytest.approx(one["objective"], rel=1e-6)
    assert two["samples"] == one["samples"]
    np.testing.assert_allclose(two["weights"], one["weights"], atol=1e-4)
    # only rank 0 writes the model and the metrics, over both shares of the test data
    assert not (workspaces[1] / "model").exists()
    assert not (workspaces[1] / "evaluate").exists()
    m1 = json.loads((single / "evaluate" / "metrics.json").read_text())
    m2 = json.loads((workspaces[0] / "evaluate" / "metrics.json").read_text())
    assert m2["samples"] == m1["samples"] == len(cancer[3])
    assert m2["accuracy"] == pytest.approx(m1["accuracy"], abs=1e-9)
    # every rank predicts its own share
    lines = [
        (workspace / "predict" / f"part-{rank:05d}").read_text().splitlines()
        for rank, workspace in enumerate(workspaces)
    ]
    assert [len(x) for x in lines] == [len(x) for x in np.array_split(cancer[3], 2)]
    single_lines = (single / "predict" / "part-00000").read_text().splitlines()
    assert len(single_lines) == len(lines[0]) + len(lines[1])
    assert "iteration" in results[0][1] and "[rank 1]" in results[1][1]


# ---------------------------------------------------------------------------------------------
# Formats and behaviour


def test_outputs_and_formats(tmp_path, monkeypatch):
    rng = np.random.default_rng(1)
    X = rng.standard_normal((300, 3))
    y = (X @ [2.0, -1.0, 0.0] + 0.5 + rng.standard_normal(300) * 0.5 > 0).astype(float)
    numbers = [f"s{i}" for i in range(300)]
    names = ["no", "yes"]
    write_standardized(tmp_path / "train_data", X, y, label_names=names, numbers=numbers)
    # prediction data standardized separately: columns named, labels unknown (empty)
    write_standardized(tmp_path / "predict_data", X[:5], None, numbers=numbers[:5])
    metrics_file = tmp_path / "metrics.jsonl"
    monkeypatch.setenv("BML_METRICS_FILE", str(metrics_file))
    monkeypatch.chdir(tmp_path)
    (tmp_path / "params.json").write_text(
        json.dumps(lr_params(evaluate=None, predict="predict_data", l2=0.01))
    )
    assert ml_lr.main(["--params", "params.json"]) == 0

    model_lines = (tmp_path / "model" / "model").read_text().splitlines()
    assert len(model_lines) == 4
    for index, line in enumerate(model_lines[:3]):
        weight, internal_id, original = line.split(" ")
        float(weight)
        assert (internal_id, original) == (str(index), str(index))
    assert model_lines[3].endswith(" -1 __intercept__")
    model = read_model(tmp_path)
    assert model["feature_num"] == 3 and model["label_names"] == names
    assert model["weights"][0] > 0 > model["weights"][1]
    assert [float(line.split()[0]) for line in model_lines] == [
        *model["weights"],
        model["intercept"],
    ]
    predictions = (tmp_path / "predict" / "part-00000").read_text().splitlines()
    assert len(predictions) == 5
    p = 1 / (1 + np.exp(-(X[:5] @ model["weights"] + model["intercept"])))
    for line, expected, no in zip(predictions, p, numbers, strict=False):
        sample, probability, label = line.split(",")
        assert sample == no
        assert float(probability) == pytest.approx(expected, abs=1e-6)
        assert label == ("yes" if expected >= 0.5 else "no")
    assert not (tmp_path / "evaluate").exists()
    reported = [json.loads(line) for line in metrics_file.read_text().splitlines()]
    assert reported[0]["step"] == 0 and all("loss" in r for r in reported)
    assert reported[-1]["loss"] < reported[0]["loss"]


def test_sparse_equals_dense_and_features_match_by_name(tmp_path, monkeypatch):
    rng = np.random.default_rng(2)
    X = rng.standard_normal((400, 6)) * (rng.random((400, 6)) < 0.5)
    y = (X @ [1.0, -2.0, 0.5, 0.0, 1.5, -1.0] > 0).astype(float)
    names = ["a", "b"]
    dense_ws, sparse_ws = tmp_path / "dense", tmp_path / "sparse"
    features = ["f0", "f1", "f2", "f3", "f4", "f5"]
    write_standardized(dense_ws / "train_data", X, y, label_names=names)
    write_standardized(
        sparse_ws / "train_data", X, y, label_names=names, feature_names=features, dense=False
    )
    # evaluation data standardized on its own: other feature ids, other label ids, extra feature
    order = [5, 3, 1, 0, 2, 4]
    X_eval = np.column_stack([X[:, order], np.ones(len(X))])
    write_standardized(
        sparse_ws / "test_data",
        X_eval,
        1 - y,
        label_names=["b", "a"],
        feature_names=[features[i] for i in order] + ["unknown"],
        dense=False,
    )
    write_standardized(dense_ws / "test_data", X, y, label_names=names)
    params = lr_params(l1=0.001, l2=0.001, termination=1e-8)
    assert run_in_process(ml_lr, dense_ws, params, monkeypatch) == 0
    assert run_in_process(ml_lr, sparse_ws, params, monkeypatch) == 0
    dense_model, sparse_model = read_model(dense_ws), read_model(sparse_ws)
    assert sparse_model["objective"] == pytest.approx(dense_model["objective"], rel=1e-7)
    np.testing.assert_allclose(sparse_model["weights"], dense_model["weights"], atol=1e-4)
    assert sparse_model["feature_names"] == features
    dense_metrics = json.loads((dense_ws / "evaluate" / "metrics.json").read_text())
    sparse_metrics = json.loads((sparse_ws / "evaluate" / "metrics.json").read_text())
    assert sparse_metrics["accuracy"] == dense_metrics["accuracy"] > 0.9
    assert sparse_metrics["auc"] == pytest.approx(dense_metrics["auc"], abs=1e-3)
    lines = (sparse_ws / "model" / "model").read_text().splitlines()
    assert [line.split(" ")[2] for line in lines] == [*features, "__intercept__"]


def test_termination_and_max_iter(tmp_path, cancer, monkeypatch):
    cancer_workspace(tmp_path, cancer)
    assert run_in_process(ml_lr, tmp_path, lr_params(termination=0.1), monkeypatch) == 0
    loose = read_model(tmp_path)
    assert run_in_process(ml_lr, tmp_path, lr_params(termination=1e-9), monkeypatch) == 0
    tight = read_model(tmp_path)
    assert loose["iterations"] < tight["iterations"] <= 200
    assert tight["objective"] < loose["objective"]
    assert (
        run_in_process(ml_lr, tmp_path, lr_params(termination=1e-12, max_iter=20), monkeypatch) == 0
    )
    assert read_model(tmp_path)["iterations"] == 20


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"l1": 1.5}, "l1 must be in [0, 1], got 1.5"),
        ({"l2": -0.1}, "l2 must be in [0, 1], got -0.1"),
        ({"termination": 0}, "termination must be in (0, 0.1], got 0"),
        ({"termination": 0.2}, "termination must be in (0, 0.1]"),
        ({"max_iter": 10}, "max_iter must be in [20, 200], got 10"),
        ({"max_iter": 50.5}, "max_iter must be an integer"),
        ({"l2": "abc"}, "l2 must be a number"),
        ({"train": None}, "train is required"),
        ({"train": "nowhere"}, "training data folder nowhere does not exist"),
    ],
)
def test_parameter_errors(tmp_path, monkeypatch, capsys, override, message):
    write_standardized(tmp_path / "train_data", np.eye(2), np.array([0, 1]))
    assert run_in_process(ml_lr, tmp_path, lr_params(evaluate=None, **override), monkeypatch) == 1
    assert message in capsys.readouterr().err


def test_needs_exactly_two_classes(tmp_path, monkeypatch, capsys):
    X = np.arange(12.0).reshape(6, 2)
    write_standardized(
        tmp_path / "train_data", X, np.array([0, 1, 2, 0, 1, 2]), label_names=["x", "y", "z"]
    )
    assert run_in_process(ml_lr, tmp_path, lr_params(evaluate=None), monkeypatch) == 1
    err = capsys.readouterr().err
    assert "exactly 2 classes" in err and "found 3: 'x', 'y', 'z'" in err


def test_command_line_failure_exit_code(tmp_path):
    (tmp_path / "params.json").write_text(json.dumps(lr_params(max_iter=500)))
    done = subprocess.run(
        [sys.executable, "-m", "workers.runners.ml_lr", "--params", "params.json"],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
    )
    assert done.returncode == 1
    assert "max_iter must be in [20, 200], got 500" in done.stderr
