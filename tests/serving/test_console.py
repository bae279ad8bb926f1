"""The console of prediction services: the list, the create / add version form with its
errors, the details page (versions, access key, configuration history), edit and recover,
stop / restart / delete, the quality figures, a replica's logs, and the warehouse version
page naming the services that use it. No replica runs here (no scheduler): the records are
what the pages show."""

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from apps.projects import services as projects
from apps.projects.models import Role
from apps.serving import services
from apps.serving.models import QualityBucket, Replica, Service
from apps.serving.views import LOG_PAGE_BYTES
from apps.warehouse.models import Model


@pytest.fixture
def web(owner):
    client = Client()
    client.force_login(owner)
    return client


def form_for(iris_version, **changes):
    return {
        "mode": "new",
        "name": "iris-svc",
        "number": "1",
        "model": str(iris_version.model_id),
        "model_version": str(iris_version.version),
        "proportion": "1",
        "replicas": "1",
        "package": "",
        "max_batch_size": "1",
        "max_wait_ms": "5",
        "description": "the iris classifier",
        **changes,
    }


def make_service(owner, project, iris_version, name="iris-svc", **version):
    return services.create_service(
        owner, project, name=name, version=services.VersionConfig(1, iris_version, **version)
    )


def test_create_a_service_from_the_form_then_see_it_everywhere(web, project, iris_version):
    Model.objects.create(name="sample_model", is_common=True)
    form = web.get(
        f"/services/new/?model={iris_version.model_id}&version={iris_version.version}"
    ).content.decode()
    assert f'<option value="{iris_version.model_id}" selected>iris</option>' in form
    assert "sample_model (common)" in form  # the common models are offered too

    response = web.post("/services/new/", form_for(iris_version))
    service = Service.objects.get(name="iris-svc")
    assert response.status_code == 302 and response.url == f"/services/{service.pk}/"
    version = service.versions.get()
    assert (version.number, version.model_version, version.replicas) == (1, iris_version, 1)

    detail = web.get(response.url).content.decode()
    assert "Service iris-svc created: deploying." in detail
    assert 'id="service-status"' in detail and "Deploying" in detail
    assert f"http://testserver/v1/endpoints/{service.endpoint}/invocations" in detail
    assert service.access_key in detail  # the owner is a developer: the key is shown
    assert 'data-version="1"' in detail and "iris v1" in detail and "scikit-learn" in detail
    assert 'id="test-body"' in detail
    assert "{&quot;instances&quot;: [[1.0, 1.0, 1.0, 1.0]]}" in detail  # the example request
    assert "created with version 1" in detail  # the configuration history

    listing = web.get("/services/").content.decode()
    assert 'data-service="iris-svc"' in listing and "Deploying" in listing
    assert f"/services/new/?service={service.pk}" in listing  # Add version
    assert f"/services/{service.pk}/?tab=quality" in listing
    assert f"/services/{service.pk}/stop/" in listing
    assert f"/services/{service.pk}/delete/" not in listing  # only stopped or failed ones

    status = web.get(f"/services/{service.pk}/status.json").json()
    assert status["status"] == "deploying" and status["versions"][0]["expected"] == 1
    quality_tab = web.get(f"/services/{service.pk}/?tab=quality").content.decode()
    assert 'id="quality"' in quality_tab and 'data-range="24h"' in quality_tab


def test_the_create_form_says_what_is_wrong_next_to_the_field(web, owner, project, iris_version):
    def errors_of(**changes):
        response = web.post("/services/new/", form_for(iris_version, **changes))
        assert response.status_code == 200
        return response.content.decode()

    page = errors_of(name="9 bad name")
    assert '<span class="field-error">Service names are letters' in page
    assert 'value="9 bad name"' in page  # the form is kept
    assert '<span class="field-error">The version number must be between 1 and 9999.' in errors_of(
        number="10000"
    )
    assert '<span class="field-error">replicas must be between 1 and 8.' in errors_of(replicas="0")
    assert '<span class="field-error">Choose a model and one of its versions.' in errors_of(
        model_version="7"
    )
    assert '<span class="field-error">Choose a resource package' in errors_of(package="99999")
    assert '<span class="field-error">max_wait_ms must be a number.' in errors_of(max_wait_ms="x")
    assert '<span class="field-error">Choose one of this project&#x27;s services.' in errors_of(
        mode="version", service=""
    )
    assert not Service.objects.exists()

    make_service(owner, project, iris_version)
    assert "already exists in this project" in errors_of()
    assert Service.objects.count() == 1


