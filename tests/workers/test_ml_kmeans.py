"""The KMeans runner (workers/runners/ml_kmeans.py): standardized folders written by hand in a
temporary workspace, clustered for real, one instance in-process and two instances as real
data-parallel processes; parity with scikit-learn on iris; each distance against a brute-force
reference; the spec's stopping rule; the output formats.

No Django and no database: also runs with `pytest tests/workers/test_ml_kmeans.py -p no:django`.
"""

import json
from pathlib import Path

import numpy as np
import pytest
from scipy import sparse
from scipy.spatial.distance import cdist

from tests.workers.storeless import empty_store_after_each_test, object_store  # noqa: F401
from tests.workers.test_ml_lr import (
    run_distributed,
    run_in_process,
    share_of,
    write_standardized,
)
from workers.runners import ml_kmeans
from workers.runners.ml_kmeans import Centers, Rows, lloyd


def km_params(**overrides) -> dict:
    params = {
        "k": 3,
        "max_iter": 100,
        "tol": 1e-6,
        "init": "INITCLUSTER_RANDOM",
        "distance": "DISTANCE_EUCLIDEAN",
        "sparse_centers": False,
        "output_cluster": True,
        "train": "train_data",
        "predict": None,
        "model_dir": "model",
        "cluster_dir": "cluster",
        "predict_dir": "predict",
        "seed": 0,
    }
    params.update(overrides)
    return params


def read_model(workspace: Path) -> dict:
    return json.loads((workspace / "model" / "model.json").read_text())


def iris_workspace(root: Path, parts=2) -> Path:
    from sklearn.datasets import load_iris

    X, y = load_iris(return_X_y=True)
    names = ["setosa", "versicolor", "virginica"]
    write_standardized(root / "train_data", X, y, label_names=names, parts=parts)
    return root


def sse(X, centers, labels) -> float:
    return float(((X - centers[labels]) ** 2).sum())


# ---------------------------------------------------------------------------------------------
# Parity with scikit-learn, one and two instances


def test_iris_parity_with_sklearn(tmp_path, monkeypatch):
    from sklearn.cluster import KMeans
    from sklearn.datasets import load_iris

    X, _ = load_iris(return_X_y=True)
    workspace = iris_workspace(tmp_path)
    assert run_in_process(ml_kmeans, workspace, km_params(), monkeypatch) == 0
    model = read_model(workspace)
    reference = KMeans(n_clusters=3, n_init=10, random_state=0).fit(X)
    labels = [int(line.rsplit(";", 1)[1]) for line in _cluster_lines(workspace)]
    centers = np.array(model["centers"])
    ours = sse(X, centers, np.array(labels))
    print(f"iris: SSE ours {ours:.4f} (model {model['sse']:.4f}), sklearn {reference.inertia_:.4f}")
    assert ours == pytest.approx(model["sse"], rel=1e-9)
    assert ours <= reference.inertia_ * 1.01
    assert sorted(model["cluster_sizes"]) == sorted(np.bincount(reference.labels_).tolist())


def _cluster_lines(workspace: Path, folder="cluster") -> list[str]:
    lines = []
    for path in sorted((workspace / folder).glob("part-*")):
        lines += path.read_text().splitlines()
    return lines


def test_two_instances_match_one(tmp_path, monkeypatch):
    from sklearn.datasets import load_iris

    X, _ = load_iris(return_X_y=True)
    single = iris_workspace(tmp_path / "single")
    params = km_params(predict="train_data")
    assert run_in_process(ml_kmeans, single, params, monkeypatch) == 0
    one = read_model(single)

    workspaces = [tmp_path / "rank0", tmp_path / "rank1"]
    for rank, workspace in enumerate(workspaces):
        share_of(single / "train_data", rank, 2, workspace / "train_data")
    results = run_distributed("workers.runners.ml_kmeans", workspaces, params)
    two = read_model(workspaces[0])
    print(f"iris: total distance 1 instance {one['objective']:.6f}, 2 {two['objective']:.6f}")
    assert two["objective"] == pytest.approx(one["objective"], rel=0.01)
    assert two["sse"] == pytest.approx(one["sse"], rel=0.01)
    assert sum(two["cluster_sizes"]) == 150
    assert not (workspaces[1] / "model").exists()
    # each instance writes the clusters of its own share, lines as in its input
    for rank, workspace in enumerate(workspaces):
        share = (workspace / "train_data" / "preprocess_out" / f"part-{rank:05d}").read_text()
        for folder in ("cluster", "predict"):
            lines = (workspace / folder / f"part-{rank:05d}").read_text().splitlines()
            assert [line.rsplit(";", 1)[0] for line in lines] == share.splitlines()
    labels = np.array(
        [int(line.rsplit(";", 1)[1]) for w in workspaces for line in _cluster_lines(w)]
    )
    assert sse(X, np.array(two["centers"]), labels) == pytest.approx(two["sse"], rel=1e-9)
    assert "[rank 1]" in results[1][1]


