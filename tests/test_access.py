"""Every registered route, walked with the objects of another user's project.

Like NetBox's view and API test-case mixins, but without anyone having to remember: a route
added tomorrow is covered the day it is registered. A route whose URL names an object of a
project must answer 404 to a stranger for every method, and refuse every write (403) to a
viewer of that project. A new URL parameter must be taught to OBJECT_KWARGS below, or this
test fails and says so.
"""

import io

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from rest_framework.test import APIClient

from apps.annotation import export as annotation_export
from apps.annotation import services as annotation
from apps.annotation.models import Span, Task, Triple
from apps.billing.models import ResourcePackage
from apps.datasets import services as datasets
from apps.jobs import services as jobs
from apps.notebooks import services as notebooks
from apps.notebooks.models import Notebook
from apps.projects import services as projects
from apps.projects.models import Membership, Project, Role
from apps.serving import services as serving
from apps.serving.models import Replica, Service
from apps.storage import services as storage
from apps.visual import services as visual
from apps.visual.models import ExperimentRun, NodeRun
from apps.warehouse import services as warehouse
from tests.warehouse.conftest import iris_joblib

WRITE_METHODS = ["post", "put", "patch", "delete"]
IRIS_MODEL = iris_joblib()

# Routes that name no project-owned object, and why they are left out.
EXEMPT_NAMESPACES = {"admin", "rest_framework"}  # staff-only admin; DRF's login pages
EXEMPT_WRITES = {
    "projects:switch",  # choosing the current project writes to your session, not to it
    "visual-experiment-check",  # checks a graph it is sent: reads the project, stores nothing
}
GLOBAL_KWARG_ROUTES = {
    # Read-only, appliance-wide catalogues (not owned by any project).
    "device-detail",
    "resource-package-detail",
}


@pytest.fixture
def world(make_user):
    owner, stranger, viewer = make_user(), make_user(), make_user()
    project = projects.create_project(owner, "secret-project")
    projects.add_member(owner, project, viewer, Role.VIEWER)
    bucket = storage.create_bucket(owner, project, "secret-bucket")
    storage.upload_object(owner, bucket, "file.txt", io.BytesIO(b"data"), 4)
    membership = Membership.objects.get(project=project, user=viewer)
    job = jobs.create_job(
        owner,
        project,
        name="secret-job",
        kind="deep_learning",
        algorithm="custom_code",
        params={"code": "print(1)"},
        output_path="bos://secret-bucket/out/",
        package_id=ResourcePackage.objects.filter(module="train", device_kind="cpu").first().pk,
    )
    dataset = datasets.create_dataset(owner, project, "secret_dataset")
    storage.upload_object(owner, bucket, "iris.joblib", io.BytesIO(IRIS_MODEL), len(IRIS_MODEL))
    model_version = warehouse.import_model(
        owner,
        project,
        name="secret-model",
        model_type="sklearn",
        path="bos://secret-bucket/iris.joblib",
    )
    service = serving.create_service(  # records only: no replica process runs here
        owner, project, name="secret-service", version=serving.VersionConfig(1, model_version)
    )
    Replica.objects.create(version=service.versions.get(), index=0)
    annotation_task, span, triple = annotate(owner, project)
    notebook = notebooks.create_notebook(  # created stopped: no Jupyter process runs here
        owner,
        project,
        name="secret-notebook",
        package_id=ResourcePackage.objects.filter(module="workarea", device_kind="cpu")[0].pk,
        storage_path="bos://secret-bucket/notebooks/secret/",
        start=False,
    )
    experiment = visual.create_experiment(owner, project, name="secret_experiment")
    run = ExperimentRun.objects.create(experiment=experiment, number=1, graph=experiment.graph)
    NodeRun.objects.create(run=run, node_id="n1", component="split")
    return {
        "owner": owner,
        "stranger": stranger,
        "viewer": viewer,
        "project": project,
        "OBJECT_KWARGS": {
            "pk": project.pk,  # on project routes; member routes override below
            "project_pk": project.pk,
            "project_id": project.pk,
            "membership_id": membership.pk,
            "name": bucket.name,
            "key": "file.txt",
            "job_id": job.job_id,
            "dataset_id": dataset.pk,
            "model_id": model_version.model_id,
            "version": model_version.version,
            "number": 1,  # a service's version
            "index": 0,  # its replica
            "revision": 1,
            "document": span.document_id,  # an annotation task's document ("pk": the task)
            "span": span.pk,
            "triple": triple.pk,
            "tag": span.tag_id,
            "run": run.number,  # a visual modeling experiment's run ("pk": the experiment)
            "node": "n1",  # a node of that run
        },
        "model": model_version.model,
        "dataset": dataset,
        "service": service,
        "membership": membership,
        "annotation_task": annotation_task,
        "notebook": notebook,
        "experiment": experiment,
    }


