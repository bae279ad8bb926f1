"""The prediction-service API as a user drives it: create, versions, edits recorded in the
history and rolled back, stop / restart / delete, keys, quality figures and replica logs,
and who may see and do what. Records only: no replica process runs here."""

from datetime import timedelta

import pytest
from django.utils import timezone

from apps.projects import services as projects
from apps.projects.models import Project, Role
from apps.serving.models import QualityBucket, Replica, Service
from apps.warehouse.models import Model, ModelVersion

INVOCATION = "/v1/endpoints/{}/invocations?interface=predict&action=predict"


@pytest.fixture
def api(owner, api_client_for):
    return api_client_for(owner)


def version_body(iris_version, **overrides):
    return {
        "number": 1,
        "model": iris_version.model_id,
        "model_version": iris_version.version,
        "proportion": 1,
        "replicas": 1,
        **overrides,
    }


def create(api, project, iris_version, name="iris-api", **version):
    body = {
        "project": project.pk,
        "name": name,
        "description": "iris classes",
        "version": version_body(iris_version, **version),
    }
    return api.post("/api/v1/services/", body, format="json")


@pytest.fixture
def service(api, project, iris_version):
    response = create(api, project, iris_version)
    assert response.status_code == 201, response.json()
    return Service.objects.get(pk=response.json()["id"])


def url(service, tail=""):
    return f"/api/v1/services/{service.pk}/{tail}"


def test_create_answers_the_service_with_its_first_version(api, project, iris_version):
    response = create(api, project, iris_version, proportion=3, replicas=2)
    assert response.status_code == 201, response.json()
    body = response.json()
    service = Service.objects.get(pk=body["id"])
    assert body["project"] == project.pk and body["name"] == "iris-api"
    assert body["endpoint"] == "iris-api" == service.endpoint
    assert body["access_url"] == "http://testserver" + INVOCATION.format("iris-api")
    assert body["access_key"] == service.access_key and len(body["access_key"]) > 20
    assert body["desired"] == "running" and body["status"] == "deploying"
    assert body["description"] == "iris classes"
    [version] = body["versions"]
    assert version["number"] == 1
    assert version["model"] == {"id": iris_version.model_id, "name": "iris"}
    assert version["model_version"] == 1 and version["model_type"] == "sklearn"
    assert version["proportion"] == 3 and version["traffic_share"] == 1.0
    assert version["replicas"] == 2 and version["running_replicas"] == 0
    assert version["package"]["id"] and version["package"]["name"]  # the default package
    assert version["max_batch_size"] == 1 and version["max_wait_ms"] == 5.0
    assert version["replica_list"] == []

    listed = api.get("/api/v1/services/", {"project": project.pk}).json()
    assert listed["count"] == 1 and listed["results"][0]["id"] == service.pk
    assert api.get(url(service)).json() == listed["results"][0]
    # the same name in another project gets another endpoint, and serves that project's model
    other = projects.create_project(service.created_by, "second")
    assert "model" in create(api, other, iris_version).json()
    copy = Model.objects.create(project=other, name="iris")
    copied = ModelVersion.objects.create(
        model=copy, version=1, model_type="sklearn", path=iris_version.path
    )
    again = create(api, other, copied)
    assert again.status_code == 201 and again.json()["endpoint"] == f"iris-api-p{other.pk}"


def test_validation_errors_name_the_field(api, owner, project, iris_version, make_user):
    stranger = make_user()
    theirs = Model.objects.create(project=Project.objects.get(owner=stranger), name="theirs")
    ModelVersion.objects.create(model=theirs, version=1, model_type="sklearn", path="bos://x/")
    cases = [
        ({"name": "1-starts-with-a-digit"}, "name"),
        ({"model": theirs.pk}, "model"),
        ({"model": 999_999}, "model"),
        ({"model_version": 7}, "model_version"),
        ({"proportion": 101}, "proportion"),
        ({"replicas": 0}, "replicas"),
        ({"replicas": "many"}, "replicas"),
        ({"package": 999_999}, "package"),
    ]
    for change, field in cases:
        name = change.pop("name", "iris-api")
        response = create(api, project, iris_version, name=name, **change)
        assert response.status_code == 400, (change, response.json())
        assert field in response.json(), (change, response.json())
        if field == "model_version":
            assert "has no version 7" in response.json()[field][0]
    assert not Service.objects.exists()

    missing = api.post("/api/v1/services/", {"project": project.pk}, format="json")
    assert missing.status_code == 400 and {"name", "version"} <= set(missing.json())


