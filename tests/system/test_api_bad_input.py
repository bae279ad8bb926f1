"""Input no API route may answer with a server error: ids beyond the database's integers,
paging beyond reason, bodies of the wrong shape, URLs no route matches."""

import pytest
from django.test import RequestFactory

from apps.projects.models import Project
from bml_site import errors

HUGE = 2**63  # one past SQLite's largest integer


@pytest.fixture
def api(make_user, api_client_for):
    user = make_user()
    client = api_client_for(user)
    client.project = Project.objects.get(owner=user)
    return client


def test_ids_beyond_the_databases_integers_are_404(api):
    assert api.get(f"/api/v1/projects/{HUGE}/").status_code == 404
    assert api.get(f"/api/v1/projects/{HUGE}/members/").status_code == 404
    assert api.get(f"/api/v1/buckets/?project={HUGE}").status_code == 404
    assert api.get(f"/api/v1/jobs/?project={-HUGE - 1}").status_code == 404
    created = api.post("/api/v1/buckets/", {"project": HUGE, "name": "huge"}, format="json")
    assert created.status_code == 404


@pytest.mark.parametrize("query", [f"limit={HUGE}", f"offset={HUGE}", "limit=-1", "offset=x"])
def test_paging_beyond_reason_still_answers_a_page(api, query):
    response = api.get(f"/api/v1/projects/?{query}")
    assert response.status_code == 200
    assert [p["name"] for p in response.json()["results"]] in (["default"], [])


def test_a_patch_without_the_name_leaves_the_project_as_it_is(api):
    url = f"/api/v1/projects/{api.project.pk}/"
    for body in ({}, {"unknown": 1}):
        response = api.patch(url, body, format="json")
        assert response.status_code == 200 and response.json()["name"] == "default"


def test_a_body_that_is_not_an_object_is_a_400(api):
    url = f"/api/v1/projects/{api.project.pk}/"
    assert api.delete(url, [], format="json").json() == {
        "body": ["Send a JSON object (or form fields)."]
    }


def test_the_api_answers_json_where_no_route_matches(api):
    for path in ("/api/v1/projects/abc/", "/api/v1/jobs/999999/", "/api/v1/nothing/"):
        response = api.get(path)
        assert response.status_code == 404 and response["Content-Type"] == "application/json"
        assert "detail" in response.json()
    console = api.get("/projects/abc/")
    assert console.status_code == 404 and console["Content-Type"].startswith("text/html")


def test_server_errors_under_the_api_are_json():
    request = RequestFactory().get("/api/v1/projects/")
    response = errors.server_error(request)
    assert response.status_code == 500 and b"web log" in response.content
    assert errors.server_error(RequestFactory().get("/projects/"))["Content-Type"].startswith(
        "text/html"
    )
