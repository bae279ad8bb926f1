"""Every component through the API and the job engine, in one run of one graph on a small
table with missing values, a text column and binary, numeric and cluster targets (the
components' own rules are tested row by row in tests/workers/test_visual_*.py)."""

import io

import numpy as np

from apps.datasets import services as datasets
from apps.datasets.models import Dataset
from apps.storage import services as storage
from tests.datasets.conftest import upload
from tests.visual.conftest import edge, node, wait_for_run

BASE = "/api/v1/visual-experiments/"
COLUMNS = [
    {"name": "age", "type": "int"},
    {"name": "income", "type": "float"},
    {"name": "city", "type": "string"},
    {"name": "score", "type": "float"},
    {"name": "zip", "type": "int"},
    {"name": "label", "type": "int"},
    {"name": "target", "type": "float"},
]


def people_csv(rows=80) -> bytes:
    rng = np.random.default_rng(3)
    lines = []
    for i in range(rows):
        age = int(rng.integers(20, 70))
        income = float(rng.normal(50, 15))
        score = float(rng.normal(0, 1)) + (3 if i % 2 else 0)
        city = ["north", "south", "east"][i % 3]
        label = int(score > 1.5)
        target = 2.0 * income + 0.5 * age + float(rng.normal(0, 1))
        shown_age = "" if i % 10 == 0 else str(age)  # missing values to fill
        lines.append(
            f"{shown_age},{income:.3f},{city},{score:.3f},{10000 + i},{label},{target:.3f}"
        )
    return ("\n".join(lines) + "\n").encode()


def test_every_component_runs_on_the_engine(owner, project, api):
    bucket = storage.create_bucket(owner, project, "people-data")
    data = people_csv()
    storage.upload_object(owner, bucket, "people.csv", io.BytesIO(data), len(data))
    dataset = datasets.create_dataset(owner, project, "people")
    upload(owner, dataset, "bos://people-data/people.csv", columns=COLUMNS, abnormal="fill")

    features = ["age", "income", "score"]
    graph = {
        "nodes": [
            node("data", "dataset", dataset=dataset.pk),
            node("fill", "missing_values", columns=["age"], strategy="mean"),
            node("cast", "type_cast", columns=["zip"], to="string"),
            node("filter", "filter_rows", expression="income > 0 and score > -10"),
            node("onehot", "one_hot", columns=["city"]),
            node("split", "split", ratio=0.7, seed=2, stratify="label"),
            node("norm", "normalize", columns=["income"]),
            node("lrb", "logistic_regression_binary", features=features, label="label"),
            node("pb", "predict"),
            node("eb", "evaluate_binary", label="label"),
            node("std", "standardize", columns=["score"]),
            node("lin", "linear_regression", features=["age", "income"], label="target"),
            node("pl", "predict"),
            node("er", "evaluate_regression", label="target"),
            node("gb", "gbdt", objective="binary", features=features, label="label"),
            node("pg", "predict"),
            node(
                "rf", "random_forest", task="regression", features=["age", "income"], label="target"
            ),
            node("km", "kmeans", k=2, features=["score"]),
            node("pk", "predict"),
            node("ec", "evaluate_clustering", features=["score"]),
            node("keep", "select_columns", columns=["age", "income", "label"], mode="keep"),
            node("write", "write_dataset", name="people_clean"),
        ],
        "edges": [
            edge("data", "table", "fill"),
            edge("fill", "table", "cast"),
            edge("cast", "table", "filter"),
            edge("filter", "table", "onehot"),
            edge("onehot", "table", "split"),
            edge("split", "train", "norm"),
            edge("norm", "table", "lrb"),
            edge("lrb", "model", "pb", "model"),
            edge("split", "test", "pb"),
            edge("pb", "table", "eb"),
            edge("split", "train", "std"),
            edge("std", "table", "lin"),
            edge("lin", "model", "pl", "model"),
            edge("split", "test", "pl"),
            edge("pl", "table", "er"),
            edge("split", "train", "gb"),
            edge("gb", "model", "pg", "model"),
            edge("split", "test", "pg"),
            edge("split", "train", "rf"),
            edge("onehot", "table", "km"),
            edge("km", "model", "pk", "model"),
            edge("onehot", "table", "pk"),
            edge("pk", "table", "ec"),
            edge("filter", "table", "keep"),
            edge("keep", "table", "write"),
        ],
    }
    eid = api.post(BASE, {"project": project.pk, "name": "everything"}, format="json").json()["id"]
    saved = api.put(f"{BASE}{eid}/graph/", {"graph": graph}, format="json")
    assert saved.status_code == 200, saved.content
    run = api.post(f"{BASE}{eid}/runs/", {}, format="json").json()
    done = wait_for_run(api, eid, run["number"], timeout=240)
    failed = {k: v["error"] for k, v in done["nodes"].items() if v["status"] != "succeeded"}
    assert done["status"] == "succeeded" and not failed, failed
    nodes = done["nodes"]

    def report(node_id):
        return api.get(f"{BASE}{eid}/runs/1/nodes/{node_id}/report/").json()

    assert report("eb")["metrics"]["auc"] > 0.9 and len(report("eb")["roc"]) >= 2
    assert report("er")["metrics"]["r2"] > 0.9
    assert report("ec")["metrics"]["silhouette"] > 0.5
    assert nodes["fill"]["outputs"]["table"]["stats"][0]["missing"] == 0
    onehot = [c["name"] for c in nodes["onehot"]["outputs"]["table"]["schema"]["columns"]]
    assert {"city_north", "city_south", "city_east"} <= set(onehot) and "city" not in onehot
    cast = {c["name"]: c["type"] for c in nodes["cast"]["outputs"]["table"]["schema"]["columns"]}
    assert cast["zip"] == "string"
    assert nodes["split"]["outputs"]["train"]["rows"] == 56
    written = Dataset.objects.get(project=project, name="people_clean")
    assert written.current_version.rows == 80
    assert [c["name"] for c in written.current_version.columns] == ["age", "income", "label"]
    page = api.get(f"/api/v1/datasets/{written.pk}/rows/?limit=3").json()
    assert len(page["rows"]) == 3
