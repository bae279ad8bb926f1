"""The data set API: create, two-step upload, rows, statistics, parquet, errors, delete."""

import io

import pyarrow.parquet as pq
import pytest

from apps.datasets.models import Dataset, DatasetStatus
from apps.projects import services as projects
from apps.storage import services as storage
from apps.storage.client import get_client
from tests.conftest import read_body
from tests.datasets.conftest import IRIS, IRIS_COLUMNS
from tests.jobs.helpers import run_until


@pytest.fixture
def api(owner, api_client_for):
    return api_client_for(owner)


def test_create_upload_in_two_steps_then_read_it_back(api, project, put):
    source = put("data/iris.csv", IRIS)
    created = api.post("/api/v1/datasets/", {"project": project.pk, "name": "iris"}, format="json")
    assert created.status_code == 201, created.json()
    ds = created.json()
    assert ds["storage_path"] == "bos://ds-data/datasets/iris/" and ds["status"] == "empty"

    preview = api.post(f"/api/v1/datasets/{ds['id']}/preview/", {"source": source}, format="json")
    assert preview.status_code == 200, preview.json()
    assert len(preview.json()["columns"]) == 5

    started = api.post(
        f"/api/v1/datasets/{ds['id']}/versions/",
        {"source": source, "mode": "replace", "columns": IRIS_COLUMNS},
        format="json",
    )
    assert started.status_code == 202, started.json()
    assert started.json()["status"] == "processing"
    run_until(
        lambda: api.get(f"/api/v1/datasets/{ds['id']}/").json()["status"] != "processing",
        "conversion",
        timeout=90,
    )
    detail = api.get(f"/api/v1/datasets/{ds['id']}/").json()
    assert detail["status"] == "succeeded" and detail["rows"] == 150

    rows = api.get(f"/api/v1/datasets/{ds['id']}/rows/?offset=0&limit=3").json()
    assert rows["total"] == 150 and rows["rows"][0] == [5.1, 3.5, 1.4, 0.2, "Iris-setosa"]
    stats = api.get(f"/api/v1/datasets/{ds['id']}/statistics/").json()
    assert [c["name"] for c in stats["columns"]][-1] == "species"

    parts = api.get(f"/api/v1/datasets/{ds['id']}/parquet/").json()["parts"]
    body = read_body(api.get(f"/api/v1/datasets/{ds['id']}/parquet/?part=0"))
    assert len(parts) >= 1 and pq.read_table(io.BytesIO(body)).num_rows == 150
    for beyond in (len(parts), -1):  # parts count from 0, never from the end
        assert api.get(f"/api/v1/datasets/{ds['id']}/parquet/?part={beyond}").status_code == 404

    listed = api.get(f"/api/v1/datasets/?project={project.pk}").json()["results"]
    assert [d["name"] for d in listed] == ["iris"]
    versions = api.get(f"/api/v1/datasets/{ds['id']}/versions/").json()
    assert versions[0]["status"] == "succeeded" and versions[0]["job_id"].startswith("job-")
    # the conversion is a job of its own kind, not one of the user's jobs
    assert api.get("/api/v1/jobs/").json()["results"] == []


@pytest.mark.parametrize(
    "body, field",
    [
        ({"name": "1starts-with-digit"}, "name"),
        ({"name": "has space"}, "name"),
        ({"name": "ok", "storage_path": "bos://not-mine-at-all/x/"}, "storage_path"),
        ({"name": "ok", "storage_path": "s3://ds-data/x/"}, "storage_path"),
    ],
)
def test_bad_create_input_is_a_400_naming_the_field(api, project, bucket, body, field):
    response = api.post("/api/v1/datasets/", {"project": project.pk, **body}, format="json")
    assert response.status_code == 400 and field in response.json(), response.json()
    assert not Dataset.objects.exists()


def test_bad_upload_input_is_a_400_naming_the_field(api, owner, project, dataset, put, make_user):
    url = f"/api/v1/datasets/{dataset.pk}/"
    put("data/x.json", b"{}")
    other = make_user()
    other_project = projects.ensure_default_project(other)
    other_bucket = storage.create_bucket(other, other_project, "theirs")
    storage.upload_object(other, other_bucket, "t.csv", io.BytesIO(b"1\n"), 2)
    cases = [
        ({"source": "bos://ds-data/data/x.json"}, "source", "csv, tsv and txt"),
        ({"source": "bos://ds-data/nothing-here.csv"}, "source", "does not exist"),
        ({"source": "bos://theirs/t.csv"}, "source", "No bucket of yours"),
        ({"source": "bos://ds-data/data/x.json", "separator": ",,"}, "separator", "one char"),
        ({"source": "bos://ds-data/data/x.json", "encoding": "ebcdic"}, "encoding", "one of"),
    ]
    for body, field, words in cases:
        response = api.post(url + "preview/", body, format="json")
        assert response.status_code == 400, (body, response.json())
        assert words in str(response.json()[field]), response.json()
    malformed = api.post(url + "versions/", "{not json", content_type="application/json")
    assert malformed.status_code == 400
    missing_columns = api.post(url + "versions/", {"source": "bos://ds-data/x.csv"}, format="json")
    assert missing_columns.status_code == 400 and "columns" in missing_columns.json()
    assert dataset.versions.count() == 0


def test_a_first_line_of_32768_columns_is_a_400_naming_the_limit(api, dataset, put):
    from workers.runners.table_preview import suggest_names

    url = f"/api/v1/datasets/{dataset.pk}/preview/"
    wide = b",".join([b"a"] * 32768) + b"\n" + b",".join([b"1"] * 32768) + b"\n"
    response = api.post(url, {"source": put("data/wide.csv", wide)}, format="json")
    assert response.status_code == 400, response.json()
    assert "32,768 fields: a table has at most 4,096 columns" in response.json()["source"][0]
    # Up to the limit, a header of one name repeated gets unique names (one step each).
    header = b",".join([b"a"] * 4096) + b"\n" + b",".join([b"1"] * 4096) + b"\n"
    body = {"source": put("data/header.csv", header), "header": True}
    columns = api.post(url, body, format="json").json()["columns"]
    assert [c["suggested_name"] for c in columns[:3]] == ["a", "a_2", "a_3"]
    assert len({c["suggested_name"] for c in columns}) == 4096
    names = suggest_names(["a"] * 32768 + ["a_2", "A"])
    assert len(set(names)) == len(names) and names[-2:] == ["a_2_2", "A_32769"]


def test_a_data_set_without_data_reads_as_empty(api, dataset):
    url = f"/api/v1/datasets/{dataset.pk}/"
    assert api.get(url + "rows/").json()["rows"] == []
    assert api.get(url + "statistics/").json()["columns"] == []
    assert api.get(url + "parquet/").json()["parts"] == []
    assert api.get(url + "rows/?version=7").status_code == 404
    assert api.get(url + "rows/?offset=x").status_code == 400


def test_delete_removes_the_data_set_and_its_parquet_files(api, owner, dataset, put):
    from tests.datasets.conftest import upload

    version = upload(owner, dataset, put("data/iris.csv", IRIS))
    assert version.status == DatasetStatus.SUCCEEDED
    assert api.delete(f"/api/v1/datasets/{dataset.pk}/").status_code == 204
    assert not Dataset.objects.filter(pk=dataset.pk).exists()
    left = [o.object_name for o in get_client().list_objects("ds-data", recursive=True)]
    assert left == ["data/iris.csv"]  # the user's source stays; the version folders are gone
