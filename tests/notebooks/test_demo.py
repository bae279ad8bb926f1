"""The demo/ folder every notebook instance gets: each notebook runs top to bottom in a real
kernel (the appliance's python3), offline and without a token, and with a token against the
running appliance (real web process, real object store)."""

import io
import json
import re
import shutil

import joblib
import nbformat
import pytest
from nbclient import NotebookClient
from sklearn.datasets import load_digits

from apps.storage import services as storage
from apps.storage.client import get_client
from tests.conftest import ROOT
from tests.serving.conftest import owner, project, stack  # noqa: F401  (the fixtures)

DEMO = ROOT / "fixtures" / "notebooks" / "demo"
NOTEBOOKS = sorted(p.name for p in DEMO.glob("*.ipynb"))
SKIPPED = "Skipped: no API token"


def run_notebook(workspace, name: str) -> str:
    """Execute demo/<name> with its folder as the working directory, as JupyterLab does;
    returns everything its cells printed or displayed (fails on any cell's error)."""
    notebook = nbformat.read(workspace / "demo" / name, as_version=4)
    NotebookClient(
        notebook,
        kernel_name="python3",
        timeout=180,
        resources={"metadata": {"path": str(workspace / "demo")}},
    ).execute()
    texts = []
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            texts.append(output.get("text") or output.get("data", {}).get("text/plain", ""))
    return "\n".join(texts)


@pytest.fixture
def demo_workspace(tmp_path, monkeypatch):
    """An instance's work/ folder: a fresh copy of demo/ and an empty data/ beside it, and the
    environment an instance's kernel gets (the kernel inherits this process's)."""
    shutil.copytree(DEMO, tmp_path / "demo")
    (tmp_path / "data").mkdir()
    monkeypatch.setenv("BML_METRICS_FILE", str(tmp_path / "metrics.jsonl"))
    monkeypatch.setenv("BML_STORAGE_PATH", "bos://team/notebook/")
    for name in ("BML_API_TOKEN", "BML_API_URL", "BML_S3_ENDPOINT", "BML_STORAGE_GRANT"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


def test_the_demo_notebooks_are_clean_nbformat_4_5():
    assert NOTEBOOKS == [
        "01_download_data.ipynb",
        "02_train_a_model.ipynb",
        "03_upload_results.ipynb",
    ]
    for name in NOTEBOOKS:
        notebook = nbformat.read(DEMO / name, as_version=4)
        nbformat.validate(notebook)
        assert (notebook.nbformat, notebook.nbformat_minor) == (4, 5)
        assert notebook.metadata.kernelspec.name == "python3"
        code = [cell for cell in notebook.cells if cell.cell_type == "code"]
        assert code and all(not c.outputs and c.execution_count is None for c in code), name
        tokens = re.findall(r'^TOKEN = "([^"]*)"', "\n".join(c.source for c in code), re.M)
        assert set(tokens) <= {""}, f"{name}: a token was saved"


def test_every_demo_notebook_runs_offline_without_a_token(demo_workspace):
    work = demo_workspace
    downloaded = run_notebook(work, "01_download_data.ipynb")
    assert "Storage path: bos://team/notebook/" in downloaded
    assert "0 file(s) in" in downloaded
    # The token cell, buckets, download and public data sets all say why they did nothing.
    assert downloaded.count(SKIPPED) == 4
    assert "iris from scikit-learn's bundled copy: 150 rows" in downloaded
    assert re.search(r"setosa\s+50", downloaded)

    trained = run_notebook(work, "02_train_a_model.ipynb")
    accuracy = float(re.search(r"test accuracy: ([\d.]+) after 10 epochs", trained).group(1))
    assert accuracy > 0.8
    lines = [json.loads(line) for line in (work / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in lines] == list(range(1, 11))
    assert lines[-1]["acc"] == pytest.approx(accuracy, abs=1e-3)
    assert lines[-1]["loss"] < lines[0]["loss"]
    assert "10 line(s), 10 from this run" in trained
    digits = load_digits()
    model = joblib.load(work / "demo" / "output" / "model.joblib")
    assert (model.predict(digits.data) == digits.target).mean() > 0.8

    uploaded = run_notebook(work, "03_upload_results.ipynb")
    assert uploaded.count(SKIPPED) == 2
    # Copied into data/, the folder synchronized with the storage path.
    assert (work / "data" / "results" / "model.joblib").read_bytes() == (
        work / "demo" / "output" / "model.joblib"
    ).read_bytes()
    assert "reach bos://team/notebook/results/ at the next sync" in uploaded
    # Converted to a script a training job can run, and the script runs.
    script = (work / "demo" / "02_train_a_model.py").read_text()
    assert "bml.report(step=epoch" in script
    assert "-> exit code 0" in uploaded
    assert len((work / "metrics.jsonl").read_text().splitlines()) == 20


def test_with_a_token_the_demo_downloads_reads_iris_and_uploads(
    stack,  # noqa: F811
    owner,  # noqa: F811
    project,  # noqa: F811
    demo_workspace,
    monkeypatch,
):
    from rest_framework.authtoken.models import Token

    from apps.datasets.public import seed_public_datasets

    seed_public_datasets()
    bucket = storage.create_bucket(owner, project, "demo-team")
    for key, data in {"mnist/train.csv": b"x,y\n1,2\n", "mnist/sub/labels.txt": b"7\n"}.items():
        storage.upload_object(owner, bucket, key, io.BytesIO(data), len(data))
    monkeypatch.setenv("BML_API_URL", stack.url)
    monkeypatch.setenv("BML_API_TOKEN", Token.objects.create(user=owner).key)
    work = demo_workspace

    downloaded = run_notebook(work, "01_download_data.ipynb")
    assert SKIPPED not in downloaded
    assert f"Using the appliance at {stack.url}" in downloaded
    assert "bos://demo-team/" in downloaded
    assert "Downloaded 2 file(s) from bos://demo-team/" in downloaded
    assert (work / "demo" / "mydata" / "mnist" / "train.csv").read_bytes() == b"x,y\n1,2\n"
    assert (work / "demo" / "mydata" / "mnist" / "sub" / "labels.txt").read_bytes() == b"7\n"
    assert "iris from the appliance: 150 rows" in downloaded
    assert re.search(r"Iris-setosa\s+50", downloaded)

    run_notebook(work, "02_train_a_model.ipynb")
    uploaded = run_notebook(work, "03_upload_results.ipynb")
    assert SKIPPED not in uploaded
    assert "uploaded bos://demo-team/notebook-results/model.joblib" in uploaded
    stored = get_client().get_object("demo-team", "notebook-results/model.joblib")
    try:
        model = joblib.load(io.BytesIO(stored.read()))
    finally:
        stored.close()
        stored.release_conn()
    digits = load_digits()
    assert (model.predict(digits.data) == digits.target).mean() > 0.8
