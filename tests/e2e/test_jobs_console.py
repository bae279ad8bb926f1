import json
import re

import numpy as np
import pytest
from sklearn.datasets import load_digits

from tests.e2e.conftest import sign_in

pytestmark = pytest.mark.e2e


def test_create_a_job_from_the_template_watch_log_and_curve_then_open_its_output(page):
    sign_in(page)
    page.click("text=Object storage (BOS)")
    page.fill("input[name=name]", "e2e-jobs")
    page.click("text=Create bucket")
    page.wait_for_selector("text=Bucket bos://e2e-jobs/ created.")

    page.click("text=Job modeling")
    page.click("text=Create job")
    page.fill("input[name=name]", "template-job")
    page.fill("input[name=output_path]", "bos://e2e-jobs/out/")
    page.fill("textarea[name=code]", "print('replaced by the template')")
    page.select_option("#code-template", "pytorch_digits")
    assert "DistributedDataParallel" in page.input_value("textarea[name=code]")
    assert page.input_value("#framework") == "pytorch"
    page.click("button:text('Submit job')")
    page.wait_for_selector("text=Job template-job submitted")
    job_id = page.locator("h1 code").inner_text()
    # The badge follows the job without a reload (Queued -> Running), then the rest.
    page.wait_for_selector("#job-status:text('Running')", timeout=60_000)

    page.wait_for_function(
        "document.getElementById('log-0') && "
        "document.getElementById('log-0').textContent.includes('saved output/model.pt')",
        timeout=60_000,
    )
    # The curves are drawn while the job runs (BMLCharts, static/bml/charts.js).
    page.wait_for_selector("figure.chart[data-metric=loss] canvas", timeout=30_000)
    page.wait_for_selector("figure.chart[data-metric=acc] canvas", timeout=30_000)
    page.wait_for_selector("#job-status:text('Succeeded')", timeout=30_000)

    page.wait_for_selector("#release")  # the page drawn again for the ended job
    check_curve_hovers_and_zooms(page)
    assert page.outside_requests == []  # nothing from a CDN: the page works offline
    page.click("#output-link")  # the output path opens in the storage browser
    page.wait_for_url(re.compile(rf"/storage/e2e-jobs/\?prefix=out/{job_id}/$"))
    page.goto(f"/storage/e2e-jobs/?prefix=out/{job_id}/output/")
    page.wait_for_selector("#entries tr[data-key$='model.pt']")

    # The cycle: release with what the page fills in (TorchScript output/model.pt), deploy
    # from the version page, ask the service about a digit from its test console.
    page.goto(f"/jobs/{job_id}/")
    assert page.input_value("#release select[name=model_type]") == "pytorch"
    assert page.input_value("#release input[name=subpath]") == "output/model.pt"
    page.fill("#release input[name=name]", "template-digits")
    page.click("#release-button")
    page.wait_for_selector("text=Released as template-digits version 1.")
    assert page.get_attribute("#lineage-job", "href") == f"/jobs/{job_id}/"
    assert "accuracy" in page.inner_text("#lineage-metrics")
    page.click("#create-service")
    page.fill("input[name=name]", "template-digits")
    page.click("#service-form button:text('Confirm')")
    page.wait_for_selector("#service-status:text('In service')", timeout=120_000)
    digits = load_digits()
    page.fill("#test-body", json.dumps({"instances": digits.data[:10].tolist()}))
    page.click("#test-send")
    page.wait_for_selector("#test-status:text('200')")
    scores = json.loads(page.inner_text("#test-response"))["result"]
    right = sum(int(np.argmax(s)) == t for s, t in zip(scores, digits.target[:10], strict=True))
    assert right >= 8, scores


def drawn_points(page, metric):
    return page.evaluate(
        "m => BMLCharts.get(document.querySelector(`figure.chart[data-metric=${m}]`))"
        ".getOption().series.map(s => s.data.length)",
        metric,
    )


def check_curve_hovers_and_zooms(page):
    loss = "figure.chart[data-metric=loss]"
    page.wait_for_selector(f"{loss}[data-points] canvas")
    page.wait_for_selector("figure.chart[data-metric=acc][data-points] canvas")
    assert drawn_points(page, "loss")[0] > 1
    assert drawn_points(page, "acc")[0] > 1

    # Hovering the curve shows the value there.
    canvas = page.locator(f"{loss} canvas").first
    canvas.scroll_into_view_if_needed()
    box = canvas.bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    tooltip = page.locator(f"{loss} .bml-chart-tooltip")
    tooltip.wait_for(state="visible")
    assert "instance 0" in tooltip.inner_text()
    assert re.search(r"\d\.\d", tooltip.inner_text()), tooltip.inner_text()

    # Zooming narrows the visible steps; the reset shows them all again.
    zoom = f"() => BMLCharts.get(document.querySelector('{loss}')).getOption().dataZoom[0]"
    whole = page.evaluate(f"({zoom})().endValue - ({zoom})().startValue")
    page.evaluate(
        f"BMLCharts.get(document.querySelector('{loss}'))"
        ".dispatchAction({type: 'dataZoom', start: 0, end: 50})"
    )
    zoomed = page.evaluate(f"({zoom})()")
    assert (zoomed["start"], zoomed["end"]) == (0, 50)
    assert zoomed["endValue"] - zoomed["startValue"] < whole
    page.evaluate(
        f"BMLCharts.get(document.querySelector('{loss}'))"
        ".dispatchAction({type: 'dataZoom', start: 0, end: 100})"
    )
    assert page.evaluate(f"({zoom})().end") == 100
