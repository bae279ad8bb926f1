"""Attacks from inside a run, each of which must fail: the same probe (tests/security/probe.py)
runs as a job's code, in a notebook kernel and in a model's own predictor code, and reports
what it could read, write, signal or call. A victim project keeps a secret in its bucket and
a victim job keeps one in its workspace while the attacks run; both must come through
untouched, and the attacker's legitimate work (its own output) must still land."""

import io
import json
import os
import textwrap
from pathlib import Path

import pytest
from django.conf import settings

from apps.jobs import services
from apps.projects.models import Project
from apps.storage import services as storage
from apps.storage.client import get_client
from bml_site import config
from tests.jobs.helpers import package, run_until, status_of, stored, submit, wait_running
from tests.security import probe
from workers import cgroups, devices, sandbox

SECRET = "victim-secret-7f3a9c"


@pytest.fixture
def attacker(make_user):
    devices.sync_inventory()
    user = make_user()
    project = Project.objects.get(owner=user)
    storage.create_bucket(user, project, "jobs-out")
    return user, project


@pytest.fixture
def victim(make_user):
    """Another user's project: a secret object in its own bucket."""
    user = make_user()
    project = Project.objects.get(owner=user)
    storage.create_bucket(user, project, "victim-data")
    get_client().put_object("victim-data", "secret.txt", io.BytesIO(SECRET.encode()), len(SECRET))
    return user, project


def weed_ports(store) -> dict:
    """The embedded SeaweedFS's internal ports by name (s3 is the one runs may use)."""
    names = ["s3", "master", "volume", "filer", "admin"]
    return {name: store.weed_ports[2 * i] for i, name in enumerate(names)}


def store_targets(store) -> list[dict]:
    """Ways around the S3 port's credentials to the victim's object."""
    targets = [
        {
            "name": "s3 without credentials",
            "url": f"http://{store.endpoint}/victim-data/secret.txt",
            "secret": SECRET,
        }
    ]
    if store.kind != "seaweedfs":
        return targets
    ports = weed_ports(store)
    return targets + [
        {
            "name": "filer http",
            "url": f"http://127.0.0.1:{ports['filer']}/buckets/victim-data/secret.txt",
            "secret": SECRET,
        },
        {
            "name": "master lookup",
            "url": f"http://127.0.0.1:{ports['master']}/dir/assign",
        },
        {
            "name": "master collection delete",
            "url": f"http://127.0.0.1:{ports['master']}/col/delete?collection=victim-data",
        },
        {
            "name": "master volume lookup",
            "url": f"http://127.0.0.1:{ports['master']}/dir/lookup?volumeId=1",
        },
        {
            # A file id's shape (the real one is not to be had: see test_store_ports.py).
            "name": "volume read by file id",
            "url": f"http://127.0.0.1:{ports['volume']}/1,01637037d6",
        },
        {"name": "admin metrics", "url": f"http://127.0.0.1:{ports['admin']}/metrics"},
    ]


def var_targets(victim_workspace: Path) -> dict:
    var = Path(settings.VAR_DIR)
    return {
        "read": [
            settings.DATABASES["default"]["NAME"],
            str(var / "objectstore-credentials.json"),
            str(var / "secret_key"),
            str(var / "objectstore" / "s3-identities.json"),
            str(victim_workspace / "secret.txt"),
        ],
        "list": [str(var), str(var / "runs"), str(var / "notebooks"), str(var / "objectstore")],
        "write": [
            str(Path(settings.BASE_DIR) / "pwned-by-run"),
            str(var / "pwned-by-run"),
            str(victim_workspace / "pwned-by-run"),
        ],
    }


def assert_nothing_leaked(report: dict):
    assert report, "the probe reported nothing"
    assert not probe.leaks(report), json.dumps(probe.leaks(report), indent=1)


def test_the_sandbox_is_on_in_the_suite():
    assert sandbox.active(), sandbox.probe()


def test_attacks_from_a_job_fail_and_its_own_work_still_lands(attacker, victim, object_store):
    user, project = attacker
    victim_user, victim_project = victim
    storage.create_bucket(victim_user, victim_project, "victim-out")
    victim_job = services.create_job(
        victim_user,
        victim_project,
        name="victim",
        kind="deep_learning",
        algorithm="custom_code",
        params={
            "framework": "pytorch",
            "code": textwrap.dedent(f"""
            import os, time
            open("secret.txt", "w").write({SECRET!r})
            while not os.path.exists("go"):
                time.sleep(0.1)
            open("output/intact.txt", "w").write(open("secret.txt").read())
            """),
        },
        package_id=package("cuda", 1).pk,  # a GPU each: both jobs fit the 2-core test host
        output_path="bos://victim-out/results/",
    )
    wait_running(victim_job)
    victim_run = victim_job.runs.get()
    victim_workspace = Path(victim_run.run_dir) / "workspace"
    run_until(lambda: (victim_workspace / "secret.txt").exists(), "victim's secret")
    supervisor = int((Path(victim_run.run_dir) / "supervisor.pid").read_text())
    child = int((Path(victim_run.run_dir) / "child.pid").read_text())

    targets = {
        **var_targets(victim_workspace),
        "pids": [os.getpid(), supervisor, child],
        "http": store_targets(object_store),
        # The run's own POST policy (it may write under its own output folder only).
        "grant": [
            {"name": "into another project's bucket", "bucket": "victim-data", "key": "x.txt"},
            {"name": "into its bucket outside its folder", "bucket": "jobs-out", "key": "x.txt"},
            # The control: the same POST into its own folder must be taken (key: see below).
            {"name": "control", "bucket": "jobs-out", "key": "results/{job_id}/output/ok.txt"},
        ],
    }
    code = probe.program(targets, "output/report.json")
    try:
        job = submit(user, project, code, name="attacker", pkg=package("cuda", 1))
        run_until(lambda: status_of(job) not in ("queued", "running"), "attacker's end", 90)
        assert job.status == "succeeded", job.reason
        report = json.loads(stored(f"results/{job.job_id}/output/report.json"))
        assert "the store took it" in report.pop("grant control"), "the probe's POST is broken"
        assert_nothing_leaked(report)
        assert not (Path(settings.BASE_DIR) / "pwned-by-run").exists()
    finally:  # runs outlive the test by design: the victim must end either way
        (victim_workspace / "go").touch()
    run_until(lambda: status_of(victim_job) not in ("queued", "running"), "victim's end")
    assert victim_job.status == "succeeded", victim_job.reason
    intact = get_client().get_object("victim-out", f"results/{victim_job.job_id}/output/intact.txt")
    assert intact.read() == SECRET.encode()
    assert get_client().get_object("victim-data", "secret.txt").read() == SECRET.encode()


