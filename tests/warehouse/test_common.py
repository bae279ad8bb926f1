"""The common models: present after seeding, they load and answer correctly, everyone
reads them and no one changes them; a new revision of one is added as a new version.
(test_digits_rendered.py: the digits model reads drawn and printed digits.)"""

import base64
import io
from pathlib import Path

import pytest
from django.conf import settings
from PIL import Image
from sklearn.datasets import load_digits

from apps.storage.client import get_client
from apps.warehouse.common import BUILDERS, COMMON_BUCKET, DIGITS, IRIS, seed_common_models
from apps.warehouse.models import Model, ModelVersion, Source
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

    cache = Path(settings.COMMON_MODELS_CACHE)
    iris_files = cache / IRIS.name / str(IRIS.revision)
    iris = model_loaders.load("sklearn", next(iris_files.iterdir()), {})
    assert iris.predict([[5.1, 3.5, 1.4, 0.2]])[0]["label"] == "setosa"
    digits_files = cache / DIGITS.name / str(DIGITS.revision)
    digits = model_loaders.load("image_classification", digits_files, {"image_size": 32})
    answers = digits.predict([{"data": digit_png(i)} for i in range(20)])
    expected = load_digits().target[:20]
    right = sum(a[0]["label"] == str(e) for a, e in zip(answers, expected, strict=True))
    assert right >= 18, answers
    assert set(BUILDERS) == set(common)
    assert common["iris_classifier"].versions.get().info["framework"]
    assert [v.version for v in common[DIGITS.name].versions.all()] == [DIGITS.revision]


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


def test_a_new_revision_is_added_beside_the_older_version(common):
    """An install from before digits revision 2 has the first model stored as version 1:
    seeding adds the revision as version 2 and leaves version 1 (services use it)."""
    digits = common[DIGITS.name]
    digits.versions.all().delete()
    old_prefix = f"models/{DIGITS.name}/1/"
    get_client().put_object(COMMON_BUCKET, old_prefix + "model.pt", io.BytesIO(b"old"), 3)
    ModelVersion.objects.create(
        model=digits,
        version=1,
        model_type=DIGITS.model_type,
        fields=DIGITS.fields,
        path=f"bos://{COMMON_BUCKET}/{old_prefix}",
        source=Source.COMMON,
        description="trained on 8x8 digits",
    )
    Model.objects.filter(pk=digits.pk).update(description="trained on 8x8 digits")

    assert seed_common_models() == [DIGITS.name]
    digits.refresh_from_db()
    assert digits.description == DIGITS.description
    new, old = digits.versions.all()
    assert (new.version, old.version) == (2, 1) == (DIGITS.revision, 1)
    assert old.path == f"bos://{COMMON_BUCKET}/{old_prefix}"
    assert old.description == "trained on 8x8 digits"
    assert new.path == f"bos://{COMMON_BUCKET}/models/{DIGITS.name}/2/"
    assert new.description == DIGITS.description and new.info["classes"][0] == "0"
    assert seed_common_models() == []
