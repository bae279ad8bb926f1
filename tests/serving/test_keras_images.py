"""Keras image models (what an AutoDL ENAS job releases: model/model.h5 and labels.txt, one
input [None, S, S, 3] of raw pixels 0-255 that the model rescales itself, class logits out):
{"data": "<base64 image>"} items in, and with output "logits" each image's class scores, the
spec's {"result": "[[...]]"} through a deployed service.

A real tiny Keras model (torch backend) loaded with load_keras; the expected answers are
model.predict on pixels decoded and resized here with PIL."""

import base64
import io
import json
import os
import re

import numpy as np
import pytest

os.environ.setdefault("KERAS_BACKEND", "torch")

from workers.runners.model_loaders import BadInput, ModelLoadError, load  # noqa: E402
from workers.runners.model_loaders_dl import load_keras  # noqa: E402

SIZE = 16
LABELS = ["cat", "dog", "bird"]

pytestmark = [
    pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword"),
]


def build_model():
    import keras

    keras.utils.set_random_seed(0)
    return keras.Sequential(
        [
            keras.Input((SIZE, SIZE, 3)),
            keras.layers.Rescaling(1 / 255),
            keras.layers.Conv2D(4, 3, activation="relu"),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(len(LABELS)),
        ]
    )


def save_model_folder(folder, model) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    model.save(str(folder / "model.h5"))
    (folder / "labels.txt").write_text("\n".join(LABELS) + "\n")


def model_folder_files(model) -> dict[str, bytes]:
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as tmp:
        save_model_folder(Path(tmp), model)
        return {name: (Path(tmp) / name).read_bytes() for name in ("model.h5", "labels.txt")}


def image_bytes(size=(40, 30), seed=0, fmt="PNG") -> bytes:
    from PIL import Image

    pixels = np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, fmt)
    return buffer.getvalue()


def expected_pixels(data: bytes, mode="RGB") -> np.ndarray:
    """The image as the model must see it: decoded, RGB, resized to SIZE x SIZE bilinear,
    float32 0-255, channels-last."""
    from PIL import Image

    image = Image.open(io.BytesIO(data)).convert("RGB").convert(mode)
    image = image.resize((SIZE, SIZE), Image.Resampling.BILINEAR)
    array = np.asarray(image, dtype=np.float32)
    return array if array.ndim == 3 else array[..., None]


@pytest.fixture(scope="module")
def keras_image(tmp_path_factory):
    """(the model, its folder, the predictor with output "logits")."""
    folder = tmp_path_factory.mktemp("keras") / "model"
    model = build_model()
    save_model_folder(folder, model)
    return model, folder, load_keras(folder, {"output": "logits"})


def test_images_give_the_models_logits(keras_image):
    model, _, predictor = keras_image
    assert predictor.info["images"] is True and predictor.info["input_shape"] == [SIZE, SIZE, 3]
    assert predictor.info["result_as_text"] is True and predictor.info["classes"] == LABELS
    png, jpg = image_bytes(seed=1), image_bytes(size=(23, 50), seed=2, fmt="JPEG")
    encoded = base64.b64encode(png)
    instances = [
        {"data": encoded.decode()},
        {"data": str(encoded)},  # the spec client's "b'...'"
        {"data": base64.b64encode(jpg).decode()},
    ]
    got = predictor.predict(instances)
    pixels = np.stack([expected_pixels(png), expected_pixels(png), expected_pixels(jpg)])
    expected = model.predict(pixels, verbose=0)
    assert all(isinstance(v, float) for row in got for v in row)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)
    assert got[0] == got[1]
    # the model sees raw pixels: scaled here, the logits would differ
    assert not np.allclose(got[:1], model.predict(pixels[:1] / 255.0, verbose=0), atol=1e-4)


def test_rows_of_numbers_still_work(keras_image):
    model, _, predictor = keras_image
    rows = np.random.default_rng(3).uniform(0, 255, (2, SIZE, SIZE, 3)).astype(np.float32)
    got = predictor.predict(rows.tolist())
    np.testing.assert_allclose(got, model.predict(rows, verbose=0), rtol=1e-5, atol=1e-5)
    with pytest.raises(BadInput, match="must have shape"):
        predictor.predict([[1.0, 2.0]])


