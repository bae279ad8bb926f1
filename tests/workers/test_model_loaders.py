"""Model loaders (workers/runners/model_loaders*.py) and the import check
(workers/runners/model_check.py): real tiny models of every type made here, loaded for real,
their predictions compared with the framework's own.

No Django and no database: run with `pytest tests/workers/test_model_loaders.py -p no:django`.
A few cases run model_check as a subprocess the way the warehouse does (minimal environment);
the rest call load() in this process. Models are made once per module.
"""

import base64
import io
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from workers.runners import model_loaders
from workers.runners.model_loaders import BadInput, ModelLoadError, load, validate_instances

REPO = Path(__file__).resolve().parents[2]

# Third-party deprecations seen while making the models here (not in the loaders).
pytestmark = [
    pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:FutureWarning"),
    pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword"),
    pytest.mark.filterwarnings("ignore:No ccache found:UserWarning"),
]


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    return tmp_path_factory.mktemp("models")


def model_check(model_type, path, fields=None, sample=None, home=None, sample_file=None):
    """Runs the import check as the warehouse does; (exit code, the one result line)."""
    cmd = [sys.executable, "-m", "workers.runners.model_check", "--type", model_type]
    cmd += ["--path", str(path)]
    if fields is not None:
        cmd += ["--fields", json.dumps(fields)]
    if sample is not None:
        cmd += ["--sample", json.dumps(sample)]
    if sample_file is not None:
        cmd += ["--sample-file", str(sample_file)]
    env = {"PATH": "/usr/bin:/bin", "HOME": str(home or path), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    lines = proc.stdout.splitlines()
    assert len(lines) == 1, (proc.stdout, proc.stderr[-3000:])
    result = json.loads(lines[0])
    assert (proc.returncode == 0) == result["ok"], proc.stderr[-3000:]
    return proc.returncode, result


def png_base64(size=(40, 30), seed=0) -> str:
    from PIL import Image

    pixels = np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def reference_images(b64_images, size):
    """The preprocessing the loaders promise, done with torchvision's transforms."""
    import torch
    from PIL import Image
    from torchvision import transforms

    pipeline = transforms.Compose(
        [
            transforms.Resize((size, size)),
            transforms.ToTensor(),
            transforms.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]),
        ]
    )
    images = [Image.open(io.BytesIO(base64.b64decode(b))).convert("RGB") for b in b64_images]
    return torch.stack([pipeline(image) for image in images])


def write_corrupt(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"this is not a model \x00\x01\x02" * 20)
    return path


# ---- pytorch -----------------------------------------------------------------------------

ROWS = [[0.5, -1.0, 2.0, 0.0], [1.0, 2.0, 3.0, 4.0], [0.0, 0.0, 0.0, 0.0]]


@pytest.fixture(scope="module")
def torchscript_mlp(models):
    import torch

    torch.manual_seed(0)
    mlp = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3))
    path = models / "mlp.pt"
    torch.jit.script(mlp.eval()).save(str(path))
    with torch.no_grad():
        expected = mlp(torch.tensor(ROWS)).numpy()
    return path, expected


def test_pytorch_torchscript_through_model_check(torchscript_mlp):
    path, expected = torchscript_mlp
    code, result = model_check("pytorch", path, sample=ROWS)
    assert code == 0
    info = result["info"]
    assert info["type"] == "pytorch" and info["format"] == "torchscript"
    assert info["framework"] == "torch" and info["framework_version"].startswith("2.")
    assert info["device"] == "cpu" and info["warnings"] == []
    assert info["load_seconds"] > 0 and info["max_rss_mb"] > 50
    np.testing.assert_allclose(result["sample_output"], expected, rtol=1e-5, atol=1e-6)


def test_pytorch_torchscript_classification_and_input_shape(torchscript_mlp):
    import torch

    path, expected = torchscript_mlp
    predictor = load("pytorch", path, {"task": "classification", "input_shape": [4], "top_k": 2})
    assert predictor.info["input_shape"] == [4] and predictor.info["n_features"] == 4
    out = predictor.predict(ROWS)
    probabilities = torch.softmax(torch.tensor(expected), dim=1).numpy()
    for row, p in zip(out, probabilities, strict=True):
        assert row["class"] == int(p.argmax())
        assert row["probability"] == pytest.approx(p.max(), abs=1e-5)
        assert [t["class"] for t in row["top_k"]] == list(np.argsort(-p)[:2])
    with pytest.raises(BadInput, match="must have 4 features, got 3"):
        predictor.predict([[1.0, 2.0, 3.0]])
    with pytest.raises(BadInput, match="numbers"):
        validate_instances(predictor, [[1.0, "x", 3.0, 4.0]])
    with pytest.raises(BadInput, match="rows of numbers, not images"):
        predictor.predict([{"data": png_base64()}])