def test_add_a_version_and_split_the_traffic(api, service, iris_version):
    response = api.post(
        url(service, "versions/"), version_body(iris_version, number=2, proportion=3), format="json"
    )
    assert response.status_code == 201, response.json()
    shares = {v["number"]: v["traffic_share"] for v in response.json()["versions"]}
    assert shares == {1: 0.25, 2: 0.75}

    again = api.post(url(service, "versions/"), version_body(iris_version, number=2), format="json")
    assert again.status_code == 400 and "number" in again.json()
    assert service.versions.count() == 2


def test_edit_is_recorded_in_the_history_and_recover_rolls_back(api, service, iris_version):
    api.post(url(service, "versions/"), version_body(iris_version, number=2), format="json")
    edit = {
        "versions": [
            version_body(iris_version, number=1, proportion=3),
            version_body(iris_version, number=2, proportion=7, replicas=2),
        ]
    }
    response = api.put(url(service, "config/"), edit, format="json")
    assert response.status_code == 200, response.json()
    versions = {v["number"]: v for v in response.json()["versions"]}
    assert versions[1]["proportion"] == 3 and versions[2]["proportion"] == 7
    assert versions[2]["replicas"] == 2 and versions[2]["traffic_share"] == 0.7

    history = api.get(url(service, "revisions/")).json()
    assert [r["number"] for r in history] == [3, 2, 1]  # newest first
    assert (
        history[0]["note"] == "edited" and history[0]["created_by"] == service.created_by.username
    )
    assert [v["proportion"] for v in history[0]["config"]["versions"]] == [3, 7]
    assert [v["number"] for v in history[2]["config"]["versions"]] == [1]

    recovered = api.post(url(service, "revisions/1/recover/"), format="json")
    assert recovered.status_code == 200, recovered.json()
    [only] = recovered.json()["versions"]
    assert only["number"] == 1 and only["proportion"] == 1
    history = api.get(url(service, "revisions/")).json()
    assert history[0]["number"] == 4 and history[0]["note"] == "recovered revision 1"
    assert api.post(url(service, "revisions/99/recover/")).status_code == 404


def test_an_edit_needs_a_version_and_a_proportion(api, service, iris_version):
    empty = api.put(url(service, "config/"), {"versions": []}, format="json")
    assert empty.status_code == 400 and "versions" in empty.json()
    silent = {"versions": [version_body(iris_version, proportion=0)]}
    none_served = api.put(url(service, "config/"), silent, format="json")
    assert none_served.status_code == 400 and "proportion" in none_served.json()
    zero = {"versions": [version_body(iris_version, replicas=0)]}
    assert "replicas" in api.put(url(service, "config/"), zero, format="json").json()
    assert service.revisions.count() == 1 and service.versions.get().proportion == 1


def test_stop_restart_and_delete_only_when_stopped(api, service):
    refused = api.delete(url(service))
    assert refused.status_code == 400 and "service" in refused.json()
    assert Service.objects.filter(pk=service.pk).exists()

    stopped = api.post(url(service, "stop/")).json()
    assert stopped["desired"] == "stopped" and stopped["status"] == "stopped"
    restarted = api.post(url(service, "restart/")).json()
    assert restarted["desired"] == "running" and restarted["status"] == "deploying"

    api.post(url(service, "stop/"))
    assert api.delete(url(service)).status_code == 204
    assert api.get(url(service)).status_code == 404
    assert not Service.objects.filter(pk=service.pk).exists()


def test_new_key_replaces_the_key_and_patch_edits_the_description(api, service):
    old = service.access_key
    body = api.post(url(service, "new-key/")).json()
    service.refresh_from_db()
    assert body["access_key"] == service.access_key != old

    response = api.patch(url(service), {"description": "v2 of iris"}, format="json")
    assert response.status_code == 200 and response.json()["description"] == "v2 of iris"
    service.refresh_from_db()
    assert service.description == "v2 of iris"


def test_quality_answers_points_and_totals(api, service):
    minute = (timezone.now() - timedelta(minutes=5)).replace(second=0, microsecond=0)
    common = {"service": service, "start": minute, "bytes_in": 100, "bytes_out": 50}
    QualityBucket.objects.create(
        version_number=1, requests=4, handle_ms=20.0, status_2xx=3, status_4xx=1, **common
    )
    QualityBucket.objects.create(
        version_number=2, requests=6, handle_ms=30.0, status_2xx=6, **common
    )

    body = api.get(url(service, "quality/"), {"range": "1h"}).json()
    assert 50 <= len(body["points"]) <= 61 and body["step_seconds"] == 60
    totals = body["totals"]
    assert totals["pv"] == 10 and totals["sumTraffic"] == 300 and totals["avgTraffic"] == 30
    assert totals["sumHandleTime"] == 50 and totals["avgHandleTime"] == 5
    assert totals["status2xxProportion"] == 0.9 and totals["status4xxProportion"] == 0.1
    assert sum(p["pv"] for p in body["points"]) == 10

    first = api.get(url(service, "quality/"), {"range": "1h", "version": 1}).json()
    assert first["totals"]["pv"] == 4 and first["totals"]["successRatio"] == 0.75

    start = (minute - timedelta(minutes=10)).isoformat()
    end = (minute + timedelta(minutes=10)).isoformat()
    chosen = api.get(url(service, "quality/"), {"start": start, "end": end}).json()
    assert chosen["totals"]["pv"] == 10 and chosen["step_seconds"] == 60

    for params, field in [
        ({"range": "2w"}, "range"),
        ({"start": "yesterday", "end": end}, "start"),
        ({"start": end, "end": start}, "end"),
        ({"version": "one"}, "version"),
    ]:
        response = api.get(url(service, "quality/"), params)
        assert response.status_code == 400 and field in response.json(), params


