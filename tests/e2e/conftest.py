"""Browser tests: the real appliance (launcher, store, Q cluster, uvicorn) on a free port,
driven by Playwright through Debian's chromium (Playwright cannot download a browser here)."""

import os
import shutil
import subprocess
import sys
import time
import urllib.request

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


@pytest.fixture(scope="session")
def appliance(tmp_path_factory):
    """`python -m bml_site.launcher` exactly as `make up` runs it, in its own var/."""
    var = tmp_path_factory.mktemp("appliance-var")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BML_", "DJANGO_SETTINGS"))}
    env.update(BML_VAR_DIR=str(var), BML_PORT=str(port), BML_ADMIN_PASSWORD=ADMIN_PASSWORD)
    log = open(var / "launcher.log", "wb")  # noqa: SIM115
    process = subprocess.Popen(
        [sys.executable, "-m", "bml_site.launcher"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        try:
            urllib.request.urlopen(url + "/login/", timeout=2)
            break
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                log.close()
                pytest.fail("appliance did not start:\n" + (var / "launcher.log").read_text())
            time.sleep(0.3)
    yield {"url": url, "var": var, "process": process}
    process.send_signal(2)  # Ctrl-C, as a user would
    try:
        process.wait(20)
    except subprocess.TimeoutExpired:
        process.kill()
        pytest.fail("appliance did not stop within 20 s of Ctrl-C")
    finally:
        log.close()


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser, appliance):
    context = browser.new_context(base_url=appliance["url"], accept_downloads=True)
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
