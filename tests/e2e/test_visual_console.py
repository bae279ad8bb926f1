"""The spec's visual modeling in a browser: on the public iris data set, data set -> split ->
multi-class logistic regression -> prediction -> multi-class evaluation, built by dragging
from the palette and connecting ports with the mouse; fields chosen from the upstream
schema; saved, run (every node succeeded), its metrics (the confusion matrix) and output
data viewed; C changed and run again (only the regression and what follows it run); the
two versions compared in the history; the model released, deployed through the serving API
and asked for a prediction. Runs on the `page` fixture: nothing outside the appliance."""

import json
import time

import pytest

from tests.e2e.conftest import sign_in

pytestmark = pytest.mark.e2e

FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
# component, drop position on the canvas (its node's top left); they become n1..n5. The
# canvas is about 930 px wide here (the palette and the settings panel beside it): 190-px
# nodes in a zigzag that stays inside it.
NODES = [
    ("dataset", 20, 60),
    ("split", 250, 60),
    ("logistic_regression_multiclass", 480, 20),
    ("predict", 480, 200),
    ("evaluate_multiclass", 710, 200),
]
# (from node, its output port) -> (to node, its input port)
EDGES = [
    ("n1", "table", "n2", "table"),
    ("n2", "train", "n3", "table"),
    ("n3", "model", "n4", "model"),
    ("n2", "test", "n4", "table"),
    ("n4", "table", "n5", "table"),
]
ALL = ["n1", "n2", "n3", "n4", "n5"]


def node(nid: str) -> str:
    return f"#graph-canvas .drawflow-node[data-node={nid}]"


def drag_port(page, source: str, target: str) -> None:
    """Mouse down on an output port, move onto an input port, let go (Drawflow connects)."""
    a = page.locator(source).bounding_box()
    b = page.locator(target).bounding_box()
    page.mouse.move(a["x"] + a["width"] / 2, a["y"] + a["height"] / 2)
    page.mouse.down()
    page.mouse.move(b["x"] + b["width"] / 2, b["y"] + b["height"] / 2, steps=10)
    page.mouse.up()


def select_node(page, nid: str, tab: str) -> None:
    page.click(f"{node(nid)} .graph-node-title")
    page.wait_for_selector(f"#settings-title:has-text('{nid}')")
    page.click(f"#settings-node [data-tab={tab}]")
    page.wait_for_selector(f"#settings-form[data-tab={tab}]")


def wait_for_statuses(page, statuses: dict, timeout: int = 240_000) -> None:
    page.wait_for_function(
        """(want) => Object.entries(want).every(([id, status]) => {
          const el = document.querySelector(`#graph-canvas .drawflow-node[data-node=${id}]`);
          return el && el.dataset.status === status;
        })""",
        arg=statuses,
        timeout=timeout,
    )


def api(page, method: str, path: str, body=None, headers=None):
    csrf = next(c["value"] for c in page.context.cookies() if c["name"] == "csrftoken")
    options = {"headers": {"X-CSRFToken": csrf, **(headers or {})}}
    if body is not None:
        options["data"] = json.dumps(body)
        options["headers"]["Content-Type"] = "application/json"
    response = page.request.fetch(path, method=method, **options)
    return response.status, (response.json() if response.body() else None)


def context_menu(page, nid: str, item: str) -> None:
    """Right-click a node (an open data/report panel below the canvas closed first, and the
    page back at its top, as a user would scroll back up to the canvas)."""
    if page.is_visible("#node-panel"):
        page.click("#panel-close")
    page.evaluate("window.scrollTo(0, 0)")
    before = page.locator(node(nid)).bounding_box()
    page.click(f"{node(nid)} .graph-node-title", button="right")
    page.click(f"#node-menu [data-menu={item}]")
    assert page.locator(node(nid)).bounding_box() == before, "a right-click never drags"


