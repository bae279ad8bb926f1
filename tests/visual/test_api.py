"""Visual modeling through the API: graphs saved and refused, runs on the job engine with
cached nodes, data, reports, logs, history compare, clear data and release."""

from pathlib import Path

import pytest

from apps.jobs.models import Job
from apps.visual.models import NodeRun
from apps.warehouse.models import ModelVersion
from tests.conftest import wait_until
from tests.jobs.helpers import run_until
from tests.visual.conftest import edge, iris_graph, node, wait_for_run
from workers import sandbox, warm_starts
from workers.runners.visual import views

BASE = "/api/v1/visual-experiments/"


def create(api, project, name="iris_flow", graph=None):
    response = api.post(BASE, {"project": project.pk, "name": name}, format="json")
    assert response.status_code == 201, response.content
    experiment = response.json()
    if graph is not None:
        saved = api.put(f"{BASE}{experiment['id']}/graph/", {"graph": graph}, format="json")
        assert saved.status_code == 200, saved.content
    return experiment


def message(response, field="graph") -> str:
    value = response.json()[field]
    return " ".join(value) if isinstance(value, list) else value


def start(api, experiment_id, **body):
    response = api.post(f"{BASE}{experiment_id}/runs/", body, format="json")
    assert response.status_code == 201, response.content
    return response.json()


@pytest.fixture
def warm_starts_stopped():
    """Warm starts this test makes end with it (they are detached processes)."""
    yield
    warm_starts.stop_all()


