import pytest

from apps.billing.models import ResourcePackage
from apps.jobs.models import Job, JobStatus
from apps.projects.models import Project
from apps.storage import services as storage
from tests.jobs.helpers import run_until, status_of
from workers import devices, scheduler


@pytest.fixture
def owner(make_user):
    return make_user()


@pytest.fixture
def client(owner, api_client_for):
    devices.sync_inventory()
    storage.create_bucket(owner, Project.objects.get(owner=owner), "api-jobs")
    return api_client_for(owner)


def body(owner, **overrides):
    return {
        "name": "api-job",
        "project": Project.objects.get(owner=owner).pk,
        "algorithm": "custom_code",
        "params": {"code": "import time\nprint('api job says hi', flush=True)\ntime.sleep(1)"},
        "package": ResourcePackage.objects.get(
            module="train", name__startswith="CPU Instance_2"
        ).pk,
        "output_path": "bos://api-jobs/out/",
        **overrides,
    }


def test_create_list_get_logs_and_clone(owner, client):
    created = client.post("/api/v1/jobs/", body(owner), format="json")
    assert created.status_code == 201, created.content
    job_id = created.json()["job_id"]
    assert created.json()["status"] == "queued" and job_id.startswith("job-")

    job = Job.objects.get(job_id=job_id)
    run_until(
        lambda: "api job says hi" in client.get(f"/api/v1/jobs/{job_id}/logs/").json()[0]["text"],
        "the log to show the first line",
    )
    assert [
        j["job_id"] for j in client.get("/api/v1/jobs/", {"status": "running"}).json()["results"]
    ] == [job_id]
    run_until(lambda: status_of(job) == JobStatus.SUCCEEDED, "job end")
    detail = client.get(f"/api/v1/jobs/{job_id}/").json()
    assert detail["status"] == "succeeded" and detail["runs"][0]["exit_code"] == 0

    clone = client.post(f"/api/v1/jobs/{job_id}/clone/").json()
    assert clone["name"] == "api-job-clone" and clone["params"] == detail["params"]
    again = client.post("/api/v1/jobs/", {**clone, "algorithm": "custom_code"}, format="json")
    assert again.status_code == 201


def test_terminate_and_delete_through_the_api(owner, client):
    job_id = client.post(
        "/api/v1/jobs/", body(owner, params={"code": "import time\ntime.sleep(60)"}), format="json"
    ).json()["job_id"]
    terminated = client.post(f"/api/v1/jobs/{job_id}/terminate/")  # still queued: ends at once
    assert terminated.json()["status"] == "terminated"
    assert client.delete(f"/api/v1/jobs/{job_id}/").status_code == 204
    assert not Job.objects.filter(job_id=job_id).exists()
    scheduler.tick()


ML = {"kind": "machine_learning"}


@pytest.mark.parametrize(
    "overrides,field",
    [
        ({"name": "has space"}, "name"),
        ({"algorithm": "nope"}, "algorithm"),
        ({"params": {"code": "x", "code_path": "bos://api-jobs/c/"}}, "code"),
        ({"output_path": "s3://elsewhere/"}, "output_path"),
        ({"time_limit_s": 0}, "time_limit_s"),
        ({"notify_email": "bad"}, "notify_email"),
        ({"notify_webhook": "file:///etc/passwd"}, "notify_webhook"),
        # Params of the wrong shape name what is wrong instead of failing the server.
        ({"params": "x"}, "params"),
        ({"params": [1]}, "params"),
        ({"params": {"framework": ["python"], "code": "x"}}, "framework"),
        ({"params": {"code_path": 5, "start_command": "python a.py"}}, "code_path"),
        ({"params": {"code_path": "bos://api-jobs/c/", "start_command": 7}}, "start_command"),
        ({**ML, "algorithm": "logistic_regression", "params": {"l1": [1]}}, "l1"),
        ({**ML, "algorithm": "logistic_regression", "params": {"max_iter": 10**400}}, "max_iter"),
        ({**ML, "algorithm": "standardize", "params": {"format": ["DENSE"]}}, "format"),
    ],
)
def test_bad_input_is_a_400_naming_the_field(owner, client, overrides, field):
    if overrides.get("kind") == ML["kind"]:
        overrides = {**overrides, "train_data_path": "bos://api-jobs/std/"}
    response = client.post("/api/v1/jobs/", body(owner, **overrides), format="json")
    assert response.status_code == 400
    assert field in response.json()
    assert not Job.objects.exists()


def test_code_typed_with_crlf_line_ends_is_stored_as_python_writes_it(owner, client):
    typed = {"code": "x = 1\r\nif x:\r\n    print('ok')\r\n"}
    created = client.post("/api/v1/jobs/", body(owner, params=typed), format="json")
    assert created.status_code == 201, created.content
    assert created.json()["params"]["code"] == "x = 1\nif x:\n    print('ok')\n"
