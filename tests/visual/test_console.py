"""The visual modeling pages: the list, the canvas with what its script needs, and an old
version opened read-only."""

import json

from apps.visual import services
from apps.visual.models import ExperimentRun
from tests.visual.conftest import iris_graph


def config_of(response) -> dict:
    html = response.content.decode()
    start = html.index('id="visual-config"')
    body = html[html.index(">", start) + 1 : html.index("</script>", start)]
    return json.loads(body)


def test_list_canvas_and_a_read_only_old_version(owner, project, iris, client):
    client.force_login(owner)
    experiment = services.create_experiment(owner, project, name="flowers", description="iris")
    services.save_graph(owner, experiment, iris_graph(iris.pk))
    listed = client.get("/visual/")
    assert listed.status_code == 200 and "flowers" in listed.content.decode()

    canvas = client.get(f"/visual/{experiment.pk}/")
    assert canvas.status_code == 200
    config = config_of(canvas)
    assert {c["name"] for c in config["palette"]} >= {"dataset", "split", "predict"}
    assert [n["id"] for n in config["graph"]["nodes"]] == ["data", "split", "lr", "predict", "eval"]
    assert any(d["name"] == "iris" for d in config["datasets"])

    old = dict(iris_graph(iris.pk), nodes=iris_graph(iris.pk)["nodes"][:2], edges=[])
    ExperimentRun.objects.create(experiment=experiment, number=1, graph=old, status="succeeded")
    version = client.get(f"/visual/{experiment.pk}/runs/1/")
    assert version.status_code == 200
    shown = config_of(version)
    assert shown["read_only"] is True and shown["may_write"] is False
    assert len(shown["graph"]["nodes"]) == 2 and shown["run"] == 1
    assert client.get(f"/visual/{experiment.pk}/runs/2/").status_code == 404
