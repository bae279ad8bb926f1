"""Fixtures of the data set tests: a user, a bucket with source files, the scheduler driven
in-process (the conversion is a real job under workers.supervise)."""

import io

import pytest

from apps.datasets import services
from apps.datasets.models import DatasetStatus
from apps.projects.models import Project
from apps.storage import services as storage
from tests.conftest import ROOT
from tests.jobs.helpers import run_until
from workers import devices

IRIS = (ROOT / "fixtures" / "datasets" / "iris.csv").read_bytes()
IRIS_COLUMNS = [
    {"name": "sepal_length", "type": "float"},
    {"name": "sepal_width", "type": "float"},
    {"name": "petal_length", "type": "float"},
    {"name": "petal_width", "type": "float"},
    {"name": "species", "type": "string"},
]


@pytest.fixture
def owner(make_user):
    return make_user()


@pytest.fixture
def project(owner):
    devices.sync_inventory()
    return Project.objects.get(owner=owner)


@pytest.fixture
def bucket(owner, project):
    return storage.create_bucket(owner, project, "ds-data")


@pytest.fixture
def put(owner, bucket):
    """Store bytes at bos://ds-data/<key>; returns the bos:// path."""

    def put(key: str, data: bytes) -> str:
        storage.upload_object(owner, bucket, key, io.BytesIO(data), len(data))
        return f"bos://ds-data/{key}"

    return put


@pytest.fixture
def dataset(owner, project, bucket):
    return services.create_dataset(owner, project, "iris_flowers")


def upload(owner, dataset, source, columns=IRIS_COLUMNS, **options):
    """Start an upload and drive the scheduler until its conversion has ended."""
    version = services.start_upload(owner, dataset, source=source, columns=columns, **options)

    def ended():
        version.refresh_from_db()
        return version.status != DatasetStatus.PROCESSING

    run_until(ended, "the conversion to end", timeout=90)
    dataset.refresh_from_db()
    return version
