"""A replica imports only what its model type needs (issue 18): a real scikit-learn replica
(workers/runners/model_serve.py, the environment the appliance gives a replica on a 1-core
CPU lease) maps no torch, paddle, tensorflow, pandas or pyarrow library and holds <= 200 MB
resident; the import check (model_check) stays under the same peak; the loaders of the other
light types, run in a fresh process, import none of the packages their frameworks take only
in case they are installed (and still predict right).

Memory is not wall-clock: the figures hold on any machine (benchmarks/serving.py
--memory-only reports them per type).
"""

import json
import signal
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import numpy as np
import pytest

from tests.workers.storeless import empty_store_after_each_test, object_store  # noqa: F401
from tests.workers.test_model_loaders import PMML_CATEGORICAL_REGRESSION, PMML_TREE
from workers.runners.model_serve import replica_environment

REPO = Path(__file__).resolve().parents[2]
GOAL_MB = 200
NOT_FOR_SKLEARN = ("torch", "paddle", "tensorflow", "pandas", "pyarrow", "nvidia")


def replica_env(home: Path) -> dict:
    """What apps/serving/replicas.py gives a replica on a 1-core CPU lease."""
    return {
        **replica_environment(home),
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "OPENBLAS_NUM_THREADS": "1",
        "CUDA_VISIBLE_DEVICES": "",
    }


@pytest.fixture(scope="module")
def iris(tmp_path_factory):
    import joblib
    import skops.io
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    folder = tmp_path_factory.mktemp("iris")
    x, y = load_iris(return_X_y=True)
    model = LogisticRegression(max_iter=500).fit(x, y)
    skops.io.dump(model, folder / "iris.skops")
    joblib.dump(model, folder / "iris.joblib")
    return folder, model, x[::15]


def vm_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def mapped_packages(pid: int) -> set[str]:
    """The site-packages folders whose shared objects the process maps."""
    found = set()
    for line in Path(f"/proc/{pid}/maps").read_text().splitlines():
        parts = line.split(maxsplit=5)
        if len(parts) == 6 and "site-packages/" in parts[5] and ".so" in parts[5]:
            top = parts[5].split("site-packages/", 1)[1].split("/", 1)[0]
            found.add(top.removesuffix(".libs").split("-")[0])
    return found


