"""The notebook API and rules without starting Jupyter: validation with the field named,
the spec's path rule both ways, state changes of a stopped instance, submit-as-job
conversion, project counts and the terminal setting."""

import json

import nbformat
import pytest

from apps.billing.models import ResourcePackage
from apps.notebooks import workspace
from apps.notebooks.models import Notebook
from apps.projects import counters
from apps.projects import services as projects
from apps.projects.models import Project, Role
from apps.storage import services as storage


@pytest.fixture
def owner(make_user):
    return make_user()


@pytest.fixture
def project(owner):
    project = Project.objects.get(owner=owner)
    storage.create_bucket(owner, project, "nb-space")
    return project


@pytest.fixture
def client(owner, project, api_client_for):
    return api_client_for(owner)


def package(module="workarea"):
    return ResourcePackage.objects.filter(module=module, device_kind="cpu")[0]


def body(project, **overrides):
    return {
        "project": project.pk,
        "name": "nb-one",
        "package": package().pk,
        "disk_gb": 10,
        "start": False,
        **overrides,
    }


def test_create_lays_out_the_instance_with_its_own_python_and_demo(client, project):
    created = client.post("/api/v1/notebooks/", body(project), format="json")
    assert created.status_code == 201, created.content
    data = created.json()
    assert (data["status"], data["desired"], data["lab_url"]) == (
        "stopped",
        "stopped",
        f"/notebooks/{data['id']}/lab",
    )
    assert data["auto_stop_minutes"] == 120 and data["disk_quota_bytes"] == 10 * 1024**3
    notebook = Notebook.objects.get(pk=data["id"])
    assert (workspace.env_dir(notebook) / "bin" / "python").exists()
    assert (workspace.work_dir(notebook) / "demo" / "02_train_a_model.ipynb").exists()
    assert (workspace.work_dir(notebook) / "data").is_dir()
    assert "token" not in data  # the proxy's secret stays on the server


@pytest.mark.parametrize(
    "overrides, field",
    [
        ({"name": "1starts-with-digit"}, "name"),
        ({"name": "has space"}, "name"),
        ({"name": "x" * 40}, "name"),
        ({"package": 999999}, "package"),
        ({"disk_gb": 0}, "disk_gb"),
        ({"disk_gb": 5000}, "disk_gb"),
        ({"auto_stop_minutes": -1}, "auto_stop_minutes"),
        ({"storage_path": "s3://nb-space/x/"}, "storage_path"),
        ({"storage_path": "bos://no-such-bucket/x/"}, "storage_path"),
    ],
)
def test_bad_input_names_the_field(client, project, overrides, field):
    response = client.post("/api/v1/notebooks/", body(project, **overrides), format="json")
    assert response.status_code == 400, response.content
    assert field in response.json(), response.json()
    assert not Notebook.objects.exists()


def test_a_training_package_is_refused_and_names_are_unique_per_project(client, project):
    wrong = client.post(
        "/api/v1/notebooks/", body(project, package=package("train").pk), format="json"
    )
    assert wrong.status_code == 400 and "package" in wrong.json()
    assert client.post("/api/v1/notebooks/", body(project), format="json").status_code == 201
    again = client.post("/api/v1/notebooks/", body(project), format="json")
    assert again.status_code == 400 and "already" in again.json()["name"][0]


def test_another_projects_bucket_is_refused(client, project, make_user):
    other = make_user()
    storage.create_bucket(other, Project.objects.get(owner=other), "not-yours")
    response = client.post(
        "/api/v1/notebooks/", body(project, storage_path="bos://not-yours/nb/"), format="json"
    )
    assert response.status_code == 400 and "storage_path" in response.json()


def create_job(owner, project, output_path, **paths):
    from apps.jobs import services as jobs

    return jobs.create_job(
        owner,
        project,
        name="path-job",
        kind="deep_learning",
        algorithm="custom_code",
        params={"code": "print(1)"},
        output_path=output_path,
        package_id=package("train").pk,
        **paths,
    )


@pytest.mark.parametrize(
    "notebook_path",
    ["bos://nb-space/jobs/out/", "bos://nb-space/jobs/out/inside/", "bos://nb-space/jobs/"],
)
def test_a_notebook_path_may_not_overlap_a_jobs_path(client, owner, project, notebook_path):
    create_job(owner, project, "bos://nb-space/jobs/out/")
    response = client.post(
        "/api/v1/notebooks/", body(project, storage_path=notebook_path), format="json"
    )
    assert response.status_code == 400
    message = response.json()["storage_path"][0]
    assert "path-job" in message and "overlaps" in message
    # A folder of its own is fine.
    fine = client.post(
        "/api/v1/notebooks/",
        body(project, storage_path="bos://nb-space/notebooks/mine/"),
        format="json",
    )
    assert fine.status_code == 201, fine.content


def test_a_job_may_not_use_a_notebooks_path(client, owner, project):
    from django.core.exceptions import ValidationError

    client.post(
        "/api/v1/notebooks/", body(project, storage_path="bos://nb-space/nb/"), format="json"
    )
    with pytest.raises(ValidationError) as refused:
        create_job(owner, project, "bos://nb-space/nb/sub/")
    assert "output_path" in refused.value.message_dict
    with pytest.raises(ValidationError) as refused:
        create_job(owner, project, "bos://nb-space/out/", train_data_path="bos://nb-space/")
    assert "train_data_path" in refused.value.message_dict
    assert create_job(owner, project, "bos://nb-space/job-out/").pk
    # Nor may a second instance synchronize the same folder.
    second = client.post(
        "/api/v1/notebooks/",
        body(project, name="nb-two", storage_path="bos://nb-space/nb/deeper/"),
        format="json",
    )
    assert second.status_code == 400 and "nb-one" in second.json()["storage_path"][0]