def test_iris_pipeline_built_run_changed_compared_released_and_served(page):
    page.set_viewport_size({"width": 2100, "height": 1100})
    sign_in(page)
    page.click(".sidenav >> text=Visual modeling")
    page.fill("#create-experiment input[name=name]", "iris-visual")
    page.fill("#create-experiment input[name=description]", "Iris species by logistic regression")
    page.click("#create-experiment button[type=submit]")
    page.wait_for_url("**/visual/*/")
    page.wait_for_function("window.BMLVisual && window.BMLVisual.graph")
    config = page.evaluate("BMLVisual.config")
    base = f"/api/v1/visual-experiments/{config['experiment']}/"

    # Five components dragged from the palette, in their columns.
    for name, x, y in NODES:
        page.drag_and_drop(
            f"#graph-palette [data-component={name}]",
            "#graph-canvas",
            target_position={"x": x, "y": y},
        )
    page.wait_for_selector(f"{node('n5')}")
    assert page.locator("#graph-canvas .drawflow-node").count() == 5
    lefts = page.evaluate(
        "[...document.querySelectorAll('#graph-canvas .drawflow-node')]"
        ".map(e => Math.round(e.getBoundingClientRect().left))"
    )
    assert lefts[3] < lefts[4], "each node lands where it was dropped"
    assert page.get_attribute(f"{node('n2')} .output[data-port=test]", "data-kind") == "table"
    assert page.get_attribute(f"{node('n3')} .output[data-port=model]", "data-kind") == "model"

    # A model output onto a table input is refused on the spot.
    drag_port(page, f"{node('n3')} .output[data-port=model]", f"{node('n5')} .input")
    page.wait_for_selector("#visual-message:has-text('cannot feed')")
    assert page.evaluate("BMLVisual.graph.toGraph().edges.length") == 0

    for a, out, b, inp in EDGES:
        drag_port(page, f"{node(a)} .output[data-port={out}]", f"{node(b)} .input[data-port={inp}]")
    page.wait_for_function("BMLVisual.graph.toGraph().edges.length === 5")
    assert sorted(
        (e["from"], e["from_port"], e["to"], e["to_port"])
        for e in page.evaluate("BMLVisual.graph.toGraph().edges")
    ) == sorted(EDGES)
    assert page.locator("#save-button.unsaved").count() == 1

    # Settings: the public iris; the regression's features and label from the upstream
    # schema (with types); the evaluation's label and prediction columns.
    select_node(page, "n1", "parameters")
    page.select_option("#settings-form select[name=dataset]", label="iris (public)")
    select_node(page, "n3", "fields")
    page.wait_for_selector(
        "#settings-form [data-param=features] input[value=petal_width]", timeout=15_000
    )
    assert "float" in page.inner_text("#settings-form [data-param=features]")
    for feature in FEATURES:
        page.check(f"#settings-form [data-param=features] input[value={feature}]")
    page.select_option("#settings-form label[data-param=label] select", "species")
    select_node(page, "n5", "fields")
    page.wait_for_selector(
        "#settings-form label[data-param=prediction] option[value=prediction_result]",
        state="attached",
        timeout=15_000,
    )
    page.select_option("#settings-form label[data-param=label] select", "species")
    page.select_option("#settings-form label[data-param=prediction] select", "prediction_result")
    params = {n["id"]: n["params"] for n in page.evaluate("BMLVisual.graph.toGraph().nodes")}
    assert params["n3"] == {"features": FEATURES, "label": "species"}

    page.click("#save-button")
    page.wait_for_selector("#visual-message:text('Saved.')")
    assert page.locator("#save-button.unsaved").count() == 0
    status, saved = api(page, "GET", base)
    assert status == 200 and len(saved["graph"]["nodes"]) == 5

    # Run: every node succeeds.
    page.click("#run-button")
    wait_for_statuses(page, dict.fromkeys(ALL, "succeeded"))
    page.wait_for_selector("#run-status[data-status=succeeded]")

    # The evaluation's report: its metrics and the confusion matrix (3 species).
    context_menu(page, "n5", "data")
    page.wait_for_selector("#report-confusion")
    assert page.locator("#report-confusion tbody tr").count() == 3
    assert "accuracy" in page.inner_text("#report-metrics")
    # The prediction's output rows with their schema and statistics.
    context_menu(page, "n4", "data")
    page.wait_for_selector("#data-rows tbody tr")
    assert "prediction_result" in page.inner_text("#data-rows thead")
    assert "sepal_length" in page.inner_text("#data-stats")

    # C changed: only the regression, the prediction and the evaluation run again.
    select_node(page, "n3", "parameters")
    page.fill("#settings-form input[name=C]", "0.5")
    page.press("#settings-form input[name=C]", "Tab")
    page.wait_for_selector("#save-button.unsaved")
    page.click("#run-button")  # saves first
    page.wait_for_selector("#run-status:has-text('Run #2')")
    page.wait_for_selector("#run-status[data-status=succeeded]", timeout=240_000)
    status, second = api(page, "GET", f"{base}runs/2/")
    assert status == 200 and second["status"] == "succeeded"
    nodes = second["nodes"]
    for nid in ("n3", "n4", "n5"):
        assert nodes[nid]["status"] == "succeeded" and nodes[nid]["cached_from_run"] is None
        assert nodes[nid]["job_id"]
    for nid in ("n1", "n2"):
        ran = nodes[nid]["status"] == "succeeded" and nodes[nid]["job_id"]
        assert nodes[nid]["status"] in ("cached", "succeeded") and not ran, nodes[nid]
    assert nodes["n3"]["params"]["C"] == 0.5
    wait_for_statuses(page, {nid: nodes[nid]["status"] for nid in ALL}, timeout=10_000)

    # History: two versions, compared side by side; the changed C stands out.
    page.click("#history-button")
    page.wait_for_selector("#history tbody tr[data-run='2']")
    assert page.locator("#history tbody tr").count() == 2
    page.check("#history tr[data-run='1'] input[type=checkbox]")
    page.check("#history tr[data-run='2'] input[type=checkbox]")
    page.click("#compare-button")
    page.wait_for_selector("#compare-table tr[data-node=n3].changed")
    assert "C: 0.5" in page.inner_text("#compare-table tr[data-node=n3] .changed-setting >> nth=-1")
    assert page.locator("#compare-table tr[data-node=n1].changed").count() == 0
    page.click("#history-dialog [data-close]")

    # Release the model as a new warehouse model.
    page.wait_for_selector("#release-button:not([disabled])")
    page.click("#release-button")
    page.fill("#release-form input[name=name]", "iris-visual")
    page.click("#release-submit")
    page.wait_for_selector("#released-link", timeout=60_000)
    href = page.get_attribute("#released-link", "href")
    assert href.startswith("/models/") and href.endswith("/versions/1/")
    model_id = int(href.split("/")[2])

    # Deployed through the serving API, then asked about one flower.
    status, service = api(
        page,
        "POST",
        "/api/v1/services/",
        {
            "project": config["project"],
            "name": "iris-visual",
            "version": {"number": 1, "model": model_id, "model_version": 1},
        },
    )
    assert status == 201, service
    deadline = time.monotonic() + 180
    while service["status"] != "running":
        assert service["status"] in ("deploying",), service
        assert time.monotonic() < deadline, "the service did not come up in 3 minutes"
        time.sleep(2)
        _, service = api(page, "GET", f"/api/v1/services/{service['id']}/")
    flower = dict(zip(FEATURES, [6.3, 3.3, 6.0, 2.5], strict=True))
    status, answer = api(
        page,
        "POST",
        service["access_url"],
        {"instances": [flower]},
        {"X-BML-Access-Key": service["access_key"]},
    )
    assert status == 200, answer
    assert "result" in answer and len(answer["result"]) == 1
    assert "virginica" in json.dumps(answer["result"])
    assert page.outside_requests == []