def test_replica_logs_read_the_end_of_the_file(api, service, tmp_path):
    version = service.versions.get()
    Replica.objects.create(
        version=version, index=0, status="running", run_dir=str(tmp_path), port=4321, pid=99
    )
    lines = "".join(f"line {n}\n" for n in range(20_000))
    (tmp_path / "stderr.log").write_text(lines)

    logs = url(service, "versions/1/replicas/0/logs/")
    body = api.get(logs, {"stream": "stderr"}).json()
    assert body["stream"] == "stderr" and body["size"] == len(lines)
    assert len(body["text"]) == 64 * 1024 and body["text"].endswith("line 19999\n")
    assert api.get(logs).json() == {"stream": "stdout", "text": "", "size": 0}  # no file yet
    (tmp_path / "stdout.log").write_text("ready on 4321\n")
    assert api.get(logs, {"stream": "stdout"}).json()["text"] == "ready on 4321\n"
    assert api.get(logs, {"stream": "env"}).status_code == 400
    assert api.get(url(service, "versions/1/replicas/5/logs/")).status_code == 404
    assert api.get(url(service, "versions/2/replicas/0/logs/")).status_code == 404

    [shown] = api.get(url(service)).json()["versions"]
    assert shown["running_replicas"] == 1
    assert shown["replica_list"][0]["index"] == 0 and shown["replica_list"][0]["port"] == 4321


def test_a_viewer_reads_without_the_key_and_is_refused_writes(
    owner, project, service, iris_version, make_user, api_client_for
):
    viewer = make_user()
    projects.add_member(owner, project, viewer, Role.VIEWER)
    api = api_client_for(viewer)
    shown = api.get(url(service)).json()
    assert shown["name"] == "iris-api" and shown["access_key"] is None
    assert api.get("/api/v1/services/").json()["results"][0]["access_key"] is None
    assert api.get(url(service, "revisions/")).status_code == 200

    writes = [
        ("patch", url(service), {"description": "mine"}),
        ("delete", url(service), {}),
        ("post", url(service, "stop/"), {}),
        ("post", url(service, "restart/"), {}),
        ("post", url(service, "new-key/"), {}),
        ("post", url(service, "versions/"), version_body(iris_version, number=2)),
        ("put", url(service, "config/"), {"versions": []}),
        ("post", url(service, "revisions/1/recover/"), {}),
    ]
    for method, path, body in writes:
        assert getattr(api, method)(path, body, format="json").status_code == 403, path
    refused = create(api, project, iris_version, name="viewers-own")
    assert refused.status_code == 403
    invalid = api.post("/api/v1/services/", {"project": project.pk}, format="json")
    assert invalid.status_code == 403  # refused before the body is looked at
    after = Service.objects.get()
    assert (after.access_key, after.desired, after.description) == (
        service.access_key,
        "running",
        "iris classes",
    )


def test_another_users_service_is_a_404(project, service, iris_version, make_user, api_client_for):
    api = api_client_for(make_user())
    for method, path in [
        ("get", url(service)),
        ("get", url(service, "revisions/")),
        ("get", url(service, "quality/")),
        ("post", url(service, "stop/")),
        ("delete", url(service)),
    ]:
        assert getattr(api, method)(path, {}, format="json").status_code == 404, path
    assert api.get("/api/v1/services/").json()["results"] == []
    assert api.get("/api/v1/services/", {"project": project.pk}).status_code == 404
    assert create(api, project, iris_version, name="intruder").status_code == 404
    assert Service.objects.get().desired == "running"


def test_a_model_version_in_use_is_not_deleted_by_the_warehouse_api(api, service, iris_version):
    path = f"/api/v1/models/{iris_version.model_id}/versions/{iris_version.version}/"
    response = api.delete(path)
    assert response.status_code == 400
    assert "iris-api" in str(response.json())
    assert ModelVersion.objects.filter(pk=iris_version.pk).exists()

    api.post(url(service, "stop/"))
    assert api.delete(url(service)).status_code == 204
    assert api.delete(path).status_code == 204
