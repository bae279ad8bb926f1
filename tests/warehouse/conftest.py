"""Fixtures of the warehouse tests: a user, a bucket, small real models to import."""

import io

import joblib
import pytest
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

from apps.projects.models import Project
from apps.storage import services as storage


@pytest.fixture
def owner(make_user):
    return make_user()


@pytest.fixture
def project(owner):
    return Project.objects.get(owner=owner)


@pytest.fixture
def bucket(owner, project):
    return storage.create_bucket(owner, project, "wh-src")


def iris_joblib() -> bytes:
    X, y = load_iris(return_X_y=True)
    buffer = io.BytesIO()
    joblib.dump(LogisticRegression(max_iter=500).fit(X, y), buffer)
    return buffer.getvalue()


@pytest.fixture
def put(owner, bucket):
    def put(key: str, data: bytes) -> str:
        storage.upload_object(owner, bucket, key, io.BytesIO(data), len(data))
        return f"bos://wh-src/{key}"

    return put
