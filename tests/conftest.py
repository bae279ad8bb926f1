"""Real parts for the whole suite: the embedded object store (started once per session) and,
for tests that need it, the real Django-Q2 cluster in its own process."""

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from django.conf import settings

from apps.storage.embedded import EmbeddedStore
from bml_site import config

ROOT = Path(__file__).resolve().parent.parent
MAIL_DIR = config.var_dir() / "mail-test"


def pytest_sessionfinish(session, exitstatus):
    """A passing run removes its throw-away var/ (bml_site.test_settings); a failing one
    keeps it for its logs."""
    var = config.var_dir()
    if (
        exitstatus == 0
        and var.name.startswith("bml-test-")
        and var.parent == Path(tempfile.gettempdir())
    ):
        shutil.rmtree(var, ignore_errors=True)


@pytest.fixture(scope="session", autouse=True)
def object_store():
    """The embedded store, on free loopback ports, with its data in the test var/ directory."""
    var = config.var_dir()
    creds = config.embedded_s3_credentials()
    store = EmbeddedStore(
        var / "objectstore", creds["access_key"], creds["secret_key"], var / "objectstore.log"
    ).start()
    config.embedded_s3_endpoint_file().write_text(store.endpoint)
    settings.S3 = config.s3_settings()
    yield store
    store.stop()


@pytest.fixture(autouse=True)
def empty_store_after_each_test(object_store):
    """The database rolls back after each test; the store must be emptied to match."""
    yield
    from minio.deleteobjects import DeleteObject

    from apps.storage.client import get_client

    client = get_client()
    for bucket in client.list_buckets():
        names = [
            DeleteObject(o.object_name) for o in client.list_objects(bucket.name, recursive=True)
        ]
        list(client.remove_objects(bucket.name, names))
        client.remove_bucket(bucket.name)


def child_env(**extra) -> dict:
    """Environment for processes the tests start: same var/, same test database."""
    db = settings.DATABASES["default"]["NAME"]
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "bml_site.settings",
        "BML_DATABASE_URL": f"sqlite:///{db}",
        # Mail sent by the cluster lands in files the tests can read.
        "BML_EMAIL_BACKEND": "django.core.mail.backends.filebased.EmailBackend",
        "BML_EMAIL_FILE_PATH": str(MAIL_DIR),
        **extra,
    }


@pytest.fixture
def qcluster(transactional_db):
    """A real Q cluster process reading the test database (tests using it commit their data)."""
    log = open(config.var_dir() / "qcluster-test.log", "ab")  # noqa: SIM115
    process = subprocess.Popen(
        [sys.executable, "manage.py", "qcluster"],
        cwd=ROOT,
        env=child_env(),
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    yield process
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(15)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(5)
    log.close()


def read_body(response) -> bytes:
    """The whole body of a (possibly streaming, possibly async-streaming) response."""
    return b"".join(response) if response.streaming else response.content


def wait_until(predicate, timeout: float = 30, interval: float = 0.2, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


@pytest.fixture
def make_user(db):
    from django.contrib.auth import get_user_model

    counter = iter(range(1, 10_000))

    def make(username=None, **kwargs):
        username = username or f"user{next(counter)}"
        return get_user_model().objects.create_user(
            username=username, password="pw-for-tests-123", **kwargs
        )

    return make


@pytest.fixture
def api_client_for():
    from rest_framework.test import APIClient

    def make(user):
        client = APIClient()
        client.force_authenticate(user)
        return client

    return make
