"""Every bos:// path a job names must be its project's: the run stages what its settings
name with the appliance's own keys, so a path into another project's bucket would hand that
project's files to the job.

The walk below covers every registered algorithm of every kind and every field of it that
can hold a path: the job's own paths, the params its algorithm declares as paths, params
holding paths without a declaration, and one the algorithm has never heard of. A new
algorithm must be given an example below, or this test fails and says so.
"""

import io
import json

import pytest

from apps.billing.models import ResourcePackage
from apps.jobs import algorithms, autodl, automl, machine_learning, services
from apps.jobs.models import Job, JobStatus
from apps.projects.models import Project
from apps.storage import services as storage
from apps.storage.paths import looks_like_bos_uri
from apps.warehouse.services import warehouse_bucket
from tests.jobs.helpers import run_until, status_of

OWN = "bos://jobs-out"
SECRET_KEY = "models/1/1/secret.txt"
SECRET = b"the other project's model"
REFUSED = "No bucket of yours is named in"

# Settings that pass validation for each algorithm, every path in the job's own bucket.
STANDARDIZED = {"train_data_path": f"{OWN}/std/data/", "test_data_path": f"{OWN}/std-test/"}
EXAMPLES = {
    ("deep_learning", "custom_code"): {
        "params": {
            "framework": "python",
            "code_path": f"{OWN}/code/main.py",
            "start_command": "python main.py",
        },
        "train_data_path": f"{OWN}/train/",
        "test_data_path": f"{OWN}/test/",
    },
    ("machine_learning", "standardize"): {
        "params": {"format": "DENSE"},
        "train_data_path": f"{OWN}/raw.csv",
        "test_data_path": f"{OWN}/raw-test.csv",
    },
    ("machine_learning", "logistic_regression"): {
        "params": {"predict_data_path": f"{OWN}/std-predict/"},
        **STANDARDIZED,
    },
    ("machine_learning", "kmeans"): {
        "params": {"k": 2, "predict_data_path": f"{OWN}/std-predict/"},
        **STANDARDIZED,
    },
    ("machine_learning", "gbdt"): {
        "params": {"predict_data_path": f"{OWN}/std-predict/"},
        **STANDARDIZED,
    },
    ("machine_learning", "rapids_cuml"): {
        "params": {"code_path": f"{OWN}/code/", "start_command": "python main.py"},
        "train_data_path": f"{OWN}/train/",
        "test_data_path": f"{OWN}/test/",
    },
    ("automl", "logistic_regression"): {
        "params": {
            "l1_range": [1e-5, 0.1],
            "l2_range": ["1e-5", "0.1"],
            "iterations_range": [10, 50],
            "trials": 10,
            "format": "DENSE",
            "model_train_data_path": f"{OWN}/all.csv",
        },
        "train_data_path": f"{OWN}/tune-train.csv",
        "test_data_path": f"{OWN}/tune-test.csv",
        "instances": 2,
    },
    ("automl", "gbdt"): {
        "params": {"format": "DENSE", "model_train_data_path": f"{OWN}/all.csv"},
        "train_data_path": f"{OWN}/tune-train.csv",
        "test_data_path": f"{OWN}/tune-test.csv",
        "instances": 2,
    },
    ("autodl", "transfer_learning"): {
        "params": {"epochs": 2},
        "train_data_path": f"{OWN}/photos.zip",
        "test_data_path": "",
        "instances": 1,
    },
    ("autodl", "enas"): {
        "params": {"search_rounds": 1},
        "train_data_path": f"{OWN}/photos.zip",
        "test_data_path": "",
        "instances": 1,
    },
    ("dataset", "table_import"): {
        "params": {
            "separator": ",",
            "header": True,
            "encoding": "utf-8",
            "abnormal": "skip",
            "columns": [{"name": "x", "type": "float"}],
            "previous_parts": [f"{OWN}/ds/part-00000.parquet"],
        },
        "train_data_path": f"{OWN}/source.csv",
        "test_data_path": "",
    },
    # Its inputs are node runs, resolved at start (never paths in its settings).
    ("visual", "node"): {"params": {"node_runs": [1]}, "train_data_path": "", "test_data_path": ""},
}
UNDECLARED = "an_unheard_of_setting"


