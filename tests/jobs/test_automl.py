"""AutoML logistic regression jobs (the spec's "AutoML Job"): settings refused with the
rule named, the spec's flow on two instances through the API (SUSY-shaped raw data in
the three paths, the model in the spec's format, the trial table, the curves, release to
the warehouse), and a multi-class file refused before the first trial."""

import csv
import io
import json

import numpy as np
import pytest

from apps.billing.models import ResourcePackage
from apps.jobs.models import Job, JobStatus
from tests.jobs.helpers import run_until, status_of, stored
from tests.jobs.test_machine_learning import dense_lines, put

OUT = "bos://jobs-out/automl/"


def susy_shaped(rows: int, seed: int, classes: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """18 features, labels from a noisy linear rule (SUSY's shape, not its physics)."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(rows, 18))
    score = X @ np.linspace(-1.5, 1.5, 18) + rng.normal(scale=2.0, size=rows)
    if classes == 2:
        return X, (score > 0).astype(int)
    return X, np.digitize(score, np.quantile(score, np.linspace(0, 1, classes + 1)[1:-1]))


@pytest.fixture
def api(owner, api_client_for):
    return api_client_for(owner)


def body(project, **overrides) -> dict:
    package = ResourcePackage.objects.get(module="train", name__startswith="CPU Instance_2")
    settings = {
        "name": "autolr",
        "project": project.pk,
        "kind": "automl",
        "algorithm": "logistic_regression",
        "package": package.pk,
        "instances": 2,
        "output_path": OUT,
        "train_data_path": "bos://jobs-out/susy/tune-train/",
        "test_data_path": "bos://jobs-out/susy/tune-test/",
        "params": {
            "l1_range": ["1e-6", "1e-1"],
            "l2_range": [1e-6, 0.1],
            "iterations_range": [10, 60],
            "trials": 20,
            "format": "DENSE",
            "model_train_data_path": "bos://jobs-out/susy/all/",
        },
    }
    params = overrides.pop("params", {})
    return settings | overrides | {"params": settings["params"] | params}


@pytest.mark.parametrize(
    "change,field,words",
    [
        ({"params": {"l1_range": [0, 0.1]}}, "l1_range", "greater than 0 and less than 1"),
        ({"params": {"l2_range": ["0.1", "1e-3"]}}, "l2_range", "low 0.1 >= high 0.001"),
        ({"params": {"l2_range": ["1e-3", "abc"]}}, "l2_range", "Got 'abc'"),
        ({"params": {"iterations_range": [5, 60]}}, "iterations_range", "[10, 200]"),
        ({"params": {"iterations_range": [80, 60]}}, "iterations_range", "low 80 must be below"),
        ({"params": {"trials": 101}}, "trials", "[10, 100]"),
        ({"params": {"format": "CSV"}}, "format", "SPARSE_ID, SPARSE_ID_WEIGHT, DENSE"),
        ({"params": {"model_train_data_path": ""}}, "model_train_data_path", "required"),
        ({"instances": 1}, "instances", "2 to 4"),
        ({"test_data_path": ""}, "test_data_path", "tuning test data path is required"),
        (
            {"algorithm": "gbdt", "params": {"eta_range": [0, 0.3]}},
            "eta_range",
            "[0.0001, 1]",
        ),
        (
            {"algorithm": "gbdt", "params": {"max_depth_range": [8, 4]}},
            "max_depth_range",
            "low 8 must be below high 4",
        ),
        (
            {"algorithm": "gbdt", "params": {"scale_pos_weight": "lots"}},
            "scale_pos_weight",
            "[low, high]",
        ),
    ],
)
def test_settings_are_refused_naming_the_rule(api, project, change, field, words):
    answer = api.post("/api/v1/jobs/", body(project, **change), format="json")
    assert answer.status_code == 400, answer.json()
    assert words in json.dumps(answer.json()[field]), answer.json()
    assert not Job.objects.filter(kind="automl").exists()


def put_susy(owner, project, classes: int = 2) -> None:
    for key, rows, seed in (("tune-train", 600, 1), ("tune-test", 400, 2), ("all", 1000, 3)):
        X, y = susy_shaped(rows, seed, classes if key == "tune-train" else 2)
        # The spec's example: raw SUSY rows with a comma added at the start (No left empty).
        put(owner, project, f"susy/{key}/part-0", dense_lines(X, y))


def ended(job) -> Job:
    run_until(lambda: status_of(job) not in ("queued", "running", "staging"), "the job", 300)
    job.refresh_from_db()
    return job


def test_the_spec_flow_on_two_instances(owner, project, api):
    put_susy(owner, project)
    answer = api.post("/api/v1/jobs/", body(project), format="json")
    assert answer.status_code == 201, answer.json()
    job = ended(Job.objects.get(job_id=answer.json()["job_id"]))
    assert job.status == JobStatus.SUCCEEDED, job.reason
    base = f"automl/{job.job_id}"

    # The model in the spec's format: weight, internal id, original name; non-zero only.
    lines = stored(f"{base}/model/model").decode().splitlines()
    *features, intercept = [line.split(" ") for line in lines]
    assert intercept[1:] == ["-1", "__intercept__"]
    assert features and all(len(f) == 3 and float(f[0]) != 0 for f in features)
    assert {f[2] for f in features} <= {str(i) for i in range(18)}
    model = json.loads(stored(f"{base}/model/model.json"))
    assert model["label_names"] == ["0", "1"] and model["format"] == "DENSE"

    # The trial table, as CSV and JSON: 20 trials over both instances.
    table = list(csv.DictReader(io.StringIO(stored(f"{base}/log/trials.csv").decode())))
    assert [int(row["trial"]) for row in table] == list(range(20))
    assert {row["instance"] for row in table} == {"0", "1"}
    assert {row["state"] for row in table} <= {"COMPLETE", "PRUNED", "FAIL"}
    complete = [row for row in table if row["state"] == "COMPLETE"]
    assert len(complete) >= 10
    for row in complete:
        assert 1e-6 <= float(row["l1"]) <= 0.1 and 1e-6 <= float(row["l2"]) <= 0.1
        assert 10 <= int(row["iterations"]) <= 60 and 0.5 < float(row["auc"]) <= 1
    assert json.loads(stored(f"{base}/log/trials.json"))[0]["trial"] == 0
    search = json.loads(stored(f"{base}/log/search.json"))
    best = max(complete, key=lambda row: float(row["auc"]))
    assert search["best"]["trial"] == int(best["trial"])
    assert model["params"]["l1"] == pytest.approx(float(best["l1"]))
    assert search["final_model"]["tuning_test_auc"] > 0.8

    # The curves: each finished trial's AUC and the best so far, rising.
    curves = api.get(f"/api/v1/jobs/{job.job_id}/metrics/?shape=columns").json()[0]
    assert curves["instance"] == 0  # instance 0 draws them
    best_so_far = [v for v in curves["columns"]["best_auc"] if v is not None]
    assert len(best_so_far) == len(complete) and best_so_far == sorted(best_so_far)

    # One click from the warehouse: the release form's defaults serve the model.
    released = api.post(
        "/api/v1/models/release/", {"job_id": job.job_id, "name": "autolr"}, format="json"
    )
    assert released.status_code == 201, released.json()
    assert released.json()["model_type"] == "bml_logistic_regression"


def test_gbdt_search_on_two_instances_serves_as_bml_gbdt(owner, project, api):
    put_susy(owner, project)
    settings = body(
        project,
        name="autogbdt",
        algorithm="gbdt",
        params={"trials": 10, "num_round_range": [10, 40], "max_depth_range": [2, 4]},
    )
    answer = api.post("/api/v1/jobs/", settings, format="json")
    assert answer.status_code == 201, answer.json()
    job = ended(Job.objects.get(job_id=answer.json()["job_id"]))
    assert job.status == JobStatus.SUCCEEDED, job.reason
    info = json.loads(stored(f"automl/{job.job_id}/model/model_info.json"))
    assert info["search"]["best_trial"] >= 0
    trials = api.get(f"/api/v1/jobs/{job.job_id}/trials/").json()
    assert len(trials["trials"]) == 10 and {row["instance"] for row in trials["trials"]} == {0, 1}
    assert "eta" in trials["params"] and "rounds" not in trials["importances"]
    assert trials["best"]["auc"] == max(
        row["auc"] for row in trials["trials"] if row["state"] == "COMPLETE"
    )
    released = api.post(
        "/api/v1/models/release/", {"job_id": job.job_id, "name": "autogbdt"}, format="json"
    )
    assert released.status_code == 201, released.json()
    assert released.json()["model_type"] == "bml_gbdt"


def test_a_multi_class_file_fails_before_the_first_trial(owner, project, api):
    put_susy(owner, project, classes=3)
    answer = api.post("/api/v1/jobs/", body(project, name="autolr3"), format="json")
    assert answer.status_code == 201, answer.json()
    job = ended(Job.objects.get(job_id=answer.json()["job_id"]))
    assert job.status == JobStatus.FAILED
    logs = api.get(f"/api/v1/jobs/{job.job_id}/logs/").json()
    text = "\n".join(log["text"] for log in logs)
    assert "binary classification only: the data holds 3 labels" in text
    assert "tuning-train: '0', '1', '2'" in text
    assert "trial 1/" not in text


def runner_processes(job) -> list:
    """The job's trial processes (one per instance), found by the run id in their
    environment."""
    import psutil

    found = []
    for process in psutil.process_iter(["cmdline", "name"]):
        try:
            if not (process.info["name"] or "").startswith("python"):
                continue  # the sandbox's bwrap processes carry the command line too
            if "workers.runners.automl_lr" in " ".join(process.info["cmdline"] or []):
                if process.environ().get("BML_RUN_ID", "").startswith(job.job_id):
                    found.append(process)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return found


def journal_of(job) -> list[dict]:
    try:
        text = stored(f"automl/{job.job_id}/log/trials.jsonl").decode()
    except Exception:  # noqa: BLE001 - not stored yet
        return []
    return [json.loads(line) for line in text.splitlines()]


def test_resume_after_kill_9_goes_on_from_the_finished_trials(owner, project, api):
    # Trials of a few tenths of a second, so that the run is killed in the middle.
    for key, rows, seed in (
        ("tune-train", 30_000, 1),
        ("tune-test", 10_000, 2),
        ("all", 30_000, 3),
    ):
        X, y = susy_shaped(rows, seed)
        put(owner, project, f"big/{key}/part-0", dense_lines(X, y))
    settings = body(
        project,
        name="autolr-kill",
        train_data_path="bos://jobs-out/big/tune-train/",
        test_data_path="bos://jobs-out/big/tune-test/",
        params={
            "trials": 100,
            "iterations_range": [150, 200],
            "model_train_data_path": "bos://jobs-out/big/all/",
        },
    )
    answer = api.post("/api/v1/jobs/", settings, format="json")
    assert answer.status_code == 201, answer.json()
    job = Job.objects.get(job_id=answer.json()["job_id"])
    run_until(lambda: len(journal_of(job)) >= 4, "four trials in the stored journal", 240)
    processes = runner_processes(job)
    assert len(processes) == 2
    processes[1].kill()  # kill -9 of a trial process
    job = ended(job)
    assert job.status == JobStatus.FAILED
    before = journal_of(job)
    assert 4 <= len(before) < 100

    resumed = api.post(f"/api/v1/jobs/{job.job_id}/resume/")
    assert resumed.status_code == 201, resumed.json()
    assert resumed.json()["name"] == "autolr-kill-r"
    again = ended(Job.objects.get(job_id=resumed.json()["job_id"]))
    assert again.status == JobStatus.SUCCEEDED, again.reason
    logs = "\n".join(log["text"] for log in api.get(f"/api/v1/jobs/{again.job_id}/logs/").json())
    kept = [r for r in before if r["state"] in ("COMPLETE", "PRUNED")]
    assert f"resumed: {len(kept)} finished trials kept" in logs
    assert f"trial {len(kept)}/100 " not in logs and f"trial {len(kept) + 1}/100 " in logs
    table = list(
        csv.DictReader(io.StringIO(stored(f"automl/{again.job_id}/log/trials.csv").decode()))
    )
    assert len(table) == 100
    for row, record in zip(table, kept, strict=False):
        assert float(row["l1"]) == pytest.approx(record["params"]["l1"])

    # A succeeded search, or one of another kind, has nothing to resume.
    refused = api.post(f"/api/v1/jobs/{again.job_id}/resume/")
    assert refused.status_code == 400 and "only a failed" in json.dumps(refused.json())


def test_the_console_form_per_algorithm_and_clone(owner, project):
    from django.test import Client

    web = Client()
    web.force_login(owner)
    gbdt = web.get("/jobs/new-automl/?algorithm=gbdt").content.decode()
    assert "Learning rate (eta): low" in gbdt and 'name="scale_pos_weight"' in gbdt
    assert "Model training data path" in gbdt and 'min="2" max="4"' in gbdt
    form = {
        "algorithm": "gbdt",
        "submit": "1",
        "name": "form-gbdt",
        "package": ResourcePackage.objects.get(
            module="train", name__startswith="CPU Instance_2"
        ).pk,
        "instances": "2",
        "time_limit_s": "600",
        "output_path": OUT,
        "train_data_path": "bos://jobs-out/susy/tune-train/",
        "test_data_path": "bos://jobs-out/susy/tune-test/",
        "model_train_data_path": "bos://jobs-out/susy/all/",
        "eta_low": "0.05",
        "eta_high": "2",  # above the bound: refused, the form kept
        "scale_pos_weight": "1, 5000",
        "trials": "10",
        "format": "DENSE",
    }
    bad = web.post("/jobs/new-automl/", form).content.decode()
    assert "[0.0001, 1]" in bad and 'value="2"' in bad and not Job.objects.exists()
    created = web.post("/jobs/new-automl/", form | {"eta_high": "0.3"})
    assert created.status_code == 302, created.content.decode()[-3000:]
    job = Job.objects.get(name="form-gbdt")
    assert job.params["eta_range"] == [0.05, 0.3] and job.params["scale_pos_weight"] == [1, 5000]
    clone = web.get(f"/jobs/new-automl/?clone={job.job_id}").content.decode()
    assert 'value="form-gbdt-clone"' in clone and 'value="1, 5000"' in clone
    listed = web.get("/jobs/?kind=automl").content.decode()
    assert "AutoML jobs" in listed and "form-gbdt" in listed and "/jobs/new-automl/" in listed