def test_add_a_version_from_the_form(web, owner, project, iris_version):
    service = make_service(owner, project, iris_version)
    page = web.get(f"/services/new/?service={service.pk}").content.decode()
    assert 'value="version" checked' in page and 'value="2"' in page  # the next number
    response = web.post(
        "/services/new/",
        form_for(iris_version, mode="version", service=str(service.pk), number="2", proportion="7"),
    )
    assert response.url == f"/services/{service.pk}/"
    assert list(service.versions.values_list("number", "proportion")) == [(1, 1), (2, 7)]
    again = web.post(
        "/services/new/", form_for(iris_version, mode="version", service=str(service.pk))
    ).content.decode()
    assert "Version 1 exists in this service." in again


def test_edit_all_versions_then_recover_an_older_configuration(web, owner, project, iris_version):
    service = make_service(owner, project, iris_version)
    services.add_version(owner, service, services.VersionConfig(2, iris_version))
    edit_page = web.get(f"/services/{service.pk}/edit/").content.decode()
    assert 'name="v1-proportion"' in edit_page and 'name="v2-proportion"' in edit_page

    def edit(**changes):
        data = {"versions": ["1", "2"], "note": "3:7 split"}
        for number in (1, 2):
            data |= {
                f"v{number}-model": str(iris_version.model_id),
                f"v{number}-model_version": str(iris_version.version),
                f"v{number}-proportion": "1",
                f"v{number}-replicas": "1",
                f"v{number}-package": "",
                f"v{number}-max_batch_size": "1",
                f"v{number}-max_wait_ms": "5",
            }
        return web.post(f"/services/{service.pk}/edit/", data | changes)

    response = edit(**{"v1-proportion": "3", "v2-proportion": "7", "v2-replicas": "2"})
    assert response.status_code == 302 and response.url == f"/services/{service.pk}/"
    assert list(service.versions.values_list("number", "proportion", "replicas")) == [
        (1, 3, 1),
        (2, 7, 2),
    ]
    assert service.revisions.count() == 3 and service.revisions.first().note == "3:7 split"
    detail = web.get(response.url).content.decode()
    assert "30.0%" in detail and "70.0%" in detail and "3:7 split" in detail

    refused = edit(**{"v1-proportion": "500"})
    assert refused.status_code == 200
    assert "proportion must be between 0 and 100." in refused.content.decode()
    assert service.revisions.count() == 3
    assert "Choose a model and one of its versions." in edit(**{"v2-model": ""}).content.decode()

    edit(**{"v2-remove": "1"})
    assert list(service.versions.values_list("number", flat=True)) == [1]

    # Revision 2 (two versions at 1:1) comes back, recorded as a new revision.
    response = web.post(f"/services/{service.pk}/revisions/2/recover/")
    assert response.url == f"/services/{service.pk}/#history"
    assert list(service.versions.values_list("number", "proportion")) == [(1, 1), (2, 1)]
    assert service.revisions.first().note == "recovered revision 2"
    assert (
        "Recovered the configuration of revision 2."
        in web.get(f"/services/{service.pk}/").content.decode()
    )
    assert web.post(f"/services/{service.pk}/revisions/99/recover/").status_code == 404


def test_stop_restart_and_delete(web, owner, project, iris_version):
    service = make_service(owner, project, iris_version)
    refused = web.post(f"/services/{service.pk}/delete/", follow=True).content.decode()
    assert "Stop the service first" in refused and Service.objects.filter(pk=service.pk).exists()

    response = web.post(f"/services/{service.pk}/stop/", {"next": "/services/"})
    assert response.url == "/services/"
    service.refresh_from_db()
    assert (service.desired, service.status) == ("stopped", "stopped")
    listing = web.get("/services/").content.decode()
    assert "Service iris-svc stopped." in listing and "Stopped" in listing
    assert (
        f"/services/{service.pk}/delete/" in listing
        and f"/services/{service.pk}/restart/" in listing
    )

    web.post(f"/services/{service.pk}/restart/")
    service.refresh_from_db()
    assert (service.desired, service.status) == ("running", "deploying")

    web.post(f"/services/{service.pk}/stop/")
    response = web.post(f"/services/{service.pk}/delete/")
    assert response.url == "/services/" and not Service.objects.filter(pk=service.pk).exists()


def test_a_new_access_key(web, owner, project, iris_version):
    service = make_service(owner, project, iris_version)
    old = service.access_key
    web.post(f"/services/{service.pk}/new-key/")
    service.refresh_from_db()
    assert service.access_key != old
    assert service.access_key in web.get(f"/services/{service.pk}/").content.decode()


