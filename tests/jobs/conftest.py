"""Fixtures of the job tests: a user with a bucket for outputs, devices recorded."""

import pytest

from apps.projects.models import Project
from apps.storage import services as storage
from workers import devices


@pytest.fixture
def owner(make_user):
    return make_user()


@pytest.fixture
def project(owner):
    devices.sync_inventory()
    project = Project.objects.get(owner=owner)
    storage.create_bucket(owner, project, "jobs-out")
    return project
