"""The spec's notebook walk-through in a browser: create an instance with the CPU package,
wait until it runs, open JupyterLab through the appliance's own port, run a cell in a new
notebook, submit a demo notebook as a deep learning job, then stop and delete the instance
(Jupyter servers outlive the appliance by design, so none may be left running)."""

import re
import time

import pytest

from tests.e2e.conftest import sign_in

pytestmark = pytest.mark.e2e


def test_create_an_instance_run_a_cell_in_jupyterlab_and_submit_a_notebook_as_a_job(page, tmp_path):
    name = f"e2e-nb-{int(time.time()) % 100000}"
    sign_in(page)

    page.click(".sidenav >> text=Notebook")
    page.wait_for_url("**/workarea/")
    page.click("text=Create instance")
    page.fill("input[name=name]", name)
    assert "CPU" in page.locator("select[name=package] option:checked").inner_text()
    page.click("#notebook-form button:text('Create')")
    page.wait_for_url(re.compile(r"/workarea/\d+/$"))
    detail_url = page.url
    pk = re.search(r"/workarea/(\d+)/$", detail_url).group(1)
    try:
        # The badge polls and the page reloads once the instance has settled.
        page.wait_for_selector("#notebook [data-role=status]:text-is('Running')", timeout=120_000)
        open_link = page.locator("#open-jupyter")
        assert open_link.is_visible()
        assert open_link.get_attribute("href") == f"/notebooks/{pk}/lab"
        assert open_link.get_attribute("target") == "_blank"

        with page.context.expect_page() as new:
            open_link.click()
        lab = new.value
        lab.set_default_timeout(30_000)
        run_a_cell_in_jupyterlab(lab, tmp_path)
        lab.close()

        # Back in the console: a demo notebook becomes the deep learning job form.
        page.reload()
        row = page.locator("#notebook-files tr", has_text="demo/02_train_a_model.ipynb")
        row.locator("button:text('Submit as job')").click()
        page.wait_for_selector(f"text=Code converted from the notebook {name}:demo/02_train")
        code = page.input_value("textarea[name=code]")
        assert "partial_fit" in code
        assert "bml.report" in code
        assert page.input_value("input[name=name]") == "train_a_model"

        # Stop: the badge follows the instance to "Stopped" without a manual reload.
        page.goto(detail_url)
        page.click("#notebook button:text-is('Stop')")
        page.wait_for_selector(f"text=Instance {name} is stopping")
        page.wait_for_selector("#notebook [data-role=status]:text-is('Stopped')", timeout=60_000)
        assert page.locator("#open-jupyter").is_hidden()
        assert page.locator("#notebook button:text-is('Run')").is_visible()
        assert page.request.get(f"/notebooks/{pk}/api/status").status == 503
    finally:
        # Delete in any case: a failed run must not leave a Jupyter server behind.
        page.goto(detail_url)
        page.once("dialog", lambda dialog: dialog.accept())
        page.click("#notebook button:text-is('Delete')")
        page.wait_for_url("**/workarea/")
    assert page.locator(f"#notebooks tr[data-notebook='{name}']").count() == 0
    assert page.request.get(detail_url).status == 404


def run_a_cell_in_jupyterlab(lab, tmp_path):
    # The first load fetches ~15 MB of JupyterLab's scripts through the proxy.
    lab.wait_for_selector(".jp-Launcher", timeout=120_000)
    folders = lab.locator(".jp-DirListing-item[data-isdir='true'] .jp-DirListing-itemText")
    folders.get_by_text("demo", exact=True).wait_for()

    lab.click(".jp-LauncherCard[data-category='Notebook']")
    lab.wait_for_selector(".jp-NotebookPanel .jp-Cell .cm-content")
    # Wait for the kernel (the status bar's "Python 3 (ipykernel) | Idle"): a cell run before
    # the session has its kernel is silently not run.
    kernel_status = lab.locator(".jp-StatusBar-TextItem", has_text=re.compile(r"\| Idle$"))
    kernel_status.wait_for(timeout=60_000)
    lab.click(".jp-NotebookPanel .jp-Cell .cm-content")
    lab.keyboard.type("print(6 * 7)")
    lab.keyboard.press("Shift+Enter")
    output = lab.locator(".jp-NotebookPanel .jp-OutputArea-output").first
    output.wait_for(timeout=60_000)
    assert output.inner_text().strip() == "42"
    # The appliance is offline: JupyterLab must not ask whether to fetch its news.
    assert lab.get_by_text("official Jupyter news").count() == 0
    lab.screenshot(path=str(tmp_path / "jupyterlab.png"))
