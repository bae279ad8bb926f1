"""The job engine end to end on CPU: real supervise processes, the real store, declared
devices (two CUDA GPUs and one XPU, from the test settings)."""

import json
import os
import signal
from datetime import timedelta
from pathlib import Path

import psutil
import pytest

from apps.billing.models import ResourcePackage
from apps.jobs import services
from apps.jobs.models import ACTIVE, Job, JobStatus
from apps.projects import services as projects
from apps.storage import services as storage
from apps.storage.client import get_client
from tests.conftest import wait_until
from tests.jobs.helpers import package, run_until, status_of, stored, submit, wait_running
from workers import scheduler
from workers.models import Lease


def test_a_job_runs_to_success_with_output_and_log_in_storage(owner, project):
    job = submit(
        owner,
        project,
        """
        print("hello from the job")
        open("output/model.txt", "w").write("weights")
    """,
    )
    run_until(lambda: status_of(job) not in ("queued", "running"), "job end")
    assert job.status == JobStatus.SUCCEEDED, job.reason
    assert stored(f"results/{job.job_id}/output/model.txt") == b"weights"
    log = stored(f"results/{job.job_id}/log/{job.job_id}-0.log").decode()
    assert "hello from the job" in log
    assert not Lease.objects.filter(released_at__isnull=True).exists()


def release(job):
    """Let a job's code that waits for a file named "go" in its workspace end (the sandbox
    shows it nothing of the test's own folders)."""
    run = job.runs.get()
    (Path(run.run_dir) / "workspace" / "go").touch()


def test_two_gpu_jobs_run_together_and_a_third_waits_for_a_device(owner, project):
    code = """
        import os, time
        open("output/gpu.txt", "w").write(os.environ["CUDA_VISIBLE_DEVICES"])
        while not os.path.exists("go"):
            time.sleep(0.1)
    """
    jobs = []
    for i in range(3):
        jobs.append(submit(owner, project, code, name=f"gpu{i}", pkg=package("cuda", 1)))
    scheduler.tick()
    assert [status_of(j) for j in jobs] == ["running", "running", "queued"]
    held = {lease.devices.get().index for lease in Lease.objects.filter(released_at=None)}
    assert held == {0, 1}

    release(jobs[0])  # the first job ends; its GPU goes to the third
    run_until(lambda: status_of(jobs[2]) == "running", "third job admitted")
    assert status_of(jobs[0]) == JobStatus.SUCCEEDED
    release(jobs[1])
    wait_until(lambda: jobs[2].runs.filter(run_dir__gt="").exists(), what="third job's run")
    release(jobs[2])
    run_until(lambda: all(status_of(j) == JobStatus.SUCCEEDED for j in jobs), "all done")
    seen = [stored(f"results/{j.job_id}/output/gpu.txt") for j in jobs]
    assert seen[0] != seen[1] and seen[2] == seen[0]  # each saw only its own device


def test_over_its_time_limit_a_job_ends_timed_out_with_its_log(owner, project):
    job = submit(
        owner,
        project,
        """
        import time
        print("epoch 1", flush=True)
        time.sleep(120)
    """,
        time_limit_s=1,
    )
    run_until(lambda: status_of(job) == JobStatus.TIMED_OUT, "timeout", timeout=40)
    assert "maximum running time" in job.reason
    assert b"epoch 1" in stored(f"results/{job.job_id}/log/{job.job_id}-0.log")


def test_terminate_stops_a_running_job(owner, project):
    job = submit(
        owner,
        project,
        """
        import time
        print("working", flush=True)
        time.sleep(120)
    """,
    )
    wait_running(job)
    services.terminate_job(owner, job)
    run_until(lambda: status_of(job) == JobStatus.TERMINATED, "terminated")
    assert not Lease.objects.filter(released_at__isnull=True).exists()


