import io

from django.test import Client

from apps.projects.models import Project
from apps.storage.client import get_client
from tests.conftest import read_body


def test_console_bucket_create_browse_and_download(make_user):
    user = make_user()
    web = Client()
    web.force_login(user)
    response = web.post("/storage/create/", {"name": "console-bucket"}, follow=True)
    assert b"bos://console-bucket/ created" in response.content
    assert Project.objects.get(owner=user).buckets.filter(name="console-bucket").exists()

    web.post("/storage/console-bucket/folder/", {"prefix": "", "folder": "raw"})
    get_client().put_object("console-bucket", "raw/hello.txt", io.BytesIO(b"hello"), 5)
    page = web.get("/storage/console-bucket/", {"prefix": "raw/"})
    assert page.status_code == 200 and b"hello.txt" in page.content
    download = web.get("/storage/console-bucket/download/raw/hello.txt")
    assert read_body(download) == b"hello"
    assert "attachment" in download["Content-Disposition"]

    gone = {"key": "raw/not-there.txt", "prefix": "raw/"}  # deleted meanwhile, say in a tab
    answer = web.post("/storage/console-bucket/remove/", gone, follow=True)
    assert answer.status_code == 200 and b"was not there any more" in answer.content


def test_console_shows_rule_when_bucket_name_is_bad(make_user):
    web = Client()
    web.force_login(make_user())
    response = web.post("/storage/create/", {"name": "NO"}, follow=True)
    assert b"Invalid bucket name" in response.content
