"""The spec's "continuous cycle" in a browser, from a fresh project: data standardization, then
logistic regression, KMeans and GBDT jobs from the console's form; each succeeded job released
to the warehouse with the type and path its page fills in, its version page showing the job
and metrics it came from, deployed from there as an online prediction service, and asked
about a raw sample line in the job's own input format from the service's test console."""

import json

import pytest
from sklearn.datasets import load_iris

from tests.e2e.conftest import sign_in

pytestmark = pytest.mark.e2e

BUCKET = "e2e-cycle"
# A virginica flower (iris row 100) as the standardization job read it: "No,label,values",
# the label left empty as in a prediction file.
VIRGINICA = "p1,,6.3,3.3,6.0,2.5"


def two_iris_species() -> str:
    """versicolor vs virginica, DENSE "No,label,f1,...,f4" lines (the spec's input format)."""
    data = load_iris()
    lines = [
        ",".join([f"s{i}", str(data.target_names[t]), *map(str, x)])
        for i, (x, t) in enumerate(zip(data.data, data.target, strict=True))
        if t > 0
    ]
    return "\n".join(lines) + "\n"


def submit_ml_job(page, algorithm: str, name: str, fields: dict) -> str:
    page.goto(f"/jobs/new-ml/?algorithm={algorithm}")
    page.fill("input[name=name]", name)
    for field, value in fields.items():
        page.fill(f"input[name={field}]", value)
    page.fill("input[name=output_path]", f"bos://{BUCKET}/ml/")
    page.click("button:text('Submit job')")
    page.wait_for_selector(f"text=Job {name} submitted")
    page.wait_for_selector("#job-status:text('Succeeded')", timeout=120_000)
    page.wait_for_selector("#results")  # the page drawn again for the ended job
    return page.locator("h1 code").inner_text()


def release_and_deploy(page, model_name: str, model_type: str, metric: str | None) -> None:
    """From a succeeded job's page: release with what the page fills in, check the version's
    lineage, create a service from the version page and wait until it is in service."""
    job_id = page.locator("h1 code").inner_text()
    assert page.input_value("#release select[name=model_type]") == model_type
    assert page.input_value("#release input[name=subpath]") == "model/"
    page.fill("#release input[name=name]", model_name)
    page.click("#release-button")
    page.wait_for_selector(f"text=Released as {model_name} version 1.")
    assert page.get_attribute("#lineage-job", "href") == f"/jobs/{job_id}/"
    if metric:
        assert metric in page.inner_text("#lineage-metrics")
    assert "train_data_path" in page.inner_text("#lineage")

    page.click("#create-service")
    page.wait_for_selector("#service-form")
    page.fill("input[name=name]", model_name)
    page.click("#service-form button:text('Confirm')")
    page.wait_for_selector(f"text=Service {model_name} created: deploying.")
    page.wait_for_selector("#service-status:text('In service')", timeout=120_000)
    assert "No,label,features" in page.inner_text("#model-io")


def ask(page, instance) -> dict:
    page.fill("#test-body", json.dumps({"instances": [instance]}))
    page.click("#test-send")
    page.wait_for_selector("#test-status:text('200')")
    return json.loads(page.inner_text("#test-response"))["result"][0]


def test_standardize_then_lr_kmeans_gbdt_released_deployed_and_asked(page, tmp_path):
    sign_in(page)
    page.fill("input[name=name]", "e2e-cycle")
    page.click("text=Create project")
    page.wait_for_selector("text=Project 'e2e-cycle' created.")
    page.click("text=Object storage (BOS)")
    page.fill("input[name=name]", BUCKET)
    page.click("text=Create bucket")
    page.wait_for_selector(f"text=Bucket bos://{BUCKET}/ created.")
    page.click(f"a:text('{BUCKET}')")
    samples = tmp_path / "iris2.csv"
    samples.write_text(two_iris_species())
    page.set_input_files("#upload-input", str(samples))
    page.wait_for_selector("#entries tr[data-key='iris2.csv']")

    standardized = submit_ml_job(
        page, "standardize", "cycle-std", {"train_data_path": f"bos://{BUCKET}/iris2.csv"}
    )
    assert page.locator("#release").count() == 0  # standardized data is not a model
    data = f"bos://{BUCKET}/ml/{standardized}/data/"

    # Logistic regression: probability and the original label of a raw sample line.
    submit_ml_job(
        page,
        "logistic_regression",
        "cycle-lr",
        {"train_data_path": data, "test_data_path": data, "l2": "0.01"},
    )
    release_and_deploy(page, "cycle-lr", "bml_logistic_regression", "auc")
    assert json.loads(page.input_value("#test-body"))["instances"] == [",,1,1,1,1"]
    answer = ask(page, VIRGINICA)
    assert answer["label"] == "virginica" and answer["probability"] > 0.5
    assert answer["no"] == "p1"

    # KMeans: the cluster and the distance to its center.
    submit_ml_job(page, "kmeans", "cycle-km", {"train_data_path": data, "k": "2"})
    release_and_deploy(page, "cycle-km", "bml_kmeans", None)
    answer = ask(page, VIRGINICA)
    assert answer["cluster"] in (0, 1) and answer["distance"] >= 0

    # GBDT: the label with its probability.
    gbdt = submit_ml_job(
        page,
        "gbdt",
        "cycle-gbdt",
        {"train_data_path": data, "test_data_path": data, "num_round": "20"},
    )
    release_and_deploy(page, "cycle-gbdt", "bml_gbdt", "auc")
    answer = ask(page, [6.3, 3.3, 6.0, 2.5])  # the values alone work too
    assert answer["label"] == "virginica"

    # The job page lists what it released, linking to the version.
    page.goto(f"/jobs/{gbdt}/")
    page.wait_for_selector("#released a:text('cycle-gbdt v1')")
