"""What the console offers a viewer of a project: its pages, without the controls that write.

A viewer (read only) may open every page of the project, but is not shown a create, edit,
delete or clone control that would only answer 403 ("Not allowed"), and a create or edit form
is refused at once (403, with the message its submission would get) rather than filled in and
lost on submit. The project's owner sees and opens all of them. The objects are those of
tests/test_access.py (its `world` fixture): the viewer is a member of the owner's project and
has switched to it, as has the owner.
"""

import html
import re

import pytest
from django.test import Client
from django.urls import reverse

from tests import test_access

pytestmark = pytest.mark.django_db

world = test_access.world  # owner, viewer, project and one object of each kind

REFUSAL = "Your role in project 'secret-project' is viewer; this needs developer."


def client_in_project(user, project) -> Client:
    client = Client()
    client.force_login(user)
    client.post(reverse("projects:switch", args=[project.pk]))
    return client


@pytest.fixture
def viewer(world):
    return client_in_project(world["viewer"], world["project"])


@pytest.fixture
def owner(world):
    return client_in_project(world["owner"], world["project"])


def links(client, url) -> set[str]:
    """The href and form action URLs of a page (which answers 200), query strings kept."""
    response = client.get(url)
    assert response.status_code == 200, url
    found = re.findall(r'(?:href|action)="([^"]*)"', response.content.decode())
    return {html.unescape(link) for link in found}


def paths(found: set[str]) -> set[str]:
    return {link.split("?", 1)[0] for link in found}


def model_version(world):
    return world["model"].versions.get()


def job(world):
    return world["project"].jobs.get(name="secret-job")


# -- pages: what each one offers ------------------------------------------------------------


def test_buckets_page(world, viewer, owner):
    create = reverse("storage:bucket-create")
    delete = reverse("storage:bucket-delete", args=["secret-bucket"])
    browse = reverse("storage:browse", args=["secret-bucket"])
    seen = paths(links(viewer, reverse("storage:buckets")))
    assert browse in seen  # reading stays
    assert create not in seen and delete not in seen
    assert {browse, create, delete} <= paths(links(owner, reverse("storage:buckets")))


@pytest.mark.parametrize("kind", ["", "deep_learning", "machine_learning"])
def test_jobs_list(world, viewer, owner, kind):
    url = reverse("jobs:list") + (f"?kind={kind}" if kind else "")
    creates = {reverse("jobs:create"), reverse("jobs:create-ml")}
    seen = links(viewer, url)
    if kind != "machine_learning":  # the list of that kind shows no deep learning job
        assert reverse("jobs:detail", args=[job(world).job_id]) in seen
    assert not paths(seen) & creates
    create = reverse("jobs:create-ml" if kind == "machine_learning" else "jobs:create")
    assert create in paths(links(owner, url))


def test_jobs_list_clone_links(world, viewer, owner):
    clone = reverse("jobs:create") + f"?clone={job(world).job_id}"
    assert clone not in links(viewer, reverse("jobs:list"))
    assert clone in links(owner, reverse("jobs:list"))


def test_job_detail(world, viewer, owner):
    found = job(world)
    url = reverse("jobs:detail", args=[found.job_id])
    clone = reverse("jobs:create") + f"?clone={found.job_id}"
    writes = {
        reverse("jobs:delete", args=[found.job_id]),
        reverse("jobs:terminate", args=[found.job_id]),
        reverse("warehouse:release", args=[found.job_id]),
    }
    seen = links(viewer, url)
    assert clone not in seen and not paths(seen) & writes
    shown = links(owner, url)
    assert clone in shown
    # Queued or running: "Terminate"; ended: "Delete".
    assert paths(shown) & writes


def test_datasets_list(world, viewer, owner):
    pk = world["dataset"].pk
    writes = {
        reverse("datasets:create"),
        reverse("datasets:upload", args=[pk]),
        reverse("datasets:delete", args=[pk]),
    }
    seen = paths(links(viewer, reverse("datasets:list")))
    assert reverse("datasets:detail", args=[pk]) in seen
    assert not seen & writes
    assert writes <= paths(links(owner, reverse("datasets:list")))
    public = reverse("datasets:list") + "?tab=public"
    assert reverse("datasets:create") not in paths(links(viewer, public))
    assert reverse("datasets:create") in paths(links(owner, public))


def test_dataset_detail(world, viewer, owner):
    pk = world["dataset"].pk
    url = reverse("datasets:detail", args=[pk])
    writes = {reverse("datasets:upload", args=[pk]), reverse("datasets:delete", args=[pk])}
    assert not paths(links(viewer, url)) & writes
    assert writes <= paths(links(owner, url))


@pytest.mark.parametrize("tab", ["", "?tab=common"])
def test_models_list(world, viewer, owner, tab):
    url = reverse("warehouse:list") + tab
    assert reverse("warehouse:import") not in paths(links(viewer, url))
    assert reverse("warehouse:import") in paths(links(owner, url))


def test_model_version_page(world, viewer, owner):
    version = model_version(world)
    url = reverse("warehouse:version", args=[version.model_id, version.version])
    create = reverse("serving:create")
    delete = reverse("warehouse:version-delete", args=[version.model_id, version.version])
    seen = paths(links(viewer, url))
    assert create not in seen and delete not in seen
    shown = paths(links(owner, url))
    assert create in shown and delete in shown


def test_services_list(world, viewer, owner):
    service = world["service"]
    create = reverse("serving:create")
    seen = paths(links(viewer, reverse("serving:list")))
    assert reverse("serving:detail", args=[service.pk]) in seen
    assert create not in seen
    assert create in paths(links(owner, reverse("serving:list")))


def test_annotation_list(world, viewer, owner):
    task = world["annotation_task"]
    annotate = reverse("annotation:annotate", args=[task.pk])
    writes = {
        reverse("annotation:create"),
        annotate,
        reverse("annotation:upload", args=[task.pk]),
        reverse("annotation:delete", args=[task.pk]),
    }
    seen = paths(links(viewer, reverse("annotation:list")))
    assert reverse("annotation:detail", args=[task.pk]) in seen  # "View"
    assert not seen & writes
    assert writes <= paths(links(owner, reverse("annotation:list")))


# -- create and edit forms: refused to a viewer at once -------------------------------------


FORMS = [
    ("jobs:create", None),
    ("jobs:create-ml", None),
    ("notebooks:create", None),
    ("serving:create", None),
    ("serving:edit", "service"),
    ("annotation:create", None),
    ("warehouse:import", None),
    ("datasets:create", None),
]


@pytest.mark.parametrize(("name", "object_key"), FORMS)
def test_forms_are_refused_to_a_viewer_and_open_to_the_owner(
    world, viewer, owner, name, object_key
):
    url = reverse(name, args=[world[object_key].pk] if object_key else [])
    refused = viewer.get(url)
    assert refused.status_code == 403, url
    assert REFUSAL in html.unescape(refused.content.decode())
    assert owner.get(url).status_code == 200, url


def test_a_clone_form_is_refused_to_a_viewer(world, viewer, owner):
    url = reverse("jobs:create") + f"?clone={job(world).job_id}"
    assert viewer.get(url).status_code == 403
    assert owner.get(url).status_code == 200