def annotate(owner, project):
    """An annotation task with one txt document, a tag, two spans, a triple and an export
    (the document's sentence 0 is the URL's `index` 0, as a replica's is)."""
    storage.create_bucket(owner, project, "secret-notes")
    task = annotation.create_task(
        owner,
        project,
        name="secret_task",
        scenario="relation",
        storage_path="bos://secret-notes/task/",
        review_required=True,
        predicate_types=["spouse"],
    )
    person = annotation.add_tag(owner, task, "entity", "person")
    record = annotation.upload(owner, task, files=[("secret.txt", b"Alice married Bob.")])
    document = task.documents.get(upload=record)
    alice = annotation.add_span(owner, document, start=0, end=5, tag=person)
    bob = annotation.add_span(owner, document, start=14, end=17, tag=person)
    spouse = task.tags.get(name="spouse")
    triple = annotation.add_triple(
        owner, document, subject=alice.pk, predicate=spouse.pk, object=bob.pk
    )
    annotation_export.export_task(owner, task)
    return task, alice, triple


def annotation_untouched(world) -> bool:
    task = Task.objects.filter(pk=world["annotation_task"].pk).first()
    return (
        task is not None
        and task.name == "secret_task"
        and task.tags.count() == 2
        and task.documents.filter(status="annotating").count() == 1
        and Span.objects.filter(document__task=task).count() == 2
        and Triple.objects.filter(document__task=task).count() == 1
        and task.uploads.count() == 1
        and task.exports.count() == 1
    )


def service_untouched(world) -> bool:
    service = Service.objects.get(pk=world["service"].pk)
    before = world["service"]
    return (service.desired, service.access_key, service.revisions.count()) == (
        "running",
        before.access_key,
        1,
    )


def notebook_untouched(world) -> bool:
    notebook = Notebook.objects.filter(pk=world["notebook"].pk).first()
    return notebook is not None and (
        notebook.desired,
        notebook.status,
        notebook.auto_stop_minutes,
        notebook.storage_path,
    ) == ("stopped", "stopped", 120, "bos://secret-bucket/notebooks/secret/")


def secret_files(world) -> list[str]:
    bucket = world["project"].buckets.get(name="secret-bucket")
    return [entry.key for entry in storage.list_folder(bucket, "")]


def routes(patterns=None, namespace=""):
    patterns = get_resolver().url_patterns if patterns is None else patterns
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            ns = pattern.namespace or ""
            if ns in EXEMPT_NAMESPACES:
                continue
            child_ns = f"{namespace}:{ns}" if namespace and ns else (ns or namespace)
            yield from routes(pattern.url_patterns, child_ns)
        elif isinstance(pattern, URLPattern) and pattern.name:
            groups = list(pattern.pattern.regex.groupindex)
            name = f"{namespace}:{pattern.name}" if namespace else pattern.name
            yield name, [g for g in groups if g != "format"]


def object_routes():
    seen = set()
    for name, kwargs in routes():
        if kwargs and name not in GLOBAL_KWARG_ROUTES and (name, tuple(kwargs)) not in seen:
            seen.add((name, tuple(kwargs)))
            yield name, kwargs


def url_for(world, name, kwargs):
    values = dict(world["OBJECT_KWARGS"])
    if name == "project-member":
        values["pk"] = world["membership"].pk
    if name.startswith("dataset-"):
        values["pk"] = world["dataset"].pk
    if name.startswith("model-"):
        values["pk"] = world["model"].pk
    if name.startswith(("service-", "serving:")):
        values["pk"] = world["service"].pk
    if name.startswith(("annotation-", "annotation:")):
        values["pk"] = world["annotation_task"].pk
    if name.startswith(("notebook-", "notebooks:")):
        values["pk"] = world["notebook"].pk
    if name.startswith(("visual-experiment", "visual:")):
        values["pk"] = world["experiment"].pk
    unknown = [k for k in kwargs if k not in values]
    assert not unknown, f"route {name} has URL parameters {unknown}: teach OBJECT_KWARGS"
    return reverse(name, kwargs={k: values[k] for k in kwargs})


