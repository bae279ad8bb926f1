"""The published API schema says what every route answers, error codes included.

Every operation of the generated schema is called against real objects (the world of
tests/test_access.py: a project with a bucket, a job, a data set, a model, a service, an
annotation task and a notebook, plus the public data sets): with an empty body, then with a
plausible one where BODIES has it, reads first and deletes last. Each answer's status code
must be declared for its operation, and a JSON answer must validate against the schema
declared for that code. The walk goes over the schema's operations, not a hand list: a new
route is covered the day it is registered, or this test says which path parameter or body
it needs. Nothing here starts a run: no scheduler or Q cluster runs, so starting a
notebook or a service, or submitting a job, only records what is wanted.
"""

import io

import psutil
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from drf_spectacular.generators import SchemaGenerator
from jsonschema import Draft4Validator
from rest_framework.test import APIClient

from apps.billing.models import ResourcePackage
from apps.datasets.models import Dataset
from apps.datasets.public import seed_public_datasets
from apps.jobs.models import JobInstance
from apps.storage import services as storage
from bml_site import config
from tests.test_access import world  # noqa: F401  (the fixture)

PREFIX = "/api/v1/"
METHODS = ("get", "post", "put", "patch", "delete")
IRIS_CSV = b"sepal,petal,species\n5.1,1.4,setosa\n4.9,1.4,setosa\n6.3,6.0,virginica\n"


@pytest.fixture(scope="module")
def schema():
    return SchemaGenerator().get_schema(request=None, public=True)


def operations(schema):
    """(path, method, operation) of every API operation; reads first, deletes last (the
    deepest path first, so a span goes before its document and a task before its project)."""
    found = [
        (path, method, operation)
        for path, item in schema["paths"].items()
        if path.startswith(PREFIX)
        for method, operation in item.items()
        if method in METHODS
    ]
    order = {"get": 0, "post": 1, "put": 1, "patch": 1, "delete": 2}
    return sorted(found, key=lambda o: (order[o[1]], -o[0].count("/") if o[1] == "delete" else 0))


# -- JSON Schema from OpenAPI 3.0 --------------------------------------------------------------


