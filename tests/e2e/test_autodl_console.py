"""The spec's AutoDL flow in a browser (issue 22): photos uploaded to a bucket as zips, an
image sorting job by transfer learning and one by ENAS created from the console's form; on
each job page the data report, the training curves drawn as they come and the confusion
matrix; for ENAS the best architecture drawn as a graph and the tuning result against a
random architecture; each model released to the warehouse with what its page fills in,
deployed from the version page, and sent a photo from the service page's test console,
which answers the spec's {"result": "[[3 logits]]"}."""

import io
import json
import re

import pytest
from PIL import Image, ImageDraw

from tests.e2e.conftest import sign_in
from tests.workers.test_autodl_enas import TINY, enas_photos_zip
from tests.workers.test_autodl_transfer import shapes_zip

pytestmark = pytest.mark.e2e

BUCKET = "e2e-autodl"
CLASSES = ["circle", "square", "triangle"]
TRANSFER = {"epochs": "2", "image_size": "64", "batch_size": "16"}
# The form's fields of the unit tests' tiny search (derive_samples and seed are not on it).
ENAS_FIELDS = ("image_size", "layers", "channels", "search_rounds", "controller_steps")
ENAS_FIELDS += ("final_epochs", "random_baselines", "batch_size")
ENAS = {name: str(TINY[name]) for name in ENAS_FIELDS}
TRANSFER_CURVES = ("train_loss", "train_acc", "val_loss", "val_acc")
ENAS_ROUND_CURVES = ("shared_loss", "shared_acc", "controller_reward", "controller_entropy")
ENAS_EPOCH_CURVES = ("retrain_loss", "retrain_acc", "retrain_val_acc")


def a_circle_png(path):
    image = Image.new("RGB", (120, 120), (230, 220, 200))
    ImageDraw.Draw(image).ellipse((20, 25, 95, 100), fill=(40, 60, 90))
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    path.write_bytes(buffer.getvalue())
    return path


def submit_autodl_job(page, algorithm: str, name: str, data: str, fields: dict) -> str:
    """From the navigation: AutoDL jobs, Create job, the algorithm chosen on the form."""
    page.click(".sidenav >> text=AutoDL jobs")
    page.click("text=Create job")
    page.select_option("#algorithm-choice select[name=algorithm]", algorithm)  # reloads
    page.wait_for_selector(
        f"#ml-job-form input[name=algorithm][value={algorithm}]", state="attached"
    )
    page.fill("input[name=name]", name)
    for field, value in fields.items():
        page.fill(f"#ml-job-form input[name={field}]", value)
    page.fill("input[name=train_data_path]", data)
    page.fill("input[name=output_path]", f"bos://{BUCKET}/autodl/")
    page.click("button:text('Submit job')")
    page.wait_for_selector(f"text=Job {name} submitted")
    return page.locator("h1 code").inner_text()


def points(page, metric: str) -> int:
    return int(page.get_attribute(f"#curves figure.chart[data-metric={metric}]", "data-points"))


def wait_for_curve(page, metric: str, timeout: int) -> None:
    page.wait_for_function(
        """(metric) => {
          const figure = document.querySelector(`#curves figure.chart[data-metric=${metric}]`);
          return figure && figure.dataset.chart === "line" && +figure.dataset.points > 0;
        }""",
        arg=metric,
        timeout=timeout,
    )


