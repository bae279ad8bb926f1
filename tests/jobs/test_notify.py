import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from django.core.exceptions import ValidationError

from apps.jobs.models import JobStatus
from apps.jobs.notify import notify_job_end
from apps.jobs.services import check_notify
from tests.conftest import MAIL_DIR, wait_until
from tests.jobs.helpers import run_until, status_of, submit
from workers import devices


@pytest.fixture
def webhook():
    received = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            length = int(self.headers["Content-Length"])
            received.append(json.loads(self.rfile.read(length)))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/hook", received
    server.shutdown()


def test_job_end_is_notified_by_email_and_webhook(make_user, qcluster, webhook):
    from apps.projects.models import Project
    from apps.storage import services as storage

    owner = make_user()
    devices.sync_inventory()
    project = Project.objects.get(owner=owner)
    storage.create_bucket(owner, project, "jobs-out")
    url, received = webhook
    job = submit(
        owner,
        project,
        "raise SystemExit(3)",
        name="notify-me",
        notify_email="team@example.com",
        notify_webhook=url,
    )
    run_until(lambda: status_of(job) == JobStatus.FAILED, "job end")

    wait_until(lambda: received, timeout=30, what="the webhook call")
    assert received[0]["job_id"] == job.job_id and received[0]["status"] == "failed"
    assert "exited with code 3" in received[0]["reason"]

    def mail():
        files = list(MAIL_DIR.glob("*.log")) if MAIL_DIR.exists() else []
        return files and files[0].read_text()

    message = wait_until(mail, timeout=30, what="the e-mail")
    assert "team@example.com" in message and "[BML] job notify-me failed" in message


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8333/buckets/x",
        "http://localhost:9333/vol/grow",
        "http://[::1]/x",
        "http://[::ffff:127.0.0.1]/x",
        "http://169.254.169.254/latest/meta-data/",
        "http://0.0.0.0:8888/",
    ],
)
def test_webhooks_to_this_machine_are_refused_unless_allowed(settings, url):
    """A job's owner must not make the appliance call what listens only on this machine."""
    settings.NOTIFY_WEBHOOK_ALLOW_LOCAL = False
    with pytest.raises(ValidationError) as refused:
        check_notify("", url)
    assert "address of this machine or its link" in refused.value.message_dict["notify_webhook"][0]
    settings.NOTIFY_WEBHOOK_ALLOW_LOCAL = True
    assert check_notify("", url) == ("", url)


def test_a_webhook_host_that_moved_to_this_machine_is_not_called(owner, project, settings, webhook):
    """Checked again when the job ends: a name may resolve elsewhere by then."""
    url, received = webhook
    job = submit(owner, project, "print(1)", notify_webhook=url)
    settings.NOTIFY_WEBHOOK_ALLOW_LOCAL = False
    sent = notify_job_end(job.pk)
    assert "address of this machine" in sent["webhook"] and received == []