def json_schema(node):
    """OpenAPI 3.0's schema dialect as JSON Schema (draft 4): `nullable` becomes null in the
    type (or an anyOf with null), the keywords JSON Schema does not know are dropped, and
    oneOf is read as anyOf (formats are not checked, so "" is both blank and an email)."""
    if isinstance(node, list):
        return [json_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    node = {
        key: json_schema(value)
        for key, value in node.items()
        if key not in ("readOnly", "writeOnly", "example", "discriminator", "xml", "deprecated")
    }
    if "oneOf" in node:  # blank-or-email and null-or-enum alternatives overlap on ""
        node["anyOf"] = node.pop("oneOf")
    if node.pop("nullable", False):
        if "type" in node and "enum" not in node:
            node["type"] = [node["type"], "null"]
        else:
            node = {"anyOf": [node, {"type": "null"}]}
    return node


def validator_for(schema, body_schema) -> Draft4Validator:
    components = json_schema(schema["components"]["schemas"])
    # $refs resolve against the root, which holds the components beside the body's schema.
    root = {"components": {"schemas": components}, "allOf": [json_schema(body_schema)]}
    return Draft4Validator(root)


# -- the world the walk calls with -------------------------------------------------------------


@pytest.fixture
def objects(world):  # noqa: F811
    """Path values and bodies for every operation, built from real objects."""
    owner, project = world["owner"], world["project"]
    seed_public_datasets()
    public = Dataset.objects.get(is_public=True, name="iris")
    bucket = project.buckets.get(name="secret-bucket")
    storage.upload_object(owner, bucket, "iris.csv", io.BytesIO(IRIS_CSV), len(IRIS_CSV))
    job = world["project"].jobs.get()
    run_dir = config.var_dir() / "schema-test-run"
    (run_dir / "workspace" / ".bml").mkdir(parents=True, exist_ok=True)
    (run_dir / "log.txt").write_text("epoch 1\nTraceback (most recent call last):\nboom\n")
    (run_dir / "workspace" / ".bml" / "metrics.jsonl").write_text('{"step": 1, "loss": 0.5}\n')
    JobInstance.objects.create(job=job, index=0, status="failed", run_dir=str(run_dir))
    task = world["annotation_task"]
    document = task.documents.get()
    values = world["OBJECT_KWARGS"]
    by_module = {
        "projects": project.pk,
        "datasets": world["dataset"].pk,
        "models": world["model"].pk,
        "services": world["service"].pk,
        "annotation-tasks": task.pk,
        "notebooks": world["notebook"].pk,
        "visual-experiments": world["experiment"].pk,
        "resource-packages": ResourcePackage.objects.first().pk,
        "devices": 1,
    }
    entity = task.tags.get(name="person")
    relation = task.tags.get(name="spouse")
    spans = list(document.spans.order_by("start"))
    train = ResourcePackage.objects.filter(module="train", device_kind="cpu").first().pk
    workarea = ResourcePackage.objects.filter(module="workarea", device_kind="cpu").first().pk
    bodies = {
        "post /projects/": {"name": "schema-project"},
        "post /projects/{project_pk}/members/": {
            "username": world["stranger"].username,
            "role": "viewer",
        },
        "patch /projects/{project_pk}/members/{id}/": {"role": "developer"},
        "patch /projects/{id}/": {"name": "secret-project"},
        "post /buckets/": {"name": "schema-bucket", "project": project.pk},
        "post /buckets/{name}/folders/": {"path": "made/"},
        "post /buckets/{name}/upload/": "multipart:files",
        "put /buckets/{name}/objects/{key}": "raw",
        "post /datasets/": {"project": project.pk, "name": "schema_dataset"},
        "post /datasets/{id}/preview/": {"source": "bos://secret-bucket/iris.csv"},
        "post /datasets/{id}/versions/": {
            "source": "bos://secret-bucket/iris.csv",
            "header": True,
            "columns": [
                {"name": "sepal", "type": "float"},
                {"name": "petal", "type": "float"},
                {"name": "species", "type": "string"},
            ],
        },
        "post /jobs/": {
            "project": project.pk,
            "package": train,
            "name": "schema-job",
            "algorithm": "custom_code",
            "params": {"code": "print(1)"},
            "output_path": "bos://secret-bucket/out/",
        },
        "post /models/": {
            "project": project.pk,
            "name": "schema-model",
            "model_type": "sklearn",
            "path": "bos://secret-bucket/iris.joblib",
        },
        "post /models/{id}/versions/": {
            "model_type": "sklearn",
            "path": "bos://secret-bucket/iris.joblib",
        },
        "patch /models/{id}/": {"tags": ["schema"], "description": "checked"},
        "patch /models/{id}/versions/{version}/": {"description": "checked"},
        "post /models/release/": {"job_id": job.job_id, "name": "released"},
        "post /notebooks/": {
            "project": project.pk,
            "name": "schema-notebook",
            "package": workarea,
            "start": False,
        },
        "patch /notebooks/{id}/": {"auto_stop_minutes": 60},
        "post /notebooks/{id}/convert/": {"path": "missing.ipynb"},
        "post /services/": {
            "project": project.pk,
            "name": "schema-service",
            "version": {"number": 1, "model": world["model"].pk, "model_version": 1},
        },
        "patch /services/{id}/": {"description": "checked"},
        "post /services/{id}/versions/": {
            "number": 2,
            "model": world["model"].pk,
            "model_version": 1,
            "proportion": 1,
        },
        "put /services/{id}/config/": {
            "versions": [{"number": 1, "model": world["model"].pk, "model_version": 1}]
        },
        "post /annotation-tasks/": {
            "project": project.pk,
            "name": "schema_task",
            "scenario": "relation",
            "storage_path": "bos://secret-notes/schema/",
            "relation_types": ["spouse"],
        },
        "post /annotation-tasks/{id}/tags/": {"kind": "entity", "name": "place"},
        "patch /annotation-tasks/{id}/tags/{tag}/": {"color": "#ff0000"},
        "post /annotation-tasks/{id}/uploads/": "multipart:files",
        "post /annotation-tasks/{id}/documents/{document}/spans/": {
            "start": 6,
            "end": 13,
            "tag": entity.pk,
        },
        "post /annotation-tasks/{id}/documents/{document}/triples/": {
            "subject": spans[1].pk,
            "predicate": relation.pk,
            "object": spans[0].pk,
        },
        "post /annotation-tasks/{id}/documents/{document}/sentences/{index}/done/": {"done": True},
        "post /annotation-tasks/{id}/documents/{document}/review/": {"passed": True},
        "delete /projects/{id}/": {"confirm_name": "wrong name"},
        "post /visual-experiments/": {"project": project.pk, "name": "schema_experiment"},
        "patch /visual-experiments/{id}/": {"description": "checked"},
        "put /visual-experiments/{id}/graph/": {"graph": {"nodes": [], "edges": []}},
        "post /visual-experiments/{id}/check/": {"graph": {"nodes": [], "edges": []}},
        "post /visual-experiments/{id}/runs/": {"mode": "all"},
        "post /visual-experiments/{id}/release/": {"name": "schema-release"},
    }
    return {
        "world": world,
        "values": {**values, "document": document.pk, "tag": entity.pk},
        "by_module": by_module,
        "public": public,
        "bodies": bodies,
    }


def urls_for(path: str, objects) -> list[str]:
    """The path with its parameters filled in: one URL, or two for a data set's routes (one
    of the project's, and a public one)."""
    relative = path[len(PREFIX) :]
    values = dict(objects["values"])
    module = relative.split("/")[0]
    if "{id}" in path:
        if module not in objects["by_module"]:
            pytest.fail(f"{path}: teach objects() which object its module's {{id}} names")
        values["id"] = objects["by_module"][module]
    if "{project_pk}" in path:
        values["id"] = objects["world"]["membership"].pk
    names = [part[1:-1] for part in path.split("/") if part.startswith("{")]
    names += [name for name in ("key",) if "{key}" in path and name not in names]
    unknown = [name for name in names if name not in values]
    assert not unknown, f"{path} has path parameters {unknown}: teach objects() their values"
    url = path
    for name in set(names):
        url = url.replace("{" + name + "}", str(values[name]))
    urls = [url]
    if module == "datasets" and "{id}" in path:
        urls.append(path.replace("{id}", str(objects["public"].pk)))
    return urls


def send(client, method: str, url: str, body):
    if body is None:
        return getattr(client, method)(url)
    if body == "raw":
        return client.put(url, data=b"raw bytes", content_type="application/octet-stream")
    if body == "multipart:files":
        upload = SimpleUploadedFile("notes.txt", b"Carol met Dave.", content_type="text/plain")
        return client.post(url, {"files": [upload]}, format="multipart")
    return getattr(client, method)(url, body, format="json")


def check(schema, path, method, operation, response) -> str | None:
    """Why the answer does not match the operation's schema; None when it does."""
    declared = operation["responses"]
    code = str(response.status_code)
    where = f"{method.upper()} {response.request['PATH_INFO']} ({path}) -> {code}"
    if code not in declared:
        return f"{where}: code not declared (declared: {sorted(declared)})"
    content = declared[code].get("content", {})
    media = response.get("Content-Type", "").split(";")[0]
    if media != "application/json":
        if response.streaming or not response.content:
            return None
        if content and media not in content and "*/*" not in content:
            return f"{where}: answers {media}, declared {sorted(content)}"
        return None  # a file download: its status is what is checked
    body = response.json()
    if "application/json" not in content:
        return f"{where}: answers JSON, declared {sorted(content) or 'no body'}"
    errors = sorted(
        validator_for(schema, content["application/json"]["schema"]).iter_errors(body),
        key=lambda e: list(e.absolute_path),
    )
    if errors:
        first = errors[0]
        at = "/".join(str(p) for p in first.absolute_path)
        return f"{where}: {len(errors)} schema error(s), first at '{at}': {first.message[:300]}"
    return None


def children() -> set[int]:
    return {child.pid for child in psutil.Process().children(recursive=True)}


def test_every_operation_answers_what_its_schema_declares(schema, objects):
    owner = objects["world"]["owner"]
    client = APIClient()
    client.force_authenticate(owner)
    before = children()
    failures, calls = [], 0
    for path, method, operation in operations(schema):
        key = f"{method} {path[len(PREFIX) - 1 :]}"
        plausible = objects["bodies"].get(key)
        if plausible is None and "requestBody" in operation:
            media = operation["requestBody"]["content"]
            if "application/json" not in media:
                pytest.fail(f"{key}: takes {sorted(media)}; teach BODIES how to send one")
        bodies = [None] if "requestBody" not in operation and method != "delete" else [{}]
        if plausible is not None:
            bodies = [*bodies, plausible] if isinstance(plausible, dict) else [plausible]
        for url in urls_for(path, objects):
            for body in bodies:
                calls += 1
                failure = check(schema, path, method, operation, send(client, method, url, body))
                if failure:
                    failures.append(failure)
    assert calls >= 100
    assert not failures, f"{len(failures)} answers outside the schema:\n" + "\n".join(failures)
    assert children() <= before, "a call started a process"


def test_strangers_and_the_signed_out_get_declared_refusals(schema, objects, make_user):
    stranger = APIClient()
    stranger.force_authenticate(make_user())
    anonymous = APIClient()
    bad_token = APIClient()
    bad_token.credentials(HTTP_AUTHORIZATION="Token not-a-token")
    failures = []
    for path, method, operation in operations(schema):
        for client in (stranger, anonymous, bad_token):
            url = urls_for(path, objects)[0]
            body = None if method == "get" else {}
            response = send(client, method, url, body)
            if client is not stranger:
                assert response.status_code in (401, 403), (path, method)
            failure = check(schema, path, method, operation, response)
            if failure:
                failures.append(failure)
    assert not failures, f"{len(failures)} answers outside the schema:\n" + "\n".join(failures)


def test_a_store_that_is_down_answers_declared_503s(schema, objects, settings):
    """With the store's address pointing at a closed port, every operation still answers a
    declared code (503 where it needed the store)."""
    client = APIClient()
    client.force_authenticate(objects["world"]["owner"])
    failures, unavailable = [], 0
    settings.S3 = {**settings.S3, "endpoint": "127.0.0.1:9"}  # discard: nothing listens
    for path, method, operation in operations(schema):
        if method == "delete":
            continue  # the walk above deletes; here the objects must stay for the reads
        url = urls_for(path, objects)[0]
        body = None if "requestBody" not in operation else {}
        plausible = objects["bodies"].get(f"{method} {path[len(PREFIX) - 1 :]}")
        response = send(client, method, url, plausible if plausible is not None else body)
        unavailable += response.status_code == 503
        failure = check(schema, path, method, operation, response)
        if failure:
            failures.append(failure)
    assert unavailable >= 5
    assert not failures, f"{len(failures)} answers outside the schema:\n" + "\n".join(failures)


def test_the_error_component_matches_drf_and_service_errors(schema):
    validate = validator_for(schema, {"$ref": "#/components/schemas/Error"}).is_valid
    assert validate({"detail": "Not found."})
    assert validate({"name": ["This field is required."]})
    assert validate({"version": {"replicas": ["Ensure this value is at most 8."]}})
    assert validate({"versions": [{}, {"number": ["A valid integer is required."]}]})
    assert not validate({}) and not validate(["a list"]) and not validate({"detail": 3})