@pytest.fixture(scope="module")
def resnet_weights(models):
    import torch
    import torchvision

    torch.manual_seed(0)
    model = torchvision.models.resnet18(num_classes=3).eval()
    path = models / "resnet18" / "weights.pth"
    path.parent.mkdir()
    torch.save(model.state_dict(), path)
    return path, model


def test_pytorch_torchvision_state_dict_on_images(resnet_weights):
    import torch

    path, model = resnet_weights
    fields = {"architecture": "resnet18", "num_classes": 3}
    predictor = load("pytorch", path.parent, fields)  # the folder holding the weights
    info = predictor.info
    assert info["format"] == "state_dict" and info["architecture"] == "resnet18"
    assert info["input_shape"] == [3, 224, 224] and info["classes"] == [0, 1, 2]
    assert info["optimized"] is True  # frozen for inference; the answers below are unchanged
    assert isinstance(predictor.module, torch.jit.ScriptModule)
    images = [png_base64(seed=1), png_base64((300, 200), seed=2)]
    out = predictor.predict([{"data": b} for b in images])
    with torch.no_grad():
        probabilities = torch.softmax(model(reference_images(images, 224)), dim=1).numpy()
    for row, p in zip(out, probabilities, strict=True):
        assert row["class"] == int(p.argmax())
        assert len(row["top_k"]) == 3
        got = {t["class"]: t["probability"] for t in row["top_k"]}
        np.testing.assert_allclose([got[c] for c in range(3)], p, atol=2e-4)
    with pytest.raises(BadInput, match="not valid base64"):
        predictor.predict([{"data": "not base64 at all!"}])
    not_an_image = base64.b64encode(b"plain text, no image").decode()
    with pytest.raises(BadInput, match="instance 1: 'data' is not a decodable image"):
        predictor.predict([{"data": images[0]}, {"data": not_an_image}])
    with pytest.raises(BadInput, match=r"shape \[3, 224, 224\]"):
        predictor.predict([[1.0, 2.0]])


class RunsCode:
    def __reduce__(self):
        return (print, ("this must never be printed",))


def test_models_that_cannot_be_optimized_are_served_as_loaded(models):
    import torch

    from workers.runners.model_loaders_torch import for_inference

    class TwoHeads(torch.nn.Module):  # a tuple out: nothing to compare, so kept as it is
        def forward(self, x):
            return x.sum(dim=1), x.mean(dim=1)

    class Noisy(torch.nn.Module):  # answers differ run to run: the optimized copy is refused
        def forward(self, x):
            return x + torch.rand_like(x)

    class Untyped(torch.nn.Module):  # does not script
        def forward(self, x, scale=None):
            return x * (scale or 2)

    for module in (torch.jit.script(TwoHeads()), torch.jit.script(Noisy()), Untyped()):
        assert for_inference(module, (1, 4), torch.device("cpu")) == (module, False)
    path = models / "two_heads.pt"
    torch.jit.script(TwoHeads()).save(str(path))
    predictor = load("pytorch", path, {"input_shape": [4]})
    assert predictor.info["optimized"] is False
    assert predictor.predict([[1.0, 2.0, 3.0, 4.0]]) == [[10.0, 2.5]]


def test_pytorch_state_dict_failures(resnet_weights, torchscript_mlp, models, capfd):
    import torch

    path, _ = resnet_weights
    torch.save({"weight": torch.zeros(1), "payload": RunsCode()}, models / "pickle.pth")
    with pytest.raises(ModelLoadError, match="pickle.pth is not a weights-only state_dict"):
        load("pytorch", models / "pickle.pth", {"architecture": "resnet18", "num_classes": 3})
    assert "must never be printed" not in capfd.readouterr().out
    with pytest.raises(ModelLoadError, match="do not fit resnet18 with num_classes=5"):
        load("pytorch", path, {"architecture": "resnet18", "num_classes": 5})
    with pytest.raises(ModelLoadError, match="do not fit mobilenet_v3_small"):
        load("pytorch", path, {"architecture": "mobilenet_v3_small", "num_classes": 3})
    with pytest.raises(ModelLoadError, match="unknown architecture 'resnet19'"):
        load("pytorch", path, {"architecture": "resnet19", "num_classes": 3})
    with pytest.raises(ModelLoadError, match="needs the num_classes field"):
        load("pytorch", path, {"architecture": "resnet18"})
    with pytest.raises(ModelLoadError, match="not a TorchScript model"):
        load("pytorch", path)  # a state_dict without its architecture
    with pytest.raises(ModelLoadError, match="is a TorchScript model, not a state_dict"):
        load("pytorch", torchscript_mlp[0], {"architecture": "resnet18", "num_classes": 3})
    with pytest.raises(ModelLoadError, match="field 'num_classes' must be a positive integer"):
        load("pytorch", path, {"architecture": "resnet18", "num_classes": "3"})
    with pytest.raises(ModelLoadError, match="unknown field 'colour'"):
        load("pytorch", path, {"colour": "red"})


