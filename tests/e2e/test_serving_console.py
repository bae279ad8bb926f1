"""The spec's online prediction walk-through in a browser: import a scikit-learn model into
the warehouse, create a service from its version page, wait until it is in service, send a
request from the test console, then watch the service quality charts fill."""

import json
import re

import pytest

from tests.e2e.conftest import sign_in
from tests.warehouse.conftest import iris_joblib

pytestmark = pytest.mark.e2e


def test_deploy_a_model_test_it_and_see_its_quality(page, tmp_path):
    model_file = tmp_path / "iris.joblib"
    model_file.write_bytes(iris_joblib())
    sign_in(page)

    page.click("text=Model warehouse")
    page.click("text=Import model")
    page.fill("input[name=name]", "e2e_iris_service")
    page.select_option("select[name=model_type]", "sklearn")
    page.set_input_files("input[name=file]", str(model_file))
    page.click("#import-form button:text('OK')")
    page.wait_for_selector("text=Imported e2e_iris_service version 1: it loads.")

    # The version page offers the service with this model version chosen.
    page.click("#create-service")
    page.wait_for_selector("#service-form")
    assert page.locator("#model option:checked").inner_text() == "e2e_iris_service"
    assert page.input_value("#model-version") == "1"
    page.fill("input[name=name]", "e2e-iris")
    page.fill("input[name=replicas]", "2")
    page.click("#service-form button:text('Confirm')")
    page.wait_for_selector("text=Service e2e-iris created: deploying.")
    page.wait_for_selector("#service-status:text('In service')", timeout=120_000)
    assert page.inner_text("#versions tbody[data-version='1'] [data-field=running]") == "2"
    access_url = page.input_value("#access-url")
    assert re.match(r"http://127\.0\.0\.1:\d+/v1/endpoints/e2e-iris/invocations\?", access_url)

    # The test console sends the request from the browser, with the access key.
    assert json.loads(page.input_value("#test-body")) == {"instances": [[1.0, 1.0, 1.0, 1.0]]}
    page.fill("#test-body", json.dumps({"instances": [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]}))
    page.click("#test-send")
    page.wait_for_selector("#test-status:text('200')")
    answer = json.loads(page.inner_text("#test-response"))
    assert [item["label"] for item in answer["result"]] == [0, 2]
    assert "ms" in page.inner_text("#test-elapsed")
    assert page.inner_text("#test-version") == "answered by version 1"

    page.fill("#test-body", json.dumps({"instances": [[1.0, 2.0]]}))  # 2 features, not 4
    page.click("#test-send")
    page.wait_for_selector("#test-status:text('400')")
    assert "error" in json.loads(page.inner_text("#test-response"))

    # A replica's page shows its logs.
    page.click("[data-expand='replicas-v1'] >> nth=0")
    page.click("tr[data-replica='1-0'] a")
    page.wait_for_selector("#replica-status:text('Running')")
    assert page.inner_text("#log-stdout pre").startswith("ready ")
    page.go_back()

    # Service quality: the gateway adds its figures every second, the charts poll them.
    page.click("text=Service quality")
    page.wait_for_function(
        "Number(document.querySelector('#quality-totals [data-total=pv]').textContent) >= 2",
        timeout=30_000,
    )
    assert page.inner_text("#quality-totals [data-total=successRatio]") == "50.00%"
    # The charts are BMLCharts (ECharts on a canvas): what they draw is read from the wrapper.
    page.wait_for_selector("figure.chart[data-metric=pv][data-chart=line]")
    pv = drawn(page, "pv")
    assert pv["type"] == "line" and len({value for _, value in pv["data"]}) > 1  # not flat
    for metric in ("sumTraffic", "avgTraffic", "sumHandleTime", "avgHandleTime"):
        assert drawn(page, metric)["type"] == "line"
    # Hover values and the value axis speak the metric's unit.
    units = page.evaluate(
        """['avgTraffic', 'avgHandleTime'].map(m => {
            const option = BMLCharts.get(document.querySelector(`figure[data-metric=${m}]`))
                .getOption();
            return [option.tooltip[0].valueFormatter(2048),
                    option.yAxis[0].axisLabel.formatter(20)];
        })"""
    )
    assert units == [["2.0 KB", "20 B"], ["2048.0 ms", "20.0 ms"]]
    status = drawn(page, "status")
    assert status["type"] == "pie"
    assert sorted(slice["name"] for slice in status["data"]) == ["2xx", "4xx"]
    page.select_option("#chart-kind", "bar")
    page.wait_for_selector("figure.chart[data-metric=pv][data-chart=bar]")
    bars = drawn(page, "pv")
    assert bars["type"] == "bar" and len(bars["data"]) >= 60
    assert page.outside_requests == []  # ECharts is vendored: nothing from a CDN
    page.click("button[data-range='24h']")
    page.wait_for_selector("#quality-window:has-text('a point every 24 min')")
    assert int(page.inner_text("#quality-totals [data-total=pv]")) >= 2
    # A refused custom range says why and dims the charts of the last query.
    page.fill("#quality-start", "2026-01-02T20:00")
    page.fill("#quality-end", "2026-01-02T10:00")
    page.click("#quality-apply")
    page.wait_for_selector("#quality-error:has-text('The end must be after the start.')")
    assert "stale" in page.get_attribute("#quality", "class")
    page.click("button[data-range='1h']")
    page.wait_for_selector("#quality-error", state="hidden")
    assert "stale" not in (page.get_attribute("#quality", "class") or "")


def drawn(page, metric: str) -> dict:
    """The one series the chart of `metric` draws: its type and data, through BMLCharts."""
    return page.evaluate(
        """(metric) => {
          const figure = document.querySelector(`figure.chart[data-metric=${metric}]`);
          const series = BMLCharts.get(figure).getOption().series;
          return { count: series.length, type: series[0].type, data: series[0].data };
        }""",
        metric,
    )