def _holds_a_path(value) -> bool:
    if isinstance(value, list):
        return any(_holds_a_path(item) for item in value)
    return looks_like_bos_uri(value)


def path_fields(algorithm: algorithms.Algorithm) -> list[tuple[str, bool]]:
    """(field, is a param) for every field of the algorithm that can hold a path."""
    example = EXAMPLES.get((algorithm.kind, algorithm.name), {"params": {}})
    params = [
        *algorithm.path_params,
        *(k for k, v in example["params"].items() if _holds_a_path(v)),
        UNDECLARED,
    ]
    return [(f, False) for f in services.JOB_PATH_FIELDS] + [
        (f, True) for f in dict.fromkeys(params)
    ]


CASES = [
    pytest.param(algorithm, field, is_param, id=f"{algorithm.kind}/{algorithm.name}/{field}")
    for algorithm in algorithms.all_algorithms()
    for field, is_param in path_fields(algorithm)
]


@pytest.fixture
def victim(make_user):
    """A second user's project, with a file in its model warehouse bucket."""
    user = make_user()
    project = Project.objects.get(owner=user)
    bucket = storage.Bucket.objects.get(name=warehouse_bucket(user, project))
    storage.upload_object(user, bucket, SECRET_KEY, io.BytesIO(SECRET), len(SECRET))
    return bucket


@pytest.fixture
def api(owner, project, api_client_for):
    return api_client_for(owner)


def job_body(project, algorithm, **overrides) -> dict:
    example = EXAMPLES[(algorithm.kind, algorithm.name)]
    return {
        "name": "path-check",
        "project": project.pk,
        "kind": algorithm.kind,
        "algorithm": algorithm.name,
        "package": ResourcePackage.objects.get(
            module="train", name__startswith="CPU Instance_2"
        ).pk,
        "output_path": f"{OWN}/out/",
        **example,
        "params": dict(example["params"]),
        **overrides,
    }


def test_every_algorithm_has_an_example():
    missing = [
        f"{a.kind}/{a.name}"
        for a in algorithms.all_algorithms()
        if (a.kind, a.name) not in EXAMPLES
    ]
    assert not missing, f"add settings for {missing} to EXAMPLES in this test"


def test_the_path_fields_of_the_forms_are_declared():
    """What the machine learning forms ask for as paths is declared as paths."""
    forms = [(machine_learning.KIND, machine_learning.FORMS), (automl.KIND, automl.FORMS)]
    forms.append((autodl.KIND, autodl.FORMS))
    for kind, name, spec in ((k, n, s) for k, f in forms for n, s in f.items()):
        algorithm = algorithms.get(kind, name)
        declared = {*services.JOB_PATH_FIELDS, *algorithm.path_params}
        assert set(spec["paths"]) <= declared, name
        if spec.get("code"):
            assert "code_path" in algorithm.path_params, name


@pytest.mark.parametrize("algorithm,field,is_param", CASES)
def test_a_path_into_another_project_is_refused(api, project, victim, algorithm, field, is_param):
    foreign = f"bos://{victim.name}/{SECRET_KEY}"
    body = job_body(project, algorithm)
    if is_param:
        kept = body["params"].get(field)
        body["params"][field] = [foreign] if isinstance(kept, list) else foreign
    else:
        body[field] = foreign
    response = api.post("/api/v1/jobs/", body, format="json")
    assert response.status_code == 400, response.content
    errors = response.json()
    assert field in errors, errors
    assert REFUSED in errors[field][0] and foreign in errors[field][0]
    assert not Job.objects.exists()