def test_mixed_batches_and_corrupt_images_are_refused(keras_image):
    _, _, predictor = keras_image
    image = {"data": base64.b64encode(image_bytes()).decode()}
    row = np.zeros((SIZE, SIZE, 3)).tolist()
    with pytest.raises(BadInput, match="instance 1: a batch is either all images .* not both"):
        predictor.predict([image, row])
    with pytest.raises(BadInput, match="instance 0: a batch is either all images"):
        predictor.predict([row, image])
    corrupt = base64.b64encode(b"\x89PNG\r\n\x1a\n not an image").decode()
    with pytest.raises(BadInput, match="instance 1: 'data' is not a decodable image"):
        predictor.predict([image, {"data": corrupt}])
    with pytest.raises(BadInput, match="not valid base64"):
        predictor.predict([{"data": "%%%"}])


def test_grayscale_models_take_images(tmp_path):
    import keras

    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((SIZE, SIZE, 1)),
            keras.layers.Rescaling(1 / 255),
            keras.layers.Flatten(),
            keras.layers.Dense(2),
        ]
    )
    model.save(str(tmp_path / "gray.keras"))
    predictor = load("keras", tmp_path / "gray.keras")
    assert predictor.info["output"] == "raw" and not predictor.info["result_as_text"]
    png = image_bytes(seed=4)
    got = predictor.predict([{"data": base64.b64encode(png).decode()}])
    expected = model.predict(expected_pixels(png, "L")[None], verbose=0)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


def test_output_field(keras_image, tmp_path):
    _, folder, _ = keras_image
    with pytest.raises(ModelLoadError, match=r"field 'output' must be one of raw, logits"):
        load("keras", folder, {"output": "top_k"})
    assert load("keras", folder).info["output"] == "raw"
    # a model that takes rows is not an image model: images are refused
    import keras

    rows_model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    rows_model.save(str(tmp_path / "rows.keras"))
    predictor = load("keras", tmp_path / "rows.keras", {"output": "logits"})
    assert predictor.info["images"] is False
    assert len(predictor.predict([[1.0, 2.0, 3.0, 4.0]])[0]) == 2
    with pytest.raises(BadInput, match="takes rows of numbers, not images"):
        predictor.predict([{"data": base64.b64encode(image_bytes()).decode()}])
    # labels.txt and the model's classes must agree for logits
    (tmp_path / "wrong").mkdir()
    rows_model.save(str(tmp_path / "wrong" / "model.keras"))
    (tmp_path / "wrong" / "labels.txt").write_text("a\nb\nc\n")
    with pytest.raises(ModelLoadError, match="2 class scores .* labels.txt has 3 classes"):
        load("keras", tmp_path / "wrong", {"output": "logits"})


# ---- through a deployed service, with the spec's own client -------------------------------


@pytest.mark.django_db(transaction=True)
def test_the_spec_client_gets_a_keras_models_logits_as_text(owner, project, stack, tmp_path):
    from django.test import Client
    from PIL import Image

    from apps.serving import services
    from apps.storage import services as storage
    from apps.warehouse import services as warehouse
    from tests.serving.conftest import wait_running
    from tests.serving.test_spec_client import run_client

    name, model = "enas-pets", build_model()
    bucket = storage.create_bucket(owner, project, name)
    for file, data in model_folder_files(model).items():
        storage.upload_object(owner, bucket, f"model/{file}", io.BytesIO(data), len(data))
    version = warehouse.import_model(
        owner,
        project,
        name=name,
        model_type="keras",
        path=f"bos://{name}/model/",
        fields={"output": "logits"},
    )
    assert version.info["images"] is True
    service = services.create_service(
        owner, project, name=name, version=services.VersionConfig(1, version)
    )
    wait_running(service)

    Image.new("RGB", (40, 30), (200, 80, 20)).save(tmp_path / "aaa.jpg")  # the spec's IMAGE_PATH
    console = Client()
    console.force_login(owner)
    page = console.get(f"/services/{service.pk}/").content.decode()
    assert "Image to send" in page  # the test console offers an image for this model
    copied = re.search(r'id="client-url"[^>]*value="([^"]+)"', page).group(1)
    endpoint_url = re.sub(r"^http://[^/]+", f"http://127.0.0.1:{stack.port}", copied)

    answer = json.loads(run_client(tmp_path, endpoint_url))
    assert list(answer) == ["result"] and isinstance(answer["result"], str)
    scores = json.loads(answer["result"])
    expected = model.predict(expected_pixels((tmp_path / "aaa.jpg").read_bytes())[None], verbose=0)
    np.testing.assert_allclose(scores, expected, rtol=1e-4, atol=1e-4)
