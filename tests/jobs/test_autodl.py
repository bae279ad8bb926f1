"""AutoDL jobs through the API and the job engine. Transfer learning: a generated 3-class
zip of rendered shapes trains on the CPU, the model lands where the spec says, the job
page shows the data report and the confusion matrix, the release is filled in for the
spec's logits answer; data that breaks a rule fails before training, its report shown.
ENAS: a tiny search on photos big enough for the spec's rules writes the Keras HDF5 where
the spec says, its page shows the search, and the released model, deployed, answers the
spec's own client."""

import json
import re

import pytest
from django.test import Client
from django.utils.html import escape

from apps.billing.models import ResourcePackage
from apps.jobs.models import Job, JobStatus
from apps.warehouse.models import ModelVersion
from tests.conftest import read_body
from tests.jobs.helpers import run_until, status_of, stored
from tests.jobs.test_machine_learning import put
from tests.serving.conftest import stack  # noqa: F401 - the serving side, for ENAS's service
from tests.workers.test_autodl_enas import TINY, enas_photos_zip
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


@pytest.mark.parametrize(
    "params,field,words",
    [
        ({"image_size": 30}, "image_size", "multiple of 4"),
        ({"layers": 1}, "layers", "[2, 12]"),
        ({"random_baselines": 11}, "random_baselines", "[0, 10]"),
        ({"search_rounds": "many"}, "search_rounds", "whole number in [1, 100]"),
    ],
)
def test_enas_settings_are_refused_naming_the_rule(api, project, params, field, words):
    answer = api.post(
        "/api/v1/jobs/", body(project, algorithm="enas", params=params), format="json"
    )
    assert answer.status_code == 400, answer.json()
    assert words in json.dumps(answer.json()[field]), answer.json()


def test_the_console_form_offers_enas_with_its_settings(owner):
    web = Client()
    web.force_login(owner)
    page = web.get("/jobs/new-autodl/?algorithm=enas").content.decode()
    assert "Image sorting - ENAS" in page and "Image sorting - transfer learning" in page
    for name in ("search_rounds", "controller_steps", "final_epochs", "random_baselines"):
        assert f'name="{name}"' in page


@pytest.mark.django_db(transaction=True)
def test_transfer_learning_on_rendered_shapes(owner, project, api, tmp_path, request):
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
    # Deployed, it answers the spec's own client with one logit per class.
    assert len(spec_client_scores(owner, project, version, tmp_path, request)) == 3


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


@pytest.mark.django_db(transaction=True)
def test_enas_searches_trains_releases_and_serves_the_spec_client(
    owner, project, api, tmp_path, request
):
    archive = enas_photos_zip(tmp_path / "big.zip")
    put(owner, project, "photos/big.zip", archive.read_bytes())
    settings = {k: v for k, v in TINY.items() if k != "seed"}
    answer = api.post(
        "/api/v1/jobs/",
        body(
            project,
            name="enas",
            algorithm="enas",
            train_data_path="bos://jobs-out/photos/big.zip",
            params=settings,
        ),
        format="json",
    )
    assert answer.status_code == 201, answer.json()
    job = ended(Job.objects.get(job_id=answer.json()["job_id"]))
    assert job.status == JobStatus.SUCCEEDED, job.reason

    # The spec: "a model in keras HDF5 format" under <output>/<job_id>/model/.
    base = f"autodl/{job.job_id}"
    assert stored(f"{base}/model/model.h5")[:8] == b"\x89HDF\r\n\x1a\n"
    assert stored(f"{base}/model/labels.txt").decode().split() == ["circle", "square", "triangle"]
    search = api.get(f"/api/v1/jobs/{job.job_id}/architecture/").json()
    assert search["stage"] == "done" and len(search["rounds"]) == TINY["search_rounds"]
    assert search["best"]["graph"]["nodes"] and search["fairness"] is not None
    curves = api.get(f"/api/v1/jobs/{job.job_id}/metrics/?shape=columns").json()[0]["columns"]
    rewards = [v for v in curves["controller_reward"] if v is not None]  # rows: rounds, epochs
    assert len(rewards) == TINY["search_rounds"]

    web = Client()
    web.force_login(owner)
    page = web.get(f"/jobs/{job.job_id}/").content.decode()
    assert "150 photos in 3 classes" in page and 'id="enas-final"' in page
    assert '<tr data-name="ENAS">' in page and '<tr data-name="random 1">' in page
    assert escape(search["best"]["describe"]) in page

    released = api.post(
        "/api/v1/models/release/", {"job_id": job.job_id, "name": "enas"}, format="json"
    )
    assert released.status_code == 201, released.json()
    version = ModelVersion.objects.get(
        model_id=released.json()["model"], version=released.json()["version"]
    )
    assert version.model_type == "keras" and version.fields == {"output": "logits"}

    assert len(spec_client_scores(owner, project, version, tmp_path, request)) == 3


def spec_client_scores(owner, project, version, tmp_path, request) -> list[float]:
    """The released version deployed (the serving side started once the job is done), the
    spec's client run with the address the service page shows: the one image's logits."""
    from PIL import Image

    from apps.serving import services as serving
    from tests.serving.conftest import wait_running
    from tests.serving.test_spec_client import run_client

    serving_stack = request.getfixturevalue("stack")
    service = serving.create_service(
        owner, project, name=version.model.name, version=serving.VersionConfig(1, version)
    )
    wait_running(service)
    Image.new("RGB", (40, 30), (200, 80, 20)).save(tmp_path / "aaa.jpg")  # the spec's IMAGE_PATH
    web = Client()
    web.force_login(owner)
    page = web.get(f"/services/{service.pk}/").content.decode()
    copied = re.search(r'id="client-url"[^>]*value="([^"]+)"', page).group(1)
    endpoint_url = re.sub(r"^http://[^/]+", f"http://127.0.0.1:{serving_stack.port}", copied)
    result = json.loads(run_client(tmp_path, endpoint_url))
    (scores,) = json.loads(result["result"])
    return scores
