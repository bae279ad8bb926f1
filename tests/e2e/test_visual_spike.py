"""The graph editor spike for visual modeling (issue 20): components dragged from the palette
onto the vendored Drawflow canvas, connected port to port, the graph exported as JSON. Runs
on the `page` fixture, so nothing outside the appliance is reachable."""

import json

import pytest

from tests.e2e.conftest import sign_in

pytestmark = pytest.mark.e2e


def exported(page) -> dict:
    return json.loads(page.inner_text("#graph-json"))["drawflow"]["Home"]["data"]


def test_drag_two_components_connect_them_and_export_the_graph(page):
    sign_in(page)
    page.goto("/visual/spike/")
    page.wait_for_selector("#graph-canvas.drawflow, #graph-canvas .drawflow")
    assert exported(page) == {}

    canvas = page.locator("#graph-canvas")
    for name, x, y in (("dataset", 60, 60), ("split", 360, 200)):
        page.drag_and_drop(
            f"#graph-palette [data-component={name}]",
            "#graph-canvas",
            target_position={"x": x, "y": y},
        )
    page.wait_for_selector("#graph-canvas .drawflow-node >> nth=1")
    titles = canvas.locator(".drawflow-node .graph-node-title").all_inner_texts()
    assert titles == ["Data set", "Split"]
    nodes = exported(page)
    by_name = {node["name"]: node for node in nodes.values()}
    assert set(by_name) == {"dataset", "split"}
    assert by_name["split"]["pos_x"] > by_name["dataset"]["pos_x"]  # where each was dropped

    # Port to port with the mouse: the data set's output onto the split's input.
    source = canvas.locator(f"#node-{by_name['dataset']['id']} .output_1").bounding_box()
    target = canvas.locator(f"#node-{by_name['split']['id']} .input_1").bounding_box()
    page.mouse.move(source["x"] + source["width"] / 2, source["y"] + source["height"] / 2)
    page.mouse.down()
    page.mouse.move(target["x"] + target["width"] / 2, target["y"] + target["height"] / 2, steps=8)
    page.mouse.up()
    page.wait_for_selector("#graph-canvas svg.connection")

    nodes = exported(page)
    dataset = next(n for n in nodes.values() if n["name"] == "dataset")
    split = next(n for n in nodes.values() if n["name"] == "split")
    assert dataset["outputs"]["output_1"]["connections"] == [
        {"node": str(split["id"]), "output": "input_1"}
    ]
    assert split["inputs"]["input_1"]["connections"] == [
        {"node": str(dataset["id"]), "input": "output_1"}
    ]
    assert split["outputs"] and len(split["outputs"]) == 2  # train and test sides

    # A click adds the third component; the wrapper connects it (what a saved graph will do).
    page.click("#graph-palette [data-component=logistic_regression]")
    page.wait_for_selector("#graph-canvas .drawflow-node >> nth=2")
    page.evaluate(
        """() => {
          const graph = BMLGraph.get(document.getElementById("graph-canvas"));
          const ids = Object.fromEntries(graph.nodes().map((n) => [n.name, n.id]));
          graph.connect(ids.split, ids.logistic_regression, 1, 1);
        }"""
    )
    nodes = exported(page)
    model = next(n for n in nodes.values() if n["name"] == "logistic_regression")
    assert model["inputs"]["input_1"]["connections"] == [
        {"node": str(split["id"]), "input": "output_1"}
    ]
    assert page.locator("#graph-canvas svg.connection").count() == 2
    assert page.outside_requests == []  # Drawflow is vendored: nothing from a CDN