def test_two_instances_sparse_manhattan_with_sampled_restarts(tmp_path, monkeypatch):
    """More samples than the restart sample, sparse data, sparse centers, Manhattan."""
    rng = np.random.default_rng(5)
    k, n, d = 4, 24_000, 12
    means = rng.uniform(0, 10, (k, d)) * (rng.random((k, d)) < 0.5)
    labels = rng.integers(0, k, n)
    dense = np.where(means[labels] > 0, means[labels] + rng.standard_normal((n, d)), 0.0)
    features = [f"t{i}" for i in range(d)]
    single = tmp_path / "single"
    write_standardized(
        single / "train_data", dense, labels, parts=4, dense=False, feature_names=features
    )
    params = km_params(
        k=k, distance="DISTANCE_MANHATTAN", sparse_centers=True, output_cluster=False, restarts=3
    )
    assert run_in_process(ml_kmeans, single, params, monkeypatch) == 0
    one = read_model(single)
    workspaces = [tmp_path / "rank0", tmp_path / "rank1"]
    for rank, workspace in enumerate(workspaces):
        share_of(single / "train_data", rank, 2, workspace / "train_data")
    run_distributed("workers.runners.ml_kmeans", workspaces, params)
    two = read_model(workspaces[0])
    # the brute-force total distance of the clustering by the true means
    truth = cdist(dense, np.array([dense[labels == c].mean(0) for c in range(k)]), "cityblock")
    print(
        f"sparse Manhattan: total distance 1 instance {one['objective']:.2f}, "
        f"2 instances {two['objective']:.2f}, true clusters {truth.min(1).sum():.2f}"
    )
    assert two["objective"] == pytest.approx(one["objective"], rel=0.01)
    assert one["objective"] <= truth.min(1).sum() * 1.001
    assert all(isinstance(c, dict) for c in two["centers"])


# ---------------------------------------------------------------------------------------------
# Distances


def _tanimoto(X, C):
    G = X @ C.T
    denominator = (X * X).sum(1)[:, None] + (C * C).sum(1)[None, :] - G
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denominator > 0, 1 - G / np.where(denominator > 0, denominator, 1), 0.0)


REFERENCE = {
    "DISTANCE_EUCLIDEAN": lambda X, C: cdist(X, C, "euclidean"),
    "DISTANCE_SQUAREEUCLIDEAN": lambda X, C: cdist(X, C, "sqeuclidean"),
    "DISTANCE_MANHATTAN": lambda X, C: cdist(X, C, "cityblock"),
    "DISTANCE_COSINE": lambda X, C: cdist(X, C, "cosine"),
    "DISTANCE_TANIMOTO": _tanimoto,
}


@pytest.mark.parametrize("distance", ml_kmeans.DISTANCES)
@pytest.mark.parametrize("sparse_x", [False, True])
@pytest.mark.parametrize("sparse_c", [False, True])
def test_distances_match_brute_force(distance, sparse_x, sparse_c):
    rng = np.random.default_rng(3)
    X = rng.standard_normal((700, 9)) * (rng.random((700, 9)) < 0.4)
    X[:3] = 0.0  # zero samples too
    C = rng.standard_normal((5, 9)) * (rng.random((5, 9)) < 0.6)
    reference = REFERENCE[distance](X, C)
    if distance == "DISTANCE_COSINE":
        reference[~np.isfinite(reference)] = 1.0
    centers = Centers(sparse.csr_matrix(C) if sparse_c else C, distance)
    rows = Rows.of(sparse.csr_matrix(X) if sparse_x else X)
    labels, dist = centers.nearest(rows)
    np.testing.assert_allclose(dist, reference.min(1), atol=1e-9)
    np.testing.assert_allclose(reference[np.arange(len(X)), labels], reference.min(1), atol=1e-9)