def test_viewers_see_no_key_and_change_nothing(owner, project, iris_version, make_user):
    service = make_service(owner, project, iris_version)
    viewer = make_user()
    projects.add_member(owner, project, viewer, Role.VIEWER)
    client = Client()
    client.force_login(viewer)
    session = client.session
    session["project_id"] = project.pk  # the viewer works in the owner's project
    session.save()
    detail = client.get(f"/services/{service.pk}/").content.decode()
    assert "iris-svc" in detail and service.access_key not in detail
    assert 'id="test-form"' not in detail and "/edit/" not in detail
    assert client.post(f"/services/{service.pk}/stop/").status_code == 403
    assert client.post(f"/services/{service.pk}/edit/", {"versions": ["1"]}).status_code == 403
    assert client.post("/services/new/", form_for(iris_version, name="x")).status_code == 403
    service.refresh_from_db()
    assert service.desired == "running" and Service.objects.count() == 1

    stranger = Client()
    stranger.force_login(make_user())
    assert stranger.get(f"/services/{service.pk}/").status_code == 404
    assert stranger.get(f"/services/{service.pk}/quality.json").status_code == 404
    assert b"iris-svc" not in stranger.get("/services/").content


def test_quality_figures_as_json(web, owner, project, iris_version):
    service = make_service(owner, project, iris_version)
    minute = timezone.now().replace(second=0, microsecond=0) - timedelta(minutes=5)
    for version_number, requests, ok in ((1, 10, 9), (0, 2, 0)):
        QualityBucket.objects.create(
            service=service,
            version_number=version_number,
            start=minute,
            requests=requests,
            bytes_in=100 * requests,
            bytes_out=20 * requests,
            handle_ms=3.0 * requests,
            status_2xx=ok,
            status_4xx=requests - ok,
        )
    url = f"/services/{service.pk}/quality.json"
    figures = web.get(url, {"range": "1h"}).json()
    assert figures["totals"]["pv"] == 12 and figures["totals"]["sumTraffic"] == 1440
    assert figures["totals"]["successRatio"] == 0.75
    assert figures["totals"]["status4xxProportion"] == 0.25
    assert sum(p["pv"] for p in figures["points"]) == 12 and len(figures["points"]) >= 60
    assert web.get(url, {"range": "1h", "version": "1"}).json()["totals"]["pv"] == 10

    start = (minute - timedelta(minutes=1)).isoformat()
    end = (minute + timedelta(minutes=1)).isoformat()
    custom = web.get(url, {"start": start, "end": end}).json()
    assert custom["totals"]["pv"] == 12 and custom["step_seconds"] == 60
    earlier = web.get(url, {"range": "1h", "start": start, "end": start}).json()
    assert "end must be after start." in str(earlier)

    refused = web.get(url, {"range": "2y"})
    assert refused.status_code == 400 and "range must be one of" in str(refused.json())
    assert web.get(url, {"version": "x"}).status_code == 400
    assert web.get(url, {"version": "\u00b2"}).status_code == 400  # a digit int() refuses
    for impossible in ("2024-13-45T99:99", "2024-01-01T00:00:00+99:00"):
        answer = web.get(url, {"start": impossible, "end": end})
        assert answer.status_code == 400 and "ISO 8601" in str(answer.json()), impossible


def test_a_replica_page_shows_its_logs_with_paging(web, owner, project, iris_version, tmp_path):
    service = make_service(owner, project, iris_version)
    version = service.versions.get()
    replica = Replica.objects.create(
        version=version, index=0, status="running", port=40123, run_dir=str(tmp_path), restarts=2
    )
    lines = [f"line {i:06d}\n" for i in range(10_000)]  # 120,000 bytes: two pages and more
    (tmp_path / "stdout.log").write_text("ready 40123\n" + "".join(lines))
    (tmp_path / "stderr.log").write_text("[bml] starting replica\nerror: something broke\n")

    detail = web.get(f"/services/{service.pk}/").content.decode()
    assert f"/services/{service.pk}/versions/1/replicas/0/" in detail and "40123" in detail

    url = f"/services/{service.pk}/versions/1/replicas/0/"
    page = web.get(url).content.decode()
    assert replica.name in page and "40123" in page and "Running" in page
    assert "error: something broke" in page
    assert "line 009999" in page and "ready 40123" not in page  # the tail
    assert "‹ Older" in page

    first = web.get(url, {"stdout": "0"}).content.decode()
    assert "ready 40123" in first and "line 009999" not in first and "Newer ›" in first
    assert "error: something broke" in first  # the other log stays where it was
    assert web.get(url, {"stdout": str(LOG_PAGE_BYTES * 10)}).status_code == 200
    assert web.get(f"/services/{service.pk}/versions/1/replicas/5/").status_code == 404
    assert web.get(f"/services/{service.pk}/versions/9/replicas/0/").status_code == 404


def test_the_warehouse_version_page_lists_the_services_using_it(web, owner, project, iris_version):
    url = f"/models/{iris_version.model_id}/versions/{iris_version.version}/"
    page = web.get(url).content.decode()
    assert "No prediction service uses this version." in page
    assert f"/services/new/?model={iris_version.model_id}&amp;version=1" in page
    service = make_service(owner, project, iris_version)
    page = web.get(url).content.decode()
    assert 'data-service="iris-svc"' in page and f"/services/{service.pk}/" in page