@pytest.mark.parametrize(
    "code_path",
    [
        "bos://{bucket}/" + SECRET_KEY,
        "bos:/{bucket}/" + SECRET_KEY,  # the spec's single-slash form
        "  bos://{bucket}/models/",  # a folder, with spaces around
        "bos://{bucket}",  # the whole bucket
    ],
)
def test_a_code_path_into_another_projects_warehouse_is_refused(
    owner, project, api, victim, code_path
):
    code_path = code_path.format(bucket=victim.name)
    body = {
        "name": "steal",
        "project": project.pk,
        "algorithm": "custom_code",
        "package": ResourcePackage.objects.get(
            module="train", name__startswith="CPU Instance_2"
        ).pk,
        "output_path": f"{OWN}/out/",
        "params": {"framework": "python", "code_path": code_path, "start_command": "cat *"},
    }
    response = api.post("/api/v1/jobs/", body, format="json")
    assert response.status_code == 400, response.content
    assert REFUSED in response.json()["code_path"][0]
    assert not Job.objects.exists()
    # The same through the service the console uses.
    with pytest.raises(services.ValidationError) as refused:
        services.create_job(
            owner,
            project,
            name="steal",
            kind="deep_learning",
            algorithm="custom_code",
            params=body["params"],
            package_id=body["package"],
            output_path=body["output_path"],
        )
    assert "code_path" in refused.value.message_dict
    assert not Job.objects.exists()


def test_a_code_path_of_the_own_project_runs(owner, project, api):
    bucket = storage.Bucket.objects.get(name="jobs-out")
    code = b"print('own code runs', open('data.txt').read())\n"
    storage.upload_object(owner, bucket, "code/main.py", io.BytesIO(code), len(code))
    storage.upload_object(owner, bucket, "code/data.txt", io.BytesIO(b"42"), 2)
    body = {
        "name": "own-code",
        "project": project.pk,
        "algorithm": "custom_code",
        "package": ResourcePackage.objects.get(
            module="train", name__startswith="CPU Instance_2"
        ).pk,
        "output_path": f"{OWN}/out/",
        "params": {
            "framework": "python",
            "code_path": "bos:/jobs-out/code/",
            "start_command": "python main.py",
        },
    }
    response = api.post("/api/v1/jobs/", body, format="json")
    assert response.status_code == 201, response.content
    job = Job.objects.get(job_id=response.json()["job_id"])
    assert job.params["code_path"] == "bos://jobs-out/code/"  # normalised
    run_until(lambda: status_of(job) not in ("queued", "running"), "job end")
    assert job.status == JobStatus.SUCCEEDED, job.reason
    logs = api.get(f"/api/v1/jobs/{job.job_id}/logs/").json()
    assert "own code runs 42" in json.dumps(logs)


def test_notebook_and_warehouse_paths_into_another_project_are_refused(owner, project, api, victim):
    foreign = f"bos://{victim.name}/models/"
    package = ResourcePackage.objects.filter(module="workarea", enabled=True).first()
    notebook = api.post(
        "/api/v1/notebooks/",
        {
            "project": project.pk,
            "name": "nb",
            "package": package.pk,
            "storage_path": foreign,
            "start": False,
        },
        format="json",
    )
    assert notebook.status_code == 400 and REFUSED in notebook.json()["storage_path"][0]
    model = api.post(
        "/api/v1/models/",
        {"project": project.pk, "name": "stolen", "model_type": "sklearn", "path": foreign},
        format="json",
    )
    assert model.status_code == 400 and REFUSED in model.json()["path"][0]


def test_a_path_nested_anywhere_in_params_is_checked(project, api, victim):
    algorithm = algorithms.get("dataset", "table_import")
    body = job_body(project, algorithm)
    body["params"]["columns"] = [{"name": "x", "type": "float", "hint": f"BOS:/{victim.name}/"}]
    response = api.post("/api/v1/jobs/", body, format="json")
    assert response.status_code == 400 and "columns" in response.json(), response.content
    assert not Job.objects.exists()


def test_text_that_mentions_a_path_is_not_a_path(project, api, victim):
    """Code and commands may mention any bos:// path: the run cannot read it (it holds no
    keys); only whole values are staged."""
    algorithm = algorithms.get("deep_learning", "custom_code")
    mention = f"# the data lives at bos://{victim.name}/data/\nprint('hi')\n"
    body = job_body(project, algorithm, params={"framework": "python", "code": mention})
    response = api.post("/api/v1/jobs/", body, format="json")
    assert response.status_code == 201, response.content
