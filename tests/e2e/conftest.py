"""Browser tests: the real appliance (launcher, store, Q cluster, uvicorn) on a free port,
driven by Playwright through Debian's chromium (Playwright cannot download a browser here)."""

import os
import shutil

import pytest

from bml_site.running import RunningAppliance

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
    running = start_appliance(tmp_path_factory.mktemp("appliance-var"))
    yield running
    running.stop()


def start_appliance(var) -> RunningAppliance:
    try:
        return RunningAppliance(var, ADMIN_PASSWORD).start()
    except RuntimeError as exc:
        pytest.fail(str(exc))


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