def clients_for(user):
    api = APIClient()
    api.force_authenticate(user)
    web = Client()
    web.force_login(user)
    return api, web


def call(client, method, url):
    return (
        getattr(client, method)(url, {}, format="json")
        if isinstance(client, APIClient)
        else getattr(client, method)(url)
    )


def test_the_walk_covers_the_routes_that_exist(world):
    names = {name for name, _ in object_routes()}
    assert {
        "project-detail",
        "bucket-detail",
        "bucket-object",
        "storage:browse",
        "projects:settings",
        "project-member",
        "dataset-detail",
        "dataset-rows",
        "datasets:upload",
        "model-detail",
        "model-version",
        "warehouse:version",
        "service-detail",
        "service-revision-recover",
        "service-version-replica-logs",
        "annotation-task-detail",
        "annotation-task-tag",
        "annotation-task-document",
        "annotation-task-sentence",
        "annotation-task-span",
        "annotation-task-triple",
        "annotation-task-review",
        "annotation-task-exports",
        "notebook-detail",
        "notebook-start",
        "notebook-convert",
        "notebooks:detail",
        "notebooks:submit-job",
        "projects:notebook-terminal",
        "visual-experiment-detail",
        "visual-experiment-run",
        "visual-experiment-data",
        "visual-experiment-release",
    } <= names


def test_strangers_get_404_for_every_method_on_every_object_route(world):
    api, web = clients_for(world["stranger"])
    failures = []
    for name, kwargs in object_routes():
        url = url_for(world, name, kwargs)
        client = api if url.startswith("/api/") else web
        for method in ["get", *WRITE_METHODS]:
            status = call(client, method, url).status_code
            if status not in (404, 405):
                failures.append(f"{method.upper()} {url} ({name}) -> {status}")
    assert not failures, "\n".join(failures)
    # ...and nothing was changed by those requests.
    assert Project.objects.get(pk=world["project"].pk).name == "secret-project"
    assert (
        storage.list_folder(world["project"].buckets.get(name="secret-bucket"), "")[0].key
        == "file.txt"
    )
    assert service_untouched(world)
    assert annotation_untouched(world)
    assert notebook_untouched(world)


def test_viewers_are_refused_every_write_on_every_object_route(world):
    api, web = clients_for(world["viewer"])
    failures = []
    for name, kwargs in object_routes():
        if name in EXEMPT_WRITES:
            continue
        url = url_for(world, name, kwargs)
        client = api if url.startswith("/api/") else web
        for method in WRITE_METHODS:
            status = call(client, method, url).status_code
            if status not in (403, 405):
                failures.append(f"{method.upper()} {url} ({name}) -> {status}")
        if client is api:  # and reads work for a viewer
            read = call(client, "get", url).status_code
            if read in (403, 404):
                failures.append(f"GET {url} ({name}) -> {read} for a viewer")
    assert not failures, "\n".join(failures)
    assert (
        storage.list_folder(world["project"].buckets.get(name="secret-bucket"), "")[0].key
        == "file.txt"
    )
    assert Membership.objects.get(pk=world["membership"].pk).role == Role.VIEWER
    assert service_untouched(world)
    assert annotation_untouched(world)
    assert notebook_untouched(world)


def test_lists_never_show_another_users_objects(world):
    api, web = clients_for(world["stranger"])
    assert "secret-project" not in str(api.get("/api/v1/projects/").json())
    assert api.get("/api/v1/buckets/").json()["results"] == []
    assert b"secret-project" not in web.get("/projects/").content
    assert b"secret-bucket" not in web.get("/storage/").content
    assert api.get("/api/v1/jobs/").json()["results"] == []
    assert api.get("/api/v1/datasets/").json()["results"] == []
    assert b"secret_dataset" not in web.get("/datasets/").content
    assert api.get("/api/v1/models/").json()["results"] == []
    assert b"secret-model" not in web.get("/models/").content
    assert api.get("/api/v1/services/").json()["results"] == []
    assert api.get("/api/v1/annotation-tasks/").json()["results"] == []
    assert api.get("/api/v1/notebooks/").json()["results"] == []
    assert b"secret-notebook" not in web.get("/workarea/").content