def wait_until_succeeded(page, photos: int, timeout: int) -> None:
    """The page draws itself again once the job has ended: the data report, the confusion
    matrix and the release form are the server's, read from the run's log folder."""
    page.wait_for_selector("#job-status:text('Succeeded')", timeout=timeout)
    page.wait_for_selector(f"#data-report >> text={photos} photos in 3 classes")
    page.wait_for_selector("#release-form", state="attached")
    rows = page.eval_on_selector_all(
        "#data-classes tbody tr", "rows => rows.map(r => [r.dataset.class, +r.cells[1].innerText])"
    )
    assert rows == [[name, photos // 3] for name in CLASSES]
    assert page.locator("#confusion tbody tr").count() == 3


def release_deploy_and_send_a_photo(page, name: str, model_type: str, fields: dict, png) -> None:
    """Release with what the job page fills in, create a service from the version page, and
    send a photo from the service page's test console: the spec's answer, 3 logits as text."""
    job_id = page.locator("h1 code").inner_text()
    assert page.input_value("#release select[name=model_type]") == model_type
    assert page.input_value("#release input[name=subpath]") == "model/"
    assert json.loads(page.input_value("#release input[name=fields]")) == fields
    page.fill("#release input[name=name]", name)
    page.click("#release-button")
    page.wait_for_selector(f"text=Released as {name} version 1.", timeout=120_000)
    assert page.get_attribute("#lineage-job", "href") == f"/jobs/{job_id}/"

    page.click("#create-service")
    page.wait_for_selector("#service-form")
    page.fill("input[name=name]", name)
    page.click("#service-form button:text('Confirm')")
    page.wait_for_selector(f"text=Service {name} created: deploying.")
    page.wait_for_selector("#service-status:text('In service')", timeout=180_000)

    # An image model's test console: the chosen photo goes base64-encoded into the body.
    page.set_input_files("#test-image", str(png))
    page.wait_for_function(
        "document.querySelector('#test-body').value.includes('\"data\"')", timeout=10_000
    )
    body = json.loads(page.input_value("#test-body"))
    assert list(body) == ["instances"] and len(body["instances"]) == 1
    page.click("#test-send")
    page.wait_for_selector("#test-status:text('200')", timeout=60_000)
    answer = json.loads(page.inner_text("#test-response"))
    assert list(answer) == ["result"] and isinstance(answer["result"], str)
    logits = json.loads(answer["result"])
    assert len(logits) == 1 and len(logits[0]) == 3
    assert all(isinstance(score, float) for score in logits[0])


def test_transfer_learning_and_enas_jobs_from_the_console_to_a_service(page, tmp_path):
    sign_in(page)
    page.click("text=Object storage (BOS)")
    page.fill("input[name=name]", BUCKET)
    page.click("text=Create bucket")
    page.wait_for_selector(f"text=Bucket bos://{BUCKET}/ created.")
    page.click(f"a:text('{BUCKET}')")
    shapes = shapes_zip(tmp_path / "shapes.zip", per_class=25)  # 64 px photos
    enas_photos = enas_photos_zip(tmp_path / "enas-shapes.zip")  # 100-115 KB each
    for archive in (shapes, enas_photos):
        page.set_input_files("#upload-input", str(archive))
        page.wait_for_selector(f"#entries tr[data-key='{archive.name}']", timeout=60_000)
    png = a_circle_png(tmp_path / "circle.png")

    # Both jobs from the form, the transfer one first (the shorter): they run side by side.
    transfer = submit_autodl_job(
        page, "transfer_learning", "shapes-transfer", f"bos://{BUCKET}/shapes.zip", TRANSFER
    )
    enas = submit_autodl_job(page, "enas", "shapes-enas", f"bos://{BUCKET}/enas-shapes.zip", ENAS)

    # ENAS: the page follows the search; the curves and the architecture come as it goes.
    assert page.locator("#enas").count() == 1
    wait_for_curve(page, "controller_reward", timeout=240_000)
    page.wait_for_selector("#enas-architecture[data-chart=graph]", timeout=240_000)
    wait_until_succeeded(page, photos=150, timeout=300_000)
    for metric in ENAS_ROUND_CURVES + ENAS_EPOCH_CURVES:
        wait_for_curve(page, metric, timeout=30_000)
    for metric in ENAS_ROUND_CURVES:
        assert points(page, metric) == TINY["search_rounds"]
    for metric in ENAS_EPOCH_CURVES:
        assert points(page, metric) == TINY["final_epochs"]

    # The architecture found, drawn: image, stem, the searched layers, reductions, the head.
    page.wait_for_selector("#enas-architecture[data-chart=graph]")
    figure = page.locator("#enas-architecture")
    assert int(figure.get_attribute("data-points")) >= TINY["layers"] + 3
    described = page.inner_text("#enas-architecture figcaption code")
    assert figure.get_attribute("data-architecture") == described
    drawn = page.evaluate(
        """() => {
          const option = BMLCharts.get(document.querySelector('#enas-architecture')).getOption();
          const series = option.series[0];
          return {title: option.title[0].text, nodes: series.data.map(n => n.name),
                  links: series.links.map(l => [l.source, l.target])};
        }"""
    )
    assert drawn["title"] == "Architecture found"
    assert drawn["nodes"][0] == "image" and drawn["nodes"][-1] == "global avg pool + dense"
    layers = [node for node in drawn["nodes"] if re.match(r"\d+: ", node)]  # "0: sep 3x3"
    assert len(layers) == TINY["layers"]
    assert len(drawn["links"]) >= len(drawn["nodes"]) - 1  # the main path, and any skips
    assert "stage: done" in page.inner_text("#enas-summary")
    assert page.locator("#enas-final tr[data-name='ENAS']").count() == 1
    assert page.locator("#enas-final tr[data-name='random 1']").count() == 1
    assert page.locator("#enas-final tr[data-name='ENAS'] code").inner_text() == described
    assert "random architectures" in page.inner_text("#enas-fairness")
    release_deploy_and_send_a_photo(page, "shapes-enas", "keras", {"output": "logits"}, png)

    # Transfer learning: its page, its curves per epoch, released as an image classifier.
    page.goto(f"/jobs/{transfer}/")
    wait_until_succeeded(page, photos=75, timeout=300_000)
    for metric in TRANSFER_CURVES:
        wait_for_curve(page, metric, timeout=30_000)
        assert points(page, metric) == 2
    assert page.locator("#enas").count() == 0
    assert page.locator("#data-classes tr[data-class=circle] td").all_inner_texts() == [
        "circle",
        "25",
        "20",
        "5",
    ]
    release_deploy_and_send_a_photo(
        page,
        "shapes-transfer",
        "image_classification",
        {"image_size": 64, "output": "logits"},
        png,
    )

    page.goto(f"/jobs/{enas}/")
    page.wait_for_selector("#released a:text('shapes-enas v1')")
    assert page.outside_requests == []
