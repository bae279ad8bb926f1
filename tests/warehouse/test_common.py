"""The common models: present after seeding, they load and answer correctly, everyone
reads them and no one changes them."""

import base64
import io
from pathlib import Path

import pytest
from django.conf import settings
from PIL import Image
from sklearn.datasets import load_digits

from apps.warehouse.common import BUILDERS, seed_common_models
from apps.warehouse.models import Model
from workers.runners import model_loaders


@pytest.fixture
def common(db):
    assert sorted(seed_common_models()) == ["digits_image_classifier", "iris_classifier"]
    return {m.name: m for m in Model.objects.filter(is_common=True)}


def digit_png(index: int) -> str:
    pixels = (load_digits().images[index] / 16 * 255).astype("uint8")
    buffer = io.BytesIO()
    Image.fromarray(pixels).resize((32, 32)).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def test_common_models_load_and_answer(common, tmp_path):

    cache = Path(settings.VAR_DIR) / "common-models"
    iris = model_loaders.load("sklearn", next((cache / "iris_classifier").iterdir()), {})
    assert iris.predict([[5.1, 3.5, 1.4, 0.2]])[0]["label"] == "setosa"
    digits = model_loaders.load(
        "image_classification", cache / "digits_image_classifier", {"image_size": 32}
    )
    answers = digits.predict([{"data": digit_png(i)} for i in range(20)])
    expected = load_digits().target[:20]
    right = sum(a[0]["label"] == str(e) for a, e in zip(answers, expected, strict=True))
    assert right >= 18, answers
    assert set(BUILDERS) == set(common)
    assert common["iris_classifier"].versions.get().info["framework"]


def test_everyone_reads_them_and_no_one_changes_them(common, make_user, api_client_for):
    api = api_client_for(make_user())
    listed = api.get("/api/v1/models/?common=1").json()["results"]
    assert {m["name"] for m in listed} == {"iris_classifier", "digits_image_classifier"}
    iris = common["iris_classifier"]
    assert api.get(f"/api/v1/models/{iris.pk}/versions/1/").status_code == 200
    assert api.delete(f"/api/v1/models/{iris.pk}/").status_code == 403
    assert (
        api.patch(f"/api/v1/models/{iris.pk}/", {"tags": ["x"]}, format="json").status_code == 403
    )
    assert seed_common_models() == []  # a second run does nothing