def test_iris_pipeline_runs_caches_compares_and_releases(api, project, iris, warm_starts_stopped):
    experiment = create(api, project, graph=iris_graph(iris.pk, C=1.0))
    eid = experiment["id"]

    first = wait_for_run(api, eid, start(api, eid)["number"])
    assert first["status"] == "succeeded", (first["reason"], first["nodes"])
    assert {n: v["status"] for n, v in first["nodes"].items()} == {
        "data": "succeeded",
        "split": "succeeded",
        "lr": "succeeded",
        "predict": "succeeded",
        "eval": "succeeded",
    }
    assert first["nodes"]["split"]["outputs"]["train"]["rows"] == 105
    assert first["releasable"] == ["lr"]

    report = api.get(f"{BASE}{eid}/runs/1/nodes/eval/report/").json()
    assert report["task"] == "multiclass" and report["metrics"]["accuracy"] > 0.85
    assert sum(map(sum, report["confusion"])) == 45
    page = api.get(f"{BASE}{eid}/runs/1/nodes/predict/data/?limit=5").json()
    names = [c["name"] for c in page["columns"]]
    assert "prediction_result" in names and len(page["rows"]) == 5 and page["total"] == 45
    test_page = api.get(f"{BASE}{eid}/runs/1/nodes/split/data/?port=test&offset=40").json()
    assert len(test_page["rows"]) == 5
    # The split's sets and the predictions are stored as views of the data set (a bit per
    # row; the prediction columns alone), and their pages are its rows, each in one set.
    split = NodeRun.objects.get(run__experiment_id=eid, run__number=1, node_id="split")
    data = NodeRun.objects.get(run__experiment_id=eid, run__number=1, node_id="data")
    predict = NodeRun.objects.get(run__experiment_id=eid, run__number=1, node_id="predict")
    assert split.outputs["train"]["view"] and predict.outputs["table"]["view"]
    assert split.outputs["test"]["base"] == {"node_run": data.pk, "port": "table"}
    assert predict.outputs["table"]["base"] == {"node_run": data.pk, "port": "table"}

    def rows(node, port, limit=150):
        url = f"{BASE}{eid}/runs/1/nodes/{node}/data/?port={port}&limit={limit}"
        return [tuple(row) for row in api.get(url).json()["rows"]]

    train, test = rows("split", "train"), rows("split", "test")
    assert sorted(train + test) == sorted(rows("data", "table"))
    assert [row[:5] for row in rows("predict", "table")] == test
    assert rows("split", "test", limit=5) == test[:5]
    log = api.get(f"{BASE}{eid}/runs/1/nodes/lr/log/").json()["text"]
    assert "Logistic regression (multiclass)" in log and "done in" in log
    assert "[bml] staged in" in log  # the job's own lines: the data set's parts

    # The project now keeps a warm start (workers.warm_starts): its code started, waiting.
    warm_starts.ensure(force=True)
    warm = warm_starts.unclaimed()
    if sandbox.active():
        assert [warm_starts._project_of(f) for f in warm] == [project.pk]
        wait_until(lambda: warm_starts.ready(warm[0]), 60, 0.1, "the warm start's imports")

    # Only the changed node and those below it run again.
    changed = iris_graph(iris.pk, C=0.05)
    assert api.put(f"{BASE}{eid}/graph/", {"graph": changed}, format="json").status_code == 200
    second = wait_for_run(api, eid, start(api, eid)["number"])
    statuses = {n: v["status"] for n, v in second["nodes"].items()}
    assert statuses["split"] == "cached" and second["nodes"]["split"]["cached_from_run"] == 1
    assert [statuses[n] for n in ("lr", "predict", "eval")] == ["succeeded"] * 3
    assert second["nodes"]["split"]["job_id"] == first["nodes"]["split"]["job_id"]
    assert second["nodes"]["lr"]["job_id"] != first["nodes"]["lr"]["job_id"]
    # One process ran the three (tables in memory); the split's cached output came from
    # its workspace on this host, not back from the store.
    assert len({second["nodes"][n]["job_id"] for n in ("lr", "predict", "eval")}) == 1
    log = api.get(f"{BASE}{eid}/runs/2/nodes/lr/log/").json()["text"]
    if sandbox.active():  # ran in the warm start, its inputs linked and shown read-only
        assert "the run was handed to its warm start" in log
        assert "linked read-only from this host" in log
        job = Job.objects.get(job_id=second["nodes"]["lr"]["job_id"])
        assert Path(job.runs.get().run_dir) == warm[0]
    else:
        assert "copied from this host" in log

    compared = api.get(f"{BASE}{eid}/compare/?a=1&b=2").json()
    rows = {row["node_id"]: row for row in compared["nodes"]}
    assert rows["lr"]["changed"] and not rows["split"]["changed"]
    assert rows["lr"]["params_a"]["C"] == 1.0 and rows["lr"]["params_b"]["C"] == 0.05
    assert rows["eval"]["metrics_a"]["accuracy"] != rows["eval"]["metrics_b"]["accuracy"] or (
        rows["eval"]["metrics_b"]["accuracy"] > 0
    )

    # "Execute this node" forces a rerun even though nothing changed.
    third = wait_for_run(api, eid, start(api, eid, mode="node", node="split")["number"])
    assert set(third["nodes"]) == {"data", "split"}
    assert third["nodes"]["split"]["status"] == "succeeded"

    released = api.post(f"{BASE}{eid}/release/", {"name": "iris-visual"}, format="json")
    assert released.status_code == 400 and "prediction" in message(released, "release")
    fourth = wait_for_run(api, eid, start(api, eid)["number"])
    assert fourth["status"] == "succeeded" and fourth["releasable"] == ["lr"]
    released = api.post(f"{BASE}{eid}/release/", {"name": "iris-visual"}, format="json")
    assert released.status_code == 201, released.content
    version = ModelVersion.objects.get(model__name="iris-visual")
    assert (released.json()["model_id"], released.json()["version"]) == (version.model_id, 1)
    assert version.model_type == "bml_visual"
    assert version.lineage["experiment"]["name"] == "iris_flow"
    assert version.info["columns"] == ["sepal_length", "sepal_width", "petal_length", "petal_width"]

    # Large views keep their rows on this host (not at iris' size: one is put there); clear
    # data counts and removes them with the stored results.
    kept = Path(Job.objects.get(job_id=first["nodes"]["split"]["job_id"]).runs.get().run_dir)
    kept = kept / "workspace" / views.HOST_COPIES_DIR / "split" / "train"
    kept.mkdir(parents=True)
    (kept / views.HOST_COPY).write_bytes(b"x" * 50_000)
    size = api.get(f"{BASE}{eid}/clear/").json()
    assert size["runs"] == 4 and size["bytes"] > 51_000
    assert api.post(f"{BASE}{eid}/clear/").json()["bytes"] == size["bytes"]
    assert not kept.exists()
    assert api.get(f"{BASE}{eid}/runs/1/nodes/predict/data/").status_code == 410
    assert api.get(f"{BASE}{eid}/runs/").json()[0]["cleared"] is True


