"""Fixtures of the visual modeling tests: a user and project, the public iris data set, and
the scheduler driven in-process (every node is a real job under workers.supervise)."""

import pytest

from apps.datasets.models import Dataset
from apps.datasets.public import seed_public_datasets
from apps.projects.models import Project
from apps.visual.models import RunStatus
from tests.jobs.helpers import run_until
from workers import devices

IRIS_FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]


@pytest.fixture
def owner(make_user):
    return make_user()


@pytest.fixture
def project(owner):
    devices.sync_inventory()
    return Project.objects.get(owner=owner)


@pytest.fixture
def iris(db):
    seed_public_datasets()
    return Dataset.objects.get(name="iris", is_public=True)


@pytest.fixture
def api(owner, api_client_for):
    return api_client_for(owner)


def node(node_id, component, x=0, **params):
    return {"id": node_id, "component": component, "x": x, "y": 0, "params": params}


def edge(source, source_port, target, target_port="table"):
    return {"from": source, "from_port": source_port, "to": target, "to_port": target_port}


def iris_graph(iris_id, C=1.0):
    """The issue's pipeline: iris -> split -> logistic regression -> prediction -> evaluation."""
    return {
        "nodes": [
            node("data", "dataset", dataset=iris_id),
            node("split", "split", ratio=0.7, seed=1, stratify="species"),
            node(
                "lr",
                "logistic_regression_multiclass",
                features=IRIS_FEATURES,
                label="species",
                C=C,
            ),
            node("predict", "predict"),
            node("eval", "evaluate_multiclass", label="species"),
        ],
        "edges": [
            edge("data", "table", "split"),
            edge("split", "train", "lr"),
            edge("lr", "model", "predict", "model"),
            edge("split", "test", "predict"),
            edge("predict", "table", "eval"),
        ],
    }


def wait_for_run(api, experiment_id, number, timeout=120):
    url = f"/api/v1/visual-experiments/{experiment_id}/runs/{number}/"

    def ended():
        return api.get(url).json()["status"] != RunStatus.RUNNING

    run_until(ended, f"run {number} to end", timeout=timeout)
    return api.get(url).json()