# ---- image classification (built-in type) ------------------------------------------------

LABELS = ["cat", "dog", "bird", "fish", "horse", "cow"]


@pytest.fixture(scope="module")
def image_classifier(models):
    import torch

    torch.manual_seed(1)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(3, 4, 3),
        torch.nn.ReLU(),
        torch.nn.AdaptiveAvgPool2d(1),
        torch.nn.Flatten(),
        torch.nn.Linear(4, len(LABELS)),
    ).eval()
    folder = models / "image_classification"
    folder.mkdir()
    torch.jit.script(net).save(str(folder / "model.pt"))
    (folder / "labels.txt").write_text("\n".join(LABELS) + "\n")
    return folder, net


def test_image_classification_top5(image_classifier):
    import torch

    folder, net = image_classifier
    predictor = load("image_classification", folder, {"image_size": 32})
    assert predictor.info["classes"] == LABELS and predictor.info["input_shape"] == [3, 32, 32]
    assert predictor.info["optimized"] is True
    images = [png_base64(seed=3), png_base64((64, 64), seed=4)]
    out = predictor.predict([{"data": b} for b in images])
    with torch.no_grad():
        probabilities = torch.softmax(net(reference_images(images, 32)), dim=1).numpy()
    for row, p in zip(out, probabilities, strict=True):
        assert len(row) == 5
        assert [r["label"] for r in row] == [LABELS[i] for i in np.argsort(-p)[:5]]
        np.testing.assert_allclose([r["score"] for r in row], np.sort(p)[::-1][:5], atol=1e-5)
    with pytest.raises(BadInput, match="expected"):
        predictor.predict([[1.0, 2.0, 3.0]])
    # The spec's client script sends str(base64.b64encode(data)), i.e. "b'...'" in Python 3.
    spec_client = predictor.predict([{"data": str(images[0].encode())}])
    assert spec_client == out[:1]


def test_image_classification_through_model_check(image_classifier, tmp_path):
    folder, _ = image_classifier
    # A photo's base64 outgrows one command line argument (128 KiB): the sample goes in a file.
    photo = png_base64((300, 200), seed=5)
    assert len(photo) > 128 * 1024
    sample = tmp_path / "sample.json"
    sample.write_text(json.dumps([{"data": photo}]))
    code, result = model_check(
        "image_classification", folder, {"image_size": 32}, None, tmp_path, sample
    )
    assert code == 0
    assert result["info"]["classes"] == LABELS
    [top5] = result["sample_output"]
    assert len(top5) == 5 and {r["label"] for r in top5} <= set(LABELS)
    assert top5 == sorted(top5, key=lambda r: -r["score"])


def test_image_classification_labels_must_match(image_classifier, tmp_path):
    folder, _ = image_classifier
    (tmp_path / "model.pt").write_bytes((folder / "model.pt").read_bytes())
    (tmp_path / "labels.txt").write_text("cat\ndog\n")
    with pytest.raises(ModelLoadError, match=r"returns \[1, 6\] .* labels.txt has 2 classes"):
        load("image_classification", tmp_path, {"image_size": 32})
    (tmp_path / "labels.txt").unlink()
    with pytest.raises(ModelLoadError, match="no labels.txt"):
        load("image_classification", tmp_path)


# ---- paddle ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def paddle_linear(models):
    import paddle

    paddle.seed(0)
    layer = paddle.nn.Linear(4, 2)
    layer.eval()
    spec = [paddle.static.InputSpec(shape=[None, 4], dtype="float32", name="x")]
    folder = models / "paddle"
    paddle.jit.save(layer, str(folder / "inference"), input_spec=spec)
    expected = layer(paddle.to_tensor(np.array(ROWS, dtype="float32"))).numpy()
    return folder, expected


def test_paddle_through_model_check(paddle_linear):
    folder, expected = paddle_linear
    code, result = model_check("paddle", folder, sample=ROWS)
    assert code == 0
    info = result["info"]
    assert info["framework"] == "paddle" and info["input_shape"] == [4]
    assert info["n_features"] == 4
    np.testing.assert_allclose(result["sample_output"], expected, rtol=1e-5, atol=1e-6)