def test_a_run_whose_process_vanished_is_closed_as_worker_lost(owner, project):
    job = submit(
        owner,
        project,
        """
        import time
        time.sleep(120)
    """,
    )
    wait_running(job)
    run = job.runs.get()
    supervisor = scheduler.supervisor_process(run)
    user_pid = int(open(os.path.join(run.run_dir, "child.pid")).read())
    supervisor.send_signal(signal.SIGKILL)  # the worker dies without a result
    os.killpg(user_pid, signal.SIGKILL)
    run_until(lambda: status_of(job) == JobStatus.FAILED, "worker lost")
    assert "worker lost" in job.reason
    assert not Lease.objects.filter(released_at__isnull=True).exists()


def test_a_live_run_is_adopted_after_the_scheduler_restarts(owner, project):
    job = submit(
        owner,
        project,
        """
        import os, time
        while not os.path.exists("go"):
            time.sleep(0.1)
    """,
    )
    wait_running(job)
    # Nothing in this process holds the run: a new scheduler (this one, ticking again) finds
    # it by its pid file and lets it finish normally.
    run = job.runs.get()
    open(os.path.join(run.run_dir, "workspace", "go"), "w").close()
    run_until(lambda: status_of(job) == JobStatus.SUCCEEDED, "adopted run ends")
    assert json.loads(open(os.path.join(run.run_dir, "result.json")).read())["status"] == (
        "succeeded"
    )


def test_a_package_this_host_can_never_provide_fails_at_once(owner, project):
    big = ResourcePackage.objects.get(
        module="train", device_kind="cuda", device_count=4, name__contains="V100"
    )
    job = submit(owner, project, "print(1)", pkg=big)
    scheduler.tick()
    assert status_of(job) == JobStatus.FAILED
    assert "needs 4 cuda device(s); this host has 2" in job.reason


@pytest.mark.parametrize(
    "field,kwargs,message",
    [
        ("name", {"name": "9lives"}, "start with a letter"),
        ("name", {"name": "a" * 40}, "shorter than 40"),
        ("output_path", {"output_path": "bos://not-mine/x/"}, "No bucket of yours"),
        ("instances", {"instances": 9}, "1 to 4"),
    ],
)
def test_bad_job_input_names_the_field(owner, project, field, kwargs, message):
    from django.core.exceptions import ValidationError

    base = dict(
        name="ok-job",
        kind="deep_learning",
        algorithm="custom_code",
        params={"code": "print(1)"},
        package_id=package().pk,
        output_path="bos://jobs-out/r/",
    )
    with pytest.raises(ValidationError) as error:
        services.create_job(owner, project, **{**base, **kwargs})
    assert message in str(error.value.message_dict[field])
    assert not Job.objects.exists()


def test_project_list_counts_jobs(owner, project, api_client_for):
    submit(owner, project, "print(1)")
    counts = api_client_for(owner).get("/api/v1/projects/").json()["results"][0]["counts"]
    assert counts["jobs"] == {"running": 0, "total": 1}


def test_reported_metrics_are_served_and_kept_with_the_log(owner, project, api_client_for):
    job = submit(
        owner,
        project,
        """
        import os
        import bml
        for step in range(5):
            bml.report(step=step, loss=1.0 / (step + 1), acc=step / 4)
        # User code may write the file itself: NaN, a bare string and a text value.
        with open(os.environ["BML_METRICS_FILE"], "a") as fh:
            fh.write('{"step": 5, "loss": NaN}\\n"text"\\n{"step": 6, "note": "warm-up"}\\n')
    """,
    )
    run_until(lambda: status_of(job) == JobStatus.SUCCEEDED, "job end")
    client = api_client_for(owner)
    series = client.get(f"/api/v1/jobs/{job.job_id}/metrics/").json()
    points = series[0]["points"]
    assert [p["step"] for p in points] == [0, 1, 2, 3, 4, 6]  # the NaN line is left out
    assert points[1]["loss"] == 0.5 and points[4]["acc"] == 1.0
    kept = stored(f"results/{job.job_id}/log/{job.job_id}-0.metrics.jsonl").decode()
    assert len(kept.splitlines()) == 8

    # The column shape the job page draws: the same points, one list per name.
    answer = client.get(f"/api/v1/jobs/{job.job_id}/metrics/?shape=columns")
    assert answer.status_code == 200
    (columns,) = answer.json()
    assert columns["instance"] == 0 and columns["count"] == 6
    assert columns["columns"]["step"] == [0, 1, 2, 3, 4, 6]
    assert columns["columns"]["loss"] == [1.0, 0.5, 1 / 3, 0.25, 0.2, None]
    assert columns["columns"]["acc"] == [0.0, 0.25, 0.5, 0.75, 1.0, None]
    assert columns["columns"]["note"] == [None] * 6  # text is not a curve's value
    assert len(columns["columns"]["time"]) == 6
    wrong = client.get(f"/api/v1/jobs/{job.job_id}/metrics/?shape=rows")
    assert wrong.status_code == 400 and "shape is one of points, columns" in wrong.json()["shape"]