@pytest.mark.parametrize(
    ("distance", "X", "clusters", "total"),
    [
        # two pairs 1 apart: centers in the middle, each sample 0.5 away
        ("DISTANCE_EUCLIDEAN", [[0, 0], [0, 1], [10, 10], [10, 11]], [0, 0, 1, 1], 2.0),
        ("DISTANCE_SQUAREEUCLIDEAN", [[0, 0], [0, 1], [10, 10], [10, 11]], [0, 0, 1, 1], 1.0),
        # Manhattan: (0,0),(1,1) -> center (0.5,0.5), each 1 away
        ("DISTANCE_MANHATTAN", [[0, 0], [1, 1], [9, 9], [10, 10]], [0, 0, 1, 1], 4.0),
        # cosine: by direction, lengths do not matter; both clusters exact directions
        ("DISTANCE_COSINE", [[1, 0], [5, 0], [0, 2], [0, 7]], [0, 0, 1, 1], 0.0),
        # Tanimoto of (1,0),(3,0) to center (2,0): 1 - 2/(1+4-2) = 1/3, 1 - 6/(9+4-6) = 1/7
        ("DISTANCE_TANIMOTO", [[1, 0], [3, 0], [0, 1], [0, 3]], [0, 0, 1, 1], 2 * (1 / 3 + 1 / 7)),
    ],
)
def test_each_distance_on_a_tiny_case(tmp_path, monkeypatch, distance, X, clusters, total):
    X = np.array(X, dtype=float)
    write_standardized(tmp_path / "train_data", X, np.zeros(len(X)))
    params = km_params(k=2, distance=distance, restarts=5)
    assert run_in_process(ml_kmeans, tmp_path, params, monkeypatch) == 0
    model = read_model(tmp_path)
    assert model["objective"] == pytest.approx(total, abs=1e-12)
    found = [int(line.rsplit(";", 1)[1]) for line in _cluster_lines(tmp_path)]
    assert found in (clusters, [1 - c for c in clusters])
    first = found[0]
    expected = X[np.array(clusters) == 0].mean(0)
    if distance == "DISTANCE_COSINE":
        unit = X / np.linalg.norm(X, axis=1, keepdims=True)
        expected = unit[np.array(clusters) == 0].mean(0)
    np.testing.assert_allclose(model["centers"][first], expected)


# ---------------------------------------------------------------------------------------------
# The stopping rule, empty clusters


def _slow_line(n=3000):
    """Samples evenly spread on a line: Lloyd from the leftmost samples creeps for a while."""
    x = np.linspace(0, 1, n)
    return Rows.of(np.column_stack([x, np.zeros(n)])), np.column_stack([x[:6], np.zeros(6)])


def _first_stop(history: list[float], tol: float) -> int | None:
    """The spec's rule on a history of total distances: the first round after which the
    change rate has been below tol for 5 consecutive rounds."""
    below = 0
    for t in range(2, len(history) + 1):
        rate = abs(history[t - 2] - history[t - 1]) / history[t - 2]
        below = below + 1 if rate < tol else 0
        if below == 5:
            return t
    return None


def test_stops_after_five_rounds_below_tol():
    rows, C = _slow_line()
    rounds = {}
    for tol in (0.5, 0.02, 0.001):
        fit = lloyd(
            rows,
            C,
            "DISTANCE_EUCLIDEAN",
            max_iter=1000,
            tol=tol,
            collective=False,
            keep_sparse=False,
        )
        assert fit.iterations == len(fit.history) == _first_stop(fit.history, tol)
        rounds[tol] = fit.iterations
    assert 6 <= rounds[0.5] < rounds[0.02] < rounds[0.001] < 1000
    # max_iter ends it first
    fit = lloyd(
        rows, C, "DISTANCE_EUCLIDEAN", max_iter=7, tol=0.0, collective=False, keep_sparse=False
    )
    assert fit.iterations == 7 and _first_stop(fit.history, 0.0) is None