def test_paddle_in_process(paddle_linear, monkeypatch):
    folder, expected = paddle_linear
    model_file = next(p for p in folder.iterdir() if p.suffix in (".json", ".pdmodel"))
    monkeypatch.setenv("OMP_NUM_THREADS", "2")  # as a replica's lease of 2 cores sets it
    predictor = load("paddle", model_file)  # the model file itself
    # Paddle computes with one thread unless told; it is told the lease's cores.
    assert (predictor.info["device"], predictor.info["cpu_threads"]) == ("cpu", 2)
    np.testing.assert_allclose(predictor.predict(ROWS[:2]), expected[:2], rtol=1e-5, atol=1e-6)
    with pytest.raises(BadInput, match="must have 4 features, got 5"):
        predictor.predict([[1, 2, 3, 4, 5]])


# ---- onnx --------------------------------------------------------------------------------

ONNX_W = np.array([[1.0, -1.0], [0.5, 2.0], [0.0, 1.0]], dtype=np.float32)
ONNX_B = np.array([0.1, -0.2], dtype=np.float32)


def onnx_linear(path: Path, batch="N"):
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["x", "W"], ["xw"]),
            helper.make_node("Add", ["xw", "B"], ["y"]),
            helper.make_node("Softmax", ["y"], ["p"], axis=1),
        ],
        "linear",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, 3])],
        [
            helper.make_tensor_value_info("y", TensorProto.FLOAT, [batch, 2]),
            helper.make_tensor_value_info("p", TensorProto.FLOAT, [batch, 2]),
        ],
        [numpy_helper.from_array(ONNX_W, "W"), numpy_helper.from_array(ONNX_B, "B")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


@pytest.mark.parametrize("batch", ["N", 1])
def test_onnx(models, batch):
    path = onnx_linear(models / f"linear-{batch}.onnx", batch)
    predictor = load("onnx", path)
    assert predictor.info["input_shape"] == [3] and predictor.info["n_features"] == 3
    assert [o["name"] for o in predictor.info["outputs"]] == ["y", "p"]
    rows = [[1.0, 2.0, 3.0], [0.0, -1.0, 0.5]]
    out = predictor.predict(rows)
    y = np.array(rows, dtype=np.float32) @ ONNX_W + ONNX_B
    p = np.exp(y) / np.exp(y).sum(axis=1, keepdims=True)
    np.testing.assert_allclose([o["y"] for o in out], y, rtol=1e-5)
    np.testing.assert_allclose([o["p"] for o in out], p, rtol=1e-5)
    with pytest.raises(BadInput, match="must have 3 features, got 4"):
        predictor.predict([[1.0, 2.0, 3.0, 4.0]])


# ---- keras -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def keras_model():
    os.environ.setdefault("KERAS_BACKEND", "torch")
    import keras

    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [keras.Input(shape=(4,)), keras.layers.Dense(5, activation="relu"), keras.layers.Dense(3)]
    )
    return model, model.predict(np.array(ROWS, dtype=np.float32), verbose=0)


@pytest.mark.parametrize("suffix", [".keras", ".h5"])
def test_keras(models, keras_model, suffix):
    model, expected = keras_model
    path = models / f"model{suffix}"
    model.save(str(path))
    predictor = load("keras", path)
    assert predictor.info["backend"] == "torch" and predictor.info["input_shape"] == [4]
    np.testing.assert_allclose(predictor.predict(ROWS), expected, rtol=1e-5, atol=1e-6)
    with pytest.raises(BadInput, match="must have 4 features, got 2"):
        predictor.predict([[1.0, 2.0]])


# ---- sklearn -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def iris_lr(models):
    import joblib
    import skops.io
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    x, y = load_iris(return_X_y=True)
    model = LogisticRegression(max_iter=500).fit(x, y)
    skops.io.dump(model, models / "iris.skops")
    joblib.dump(model, models / "iris.joblib")
    return model, x[[0, 60, 120, 149]]


def test_sklearn_skops_through_model_check(models, iris_lr):
    model, rows = iris_lr
    code, result = model_check("sklearn", models / "iris.skops", sample=rows.tolist())
    assert code == 0
    info = result["info"]
    assert info["format"] == "skops" and info["untrusted_types"] == []
    assert info["warnings"] == [] and info["classes"] == [0, 1, 2]
    assert info["n_features"] == 4 and info["estimator"] == "LogisticRegression"
    out = result["sample_output"]
    assert [o["label"] for o in out] == model.predict(rows).tolist()
    probabilities = [[o["probabilities"][c] for c in ("0", "1", "2")] for o in out]
    np.testing.assert_allclose(probabilities, model.predict_proba(rows), atol=1e-6)


