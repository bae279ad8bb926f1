"""The spec's machine learning flow through the job engine: standardize train/test/predict
data, train logistic regression with evaluation and prediction, then KMeans on standardized
iris. Real runners, real processes, outputs where the spec puts them."""

import io
import json

import numpy as np
import pytest
from django.core.exceptions import ValidationError
from sklearn.datasets import load_breast_cancer, load_iris
from sklearn.preprocessing import StandardScaler

from apps.jobs import services
from apps.jobs.models import JobStatus
from apps.storage import services as storage
from tests.jobs.helpers import package, run_until, status_of, stored

OUT = "bos://jobs-out/ml/"


def dense_lines(X, y, prefix="") -> bytes:
    """The spec's DENSE format: No,label,weight1,...,weightN (No left empty here)."""
    rows = [
        f"{prefix}{i if prefix else ''},{label}," + ",".join(f"{v:.6g}" for v in x)
        for i, (x, label) in enumerate(zip(X, y, strict=True))
    ]
    return ("\n".join(rows) + "\n").encode()


def put(owner, project, key, data: bytes) -> str:
    bucket = project.buckets.get(name="jobs-out")
    storage.upload_object(owner, bucket, key, io.BytesIO(data), len(data))
    return f"bos://jobs-out/{key}"


def ml_job(owner, project, name, algorithm, params, instances=1, **paths):
    return services.create_job(
        owner,
        project,
        name=name,
        kind="machine_learning",
        algorithm=algorithm,
        params=params,
        package_id=package().pk,
        instances=instances,
        output_path=OUT,
        **paths,
    )


def finished(job):
    run_until(lambda: status_of(job) not in ("queued", "running"), f"{job.name} to end", 180)
    assert job.status == JobStatus.SUCCEEDED, job.reason
    return job


def data_path(job) -> str:
    return f"{OUT}{job.job_id}/data/"


