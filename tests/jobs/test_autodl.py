"""AutoDL transfer learning jobs through the API and the job engine: a generated 3-class
zip of rendered shapes trains on the CPU, the model lands where the spec says, the job
page shows the data report and the confusion matrix, the release is filled in for the
spec's logits answer; data that breaks a rule fails before training, its report shown."""

import json
import re

import pytest
from django.test import Client

from apps.billing.models import ResourcePackage
from apps.jobs.models import Job, JobStatus
from apps.warehouse.models import ModelVersion
from tests.conftest import read_body
from tests.jobs.helpers import run_until, status_of, stored
from tests.jobs.test_machine_learning import put
from tests.workers.test_autodl_transfer import shapes_zip

OUT = "bos://jobs-out/autodl/"


@pytest.fixture
def api(owner, api_client_for):
    return api_client_for(owner)


def body(project, **overrides) -> dict:
    package = ResourcePackage.objects.get(module="train", name__startswith="CPU Instance_2")
    return {
        "name": "shapes",
        "project": project.pk,
        "kind": "autodl",
        "algorithm": "transfer_learning",
        "package": package.pk,
        "instances": 1,
        "output_path": OUT,
        "train_data_path": "bos://jobs-out/photos/shapes.zip",
        "params": {"epochs": 3, "image_size": 64, "batch_size": 16},
    } | overrides


def ended(job) -> Job:
    run_until(lambda: status_of(job) not in ("queued", "running", "staging"), "the job", 300)
    job.refresh_from_db()
    return job


@pytest.mark.parametrize(
    "change,field,words",
    [
        ({"instances": 2}, "instances", "1 to 1"),
        ({"params": {"epochs": 0}}, "epochs", "[1, 100]"),
        ({"params": {"validation_ratio": 0.9}}, "validation_ratio", "[0.05, 0.5]"),
        ({"params": {"backbone": "vgg"}}, "backbone", "efficientnet-lite0"),
        ({"train_data_path": ""}, "train_data_path", "required"),
    ],
)
def test_settings_are_refused_naming_the_rule(api, project, change, field, words):
    answer = api.post("/api/v1/jobs/", body(project, **change), format="json")
    assert answer.status_code == 400, answer.json()
    assert words in json.dumps(answer.json()[field]), answer.json()


def test_transfer_learning_on_rendered_shapes(owner, project, api, tmp_path):
    archive = shapes_zip(tmp_path / "shapes.zip", per_class=25)
    put(owner, project, "photos/shapes.zip", archive.read_bytes())
    answer = api.post("/api/v1/jobs/", body(project), format="json")
    assert answer.status_code == 201, answer.json()
    job = ended(Job.objects.get(job_id=answer.json()["job_id"]))
    assert job.status == JobStatus.SUCCEEDED, job.reason

    # The spec's .pth where it says, with what serving needs beside it.
    base = f"autodl/{job.job_id}"
    assert stored(f"{base}/model/model.pth")[:2] == b"PK"  # torch's zip format
    assert stored(f"{base}/model/labels.txt").decode().split() == ["circle", "square", "triangle"]
    info = json.loads(stored(f"{base}/model/model_info.json"))
    assert info["image_size"] == 64 and info["classes"] == ["circle", "square", "triangle"]
    curves = api.get(f"/api/v1/jobs/{job.job_id}/metrics/?shape=columns").json()[0]
    assert curves["columns"]["step"] == [1, 2, 3] and len(curves["columns"]["val_acc"]) == 3

    # The page: the data report with the split per class, and the confusion matrix.
    web = Client()
    web.force_login(owner)
    page = web.get(f"/jobs/{job.job_id}/").content.decode()
    assert "75 photos in 3 classes" in page
    assert '<tr data-class="circle"><td>circle</td><td>25</td><td>20</td><td>5</td></tr>' in page
    assert 'id="confusion"' in page and "Confusion matrix" in page
    sample = re.search(r'<img src="([^"]+/log/samples/[^"]+\.png)"', page).group(1)
    shown = web.get(sample)
    assert shown.status_code == 200
    assert read_body(shown)[:8] == b"\x89PNG\r\n\x1a\n"

    # Release: filled in for the spec's client answer ({"result": "[[logits]]"}).
    released = api.post(
        "/api/v1/models/release/", {"job_id": job.job_id, "name": "shapes"}, format="json"
    )
    assert released.status_code == 201, released.json()
    version = ModelVersion.objects.get(
        model_id=released.json()["model"], version=released.json()["version"]
    )
    assert version.model_type == "image_classification"
    assert version.fields == {"image_size": 64, "output": "logits"}


def test_data_breaking_a_rule_fails_before_training_with_its_report(owner, project, api, tmp_path):
    archive = shapes_zip(tmp_path / "few.zip", per_class=5)
    put(owner, project, "photos/few.zip", archive.read_bytes())
    answer = api.post(
        "/api/v1/jobs/",
        body(project, name="few", train_data_path="bos://jobs-out/photos/few.zip"),
        format="json",
    )
    job = ended(Job.objects.get(job_id=answer.json()["job_id"]))
    assert job.status == JobStatus.FAILED
    logs = "\n".join(log["text"] for log in api.get(f"/api/v1/jobs/{job.job_id}/logs/").json())
    assert "photos_per_class" in logs and "nothing was trained" in logs
    web = Client()
    web.force_login(owner)
    page = web.get(f"/jobs/{job.job_id}/").content.decode()
    assert 'data-rule="photos_per_class"' in page  # the report, read from the run's folder
