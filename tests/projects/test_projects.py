import io

import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from apps.projects import services
from apps.projects.models import Membership, Project, Role
from apps.storage import services as storage
from apps.storage.client import get_client
from tests.conftest import wait_until


def test_every_user_gets_a_default_project_they_own(make_user):
    user = make_user()
    project = Project.objects.get(owner=user)
    assert project.is_default and project.name == "default"
    assert Membership.objects.get(project=project, user=user).role == Role.OWNER


def test_default_project_cannot_be_deleted(make_user):
    user = make_user()
    project = Project.objects.get(owner=user, is_default=True)
    with pytest.raises(ValidationError, match="default project cannot be deleted"):
        services.delete_project(user, project, "default")
    assert Project.objects.filter(pk=project.pk).exists()


def test_project_names_are_unique_per_user_but_not_across_users(make_user):
    alice, bob = make_user(), make_user()
    services.create_project(alice, "vision")
    with pytest.raises(ValidationError, match="already have a project named 'vision'"):
        services.create_project(alice, "vision")
    assert services.create_project(bob, "vision").owner == bob


@pytest.mark.parametrize("bad", ["", " ", "-lead", "a" * 51, "semi;colon", "new\nline"])
def test_bad_project_names_are_refused_with_the_rule(make_user, bad):
    with pytest.raises(ValidationError, match="Invalid project name"):
        services.create_project(make_user(), bad)


def test_rename_keeps_uniqueness_and_needs_owner(make_user):
    owner, dev = make_user(), make_user()
    project = services.create_project(owner, "one")
    services.create_project(owner, "two")
    with pytest.raises(ValidationError):
        services.rename_project(owner, project, "two")
    services.add_member(owner, project, dev, Role.DEVELOPER)
    with pytest.raises(PermissionDenied):
        services.rename_project(dev, project, "three")
    services.rename_project(owner, project, "three")
    project.refresh_from_db()
    assert project.name == "three"


def test_delete_needs_the_typed_name(make_user):
    owner = make_user()
    project = services.create_project(owner, "keepme")
    with pytest.raises(ValidationError, match="Type the project name"):
        services.delete_project(owner, project, "keep")
    assert Project.objects.get(pk=project.pk).name == "keepme"


def test_viewer_can_read_but_not_write(make_user, api_client_for):
    owner, viewer = make_user(), make_user()
    project = services.create_project(owner, "shared")
    services.add_member(owner, project, viewer, Role.VIEWER)
    client = api_client_for(viewer)
    listed = client.get("/api/v1/projects/").json()["results"]
    assert {"name": "shared", "role": "viewer"}.items() <= next(
        p for p in listed if p["name"] == "shared"
    ).items()
    response = client.post("/api/v1/buckets/", {"project": project.pk, "name": "viewer-bucket"})
    assert response.status_code == 403
    assert "viewer" in response.json()["detail"]


def test_project_list_shows_zero_counts_until_modules_exist(make_user, api_client_for):
    user = make_user()
    project = api_client_for(user).get("/api/v1/projects/").json()["results"][0]
    assert project["counts"] == {
        m: {"running": 0, "total": 0} for m in ("notebooks", "jobs", "services")
    }


def test_deleting_a_project_removes_its_buckets_and_objects_through_the_queue(
    make_user, api_client_for, qcluster
):
    owner = make_user()
    project = services.create_project(owner, "doomed")
    bucket = storage.create_bucket(owner, project, "doomed-bucket")
    storage.upload_object(owner, bucket, "a/b.txt", io.BytesIO(b"bye"), 3)

    response = api_client_for(owner).delete(
        f"/api/v1/projects/{project.pk}/", {"confirm_name": "doomed"}, format="json"
    )
    assert response.status_code == 202
    # Hidden at once, and the name is free again.
    assert not Membership.objects.filter(project_id=project.pk).exists()
    services.create_project(owner, "doomed")

    wait_until(lambda: not Project.objects.filter(pk=project.pk).exists(), what="purge")
    assert not get_client().bucket_exists("doomed-bucket")


def test_switching_projects_returns_to_a_page_of_this_site_only(make_user, client):
    user = make_user()
    client.force_login(user)
    project = Project.objects.get(owner=user)
    url = f"/projects/{project.pk}/switch/"
    assert client.post(url, {"next": "/workarea/"})["Location"] == "/workarea/"
    assert client.post(url, {"next": "https://evil.example/"})["Location"] == "/projects/"
    for word in ("abc", "0", "名字", "//evil.example/x"):  # not a path of this site
        assert client.post(url, {"next": word})["Location"] == "/projects/", word
    assert client.session["project_id"] == project.pk


def test_other_peoples_projects_are_labelled_with_their_owner(make_user, client):
    """Everyone has a project named "default": a member of another's must tell them apart."""
    owner, member = make_user(), make_user()
    services.add_member(owner, Project.objects.get(owner=owner), member, Role.VIEWER)
    client.force_login(member)
    page = client.get("/projects/").content.decode()
    label = f"default ({owner.username})"
    assert label in page  # the switcher's option
    assert f"of {owner.username}" in page  # the list's row
    assert f"default ({member.username})" not in page  # one's own project needs no label


def test_console_errors_name_their_field():
    from apps.projects.web import error_lines

    exc = ValidationError({"output_path": "This path is required.", "__all__": "Check it."})
    assert error_lines(exc) == ["Output path: This path is required.", "Check it."]
    assert error_lines(ValidationError("Plain.")) == ["Plain."]


def test_a_new_sign_in_opens_the_project_last_chosen(make_user, client):
    owner, member = make_user(), make_user()
    vision = services.create_project(owner, "vision")
    shared = services.create_project(owner, "shared")
    services.add_member(owner, shared, member, Role.VIEWER)

    def current_after_sign_in(user):
        client.logout()
        client.force_login(user)
        return client.get("/projects/").context["current_project"]

    assert current_after_sign_in(owner).is_default  # nothing chosen yet: the default
    client.post(f"/projects/{vision.pk}/switch/")
    assert current_after_sign_in(owner) == vision
    client.post("/projects/create/", {"name": "fresh"})  # creating one chooses it
    assert current_after_sign_in(owner).name == "fresh"
    # A member's choice is their own, and goes with their membership.
    client.logout()
    client.force_login(member)
    client.post(f"/projects/{shared.pk}/switch/")
    assert current_after_sign_in(member) == shared
    assert current_after_sign_in(owner).name == "fresh"
    services.remove_member(owner, Membership.objects.get(project=shared, user=member))
    assert current_after_sign_in(member).is_default