def test_sklearn_joblib_warns(models, iris_lr):
    model, rows = iris_lr
    predictor = load("sklearn", models / "iris.joblib")
    assert predictor.info["warnings"] == ["pickle/joblib files run code when loaded; prefer skops"]
    assert [o["label"] for o in predictor.predict(rows.tolist())] == model.predict(rows).tolist()
    with pytest.raises(BadInput, match="must have 4 features, got 3"):
        predictor.predict([[1.0, 2.0, 3.0]])
    with pytest.raises(BadInput, match="instance 0: all values must be numbers"):
        predictor.predict([[1.0, "a", 3.0, 4.0]])
    with pytest.raises(BadInput, match="non-empty list"):
        predictor.predict([])


def test_sklearn_version_warning_is_reported(tmp_path):
    import joblib
    from sklearn.tree import DecisionTreeClassifier

    model = DecisionTreeClassifier(max_depth=1).fit([[0.0], [1.0]], [0, 1])
    state = {**model.__getstate__(), "_sklearn_version": "0.20.0"}  # as if saved by 0.20
    model.__getstate__ = lambda: state
    joblib.dump(model, tmp_path / "old.pkl")
    predictor = load("sklearn", tmp_path / "old.pkl")
    assert predictor.info["warnings"][0].startswith("pickle/joblib files run code")
    assert predictor.info["warnings"][1].startswith("InconsistentVersionWarning: Trying to")
    assert [o["label"] for o in predictor.predict([[0.0], [1.0]])] == [0, 1]


def test_sklearn_bad_sample_through_model_check(models, iris_lr):
    code, result = model_check("sklearn", models / "iris.joblib", sample=[[1.0, 2.0]])
    assert code == 1
    assert result == {
        "ok": False,
        "stage": "predict",
        "bad_input": True,
        "error": "each instance must have 4 features, got 2",
    }


def test_sklearn_feature_names_and_regressor(tmp_path):
    import pandas as pd
    import skops.io
    from sklearn.linear_model import LinearRegression

    frame = pd.DataFrame({"a": [0.0, 1.0, 2.0, 3.0], "b": [1.0, 0.0, 1.0, 0.0]})
    model = LinearRegression().fit(frame, 2 * frame["a"] - frame["b"] + 1)
    skops.io.dump(model, tmp_path / "reg.skops")
    predictor = load("sklearn", tmp_path)  # the folder
    assert predictor.info["feature_names"] == ["a", "b"] and predictor.info["classes"] is None
    out = predictor.predict([{"b": 1.0, "a": 5.0}, [2.0, 0.0]])
    np.testing.assert_allclose(out, [10.0, 5.0], atol=1e-9)
    with pytest.raises(BadInput, match="missing: b; unknown: c"):
        predictor.predict([{"a": 1.0, "c": 2.0}])


def test_skops_with_untrusted_code_is_refused(tmp_path):
    import skops.io
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer

    skops.io.dump(make_pipeline(FunctionTransformer(os.system)), tmp_path / "evil.skops")
    with pytest.raises(ModelLoadError, match=r"not plain scikit-learn/numpy .*: posix\.system"):
        load("sklearn", tmp_path / "evil.skops")


def test_plain_type_rules():
    from workers.runners.model_loaders_ml import plain_type

    assert plain_type("sklearn.linear_model._logistic.LogisticRegression")
    assert plain_type("numpy.float64") and plain_type("numpy.log1p")
    assert not plain_type("numpy.testing._private.utils.runstring")
    assert not plain_type("sklearn.utils._testing.assert_run_python_script_without_output")
    assert not plain_type("numpy.load")  # a function
    assert not plain_type("builtins.eval") and not plain_type("posix.system")


# ---- xgboost -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def xgb_models(models):
    import xgboost

    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 5)).astype(np.float32)
    y = (x[:, 0] + x[:, 1] > 0).astype(int)
    params = {"objective": "binary:logistic", "max_depth": 2, "nthread": 1}
    binary = xgboost.train(params, xgboost.DMatrix(x, label=y), num_boost_round=5)
    binary.save_model(str(models / "binary.json"))
    binary.save_model(str(models / "binary.ubj"))
    params = {"objective": "multi:softprob", "num_class": 3, "max_depth": 2, "nthread": 1}
    multi = xgboost.train(params, xgboost.DMatrix(x, label=y + (x[:, 2] > 1)), 3)
    multi.save_model(str(models / "multi.json"))
    rows = x[:4]
    return rows, binary.predict(xgboost.DMatrix(rows)), multi.predict(xgboost.DMatrix(rows))


