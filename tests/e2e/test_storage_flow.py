import contextlib
import hashlib
import os

import httpx
import pytest

from tests.e2e.conftest import ADMIN_PASSWORD, sign_in

pytestmark = pytest.mark.e2e


def test_sign_in_create_project_and_bucket_upload_with_progress_and_download(
    page, appliance, tmp_path
):
    sign_in(page)

    # A new project becomes the current one.
    page.fill("input[name=name]", "e2e-project")
    page.click("text=Create project")
    page.wait_for_selector("text=Project 'e2e-project' created.")
    assert page.locator("#project-select option:checked").inner_text() == "e2e-project"

    page.click("text=Object storage (BOS)")
    page.fill("input[name=name]", "e2e-bucket")
    page.click("text=Create bucket")
    page.wait_for_selector("text=Bucket bos://e2e-bucket/ created.")
    page.click("a:text('e2e-bucket')")

    payload = os.urandom(200 * 1024 * 1024 + 7)  # the 200 MB, many multipart parts
    source = tmp_path / "weights.bin"
    source.write_bytes(payload)
    page.set_input_files("#upload-input", str(source))
    row = page.locator("#uploads li[data-file='weights.bin']")
    row.locator("progress").wait_for()
    row.locator(".state.done").wait_for(timeout=60_000)
    assert row.locator("progress").get_attribute("value") == "100"

    page.wait_for_selector("#entries tr[data-key='weights.bin']")  # the page reloads
    with page.expect_download() as download_info:
        page.click("#entries a:text('weights.bin')")
    downloaded = tmp_path / "downloaded.bin"
    download_info.value.save_as(downloaded)
    assert hashlib.sha256(downloaded.read_bytes()).digest() == hashlib.sha256(payload).digest()

    # The same object is listed through the API.
    with contextlib.closing(appliance.login()) as api:
        listing = api.get("/api/v1/buckets/e2e-bucket/objects/").json()
    assert [(e["key"], e["size"]) for e in listing] == [("weights.bin", len(payload))]


def test_wrong_password_is_refused_plainly(page):
    page.goto("/login/")
    page.fill("input[name=username]", "admin")
    page.fill("input[name=password]", ADMIN_PASSWORD + "x")
    page.click("button[type=submit]")
    page.wait_for_selector("text=Wrong username or password.")


def test_healthz_of_the_running_appliance(appliance):
    report = httpx.get(appliance.url + "/healthz", timeout=10).json()
    assert report["database"]["ok"] and report["object_store"]["ok"]


def test_project_switcher_changes_the_current_project(page):
    sign_in(page)
    page.fill("input[name=name]", "switch-target")
    page.click("text=Create project")
    page.wait_for_selector("text=Project 'switch-target' created.")
    page.click("text=Object storage (BOS)")
    assert "project switch-target" in page.locator("h1").inner_text()

    page.select_option("#project-select", label="default")  # submits on change
    page.wait_for_selector("text=Switched to project 'default'.")
    assert "project default" in page.locator("h1").inner_text()  # stayed on the same page
    assert page.locator("#project-select option:checked").inner_text() == "default"
