"""The model warehouse: imports validated by loading, versions, release from a job,
edits and deletes that leave no orphans, through services and the API."""

import io
import json

import pytest
import xgboost as xgb
from django.core.exceptions import ValidationError
from sklearn.datasets import load_breast_cancer

from apps.storage.client import get_client
from apps.warehouse import services
from apps.warehouse.models import Model, ModelVersion
from tests.warehouse.conftest import iris_joblib


def objects(bucket: str, prefix: str = "") -> list[str]:
    client = get_client()
    if not client.bucket_exists(bucket):
        return []
    return sorted(o.object_name for o in client.list_objects(bucket, prefix, recursive=True))


def xgboost_json() -> bytes:
    X, y = load_breast_cancer(return_X_y=True)
    booster = xgb.train({"objective": "binary:logistic"}, xgb.DMatrix(X, label=y), 5)
    return bytes(booster.save_raw("json"))


@pytest.fixture
def api(owner, api_client_for):
    return api_client_for(owner)


def test_import_validates_by_loading_and_keeps_its_own_copy(owner, project, put):
    source = put("models/iris.joblib", iris_joblib())
    version = services.import_model(
        owner, project, name="iris", model_type="sklearn", path=source, tags=["demo", "iris"]
    )
    assert version.version == 1 and version.model.tags == ["demo", "iris"]
    assert any("skops" in w for w in version.info.get("warnings", []))  # pickle warned
    bucket = f"bml-models-p{project.pk}"
    assert version.path == f"bos://{bucket}/models/{version.model_id}/1/"
    assert objects(bucket) == [f"models/{version.model_id}/1/iris.joblib"]
    get_client().remove_object("wh-src", "models/iris.joblib")  # the source may go
    second = services.add_version(
        owner, version.model, model_type="xgboost", path=put("m/b.json", xgboost_json())
    )
    assert second.version == 2 and second.model_type == "xgboost"


def test_a_model_that_does_not_load_is_refused_with_the_loaders_error(owner, project, put):
    source = put("models/broken.joblib", b"this is not a joblib file")
    with pytest.raises(ValidationError) as error:
        services.import_model(owner, project, name="broken", model_type="sklearn", path=source)
    assert "does not load as sklearn" in error.value.message_dict["path"][0]
    assert not Model.objects.exists()
    assert objects(f"bml-models-p{project.pk}") == []  # nothing left behind


def test_api_import_upload_list_versions_edit_and_delete(api, owner, project, put):
    created = api.post(
        "/api/v1/models/",
        {
            "project": project.pk,
            "name": "iris-up",
            "model_type": "sklearn",
            "file": io.BytesIO(iris_joblib()),
            "description": "from my laptop",
        },
        format="multipart",
    )
    assert created.status_code == 201, created.json()
    model_id = created.json()["model"]
    added = api.post(
        f"/api/v1/models/{model_id}/versions/",
        {"model_type": "xgboost", "path": put("m/x.json", xgboost_json())},
        format="json",
    )
    assert added.status_code == 201, added.json()
    listed = api.get(f"/api/v1/models/?project={project.pk}").json()["results"]
    assert listed[0]["name"] == "iris-up" and listed[0]["version_count"] == 2
    versions = api.get(f"/api/v1/models/{model_id}/versions/").json()["results"]
    assert [v["version"] for v in versions] == [2, 1]
    edited = api.patch(
        f"/api/v1/models/{model_id}/", {"tags": ["prod"], "description": "d"}, format="json"
    )
    assert edited.status_code == 200 and edited.json()["tags"] == ["prod"]
    renamed = api.patch(f"/api/v1/models/{model_id}/", {"name": "other"}, format="json")
    assert renamed.status_code == 400 and "name" in renamed.json()  # refused, not ignored
    deep = '{"description": ' + "[" * 100_000 + "]" * 100_000 + "}"
    for body, rule in ((deep, "nesting depth limit"), ('{"tags": [NaN]}', "must be finite")):
        hostile = api.generic(
            "PATCH", f"/api/v1/models/{model_id}/", body, content_type="application/json"
        )
        assert hostile.status_code == 400 and rule in hostile.json()["detail"], hostile.content
    version_url = f"/api/v1/models/{model_id}/versions/1/"
    assert api.patch(version_url, {"description": "first"}, format="json").status_code == 200
    assert api.patch(version_url, {}, format="json").json()["description"] == "first"
    detail = api.get(f"/api/v1/models/{model_id}/versions/1/").json()
    assert detail["source"] == "imported" and detail["source_detail"].startswith("upload:")
    bucket = f"bml-models-p{project.pk}"
    assert api.delete(f"/api/v1/models/{model_id}/versions/1/").status_code == 204
    assert objects(bucket, f"models/{model_id}/1/") == []
    assert api.delete(f"/api/v1/models/{model_id}/").status_code == 204
    assert objects(bucket) == [] and not ModelVersion.objects.exists()


@pytest.mark.parametrize(
    "body, field",
    [
        ({"name": "9lives", "model_type": "sklearn", "path": "bos://wh-src/x"}, "name"),
        ({"name": "ok", "model_type": "caffe", "path": "bos://wh-src/x"}, "model_type"),
        ({"name": "ok", "model_type": "sklearn", "path": "bos://not-ours/x"}, "path"),
        ({"name": "ok", "model_type": "sklearn", "path": "bos://wh-src/none"}, "path"),
        ({"name": "ok", "model_type": "sklearn", "path": "bos://wh-src/x", "fields": 1}, "fields"),
    ],
)  # fmt: skip
def test_bad_imports_are_a_400_naming_the_field(api, project, put, body, field):
    put("x", b"junk")
    response = api.post("/api/v1/models/", {"project": project.pk, **body}, format="json")
    assert response.status_code == 400 and field in response.json(), response.json()
    assert not Model.objects.exists()


def test_release_a_succeeded_jobs_output_as_a_model(api, owner, project, bucket):
    from tests.jobs.helpers import run_until, status_of, submit_template
    from workers import devices

    devices.sync_inventory()
    job = submit_template(owner, project, "sklearn_digits", "digits", "bos://wh-src/jobs/")
    run_until(lambda: status_of(job) not in ("queued", "running"), "the job", timeout=180)
    assert job.status == "succeeded", job.reason
    released = api.post(
        "/api/v1/models/release/",
        {
            "job_id": job.job_id,
            "name": "digits-forest",
            "model_type": "sklearn",
            "subpath": "output/model.joblib",
        },
        format="json",
    )
    assert released.status_code == 201, released.json()
    body = released.json()
    assert body["source"] == "job" and body["source_job"] == job.job_id
    assert json.dumps(body["info"])  # what loading found is kept
    lineage = body["lineage"]
    assert lineage["job_id"] == job.job_id and lineage["algorithm"] == "custom_code"
    assert lineage["metrics"] == {"accuracy": pytest.approx(0.9, abs=0.1), "trees": 100}
    assert lineage["params"]["framework"] == "sklearn"

    # Again as a new version of that model, everything else left to the algorithm's defaults.
    again = api.post(
        "/api/v1/models/release/", {"job_id": job.job_id, "model": body["model"]}, format="json"
    )
    assert again.status_code == 201, again.json()
    assert again.json()["version"] == 2 and again.json()["model_type"] == "sklearn"
    assert again.json()["lineage"]["output"].endswith(f"/{job.job_id}/output/")
    listed = api.get(f"/api/v1/models/{body['model']}/versions/").json()
    assert [v["lineage"]["job_id"] for v in listed["results"]] == [job.job_id] * 2