def test_xgboost_ubj_through_model_check(models, xgb_models):
    rows, binary, _ = xgb_models
    code, result = model_check("xgboost", models / "binary.ubj", sample=rows.tolist())
    assert code == 0
    assert result["info"]["objective"] == "binary:logistic"
    assert result["info"]["n_features"] == 5 and result["info"]["classes"] == [0, 1]
    out = result["sample_output"]
    np.testing.assert_allclose([o["probability"] for o in out], binary, atol=1e-6)
    assert [o["label"] for o in out] == (binary >= 0.5).astype(int).tolist()


def test_xgboost_json(models, xgb_models):
    rows, binary, multi = xgb_models
    predictor = load("xgboost", models / "binary.json")
    out = predictor.predict(rows.tolist())
    np.testing.assert_allclose([o["probability"] for o in out], binary, atol=1e-6)
    out = load("xgboost", models / "multi.json").predict(rows.tolist())
    np.testing.assert_allclose([o["probabilities"] for o in out], multi, atol=1e-6)
    assert [o["label"] for o in out] == multi.argmax(axis=1).tolist()
    with pytest.raises(BadInput, match="must have 5 features, got 4"):
        predictor.predict([[1, 2, 3, 4]])


# ---- pmml --------------------------------------------------------------------------------

PMML_REGRESSION = """<?xml version="1.0" encoding="UTF-8"?>
<PMML xmlns="http://www.dmg.org/PMML-4_4" version="4.4">
  <Header description="y = 1.5 + 2 x1 - 0.5 x2"/>
  <DataDictionary numberOfFields="3">
    <DataField name="x1" optype="continuous" dataType="double"/>
    <DataField name="x2" optype="continuous" dataType="double"/>
    <DataField name="y" optype="continuous" dataType="double"/>
  </DataDictionary>
  <RegressionModel functionName="regression">
    <MiningSchema>
      <MiningField name="x1"/>
      <MiningField name="x2"/>
      <MiningField name="y" usageType="target"/>
    </MiningSchema>
    <RegressionTable intercept="1.5">
      <NumericPredictor name="x1" coefficient="2"/>
      <NumericPredictor name="x2" coefficient="-0.5"/>
    </RegressionTable>
  </RegressionModel>
</PMML>
"""

PMML_TREE = """<?xml version="1.0" encoding="UTF-8"?>
<PMML xmlns="http://www.dmg.org/PMML-4_4" version="4.4">
  <Header/>
  <DataDictionary>
    <DataField name="width" optype="continuous" dataType="double"/>
    <DataField name="colour" optype="categorical" dataType="string">
      <Value value="red"/>
      <Value value="blue"/>
    </DataField>
    <DataField name="kind" optype="categorical" dataType="string">
      <Value value="small"/>
      <Value value="large"/>
    </DataField>
  </DataDictionary>
  <TreeModel functionName="classification" splitCharacteristic="binarySplit">
    <MiningSchema>
      <MiningField name="width"/>
      <MiningField name="colour"/>
      <MiningField name="kind" usageType="target"/>
    </MiningSchema>
    <Node id="0">
      <True/>
      <Node id="1" score="small" recordCount="10">
        <SimplePredicate field="width" operator="lessOrEqual" value="2.5"/>
        <ScoreDistribution value="small" recordCount="8"/>
        <ScoreDistribution value="large" recordCount="2"/>
      </Node>
      <Node id="2" score="large" recordCount="14">
        <SimplePredicate field="width" operator="greaterThan" value="2.5"/>
        <Node id="3" score="small" recordCount="4">
          <SimplePredicate field="colour" operator="equal" value="red"/>
          <ScoreDistribution value="small" recordCount="3"/>
          <ScoreDistribution value="large" recordCount="1"/>
        </Node>
        <Node id="4" score="large" recordCount="10">
          <SimplePredicate field="colour" operator="notEqual" value="red"/>
          <ScoreDistribution value="small" recordCount="1"/>
          <ScoreDistribution value="large" recordCount="9"/>
        </Node>
      </Node>
    </Node>
  </TreeModel>
</PMML>
"""

# Categories listed out of alphabetical order: sklearn-pmml-model 1.0.8 alone mixes them up.
PMML_CATEGORICAL_REGRESSION = """<?xml version="1.0" encoding="UTF-8"?>
<PMML xmlns="http://www.dmg.org/PMML-4_4" version="4.4">
  <Header/>
  <DataDictionary>
    <DataField name="x1" optype="continuous" dataType="double"/>
    <DataField name="colour" optype="categorical" dataType="string">
      <Value value="red"/>
      <Value value="blue"/>
    </DataField>
    <DataField name="y" optype="continuous" dataType="double"/>
  </DataDictionary>
  <RegressionModel functionName="regression">
    <MiningSchema>
      <MiningField name="x1"/>
      <MiningField name="colour"/>
      <MiningField name="y" usageType="target"/>
    </MiningSchema>
    <RegressionTable intercept="1.0">
      <NumericPredictor name="x1" coefficient="2"/>
      <CategoricalPredictor name="colour" value="red" coefficient="10"/>
      <CategoricalPredictor name="colour" value="blue" coefficient="-10"/>
    </RegressionTable>
  </RegressionModel>
</PMML>
"""


