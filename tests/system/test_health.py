from django.test import Client

from apps.storage.embedded import free_port
from tests.conftest import wait_until


def test_healthz_reports_all_three_parts_ok_with_the_real_queue(qcluster):
    web = Client()

    def healthy():
        response = web.get("/healthz")
        return response if response.status_code == 200 else None

    report = wait_until(healthy, timeout=30, what="healthz ok").json()
    assert report["database"]["ok"] and report["object_store"]["ok"]
    assert report["queue"]["clusters"] >= 1


def test_healthz_names_the_part_that_is_down(db, settings):
    settings.S3 = {**settings.S3, "endpoint": f"127.0.0.1:{free_port()}"}
    response = Client().get("/healthz")
    assert response.status_code == 503
    report = response.json()
    assert report["database"]["ok"] is True
    assert report["object_store"]["ok"] is False
    assert "not reachable" in report["object_store"]["error"]
    assert report["queue"] == {"ok": False, "error": "no Q cluster is running"}


def test_metrics_are_prometheus_text_for_the_configured_token(db, settings):
    settings.METRICS_TOKEN = "s3cret-metrics-token"
    response = Client().get("/metrics", HTTP_AUTHORIZATION="Bearer s3cret-metrics-token")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    text = response.content.decode()
    assert 'bml_component_up{component="database"} 1.0' in text
    assert "# TYPE bml_projects gauge" in text


def test_metrics_refuse_anyone_without_the_token(db, settings, make_user):
    """The exposition names every project's services and their traffic."""
    settings.METRICS_TOKEN = "s3cret-metrics-token"
    anonymous = Client().get("/metrics")
    assert anonymous.status_code == 401
    assert anonymous["WWW-Authenticate"].startswith("Bearer")
    assert b"bml_" not in anonymous.content
    for wrong in ("Bearer s3cret-metrics-tokeN", "Bearer ", "Token s3cret-metrics-token"):
        response = Client().get("/metrics", HTTP_AUTHORIZATION=wrong)
        assert response.status_code == 401 and b"bml_" not in response.content, wrong
    # A signed-in user who is not staff is refused too; staff may look from the console.
    user = Client()
    user.force_login(make_user())
    assert user.get("/metrics").status_code == 403
    staff = Client()
    staff.force_login(make_user(is_staff=True))
    assert b"bml_projects" in staff.get("/metrics").content


def test_metrics_without_a_configured_token_accept_no_bearer(db, settings):
    settings.METRICS_TOKEN = ""
    for given in ("Bearer ", "Bearer anything"):
        response = Client().get("/metrics", HTTP_AUTHORIZATION=given)
        assert response.status_code == 401 and b"bml_" not in response.content


def test_api_schema_and_docs_are_served_offline(db, make_user):
    web = Client()
    web.force_login(make_user())
    schema = web.get("/api/v1/schema/", {"format": "json"}).json()
    assert "/api/v1/buckets/{name}/objects/{key}" in schema["paths"]
    docs = web.get("/api/v1/docs/").content.decode()
    assert "swagger-ui" in docs and "cdn" not in docs.lower()


def test_token_auth_works_for_the_api(make_user):
    from rest_framework.authtoken.models import Token

    user = make_user()
    token = Token.objects.create(user=user)
    response = Client().get("/api/v1/projects/", HTTP_AUTHORIZATION=f"Token {token.key}")
    assert response.status_code == 200
    assert response.json()["results"][0]["name"] == "default"
    assert Client().get("/api/v1/projects/").status_code in (401, 403)


def test_admin_lists_every_model(make_user):
    from django.apps import apps
    from django.contrib import admin

    ours = [m for m in apps.get_models() if m.__module__.startswith(("apps.", "workers."))]
    missing = [m.__name__ for m in ours if m not in admin.site._registry]
    assert not missing


def test_console_api_token_page_creates_a_working_token(make_user):
    from rest_framework.authtoken.models import Token

    user = make_user()
    web = Client()
    web.force_login(user)
    assert b"no API token yet" in web.get("/projects/api-token/").content
    web.post("/projects/api-token/")
    first = Token.objects.get(user=user).key
    assert first.encode() in web.get("/projects/api-token/").content
    web.post("/projects/api-token/")  # regenerate: the old token stops working
    assert Token.objects.get(user=user).key != first
    assert Client().get("/api/v1/projects/", HTTP_AUTHORIZATION=f"Token {first}").status_code in (
        401,
        403,
    )


def test_the_icon_is_served_for_pages_and_for_browsers_that_ask_for_favicon_ico(client):
    response = client.get("/favicon.ico")
    assert response.status_code == 301
    icon = client.get(response["Location"])
    assert icon.status_code == 200
    assert b"<svg" in b"".join(icon.streaming_content if icon.streaming else [icon.content])
    assert 'rel="icon"' in client.get("/login/").content.decode()


def test_static_files_are_answered_whole_under_asgi_without_warnings(db, recwarn):
    import asyncio

    import httpx

    from bml_site.asgi import application

    async def fetch(headers=None):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            return await client.get("/static/bml/console.css", headers=headers)

    whole = asyncio.run(fetch())
    assert whole.status_code == 200 and whole.headers["content-type"].startswith("text/css")
    assert whole.content.startswith(b":root")
    part = asyncio.run(fetch({"Range": "bytes=0-4"}))
    assert (part.status_code, part.content) == (206, b":root")
    assert not [w for w in recwarn if "StreamingHttpResponse" in str(w.message)]


def test_refused_requests_are_logged_in_one_line(rf, caplog, settings):
    import logging

    from django.core.exceptions import PermissionDenied
    from django.http import HttpResponseForbidden
    from django.utils.log import log_response

    with caplog.at_level(logging.WARNING, logger="django.request"):
        try:
            raise PermissionDenied("Your role in project 'p' is viewer; this needs developer.")
        except PermissionDenied as exc:  # what Django's handler does with a refusal
            request = rf.post("/jobs/x/delete/")
            log_response(
                "Forbidden (Permission denied): %s",
                request.path,
                response=HttpResponseForbidden(),
                request=request,
                exception=exc,
            )
    record = next(r for r in caplog.records if r.name == "django.request")
    # The log handler's filter has taken the exception off (Django attaches it).
    assert record.status_code == 403 and record.exc_info is None
    assert logging.Formatter().format(record) == "Forbidden (Permission denied): /jobs/x/delete/"
    assert settings.LOGGING["handlers"]["console"]["filters"] == ["client_errors"]
