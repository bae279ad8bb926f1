"""The public data sets: present after seeding, readable by everyone, written by no one."""

import pytest

from apps.datasets.models import Dataset
from apps.datasets.public import seed_public_datasets


@pytest.fixture
def public(db):
    assert sorted(seed_public_datasets()) == ["boston_housing", "iris"]
    return {d.name: d for d in Dataset.objects.filter(is_public=True)}


def test_iris_and_boston_housing_with_statistics(public, make_user, api_client_for):
    iris, boston = public["iris"], public["boston_housing"]
    assert iris.rows == 150 and boston.rows == 506
    medv = next(s for s in boston.current_version.stats if s["name"] == "medv")
    assert medv["max"] == 50 and medv["mean"] == pytest.approx(22.5328, abs=1e-3)
    api = api_client_for(make_user())
    listed = api.get("/api/v1/datasets/?public=1").json()["results"]
    assert {d["name"] for d in listed} == {"iris", "boston_housing"}
    rows = api.get(f"/api/v1/datasets/{boston.pk}/rows/?limit=1").json()
    assert rows["rows"][0][:4] == [0.00632, 18.0, 2.31, 0]
    assert api.get(f"/api/v1/datasets/{iris.pk}/statistics/").status_code == 200


def test_nobody_writes_to_a_public_data_set(public, make_user, api_client_for):
    api = api_client_for(make_user())
    iris = public["iris"]
    assert api.delete(f"/api/v1/datasets/{iris.pk}/").status_code == 403
    body = {"source": "bos://bml-public-datasets/datasets/iris/v1/part-00000.parquet"}
    assert api.post(f"/api/v1/datasets/{iris.pk}/preview/", body, format="json").status_code == 403
    assert Dataset.objects.filter(pk=iris.pk).exists()


def test_seeding_twice_converts_nothing_more(public):
    assert seed_public_datasets() == []
    assert Dataset.objects.filter(is_public=True).count() == 2