def test_pmml_regression(tmp_path):
    (tmp_path / "reg.pmml").write_text(PMML_REGRESSION)
    predictor = load("pmml", tmp_path / "reg.pmml")
    assert predictor.info["feature_names"] == ["x1", "x2"] and predictor.info["target"] == "y"
    out = predictor.predict([[1.0, 2.0], {"x1": 0.0, "x2": 4.0}])
    np.testing.assert_allclose(out, [2.5, -0.5])
    with pytest.raises(BadInput, match="must have 2 features, got 3"):
        predictor.predict([[1.0, 2.0, 3.0]])
    with pytest.raises(BadInput, match="feature x2 must be a number"):
        predictor.predict([[1.0, "two"]])

    (tmp_path / "cat.pmml").write_text(PMML_CATEGORICAL_REGRESSION)
    predictor = load("pmml", tmp_path / "cat.pmml")
    out = predictor.predict([[1.0, "red"], {"x1": 2.0, "colour": "blue"}])
    np.testing.assert_allclose(out, [1 + 2 + 10, 1 + 4 - 10])


def test_pmml_tree_with_a_categorical_feature(tmp_path):
    (tmp_path / "tree.xml").write_text(PMML_TREE)
    predictor = load("pmml", tmp_path / "tree.xml")
    assert predictor.info["classes"] == ["small", "large"]
    assert predictor.info["categories"] == {"colour": ["red", "blue"]}
    out = predictor.predict([[1.0, "blue"], [3.0, "red"], {"width": 3.0, "colour": "blue"}])
    assert out == [
        {"label": "small", "probabilities": {"small": 0.8, "large": 0.2}},
        {"label": "small", "probabilities": {"small": 0.75, "large": 0.25}},
        {"label": "large", "probabilities": {"small": 0.1, "large": 0.9}},
    ]
    with pytest.raises(BadInput, match="feature colour must be one of red, blue"):
        predictor.predict([[3.0, "green"]])


def test_pmml_with_entities_is_refused(tmp_path):
    doctype = '<?xml version="1.0"?>\n<!DOCTYPE PMML [<!ENTITY a "aaaa">]>\n'
    (tmp_path / "m.pmml").write_text(doctype + PMML_REGRESSION.split("\n", 1)[1])
    with pytest.raises(ModelLoadError, match="DOCTYPE"):
        load("pmml", tmp_path / "m.pmml")


# ---- custom ------------------------------------------------------------------------------

CUSTOM_PREDICTOR = """
from pathlib import Path

from helper import scale  # a module of its own, next to predictor.py
from tests.workers.storeless import empty_store_after_each_test, object_store  # noqa: F401


class Predictor:
    def load(self, model_dir):
        self.factor = float((Path(model_dir) / "factor.txt").read_text())

    def predict(self, instances):
        return [{"doubled": scale(x, self.factor)} for x in instances]
"""


@pytest.fixture(scope="module")
def custom_folder(models):
    folder = models / "custom"
    folder.mkdir()
    (folder / "predictor.py").write_text(textwrap.dedent(CUSTOM_PREDICTOR))
    (folder / "helper.py").write_text("def scale(x, f):\n    return x * f\n")
    (folder / "factor.txt").write_text("2")
    return folder


def test_custom_through_model_check(custom_folder):
    code, result = model_check("custom", custom_folder, sample=[1, 2.5])
    assert code == 0
    assert result["sample_output"] == [{"doubled": 2.0}, {"doubled": 5.0}]
    assert "runs with the prediction service's permissions" in result["info"]["warnings"][0]


def test_custom_failures(tmp_path):
    with pytest.raises(ModelLoadError, match="folder with predictor.py"):
        load("custom", tmp_path)
    (tmp_path / "predictor.py").write_text("class Other:\n    pass\n")
    with pytest.raises(ModelLoadError, match="no class Predictor"):
        load("custom", tmp_path)
    (tmp_path / "predictor.py").write_text(
        "class Predictor:\n    def load(self, d):\n        pass\n"
        "    def predict(self, x):\n        return [len(x)] * len(x)\n"
    )
    assert load("custom", tmp_path / "predictor.py").predict(["a", "b"]) == [2, 2]
    (tmp_path / "predictor.py").write_text(
        "class Predictor:\n    def load(self, d):\n        raise OSError('weights missing')\n"
        "    def predict(self, x):\n        return x\n"
    )
    with pytest.raises(ModelLoadError, match="could not be loaded: OSError: weights missing"):
        load("custom", tmp_path)