def test_bad_graphs_are_refused_naming_the_node_and_rule(api, project, iris, make_user):
    eid = create(api, project)["id"]

    def save(graph):
        return api.put(f"{BASE}{eid}/graph/", {"graph": graph}, format="json")

    cycle = {
        "nodes": [node("a", "standardize", columns=["x"]), node("b", "normalize", columns=["x"])],
        "edges": [edge("a", "table", "b"), edge("b", "table", "a")],
    }
    refused = save(cycle)
    assert refused.status_code == 400 and "cycle" in message(refused)
    assert "(a)" in message(refused) or "(b)" in message(refused)

    dangling = {"nodes": [node("s", "split")], "edges": []}
    refused = save(dangling)
    assert refused.status_code == 400
    assert "node 'Split' (s)" in message(refused) and "dangling" in message(refused)

    wrong_kind = {
        "nodes": [node("d", "dataset", dataset=iris.pk), node("p", "predict")],
        "edges": [edge("d", "table", "p", "model")],
    }
    refused = save(wrong_kind)
    assert refused.status_code == 400 and "takes a model" in message(refused)

    # A string column to standardize: saved (the canvas keeps work in progress), refused at
    # run and by the check, naming the node and the rule.
    wrong_type = {
        "nodes": [
            node("d", "dataset", dataset=iris.pk),
            node("z", "standardize", columns=["species"]),
        ],
        "edges": [edge("d", "table", "z")],
    }
    assert save(wrong_type).status_code == 200
    checked = api.post(f"{BASE}{eid}/check/", {"graph": wrong_type}, format="json").json()
    assert checked["errors"][0]["node"] == "z" and "species" in checked["errors"][0]["rule"]
    assert [c["name"] for c in checked["nodes"]["z"]["inputs"]["table"]["columns"]][-1] == "species"
    refused = api.post(f"{BASE}{eid}/runs/", {}, format="json")
    assert refused.status_code == 400
    text = message(refused)
    assert "(z)" in text and "'species' is string" in text

    # Another project's data set is a 404, as everywhere.
    stranger = make_user()
    from apps.datasets import services as datasets

    theirs = datasets.create_dataset(stranger, stranger.owned_projects.first(), "theirs")
    foreign = {"nodes": [node("d", "dataset", dataset=theirs.pk)], "edges": []}
    assert save(foreign).status_code == 404
    assert api.post(f"{BASE}{eid}/check/", {"graph": foreign}, format="json").status_code == 404


def test_sample_run_copy_cancel_and_delete(api, project, iris):
    graph = iris_graph(iris.pk)
    eid = create(api, project, graph=graph)["id"]
    # The first 120 rows: iris is sorted by species, so the last class is short (20).
    sample = wait_for_run(api, eid, start(api, eid, mode="sample", sample_rows=120)["number"])
    assert sample["status"] == "succeeded", sample["reason"]
    assert sample["nodes"]["split"]["outputs"]["train"]["rows"] == 84

    original = api.get(f"{BASE}{eid}/").json()
    copied = api.post(f"{BASE}{eid}/copy/", {}, format="json").json()
    assert copied["name"] == "iris_flow_copy" and copied["graph"] == original["graph"]
    assert [n["params"] for n in copied["graph"]["nodes"]] == [n["params"] for n in graph["nodes"]]
    assert api.get(f"{BASE}{copied['id']}/runs/").json() == []

    running = start(api, eid)
    cancelled = api.post(f"{BASE}{eid}/runs/{running['number']}/cancel/").json()
    assert cancelled["status"] == "cancelled"
    ended = wait_for_run(api, eid, running["number"])
    assert all(n["status"] in ("succeeded", "cached", "cancelled") for n in ended["nodes"].values())
    assert api.delete(f"{BASE}{eid}/").status_code == 204
    assert api.get(f"{BASE}{eid}/").status_code == 404
    run_until(lambda: not Job.objects.filter(kind="visual").exists(), "node jobs to go")