def test_tol_zero_runs_until_nothing_changes():
    rows, C = _slow_line(300)
    fit = lloyd(
        rows, C, "DISTANCE_EUCLIDEAN", max_iter=10000, tol=0.0, collective=False, keep_sparse=False
    )
    assert fit.iterations < 10000
    again = lloyd(
        rows,
        fit.centers.C,
        "DISTANCE_EUCLIDEAN",
        max_iter=10,
        tol=0.0,
        collective=False,
        keep_sparse=False,
    )
    assert again.iterations == 2  # a fixed point: round 2 changes no sample's cluster
    np.testing.assert_array_equal(again.centers.C, fit.centers.C)


def test_empty_cluster_is_reseeded_with_the_farthest_sample():
    X = np.array([[0.0, 0], [0, 1], [1, 0], [20, 20]])
    C = np.array([[0.0, 0], [0, 0]])  # the same twice: the second gets no sample
    fit = lloyd(
        Rows.of(X), C, "DISTANCE_EUCLIDEAN", max_iter=20, tol=0, collective=False, keep_sparse=False
    )
    assert sorted(fit.counts.tolist()) == [1, 3]
    assert fit.labels[3] != fit.labels[0]
    assert [20.0, 20.0] in fit.centers.C.tolist()


# ---------------------------------------------------------------------------------------------
# Output formats


def test_output_formats_dense(tmp_path, monkeypatch):
    lines = [
        "a1,0,1.50,0",
        "a2,1,1.0,0.000",
        "",  # an empty line: skipped by the reader, so not in the output
        "a3,0,10,10",
        ",1,11.25,10",
    ]
    X = np.array([[1.5, 0], [1, 0], [10, 10], [11.25, 10]])
    write_standardized(tmp_path / "train_data", X, lines=lines)
    write_standardized(tmp_path / "predict_data", np.array([[0.0, 1.0], [9.0, 9.0]]))
    params = km_params(k=2, predict="predict_data", distance="DISTANCE_SQUAREEUCLIDEAN")
    assert run_in_process(ml_kmeans, tmp_path, params, monkeypatch) == 0
    model = read_model(tmp_path)
    info = (tmp_path / "model" / "cluster_info").read_text().splitlines()
    assert len(info) == 2
    for cid, line in enumerate(info):
        fields = line.split(" ")
        assert fields[0] == str(cid)
        assert [float(v) for v in fields[1:]] == model["centers"][cid]
    assert (tmp_path / "model" / "distance_type").read_text() == (
        "distance_type DISTANCE_SQUAREEUCLIDEAN\nfeature_num 2\n"
    )
    assert model["k"] == 2 and model["feature_num"] == 2 and model["iterations"] >= 1
    assert model["distance"] == "DISTANCE_SQUAREEUCLIDEAN"
    out = (tmp_path / "cluster" / "part-00000").read_text().splitlines()
    samples = [line.rsplit(";", 1)[0] for line in out]
    assert samples == [line for line in lines if line]  # the original text, "1.50" included
    ids = [int(line.rsplit(";", 1)[1]) for line in out]
    assert ids[0] == ids[1] != ids[2] == ids[3]
    predicted = (tmp_path / "predict" / "part-00000").read_text().splitlines()
    assert [int(line.rsplit(";", 1)[1]) for line in predicted] == [ids[0], ids[2]]
    assert predicted[0].startswith(",,0.0,1.0;")