# ---- failures ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "model_type, name, error",
    [
        ("pytorch", "model.pt", "model.pt is not a TorchScript model"),
        ("onnx", "model.onnx", "the onnx model could not be loaded: InvalidProtobuf"),
        ("keras", "model.keras", "model.keras is not a Keras 3 .keras file"),
        ("keras", "model.h5", "the keras model could not be loaded: OSError"),
        ("sklearn", "model.skops", "the sklearn model could not be loaded: BadZipFile"),
        ("sklearn", "model.joblib", "model.joblib is not a readable joblib/pickle file"),
        ("xgboost", "model.json", "XGBoostError: Check failed: .* Invalid model format"),
        ("paddle", "model.json", "the paddle model could not be loaded: RuntimeError"),
        ("pmml", "model.pmml", "the pmml model could not be loaded: ParseError"),
    ],
)
def test_corrupt_files_are_refused(tmp_path, model_type, name, error):
    path = write_corrupt(tmp_path / name)
    if model_type == "paddle":
        write_corrupt(tmp_path / "model.pdiparams")
    with pytest.raises(ModelLoadError, match=error) as caught:
        load(model_type, path)
    message = str(caught.value)
    assert "\n" not in message and "Stack trace" not in message and len(message) < 600


def test_corrupt_file_through_model_check(tmp_path):
    path = write_corrupt(tmp_path / "model.onnx")
    code, result = model_check("onnx", path)
    assert code == 1 and result["stage"] == "load" and result["bad_input"] is False
    error = result["error"]
    assert error.startswith("InvalidProtobuf") or "protobuf" in error.lower(), error
    assert "\n" not in error and "Traceback" not in error


def test_wrong_type_through_model_check(models, xgb_models):
    code, result = model_check("onnx", models / "binary.json")
    assert code == 1 and result["stage"] == "load"
    assert "onnx" in result["error"].lower()
    code, result = model_check("paddle", models / "binary.json")
    assert code == 1
    assert "<name>.json or <name>.pdmodel with <name>.pdiparams" in result["error"]


def test_wrong_type_in_process(torchscript_mlp, models, iris_lr, paddle_linear):
    with pytest.raises(ModelLoadError, match="the onnx model could not be loaded: InvalidProtobuf"):
        load("onnx", torchscript_mlp[0])
    with pytest.raises(ModelLoadError, match="Invalid model format"):
        load("xgboost", models / "iris.skops")
    with pytest.raises(ModelLoadError, match="not a TorchScript model"):
        load("pytorch", models / "iris.skops")
    with pytest.raises(ModelLoadError, match="the keras model could not be loaded"):
        load("keras", models / "iris.skops")
    with pytest.raises(ModelLoadError, match="the xgboost model could not be loaded"):
        load("xgboost", paddle_linear[0])  # the paddle folder holds a .json
    with pytest.raises(ModelLoadError, match="exactly one ONNX file"):
        load("onnx", models / "custom")


def test_arguments_and_unknown_type(tmp_path):
    with pytest.raises(ModelLoadError, match="unknown model type 'tensorflow'"):
        load("tensorflow", tmp_path)
    with pytest.raises(ModelLoadError, match="does not exist"):
        load("onnx", tmp_path / "missing.onnx")
    code, result = model_check("sklearn", tmp_path, fields={"x": 1})
    assert code == 1 and result["stage"] == "load"
    assert result["error"] == "unknown field 'x' for this model type (fields: none)"


def test_registry_lists_the_types():
    assert set(model_loaders.TYPES) == {
        "pytorch",
        "paddle",
        "onnx",
        "keras",
        "sklearn",
        "xgboost",
        "pmml",
        "custom",
        "image_classification",
        "bml_logistic_regression",
        "bml_kmeans",
        "bml_gbdt",
        "bml_visual",
    }


def test_non_finite_numbers_are_bad_input_naming_the_instance():
    rows = [[1.0, 2.0], [3.0, float("nan")]]
    with pytest.raises(BadInput, match=r"instances\[1\]: values must be finite numbers"):
        model_loaders.numeric_batch(rows)
    with pytest.raises(BadInput, match=r"instances\[0\].*\(NaN/Infinity refused\)"):
        model_loaders.numeric_batch([[1e39, 1.0]])  # beyond float32: inf once converted
    assert model_loaders.numeric_batch([[1e39, 1.0]], dtype=np.float64).shape == (1, 2)