def test_standardize_then_logistic_regression_with_evaluation_and_prediction(owner, project):
    X, y = load_breast_cancer(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    order = np.random.default_rng(0).permutation(len(y))
    train, test = order[:450], order[450:]
    sources = {
        "train": put(owner, project, "raw/train/part-0", dense_lines(X[train], y[train])),
        "test": put(owner, project, "raw/test/part-0", dense_lines(X[test], y[test])),
        "predict": put(owner, project, "raw/all/part-0", dense_lines(X, y, prefix="s")),
    }
    standardized = {
        role: finished(
            ml_job(
                owner,
                project,
                f"std-{role}",
                "standardize",
                {"format": "DENSE", "type": "classification"},
                train_data_path=source,
            )
        )
        for role, source in sources.items()
    }
    info = stored(f"ml/{standardized['train'].job_id}/data/dataset.info").decode()
    assert "sample_num 450" in info and "feature_num 30" in info and "label_num 2" in info

    lr = finished(
        ml_job(
            owner,
            project,
            "lr",
            "logistic_regression",
            {
                "l1": 0,
                "l2": 0.001,
                "termination": 1e-6,
                "max_iter": 100,
                "predict_data_path": data_path(standardized["predict"]),
            },
            instances=2,
            train_data_path=data_path(standardized["train"]),
            test_data_path=data_path(standardized["test"]),
        )
    )
    model = stored(f"ml/{lr.job_id}/model/model").decode().splitlines()
    assert len(model) == 31 and model[-1].endswith("-1 __intercept__")
    metrics = json.loads(stored(f"ml/{lr.job_id}/evaluate/metrics.json"))
    assert metrics["samples"] == len(test) and metrics["accuracy"] > 0.95
    assert metrics["auc"] > 0.98
    from apps.jobs.selectors import ml_results

    shown = ml_results(lr)["metrics"]  # the job page's metrics table: the same figures
    assert shown["auc"] == metrics["auc"] and "confusion" not in shown
    predicted = b"".join(
        stored(f"ml/{lr.job_id}/predict/part-{rank:05d}") for rank in range(2)
    ).decode()
    assert len(predicted.splitlines()) == len(y) and predicted.startswith("s")


def test_kmeans_on_standardized_iris(owner, project):
    X, y = load_iris(return_X_y=True)
    source = put(owner, project, "raw/iris/iris.csv", dense_lines(X, y))
    std = finished(
        ml_job(
            owner,
            project,
            "std-iris",
            "standardize",
            {"format": "DENSE", "type": "classification"},
            train_data_path=source,
        )
    )
    km = finished(
        ml_job(
            owner,
            project,
            "kmeans-iris",
            "kmeans",
            {"k": 3, "max_iter": 100, "tol": 0.0001, "output_cluster": True},
            train_data_path=data_path(std),
        )
    )
    centers = stored(f"ml/{km.job_id}/model/cluster_info").decode().splitlines()
    assert len(centers) == 3
    assert "DISTANCE_EUCLIDEAN" in stored(f"ml/{km.job_id}/model/distance_type").decode()
    clustered = stored(f"ml/{km.job_id}/cluster/part-00000").decode().splitlines()
    assert len(clustered) == 150 and all(";" in line for line in clustered)


def test_two_instances_share_a_single_input_file_by_rows(owner, project):
    rows = [f"r{i},{i % 2},{i}.5,{i * 3 % 7}" for i in range(12)]
    data = "\r\n".join(rows).encode()  # CR LF line ends, none after the last row
    source = put(owner, project, "raw/one/samples.csv", data)
    std = finished(
        ml_job(
            owner,
            project,
            "std-rows",
            "standardize",
            {"format": "DENSE", "type": "classification"},
            instances=2,
            train_data_path=source,
        )
    )
    parts = [
        stored(f"ml/{std.job_id}/data/preprocess_out/part-{rank:05d}").decode().splitlines()
        for rank in range(2)
    ]
    assert all(parts)  # both instances converted rows
    assert sorted(parts[0] + parts[1]) == sorted(rows)  # each row once (labels kept as ids)
    info = stored(f"ml/{std.job_id}/data/dataset.info").decode()
    assert "sample_num 12" in info
    log = stored(f"ml/{std.job_id}/log/{std.job_id}-1.log").decode()
    assert "(share 2 of 2: the lines that begin in its 1/2 of the bytes)" in log


@pytest.mark.parametrize(
    "algorithm, params, field, words",
    [
        ("logistic_regression", {"l1": 2}, "l1", "[0, 1]"),
        ("logistic_regression", {"termination": 0}, "termination", "(0, 0.1]"),
        ("logistic_regression", {"max_iter": 500}, "max_iter", "[20, 200]"),
        ("kmeans", {"k": 1}, "k", "[2, 3000]"),
        ("kmeans", {"k": 3, "max_iter": 5}, "max_iter", "[6, 10000]"),
        ("kmeans", {"k": 3, "tol": 0.9}, "tol", "[0, 0.5]"),
        ("kmeans", {"k": 3, "distance": "DISTANCE_HAMMING"}, "distance", "COSINE"),
        ("standardize", {"format": "CSV"}, "format", "SPARSE_ID_WEIGHT"),
    ],
)
def test_parameters_out_of_range_are_refused_naming_the_range(
    owner, project, algorithm, params, field, words
):
    with pytest.raises(ValidationError) as error:
        ml_job(owner, project, "bad", algorithm, params, train_data_path="bos://jobs-out/x/")
    assert words in error.value.message_dict[field][0]


def test_training_data_must_be_standardized(owner, project):
    put(owner, project, "raw/plain.csv", b",1,2,3\n")
    with pytest.raises(ValidationError) as error:
        ml_job(owner, project, "lr", "logistic_regression", {}, train_data_path=OUT + "raw/")
    assert "not standardized data" in error.value.message_dict["train_data_path"][0]


def test_gbdt_on_imbalanced_data_with_class_weighting(owner, project):
    from sklearn.datasets import make_classification

    X, y = make_classification(
        n_samples=4000, n_features=12, n_informative=6, weights=[0.97], random_state=3
    )
    source = put(owner, project, "raw/risk/part-0", dense_lines(X[:3000], y[:3000]))
    held_out = put(owner, project, "raw/risk-test/part-0", dense_lines(X[3000:], y[3000:]))
    train, test = (
        finished(
            ml_job(
                owner,
                project,
                f"std-{name}",
                "standardize",
                {"format": "DENSE", "type": "classification"},
                train_data_path=path,
            )
        )
        for name, path in (("risk", source), ("risk-test", held_out))
    )
    gbdt = finished(
        ml_job(
            owner,
            project,
            "gbdt",
            "gbdt",
            {"num_round": 40, "max_depth": 4, "scale_pos_weight": "auto"},
            instances=2,
            train_data_path=data_path(train),
            test_data_path=data_path(test),
        )
    )
    metrics = json.loads(stored(f"ml/{gbdt.job_id}/evaluate/metrics.json"))
    assert metrics["samples"] == 1000 and metrics["auc"] > 0.85
    assert metrics["recall"] > 0.5  # the rare class is found, thanks to the weighting
    importance = stored(f"ml/{gbdt.job_id}/model/feature_importance").decode().splitlines()
    assert importance and float(importance[0].split()[0]) >= float(importance[-1].split()[0])
    assert b'"learner"' in stored(f"ml/{gbdt.job_id}/model/model.json")


def test_rapids_cuml_code_job_saves_models_with_pickle_and_joblib(owner, project):
    import pickle

    import joblib

    from apps.jobs.templates_code import available_templates

    job = finished(
        ml_job(
            owner,
            project,
            "cuml-xgboost",
            "rapids_cuml",
            {"code": available_templates()["rapids_xgboost"].code},
        )
    )
    model = pickle.loads(stored(f"ml/{job.job_id}/output/xgboost.pkl"))
    X, y = load_breast_cancer(return_X_y=True)
    assert (model.predict(X) == y).mean() > 0.9
    clusters = joblib.load(io.BytesIO(stored(f"ml/{job.job_id}/output/kmeans.joblib")))
    assert clusters.n_clusters == 2
    points = stored(f"ml/{job.job_id}/log/{job.job_id}-0.metrics.jsonl").decode().splitlines()
    assert len(points) == 60 and "loss" in json.loads(points[-1])