def test_a_job_cannot_smuggle_a_file_out_through_a_symbolic_link(attacker):
    user, project = attacker
    secret = config.embedded_s3_credentials()["secret_key"]
    job = submit(
        user,
        project,
        f"""
        import os
        os.symlink({str(Path(settings.VAR_DIR) / "objectstore-credentials.json")!r},
                   "output/keys.json")
        os.symlink("/proc/1/environ", "output/environ")
        os.makedirs(".bml", exist_ok=True)
        if os.path.exists(".bml/metrics.jsonl"):
            os.remove(".bml/metrics.jsonl")
        os.symlink({settings.DATABASES["default"]["NAME"]!r}, ".bml/metrics.jsonl")
        open("output/plain.txt", "w").write("mine")
        """,
    )
    run_until(lambda: status_of(job) not in ("queued", "running"), "job end")
    assert job.status == "succeeded", job.reason
    assert stored(f"results/{job.job_id}/output/plain.txt") == b"mine"
    names = [
        o.object_name
        for o in get_client().list_objects("jobs-out", f"results/{job.job_id}/", recursive=True)
    ]
    assert not [n for n in names if n.endswith(("keys.json", "environ", ".metrics.jsonl"))]
    for name in names:
        assert secret.encode() not in get_client().get_object("jobs-out", name).read()
    log = stored(f"results/{job.job_id}/log/{job.job_id}-0.log").decode()
    assert "removed 3 symbolic link(s)" in log


def test_a_job_runs_as_its_projects_own_user_with_no_privileges(attacker):
    user, project = attacker
    job = submit(
        user,
        project,
        textwrap.dedent(
            """
            import json, os
            status = dict(
                line.split(":", 1) for line in open("/proc/self/status").read().splitlines()
            )
            json.dump({
                "uid": os.getuid(),
                "no_new_privs": status["NoNewPrivs"].strip(),
                "cap_eff": status["CapEff"].strip(),
                "processes": sorted(int(p) for p in os.listdir("/proc") if p.isdigit()),
            }, open("output/me.json", "w"))
            """
        ),
    )
    run_until(lambda: status_of(job) not in ("queued", "running"), "job end")
    assert job.status == "succeeded", job.reason
    me = json.loads(stored(f"results/{job.job_id}/output/me.json"))
    assert me["no_new_privs"] == "1" and int(me["cap_eff"], 16) == 0
    if os.geteuid() == 0:
        assert me["uid"] == sandbox.run_uid(project.pk)
    assert max(me["processes"]) < 50  # only its own few processes, numbered from 1


def test_a_stored_job_naming_another_projects_path_fails_at_start(attacker, victim):
    """Settings stored before the path rule (or edited in the database) are checked again
    when the run starts: nothing of the victim's is staged."""
    from apps.jobs.models import Job

    user, project = attacker
    job = submit(user, project, "print('never')")
    params = {"framework": "pytorch", "code_path": "bos://victim-data/", "start_command": "ls"}
    Job.objects.filter(pk=job.pk).update(params=params)
    run_until(lambda: status_of(job) not in ("queued", "running"), "job end")
    assert job.status == "failed"
    assert "bos://victim-data/ is not in the job's project" in job.reason
    workspace = Path(job.runs.get().run_dir) / "workspace"
    assert not list(workspace.rglob("secret.txt"))


@pytest.mark.skipif(bool(cgroups.available()), reason="control groups not writable here")
def test_a_job_beyond_its_packages_memory_ends_with_a_clear_reason(attacker):
    from apps.billing.models import ResourcePackage

    user, project = attacker
    small = ResourcePackage.objects.create(
        module="train", name="tiny 1 GB", cpu_cores=1, memory_gb=1, price_per_minute=0
    )
    job = submit(
        user,
        project,
        """
        print("allocating", flush=True)
        hog = bytearray(3 * 1024**3)
        hog[::4096] = b"1" * len(hog[::4096])  # touched, so really held
        print("survived")
        """,
        pkg=small,
    )
    run_until(lambda: status_of(job) not in ("queued", "running"), "job end", timeout=90)
    assert job.status == "failed"
    assert "out of memory" in job.reason and "1024 MB" in job.reason, job.reason
    log = stored(f"results/{job.job_id}/log/{job.job_id}-0.log").decode()
    assert "allocating" in log and "survived" not in log