def test_output_formats_sparse_centers(tmp_path, monkeypatch):
    X = np.array([[0, 2.0, 0, 0], [0, 4.0, 0, 0], [0, 0, 0, 6.0], [1.0, 0, 0, 8.0]])
    features = ["apple", "pear", "plum", "fig"]
    write_standardized(tmp_path / "train_data", X, np.zeros(4), dense=False, feature_names=features)
    # prediction data standardized on its own: other ids for the same features
    write_standardized(
        tmp_path / "predict_data",
        np.array([[7.0, 0, 0], [0, 0, 3.0]]),
        np.zeros(2),
        dense=False,
        feature_names=["fig", "kiwi", "pear"],
    )
    params = km_params(k=2, sparse_centers=True, predict="predict_data", restarts=5)
    assert run_in_process(ml_kmeans, tmp_path, params, monkeypatch) == 0
    info = sorted((tmp_path / "model" / "cluster_info").read_text().splitlines())
    rest = sorted(line.split(" ", 1)[1] for line in info)
    assert rest == ["0:0.5 3:7.0", "1:3.0"]
    model = read_model(tmp_path)
    assert model["feature_names"] == features
    assert sorted(map(json.dumps, model["centers"])) == sorted(
        [
            json.dumps({"ids": [1], "weights": [3.0]}),
            json.dumps({"ids": [0, 3], "weights": [0.5, 7.0]}),
        ]
    )
    out = (tmp_path / "cluster" / "part-00000").read_text().splitlines()
    assert out[0].startswith(",0,1 2.0;") and out[3].startswith(",0,0 1.0,3 8.0;")
    train_ids = [int(line.rsplit(";", 1)[1]) for line in out]
    predicted = (tmp_path / "predict" / "part-00000").read_text().splitlines()
    assert [int(line.rsplit(";", 1)[1]) for line in predicted] == [train_ids[2], train_ids[0]]


def test_sparse_and_dense_data_give_the_same_clusters(tmp_path, monkeypatch):
    rng = np.random.default_rng(4)
    X = np.vstack([rng.normal(m, 1.0, (60, 5)) for m in (0, 6, 12)]) * (rng.random((180, 5)) < 0.8)
    results = []
    for name, dense in (("dense", True), ("sparse", False)):
        write_standardized(tmp_path / name / "train_data", X, np.zeros(len(X)), dense=dense)
        assert run_in_process(ml_kmeans, tmp_path / name, km_params(), monkeypatch) == 0
        results.append(read_model(tmp_path / name))
    assert results[1]["objective"] == pytest.approx(results[0]["objective"], rel=1e-9)
    np.testing.assert_allclose(results[1]["centers"], results[0]["centers"], atol=1e-9)


def test_progress_is_reported(tmp_path, monkeypatch, capsys):
    workspace = iris_workspace(tmp_path)
    metrics = tmp_path / "metrics.jsonl"
    monkeypatch.setenv("BML_METRICS_FILE", str(metrics))
    monkeypatch.chdir(workspace)
    (workspace / "params.json").write_text(json.dumps(km_params(output_cluster=False)))
    assert ml_kmeans.main(["--params", "params.json"]) == 0
    reported = [json.loads(line) for line in metrics.read_text().splitlines()]
    assert [r["step"] for r in reported] == list(range(1, len(reported) + 1))
    assert reported[-1]["loss"] == pytest.approx(read_model(workspace)["objective"])
    assert "iteration 1/100: total distance" in capsys.readouterr().out
    assert not (workspace / "cluster").exists()


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"k": 1}, "k must be in [2, 3000], got 1"),
        ({"k": 3001}, "k must be in [2, 3000]"),
        ({"max_iter": 5}, "max_iter must be in [6, 10000], got 5"),
        ({"tol": 0.6}, "tol must be in [0, 0.5], got 0.6"),
        ({"distance": "DISTANCE_HAMMING"}, "distance must be one of DISTANCE_EUCLIDEAN"),
        ({"init": "KMEANS++"}, "init must be one of INITCLUSTER_RANDOM"),
        ({"sparse_centers": "yes"}, "sparse_centers must be true or false"),
        ({"k": 200}, "k=200 is more than the 150 training samples"),
        ({"train": "missing"}, "training data folder missing does not exist"),
    ],
)
def test_parameter_errors(tmp_path, monkeypatch, capsys, override, message):
    iris_workspace(tmp_path)
    assert run_in_process(ml_kmeans, tmp_path, km_params(**override), monkeypatch) == 1
    assert message in capsys.readouterr().err