def test_start_stop_of_an_instance_with_no_process(client, project):
    pk = client.post("/api/v1/notebooks/", body(project), format="json").json()["id"]
    stopped = client.post(f"/api/v1/notebooks/{pk}/stop/")
    assert stopped.status_code == 400 and "already" in stopped.json()["status"][0]
    started = client.post(f"/api/v1/notebooks/{pk}/start/").json()
    assert (started["desired"], started["status"]) == ("running", "starting")
    assert client.post(f"/api/v1/notebooks/{pk}/start/").status_code == 400
    # Nothing was started yet (no scheduler here): a stop needs no waiting.
    assert client.post(f"/api/v1/notebooks/{pk}/stop/").json()["status"] == "stopped"
    changed = client.patch(
        f"/api/v1/notebooks/{pk}/",
        {"auto_stop_minutes": 15, "storage_path": "bos://nb-space/nb2/"},
        format="json",
    ).json()
    assert (changed["auto_stop_minutes"], changed["storage_path"]) == (15, "bos://nb-space/nb2/")
    notebook = Notebook.objects.get(pk=pk)
    root = workspace.instance_dir(notebook)
    assert client.delete(f"/api/v1/notebooks/{pk}/").status_code == 204
    assert not root.exists() and not Notebook.objects.filter(pk=pk).exists()


def test_convert_makes_job_code_of_a_notebook(client, project):
    pk = client.post("/api/v1/notebooks/", body(project), format="json").json()["id"]
    notebook = Notebook.objects.get(pk=pk)
    work = workspace.work_dir(notebook)
    document = nbformat.v4.new_notebook(
        cells=[
            nbformat.v4.new_markdown_cell("# Train"),
            nbformat.v4.new_code_cell("!pip install --no-index nothing\n%pip install -q x"),
            nbformat.v4.new_code_cell("%matplotlib inline\nprint('trained')"),
        ]
    )
    (work / "train.ipynb").write_text(nbformat.writes(document))
    listed = client.get(f"/api/v1/notebooks/{pk}/files/").json()["notebooks"]
    assert {"train.ipynb", "demo/02_train_a_model.ipynb"} <= set(listed)
    code = client.post(
        f"/api/v1/notebooks/{pk}/convert/", {"path": "train.ipynb"}, format="json"
    ).json()["code"]
    assert "get_ipython().system" not in code
    assert "subprocess.run('pip install --no-index nothing', shell=True, check=True)" in code
    assert "[sys.executable, '-m', 'pip', *shlex.split('install -q x')]" in code
    assert "pass  # notebook only, not run in a job:" in code
    compile(code, "job.py", "exec")  # plain Python that a job can run

    demo = client.post(
        f"/api/v1/notebooks/{pk}/convert/",
        {"path": "demo/02_train_a_model.ipynb"},
        format="json",
    )
    assert demo.status_code == 200 and "bml.report" in demo.json()["code"]


@pytest.mark.parametrize(
    "path, content",
    [
        ("../../../etc/passwd.ipynb", None),
        ("missing.ipynb", None),
        ("notes.txt", "not a notebook"),
        ("broken.ipynb", "{not json"),
        ("wrong.ipynb", json.dumps({"cells": 3})),
    ],
)
def test_convert_refuses_bad_paths_and_files_naming_the_path(client, project, path, content):
    pk = client.post("/api/v1/notebooks/", body(project), format="json").json()["id"]
    if content is not None:
        (workspace.work_dir(Notebook.objects.get(pk=pk)) / path).write_text(content)
    response = client.post(f"/api/v1/notebooks/{pk}/convert/", {"path": path}, format="json")
    assert response.status_code == 400 and "path" in response.json(), response.content


def test_a_link_out_of_the_workspace_is_not_converted(client, project, tmp_path):
    pk = client.post("/api/v1/notebooks/", body(project), format="json").json()["id"]
    outside = tmp_path / "secret.ipynb"
    outside.write_text(nbformat.writes(nbformat.v4.new_notebook()))
    (workspace.work_dir(Notebook.objects.get(pk=pk)) / "link.ipynb").symlink_to(outside)
    response = client.post(
        f"/api/v1/notebooks/{pk}/convert/", {"path": "link.ipynb"}, format="json"
    )
    assert response.status_code == 400 and "not inside" in response.json()["path"][0]


def test_project_counts_and_the_terminal_setting(client, owner, project, make_user):
    client.post("/api/v1/notebooks/", body(project), format="json")
    client.post("/api/v1/notebooks/", body(project, name="nb-two", start=True), format="json")
    assert counters.counts_for([project.pk])[project.pk]["notebooks"] == {
        "running": 1,
        "total": 2,
    }
    developer = make_user()
    projects.add_member(owner, project, developer, Role.DEVELOPER)
    from django.core.exceptions import PermissionDenied, ValidationError

    with pytest.raises(PermissionDenied):
        projects.set_notebook_terminal(developer, project, "developer")
    with pytest.raises(ValidationError):
        projects.set_notebook_terminal(owner, project, "everyone")
    assert projects.set_notebook_terminal(owner, project, "owner").notebook_terminal == "owner"
