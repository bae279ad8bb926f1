"""Browser tests: the real appliance (launcher, store, Q cluster, uvicorn) on a free port,
driven by Playwright through Debian's chromium (Playwright cannot download a browser here)."""

import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request

import httpx
import pytest

from apps.storage.embedded import free_port
from tests.conftest import ROOT

ADMIN_PASSWORD = "e2e-admin-pass-42"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium_path() -> str:
    path = os.environ.get("BML_CHROMIUM") or shutil.which("chromium")
    if not path:
        pytest.fail("Debian's chromium is needed for browser tests: `make browser` installs it")
    return path


class Appliance:
    """`python -m bml_site.launcher` exactly as `make up` runs it, in its own var/."""

    def __init__(self, var, port=None):
        self.var, self.port = var, port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = None

    def start(self, timeout: float = 120) -> "Appliance":
        env = {k: v for k, v in os.environ.items() if not k.startswith(("BML_", "DJANGO_SETTINGS"))}
        env.update(
            BML_VAR_DIR=str(self.var), BML_PORT=str(self.port), BML_ADMIN_PASSWORD=ADMIN_PASSWORD
        )
        self.log = open(self.var / "launcher.log", "ab")  # noqa: SIM115
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bml_site.launcher"],
            cwd=ROOT,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while True:
            try:
                urllib.request.urlopen(self.url + "/login/", timeout=2)
                return self
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    pytest.fail(
                        "appliance did not start:\n" + (self.var / "launcher.log").read_text()
                    )
                time.sleep(0.3)

    def stop(self) -> float:
        """Ctrl-C, as a user would; returns how long the stop took."""
        started = time.monotonic()
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                pytest.fail("appliance did not stop within 20 s of Ctrl-C")
        self.log.close()
        return time.monotonic() - started


@pytest.fixture(scope="session")
def appliance(tmp_path_factory):
    running = Appliance(tmp_path_factory.mktemp("appliance-var")).start()
    yield running
    running.stop()


def login(client: httpx.Client, username="admin", password=ADMIN_PASSWORD) -> httpx.Client:
    """Sign in through the login form, as the browser does; returns the client with a session."""
    client.get("/login/")
    response = client.post(
        "/login/",
        data={
            "username": username,
            "password": password,
            "csrfmiddlewaretoken": client.cookies["csrftoken"],
        },
    )
    assert response.status_code == 302, response.text
    client.headers["X-CSRFToken"] = client.cookies["csrftoken"]
    return client


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser, appliance):
    context = browser.new_context(base_url=appliance.url, accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(30_000)
    yield page
    context.close()


def sign_in(page, username="admin", password=ADMIN_PASSWORD):
    page.goto("/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_url("**/projects/")
