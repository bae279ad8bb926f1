"""Browser tests: the real appliance (launcher, store, Q cluster, uvicorn) on a free port,
driven by Playwright through Debian's chromium (Playwright cannot download a browser here)."""

import os
import shutil
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from bml_site.running import RunningAppliance

ROOT = Path(__file__).resolve().parents[2]
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
    if not (ROOT / "static" / "vendor" / "echarts" / "echarts.min.js").exists():
        pytest.fail("static/vendor/ is missing: `make frontend` installs the console's libraries")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}


@pytest.fixture
def page(browser, appliance):
    """A page on the appliance with the network cut off: the console works offline (no CDN),
    so every request to another host is refused; `page.outside_requests` lists them."""
    context = browser.new_context(base_url=appliance.url, accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(30_000)
    page.outside_requests = []

    def only_local(route):
        url = route.request.url
        if urlsplit(url).scheme in ("http", "https", "ws", "wss") and (
            urlsplit(url).hostname not in LOCAL_HOSTS
        ):
            page.outside_requests.append(url)
            route.abort("internetdisconnected")
        else:
            route.continue_()

    context.route("**/*", only_local)
    yield page
    context.close()


def sign_in(page, username="admin", password=ADMIN_PASSWORD):
    page.goto("/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_url("**/projects/")