@pytest.mark.parametrize("name", ["iris.skops", "iris.joblib"])
def test_a_sklearn_replica_maps_no_other_framework_and_stays_under_200_mb(iris, name, tmp_path):
    folder, model, rows = iris
    command = [sys.executable, "-m", "workers.runners.model_serve", "--port", "0"]
    command += ["--type", "sklearn", "--path", str(folder / name)]
    process = subprocess.Popen(
        command,
        cwd=REPO,
        env=replica_env(tmp_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        timer = threading.Timer(120, process.kill)
        timer.start()
        line = process.stdout.readline()
        timer.cancel()
        assert line.startswith("ready "), (line, process.stderr.read()[-3000:])
        with httpx.Client(base_url=f"http://127.0.0.1:{line.split()[1]}", timeout=30) as client:
            for _ in range(20):
                response = client.post("/predict", json={"instances": rows.tolist()})
                assert response.status_code == 200, response.text
        labels = [r["label"] for r in response.json()["result"]]
        assert labels == model.predict(rows).tolist()

        mapped = mapped_packages(process.pid)
        assert "sklearn" in mapped and "scipy" in mapped  # the reading works
        assert not mapped & set(NOT_FOR_SKLEARN), sorted(mapped)
        rss = vm_rss_mb(process.pid)
        assert rss <= GOAL_MB, f"{name}: {rss:.1f} MB resident"
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def test_the_import_check_of_a_skops_model_peaks_under_200_mb(iris, tmp_path):
    folder, model, rows = iris
    command = [sys.executable, "-m", "workers.runners.model_check", "--type", "sklearn"]
    command += ["--path", str(folder / "iris.skops"), "--sample", json.dumps(rows.tolist())]
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    result = json.loads(done.stdout)
    assert result["ok"], done.stderr[-3000:]
    assert [o["label"] for o in result["sample_output"]] == model.predict(rows).tolist()
    assert result["info"]["max_rss_mb"] <= GOAL_MB


LOAD_AND_LIST = """
import json, sys
from workers.runners.model_loaders import load
predictor = load(sys.argv[1], sys.argv[2])
output = predictor.predict(json.loads(sys.argv[3]))
print(json.dumps({"output": output, "modules": sorted({m.split(".")[0] for m in sys.modules})}))
"""


def load_in_fresh_process(model_type: str, path: Path, instances: list, home: Path) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", LOAD_AND_LIST, model_type, str(path), json.dumps(instances)],
        cwd=REPO,
        env={**replica_env(home), "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.splitlines()[-1])


@pytest.mark.parametrize("name", ["iris.skops", "iris.joblib"])
def test_the_sklearn_loader_imports_no_pandas_torch_or_pytest(iris, name, tmp_path):
    folder, model, rows = iris
    found = load_in_fresh_process("sklearn", folder / name, rows.tolist(), tmp_path)
    assert [o["label"] for o in found["output"]] == model.predict(rows).tolist()
    assert "sklearn" in found["modules"]
    unwanted = {"pandas", "pyarrow", "torch", "paddle", "tensorflow", "pytest", "websockets"}
    assert not unwanted & set(found["modules"])


def test_the_xgboost_loader_imports_no_sklearn_or_pandas(tmp_path):
    import xgboost

    rng = np.random.default_rng(0)
    x = rng.normal(size=(100, 4)).astype(np.float32)
    params = {"objective": "binary:logistic", "max_depth": 2, "nthread": 1}
    booster = xgboost.train(params, xgboost.DMatrix(x, label=x[:, 0] > 0), num_boost_round=3)
    booster.save_model(str(tmp_path / "model.json"))
    found = load_in_fresh_process("xgboost", tmp_path / "model.json", x[:3].tolist(), tmp_path)
    expected = booster.predict(xgboost.DMatrix(x[:3]))
    np.testing.assert_allclose([o["probability"] for o in found["output"]], expected, atol=1e-6)
    assert "xgboost" in found["modules"]
    assert not {"sklearn", "pandas", "pyarrow", "torch"} & set(found["modules"])


def test_the_pmml_loader_takes_pandas_without_pyarrow(tmp_path):
    (tmp_path / "cat.pmml").write_text(PMML_CATEGORICAL_REGRESSION)
    found = load_in_fresh_process(
        "pmml", tmp_path / "cat.pmml", [[1.0, "red"], [2.0, "blue"]], tmp_path
    )
    np.testing.assert_allclose(found["output"], [1 + 2 + 10, 1 + 4 - 10])
    (tmp_path / "tree.xml").write_text(PMML_TREE)
    found = load_in_fresh_process("pmml", tmp_path / "tree.xml", [[3.0, "red"]], tmp_path)
    assert found["output"] == [{"label": "small", "probabilities": {"small": 0.75, "large": 0.25}}]
    assert "pandas" in found["modules"]
    assert not {"pyarrow", "torch"} & set(found["modules"])


def test_imports_without_hides_only_what_was_not_imported_and_only_in_the_block(
    tmp_path, monkeypatch
):
    import importlib.util

    from workers.runners.model_loaders_ml import imports_without

    (tmp_path / "bml_probe_package").mkdir()
    (tmp_path / "bml_probe_package" / "__init__.py").write_text("VALUE = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "bml_probe_package", raising=False)
    before = list(sys.meta_path)
    with imports_without("json", "bml_probe_package"):
        import json as again  # imported before: stays

        assert again is json
        assert importlib.util.find_spec("bml_probe_package") is None
        with pytest.raises(ModuleNotFoundError):
            import bml_probe_package  # noqa: F401
    assert sys.meta_path == before
    import bml_probe_package

    assert bml_probe_package.VALUE == 1
