"""The spec's AutoML flow in a browser: raw samples uploaded to a bucket, an AutoML
logistic regression job created from the console's form on two instances, its Search box
(trial table sorted by a click, AUC per trial with the best so far, each parameter against
the AUC, importances) drawn from the API, and the best model one click from the
warehouse."""

import numpy as np
import pytest

from tests.e2e.conftest import sign_in

pytestmark = pytest.mark.e2e

BUCKET = "e2e-automl"


def samples(rows: int, seed: int) -> str:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(rows, 6))
    y = (X @ np.array([1.5, -1, 0.5, 0, 0, 0.2]) + rng.normal(size=rows) > 0).astype(int)
    lines = (f",{label}," + ",".join(f"{v:.5f}" for v in x) for x, label in zip(X, y, strict=True))
    return "\n".join(lines) + "\n"


def test_create_an_automl_job_and_read_its_search(page, tmp_path):
    sign_in(page)
    page.click("text=Object storage (BOS)")
    page.fill("input[name=name]", BUCKET)
    page.click("text=Create bucket")
    page.wait_for_selector(f"text=Bucket bos://{BUCKET}/ created.")
    page.click(f"a:text('{BUCKET}')")
    for name, rows, seed in (("tune-train", 300, 1), ("tune-test", 200, 2), ("all", 500, 3)):
        path = tmp_path / f"{name}.csv"
        path.write_text(samples(rows, seed))
        page.set_input_files("#upload-input", str(path))
        page.wait_for_selector(f"#entries tr[data-key='{name}.csv']")

    page.click("text=AutoML jobs")
    page.click("text=Create job")
    assert page.input_value("input[name=instances]") == "2"
    page.fill("input[name=name]", "autolr-e2e")
    page.fill("input[name=l1_low]", "1e-5")
    page.fill("input[name=trials]", "12")
    page.fill("input[name=iterations_high]", "40")
    page.fill("input[name=train_data_path]", f"bos://{BUCKET}/tune-train.csv")
    page.fill("input[name=test_data_path]", f"bos://{BUCKET}/tune-test.csv")
    page.fill("input[name=model_train_data_path]", f"bos://{BUCKET}/all.csv")
    page.fill("input[name=output_path]", f"bos://{BUCKET}/automl/")
    page.click("button:text('Submit job')")
    page.wait_for_selector("text=Job autolr-e2e submitted")
    page.wait_for_selector("#job-status:text('Succeeded')", timeout=180_000)

    # The Search box: 12 trials in the table, the best first (sorted by AUC, descending).
    page.wait_for_selector("#trials tbody tr >> nth=11")
    assert "12 of 12 trials" in page.inner_text("#search-summary")
    aucs = page.eval_on_selector_all(
        "#trials tbody tr[data-state=COMPLETE] td:nth-child(5)",
        "cells => cells.map(c => +c.textContent)",
    )
    assert aucs == sorted(aucs, reverse=True) and page.locator("#trials tr.best").count() == 1
    page.click("#trials th[data-column=trial]")
    trials = page.eval_on_selector_all(
        "#trials tbody tr", "rows => rows.map(r => +r.dataset.trial)"
    )
    assert trials == list(range(12))

    # The charts are BMLCharts: read back what they were given.
    progress = page.locator("figure[data-search=progress]")
    assert progress.get_attribute("data-chart") == "scatter"
    series = page.evaluate(
        """() => BMLCharts.get(document.querySelector('figure[data-search=progress]'))
            .getOption().series.map(s => [s.name, s.data.length])"""
    )
    names = [name for name, _ in series]
    assert names == ["finished", "pruned (last epoch scored)", "best so far"]
    for name in ("l1", "l2", "iterations"):
        assert page.locator(f"figure[data-search=param-{name}][data-chart=scatter]").count() == 1
    page.wait_for_selector("figure[data-search=importances][data-chart=bar]")
    assert page.outside_requests == []

    # One click from the warehouse: the release form is filled in for the served type.
    assert page.input_value("#release select[name=model_type]") == "bml_logistic_regression"
    assert page.input_value("#release input[name=subpath]") == "model/"
    assert page.locator("button:text('Resume')").count() == 0  # it succeeded