def test_pip_install_in_a_job_goes_to_its_own_layer(owner, project):
    import base64
    import io
    import sys
    import zipfile

    wheel = io.BytesIO()
    with zipfile.ZipFile(wheel, "w") as z:
        z.writestr("tinypkg_bml/__init__.py", "VALUE = 42\n")
        info = "tinypkg_bml-0.1.dist-info/"
        z.writestr(info + "METADATA", "Metadata-Version: 2.1\nName: tinypkg-bml\nVersion: 0.1\n")
        z.writestr(
            info + "WHEEL",
            "Wheel-Version: 1.0\nGenerator: tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        )
        z.writestr(info + "RECORD", "")
    job = submit(
        owner,
        project,
        f"""
        import base64, subprocess, sys
        wheel = "tmp/tinypkg_bml-0.1-py3-none-any.whl"
        open(wheel, "wb").write(base64.b64decode({base64.b64encode(wheel.getvalue()).decode()!r}))
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-index", wheel],
                       check=True)
        import tinypkg_bml
        open("output/value.txt", "w").write(str(tinypkg_bml.VALUE))
    """,
    )
    run_until(lambda: status_of(job) not in ("queued", "running"), "job end")
    log = stored(f"results/{job.job_id}/log/{job.job_id}-0.log").decode()
    assert job.status == JobStatus.SUCCEEDED, log
    assert stored(f"results/{job.job_id}/output/value.txt") == b"42"
    with pytest.raises(ImportError):  # the appliance's own environment is untouched
        __import__("tinypkg_bml")
    assert not list(Path(sys.prefix).rglob("tinypkg_bml*"))


def test_instances_of_a_job_split_the_training_files(owner, project):
    import io

    for name in ("p1.csv", "p2.csv", "p3.csv", "p4.csv"):
        get_client().put_object("jobs-out", f"train/{name}", io.BytesIO(b"1"), 1)
    job = submit(
        owner,
        project,
        """
        import os
        print("files:", ",".join(sorted(os.listdir("train_data"))))
    """,
        instances=2,
        train_data_path="bos://jobs-out/train/",
    )
    run_until(lambda: status_of(job) not in ("queued", "running"), "job end", timeout=90)
    assert job.status == JobStatus.SUCCEEDED, job.reason
    logs = [stored(f"results/{job.job_id}/log/{job.job_id}-{i}.log").decode() for i in (0, 1)]
    assert "files: p1.csv,p3.csv" in logs[0] and "files: p2.csv,p4.csv" in logs[1]


def test_more_instances_than_cores_fails_at_once_with_the_reason(owner, project):
    from workers.models import Host

    cores = Host.objects.get().cpu_cores
    if cores >= 4:  # instances are capped at 4 by the job rules; nothing to show here
        Host.objects.update(cpu_cores=3)
    job = submit(owner, project, "print(1)", instances=4)
    scheduler.tick()
    assert status_of(job) == JobStatus.FAILED
    assert "4 instances need a core each" in job.reason


def test_deleting_a_running_job_terminates_it_then_removes_it(owner, project):
    job = submit(
        owner,
        project,
        """
        import time
        time.sleep(120)
    """,
    )
    wait_running(job)
    assert services.delete_job(owner, job) is False  # under way
    run_until(lambda: not Job.objects.filter(pk=job.pk).exists(), "the job to go")
    assert not Lease.objects.filter(released_at__isnull=True).exists()


def test_a_deleted_jobs_workspace_goes_with_it(owner, project):
    job = submit(owner, project, "open('output/x', 'w').write('1')")
    run_until(lambda: status_of(job) == JobStatus.SUCCEEDED, "job end")
    run_dir = Path(job.runs.get().run_dir)
    assert run_dir.exists()
    assert services.delete_job(owner, job) is True
    assert not run_dir.parent.exists()
    assert stored(f"results/{job.job_id}/output/x") == b"1"  # outputs stay in storage


def dead(process: psutil.Process) -> bool:
    try:
        return process.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_deleting_a_project_kills_its_running_jobs_and_frees_their_leases(owner, project):

    doomed = projects.create_project(owner, "doomed-with-jobs")
    storage.create_bucket(owner, doomed, "doomed-out")
    job = services.create_job(
        owner,
        doomed,
        name="long",
        kind="deep_learning",
        algorithm="custom_code",
        params={"framework": "python", "code": "import time\ntime.sleep(300)"},
        package_id=package().pk,
        output_path="bos://doomed-out/results/",
    )
    wait_running(job)
    run = job.runs.get()
    child = psutil.Process(int((Path(run.run_dir) / "child.pid").read_text()))
    projects.purge_project(doomed.pk)  # what the Q task does once the name was confirmed
    wait_until(lambda: dead(child), timeout=10, what="the user code to die")
    assert not Job.objects.filter(pk=job.pk).exists()
    assert not Lease.objects.filter(released_at__isnull=True).exists()
    assert not Path(run.run_dir).exists()


def test_instances_sharing_the_host_are_pinned_to_their_own_cores(owner, project):
    job = submit(
        owner,
        project,
        """
        import os
        print("cpus", sorted(os.sched_getaffinity(0)), "threads", os.environ["OMP_NUM_THREADS"])
        """,
        instances=2,
    )
    run_until(lambda: status_of(job) == JobStatus.SUCCEEDED, "job end")
    seen = []
    for run in job.runs.order_by("index"):
        log = stored(f"results/{job.job_id}/log/{job.job_id}-{run.index}.log").decode()
        expected = f"cpus {run.lease.cpus} threads {run.lease.cpu_cores}"
        assert expected in log and len(run.lease.cpus) == run.lease.cpu_cores
        seen.append(set(run.lease.cpus))
    if len(os.sched_getaffinity(0)) >= 2:
        assert not seen[0] & seen[1]  # cores enough: each instance has its own


@pytest.fixture
def private_store(project, tmp_path, settings):
    """A store of the test's own that it may take down and bring back (perhaps on other
    ports, as after a restart); the appliance (settings.S3) uses it meanwhile."""
    from apps.storage.embedded import EmbeddedStore
    from bml_site import config

    creds = config.embedded_s3_credentials()
    store = EmbeddedStore(
        tmp_path / "store", creds["access_key"], creds["secret_key"], tmp_path / "store.log"
    ).start()
    session_s3 = settings.S3

    def use(started: EmbeddedStore) -> None:
        settings.S3 = {**session_s3, "endpoint": started.endpoint}

    use(store)
    get_client().make_bucket("jobs-out")
    store.use = use
    yield store
    store.stop()


WAIT_THEN_SAVE = """
    import os, time
    while not os.path.exists("go"):
        time.sleep(0.1)
    open("output/model.txt", "w").write("weights")
"""


def test_outputs_wait_for_a_store_that_is_down_and_are_stored_when_it_is_back(
    owner, project, private_store, monkeypatch, client, api_client_for
):
    monkeypatch.setattr(scheduler, "STAGING_RETRY", timedelta(0))
    job = submit(owner, project, WAIT_THEN_SAVE)
    wait_running(job)
    run = job.runs.get()
    private_store.stop()  # the store goes away before the job ends
    release(job)
    run_until(lambda: status_of(job) == JobStatus.STAGING, "outputs waiting")
    assert job.get_status_display() == "Staging outputs"
    assert "outputs waiting for the object store: bos://jobs-out/results/" in job.reason
    assert "the log" in job.reason and "retrying" in job.reason
    workspace = Path(run.run_dir) / "workspace"
    assert (workspace / "output" / "model.txt").read_text() == "weights"
    assert not Lease.objects.filter(released_at__isnull=True).exists()  # devices are free
    answer = api_client_for(owner).get(f"/api/v1/jobs/{job.job_id}/").json()
    assert answer["status"] == "staging" and answer["reason"] == job.reason
    client.force_login(owner)
    page = client.get(f"/jobs/{job.job_id}/").content.decode()
    assert "Staging outputs" in page and "outputs waiting for the object store" in page

    log = Path(run.run_dir) / "log.txt"
    run_until(lambda: "staging out again" in log.read_text(), "a retry while it is down")
    wait_until(lambda: scheduler.supervisor_process(run) is None, what="the retry to end")
    scheduler.tick()
    assert status_of(job) == JobStatus.STAGING

    private_store.start()  # back, on whatever ports it found free
    private_store.use(private_store)
    run_until(lambda: status_of(job) not in ACTIVE, "the outputs to be stored")
    assert job.status == JobStatus.SUCCEEDED and job.reason == ""
    assert stored(f"results/{job.job_id}/output/model.txt") == b"weights"
    kept = stored(f"results/{job.job_id}/log/{job.job_id}-0.log").decode()
    assert "outputs not stored" in kept and "staging out again" in kept


def test_an_adopted_run_whose_grant_points_at_a_dead_store_gets_a_fresh_one(
    owner, project, settings
):
    from apps.storage.embedded import free_port

    job = submit(owner, project, WAIT_THEN_SAVE)
    live = settings.S3
    # The run starts with a grant for a store at a port that will be dead (the appliance
    # restarts, its store comes up elsewhere); presigning needs no store (region given).
    settings.S3 = {**live, "endpoint": f"127.0.0.1:{free_port()}", "region": "us-east-1"}
    scheduler.tick()
    run = job.runs.get()
    assert "127.0.0.1" in json.loads((Path(run.run_dir) / "run.json").read_text())["grant"]["url"]
    settings.S3 = live  # the restarted appliance adopts the run: a fresh grant
    wait_running(job)
    url = f"http://{live['endpoint']}/jobs-out"
    assert json.loads((Path(run.run_dir) / "grant.json").read_text())["url"] == url
    shared = Path(run.run_dir) / "workspace" / ".bml" / "grant.json"  # the code's own
    wait_until(lambda: json.loads(shared.read_text())["url"] == url, what="the code's grant")
    release(job)
    run_until(lambda: status_of(job) not in ACTIVE, "job end")
    assert job.status == JobStatus.SUCCEEDED, job.reason
    assert stored(f"results/{job.job_id}/output/model.txt") == b"weights"
    assert (
        "outputs not stored" not in stored(f"results/{job.job_id}/log/{job.job_id}-0.log").decode()
    )


@pytest.mark.parametrize("ending", ["given up", "terminated"])
def test_outputs_never_stored_end_the_job_naming_what_and_where(owner, project, settings, ending):
    from apps.storage.embedded import free_port

    job = submit(owner, project, "open('output/model.txt', 'w').write('weights')")
    # The store is away for good: the run's grant and every fresh one point at nothing.
    settings.S3 = {**settings.S3, "endpoint": f"127.0.0.1:{free_port()}", "region": "us-east-1"}
    run_until(lambda: status_of(job) == JobStatus.STAGING, "outputs waiting")
    if ending == "given up":
        settings.JOB_STAGING_GIVE_UP_S = 0
    else:
        services.terminate_job(owner, job)
    run_until(lambda: status_of(job) not in ACTIVE, "the job to end")
    assert job.status == (JobStatus.FAILED if ending == "given up" else JobStatus.TERMINATED)
    run_dir = job.runs.get().run_dir
    assert f"bos://jobs-out/results/{job.job_id}/output/ (in {run_dir}/workspace/output)" in (
        job.reason
    )
    assert f"the log (in {run_dir}/log.txt)" in job.reason
    assert (Path(run_dir) / "workspace" / "output" / "model.txt").read_text() == "weights"
