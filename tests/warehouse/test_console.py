"""The warehouse pages: import with an upload, the list, a model's versions, a version's
details, edit tags and description, delete; a refused import keeps the form."""

import io

import pytest
from django.test import Client

from apps.warehouse.models import Model
from tests.warehouse.conftest import iris_joblib


@pytest.fixture
def web(owner, project):
    client = Client()
    client.force_login(owner)
    return client


def test_import_then_browse_edit_and_delete(web, project):
    upload = io.BytesIO(iris_joblib())
    upload.name = "iris.joblib"
    response = web.post(
        "/models/import/",
        {"method": "new", "name": "iris", "model_type": "sklearn", "tags": "demo, iris",
         "fields": "{}", "file": upload},
    )  # fmt: skip
    model = Model.objects.get(name="iris")
    assert response.status_code == 302 and response.url == f"/models/{model.pk}/versions/1/"
    version_page = web.get(response.url).content.decode()
    assert "scikit-learn" in version_page and "upload: iris.joblib" in version_page
    assert "prefer skops" in version_page  # the pickle warning is shown
    listing = web.get("/models/").content.decode()
    assert 'data-model="iris"' in listing and ">demo<" in listing
    web.post(f"/models/{model.pk}/edit/", {"tags": "prod", "description": "the best"})
    detail = web.get(f"/models/{model.pk}/").content.decode()
    assert ">prod<" in detail and "the best" in detail and 'data-version="1"' in detail
    web.post(f"/models/{model.pk}/delete/")
    assert not Model.objects.exists()


def test_a_refused_import_keeps_the_form_and_says_why(web, project):
    upload = io.BytesIO(b"not a model")
    upload.name = "junk.joblib"
    page = web.post(
        "/models/import/",
        {"method": "new", "name": "junk", "model_type": "sklearn", "fields": "{}", "file": upload},
    ).content.decode()
    assert "does not load as sklearn" in page and 'value="junk"' in page
    assert not Model.objects.exists()


def test_release_from_the_job_page(web, owner, project, bucket):
    from tests.jobs.helpers import run_until, status_of, submit_template
    from workers import devices

    devices.sync_inventory()
    job = submit_template(owner, project, "sklearn_digits", "forest", "bos://wh-src/jobs/")
    run_until(lambda: status_of(job) not in ("queued", "running"), "the job", timeout=180)
    assert "Release to the model warehouse" in web.get(f"/jobs/{job.job_id}/").content.decode()
    response = web.post(
        f"/models/release/{job.job_id}/",
        {"name": "forest", "model_type": "sklearn", "subpath": "output/model.joblib"},
    )
    model = Model.objects.get(name="forest")
    assert response.url == f"/models/{model.pk}/versions/1/"
    page = web.get(response.url).content.decode()
    assert "Released from a job" in page and job.job_id in page
