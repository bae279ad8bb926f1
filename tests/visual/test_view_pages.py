"""A page of a view output read from the real store (apps.visual.view_pages): the rows its
base holds at the view's positions through its operations; a view whose files or whose
base are gone is BaseGone (the API's 410), never a server error."""

import io
import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from apps.storage.client import get_client
from apps.visual import view_pages
from apps.visual.models import Experiment, ExperimentRun, NodeRun
from workers.runners.visual import views


def put(key: str, data: bytes) -> None:
    get_client().put_object("views", key, io.BytesIO(data), len(data))


@pytest.fixture
def base_node(db, object_store, project, owner):
    get_client().make_bucket("views")
    frame = pd.DataFrame({"x": np.arange(10, dtype="float64"), "y": list("abcdefghij")})
    sink = io.BytesIO()
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), sink)
    put("base/part-0.parquet", sink.getvalue())
    experiment = Experiment.objects.create(project=project, name="pages", created_by=owner)
    run = ExperimentRun.objects.create(experiment=experiment, number=1, graph={})
    return NodeRun.objects.create(
        run=run,
        node_id="data",
        component="dataset",
        outputs={"table": {"kind": "table", "uris": ["bos://views/base/part-0.parquet"]}},
    )


def view_output(base_node, folder: str) -> dict:
    mask = np.zeros(10, dtype=bool)
    mask[[1, 4, 5, 9]] = True
    np.save(buffer := io.BytesIO(), np.packbits(mask), allow_pickle=False)
    put(f"{folder}/rows-0.npy", buffer.getvalue())
    step = {"op": "standardize", "columns": {"x": {"mean": 5.0, "std": 2.0}}, "id": "s"}
    spec = {
        "format": views.FORMAT,
        "base": {"node_run": base_node.pk, "port": "table"},
        "base_rows": None,
        "ops": [
            {"op": "rows", "file": "rows-0.npy", "count": 10, "kept": 4},
            {"op": "step", "step": step},
        ],
    }
    put(f"{folder}/{views.VIEW_FILE}", json.dumps(spec).encode())
    columns = [{"name": "x", "type": "float"}, {"name": "y", "type": "string"}]
    return {"uris": [f"bos://views/{folder}/"], "rows": 4, "schema": {"columns": columns}}


def test_a_page_of_a_stored_view_is_its_rows_through_its_steps(base_node):
    output = view_output(base_node, "v1")
    assert view_pages.page_rows(output, 0, 10) == [
        [-2.0, "b"],
        [-0.5, "e"],
        [0.0, "f"],
        [2.0, "j"],
    ]
    assert view_pages.page_rows(output, 2, 1) == [[0.0, "f"]]
    assert view_pages.page_rows(output, 7, 5) == []


def test_a_view_whose_files_or_base_are_gone_is_base_gone(base_node):
    with pytest.raises(view_pages.BaseGone):
        view_pages.page_rows({"uris": ["bos://views/nothing/"], "rows": 1}, 0, 5)
    output = view_output(base_node, "v2")
    get_client().remove_object("views", "base/part-0.parquet")
    with pytest.raises(view_pages.BaseGone):
        view_pages.page_rows(output, 0, 5)
    base_node.delete()
    with pytest.raises(view_pages.BaseGone):
        view_pages.page_rows(output, 0, 5)


def test_a_base_file_this_host_holds_is_read_from_the_disk(tmp_path):
    """Only a file of the store's size, inside the host's folder, and not a link."""
    (tmp_path / "part-0.parquet").write_bytes(b"12345")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "part-1.parquet").write_bytes(b"123")
    (tmp_path / "link.parquet").symlink_to(tmp_path / "part-0.parquet")
    part = "bos://b/data/part-0.parquet"
    assert view_pages._on_this_host(str(tmp_path), [part], part, 5) == str(
        tmp_path / "part-0.parquet"
    )
    assert view_pages._on_this_host(str(tmp_path), [part], part, 6) is None  # another size
    assert view_pages._on_this_host(None, [part], part, 5) is None
    folder, nested = "bos://b/out/", "bos://b/out/sub/part-1.parquet"
    assert view_pages._on_this_host(str(tmp_path), [folder], nested, 3) == str(
        tmp_path / "sub" / "part-1.parquet"
    )
    link = "bos://b/out/link.parquet"
    assert view_pages._on_this_host(str(tmp_path), [folder], link, 5) is None
    escape = "bos://b/out/../../etc/passwd"
    assert view_pages._on_this_host(str(tmp_path), [folder], escape, 5) is None
