"""The machine learning job pages: the form per algorithm, errors naming the range,
results (folders, evaluation) on the details page, list filtered by kind, clone."""

import io
import re

import pytest
from django.test import Client

from apps.jobs.models import Job
from apps.storage import services as storage
from tests.jobs.helpers import package, run_until, status_of


@pytest.fixture
def web(owner, project):
    client = Client()
    client.force_login(owner)
    return client


def test_form_shows_the_algorithms_fields_and_names_the_range_on_error(web):
    kmeans = web.get("/jobs/new-ml/?algorithm=kmeans").content.decode()
    assert "Number of clusters" in kmeans and "DISTANCE_TANIMOTO" in kmeans
    assert "Output training set clustering results" in kmeans
    lr = web.get("/jobs/new-ml/?algorithm=logistic_regression").content.decode()
    assert "L1 regularization coefficient" in lr and "Evaluation data path" in lr
    bad = web.post(
        "/jobs/new-ml/",
        {
            "algorithm": "kmeans",
            "submit": "1",
            "name": "km",
            "k": "5000",
            "package": package().pk,
            "instances": "1",
            "time_limit_s": "60",
            "output_path": "bos://jobs-out/ml/",
            "train_data_path": "bos://jobs-out/std/",
        },
    ).content.decode()
    assert "[2, 3000]" in bad and 'value="5000"' in bad
    assert not Job.objects.exists()


def test_standardize_from_the_console_then_results_list_and_clone(web, owner, project):
    bucket = project.buckets.get(name="jobs-out")
    data = b",1,0.5,0.25\n,0,0.1,0.2\n"
    storage.upload_object(owner, bucket, "raw/d.csv", io.BytesIO(data), len(data))
    response = web.post(
        "/jobs/new-ml/",
        {
            "algorithm": "standardize",
            "submit": "1",
            "name": "std-console",
            "format": "DENSE",
            "type": "classification",
            "package": package().pk,
            "instances": "1",
            "time_limit_s": "120",
            "output_path": "bos://jobs-out/ml/",
            "train_data_path": "bos://jobs-out/raw/d.csv",
        },
    )
    job = Job.objects.get(name="std-console")
    assert response.status_code == 302 and response.url == f"/jobs/{job.job_id}/"
    run_until(lambda: status_of(job) not in ("queued", "running"), "standardization", 120)
    assert job.status == "succeeded", job.reason
    page = web.get(f"/jobs/{job.job_id}/").content.decode()
    assert f"prefix=ml/{job.job_id}/data/" in page
    # The output path opens in the storage browser; the navigation shows where the job lives.
    assert re.search(rf'id="output-link" href="/storage/jobs-out/\?prefix=ml/{job.job_id}/"', page)
    active = re.findall(r'class="active">([^<]+)</a>', page)
    assert active == ["Machine learning jobs"], active
    # A built-in algorithm: its parameters, no code box, no curves it never reports.
    assert "<h2>Parameters</h2>" in page and "<th>format</th><td>DENSE</td>" in page
    assert "<h2>Code</h2>" not in page and "Training curves" not in page
    listing = web.get("/jobs/?kind=machine_learning").content.decode()
    assert "std-console" in listing and "Data standardization" in listing
    assert "std-console" not in web.get("/jobs/?kind=deep_learning").content.decode()
    clone = web.get(f"/jobs/new-ml/?clone={job.job_id}").content.decode()
    assert 'value="std-console-clone"' in clone and "bos://jobs-out/raw/d.csv" in clone
