"""The data set pages, server-rendered: list, create, the two upload steps, details tabs."""

import json
import re

import pytest
from django.test import Client

from apps.datasets.models import Dataset, DatasetStatus
from tests.datasets.conftest import IRIS
from tests.jobs.helpers import run_until


@pytest.fixture
def web(owner):
    client = Client()
    client.force_login(owner)
    return client


def test_create_upload_and_see_the_three_tabs(web, owner, put):
    source = put("data/iris.csv", IRIS)
    response = web.post("/datasets/new/", {"name": "iris_flowers"})
    dataset = Dataset.objects.get(name="iris_flowers")
    assert response.status_code == 302 and response.url == f"/datasets/{dataset.pk}/upload/"

    step1 = {"source": source, "separator": ",", "header": "0", "encoding": "utf-8"}
    step2 = web.post(
        f"/datasets/{dataset.pk}/upload/", {**step1, "mode": "replace", "step": "preview"}
    )
    page = step2.content.decode()
    assert step2.status_code == 200 and "Preprocessing" in page and "Iris-setosa" in page
    names = ["sepal_length", "sepal_width", "petal_length", "petal_width", "species"]
    confirm = {**step1, "mode": "replace", "step": "confirm", "abnormal": "skip"}
    confirm["column_count"] = "5"
    for i, name in enumerate(names):
        confirm[f"col_name_{i}"] = name
        confirm[f"col_type_{i}"] = "string" if name == "species" else "float"
    done = web.post(f"/datasets/{dataset.pk}/upload/", confirm)
    assert done.status_code == 302 and done.url == f"/datasets/{dataset.pk}/"

    def converted():
        dataset.refresh_from_db()
        return dataset.status != DatasetStatus.PROCESSING

    run_until(converted, "conversion", timeout=90)
    assert dataset.status == DatasetStatus.SUCCEEDED
    info = web.get(f"/datasets/{dataset.pk}/").content.decode()
    assert "150 rows" in info and "current" in info
    raw = web.get(f"/datasets/{dataset.pk}/?tab=raw&page=3").content.decode()
    assert "Rows 101–150 of 150" in raw and "Iris-virginica" in raw
    stats = web.get(f"/datasets/{dataset.pk}/?tab=stats").content.decode()
    assert 'aria-label="histogram of sepal_length"' in stats and "Iris-versicolor" in stats
    # The histograms are drawn in the browser (BMLCharts) from the bins the page carries.
    bins = re.search(
        r'<figure class="histogram" data-column="sepal_length"[^>]*>'
        r'<script type="application/json">(.*?)</script>',
        stats,
    )
    assert bins and sum(json.loads(bins.group(1))["counts"]) == 150
    assert len(json.loads(bins.group(1))["edges"]) == len(json.loads(bins.group(1))["counts"]) + 1
    assert "<svg" not in stats and "bml/charts.js" in stats
    # A wide statistics table scrolls in its own box instead of losing its last columns.
    assert '<div class="table-scroll" id="statistics-scroll"' in stats
    assert stats.index('id="statistics-scroll"') < stats.index('id="statistics"')
    listing = web.get("/datasets/").content.decode()
    assert 'data-dataset="iris_flowers"' in listing and ">150<" in listing
    # The conversion's own page: its log, but neither training curves nor code.
    job = dataset.versions.get().job
    conversion = web.get(f"/jobs/{job.job_id}/").content.decode()
    assert 'id="logs"' in conversion
    assert 'id="curves"' not in conversion and "Training curves" not in conversion


def test_step_errors_keep_the_input_and_name_the_rule(web, dataset, put):
    source = put("data/iris.csv", IRIS)
    bad = web.post(
        f"/datasets/{dataset.pk}/upload/",
        {"source": "bos://ds-data/missing.csv", "separator": ",", "step": "preview"},
    )
    assert "does not exist" in bad.content.decode() and "missing.csv" in bad.content.decode()
    confirm = {"source": source, "separator": ",", "step": "confirm", "mode": "replace"}
    confirm.update(column_count="5", abnormal="skip")
    for i in range(5):
        confirm[f"col_name_{i}"], confirm[f"col_type_{i}"] = "same", "float"
    page = web.post(f"/datasets/{dataset.pk}/upload/", confirm).content.decode()
    assert "same" in page and "Preprocessing" in page
    assert dataset.versions.count() == 0


def test_public_data_sets_tab(web, db):
    from apps.datasets.public import seed_public_datasets

    seed_public_datasets()
    page = web.get("/datasets/?tab=public").content.decode()
    assert 'data-dataset="iris"' in page and 'data-dataset="boston_housing"' in page
    iris = Dataset.objects.get(name="iris", is_public=True)
    assert web.get(f"/datasets/{iris.pk}/upload/").status_code == 403
    assert "sepal_length" in web.get(f"/datasets/{iris.pk}/?tab=stats").content.decode()


def test_a_column_count_that_is_not_one_reads_as_no_columns():
    from django.http import QueryDict

    from apps.datasets.views import _columns_from_post

    rows = "col_name_0=a&col_type_0=int&col_name_1=b&col_type_1=string"
    assert [c["name"] for c in _columns_from_post(QueryDict(f"column_count=2&{rows}"))] == [
        "a",
        "b",
    ]
    for count in ("abc", "1.5", "\u00b2", "99999999999999999999", "1000000"):
        assert _columns_from_post(QueryDict(f"column_count={count}&{rows}")) == [], count
