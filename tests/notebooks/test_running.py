"""A running instance's surroundings: the storage path's files in data/ both ways, the
terminal by role, the startup disk quota, and auto-stop (never while a cell runs)."""

from datetime import timedelta

from django.utils import timezone

from apps.notebooks import housekeeping, services, workspace
from apps.projects import services as projects
from apps.projects.models import Role
from apps.storage import services as storage
from apps.storage.client import get_client
from tests.conftest import wait_until
from tests.notebooks.conftest import Jupyter, create, session_for, wait_status


def test_the_storage_path_appears_in_data_and_goes_back_on_stop(
    notebooks, owner, project, cpu_package
):
    import io

    bucket = storage.create_bucket(owner, project, "nb-sync")
    storage.upload_object(owner, bucket, "nb/input.csv", io.BytesIO(b"a,b\n1,2\n"), 8)
    notebook = create(owner, project, cpu_package, storage_path="bos://nb-sync/nb/")
    wait_status(notebook, "running")
    jupyter = Jupyter(notebooks, notebook, session_for(owner))

    def synced():
        response = jupyter.get("api/contents/data/input.csv", params={"content": 1})
        return response.status_code == 200 and response.json()["content"] == "a,b\n1,2\n"

    wait_until(synced, 30, what="data/input.csv from the bucket")
    written = jupyter.put(
        "api/contents/data/result.txt",
        {"type": "file", "format": "text", "content": "accuracy 0.97\n"},
    )
    assert written.status_code == 201, written.text

    services.stop_notebook(owner, notebook)
    wait_status(notebook, "stopped")  # after the final synchronization
    data = get_client().get_object("nb-sync", "nb/result.txt").read()
    assert data == b"accuracy 0.97\n"
    assert notebook.synced_at is not None and notebook.sync_error == ""


def test_terminals_follow_the_projects_setting_and_the_members_role(
    notebooks, owner, project, cpu_package, make_user
):
    developer = make_user()
    projects.add_member(owner, project, developer, Role.DEVELOPER)
    projects.set_notebook_terminal(owner, project, "owner")
    notebook = wait_status(create(owner, project, cpu_package), "running")
    assert notebook.terminals

    as_owner = Jupyter(notebooks, notebook, session_for(owner))
    as_developer = Jupyter(notebooks, notebook, session_for(developer))
    assert as_owner.post("api/terminals").status_code == 200
    refused = as_developer.post("api/terminals")
    assert refused.status_code == 403 and "role" in refused.json()["message"]
    assert as_developer.get("api/status").status_code == 200  # the rest is open to them

    projects.set_notebook_terminal(owner, project, "")
    other = wait_status(create(owner, project, cpu_package), "running")
    assert not other.terminals
    assert Jupyter(notebooks, other, session_for(owner)).post("api/terminals").status_code in (
        403,
        404,
    )


def test_a_full_startup_disk_refuses_saves_with_a_clear_message(
    notebooks, owner, project, cpu_package
):
    notebook = wait_status(create(owner, project, cpu_package, disk_gb=1), "running")

    def measured():  # once ready, the scheduler measures the instance's disk
        notebook.refresh_from_db()
        return notebook.disk_used_bytes > 0

    wait_until(measured, 30, what="the disk usage measured")
    jupyter = Jupyter(notebooks, notebook, session_for(owner))
    content = {"type": "file", "format": "text", "content": "x = 1\n"}
    assert jupyter.put("api/contents/before.py", content).status_code == 201
    workspace.record_disk_usage(notebook, notebook.disk_quota_bytes)  # as measured when full
    refused = jupyter.put("api/contents/after.py", content)
    assert refused.status_code == 507
    assert "startup disk is full" in refused.json()["message"]
    assert (workspace.work_dir(notebook) / "before.py").exists()


def test_auto_stop_after_idle_time_but_never_while_a_cell_runs(
    notebooks, owner, project, cpu_package
):
    notebook = wait_status(create(owner, project, cpu_package, auto_stop_minutes=5), "running")
    jupyter = Jupyter(notebooks, notebook, session_for(owner))
    kernel = jupyter.start_kernel()
    later = timezone.now() + timedelta(minutes=10)

    import threading

    busy = threading.Thread(target=jupyter.execute, args=(kernel, "import time; time.sleep(8)"))
    busy.start()
    wait_until(
        lambda: jupyter.get(f"api/kernels/{kernel}").json()["execution_state"] == "busy",
        20,
        what="the kernel busy",
    )
    housekeeping.check_activity(notebook, now=later)
    notebook.refresh_from_db()
    assert notebook.desired == "running"
    busy.join()

    # A file saved lately is activity too (someone is editing)...
    housekeeping.check_activity(notebook, now=later, files_changed_at=later - timedelta(minutes=1))
    notebook.refresh_from_db()
    assert notebook.desired == "running"
    # ...while the polling of an open JupyterLab tab is not.
    assert jupyter.get("api/kernels").status_code == 200
    housekeeping.check_activity(notebook, now=later)
    notebook.refresh_from_db()
    assert notebook.desired == "stopped"
    assert "5 minutes without activity" in notebook.reason
    wait_status(notebook, "stopped")


def test_kernels_see_only_the_instances_leased_devices(notebooks, owner, project, cpu_package):
    from apps.billing.models import ResourcePackage

    gpu_package = ResourcePackage.objects.filter(
        module="workarea", device_kind="cuda", device_count=1
    )[0]  # the test host declares two CUDA devices (BML_DEVICES)
    gpu = wait_status(create(owner, project, gpu_package), "running")
    cpu = wait_status(create(owner, project, cpu_package), "running")
    seen = {}
    for notebook in (gpu, cpu):
        jupyter = Jupyter(notebooks, notebook, session_for(owner))
        result = jupyter.execute(
            jupyter.start_kernel(), "import os; print(repr(os.environ['CUDA_VISIBLE_DEVICES']))"
        )
        seen[notebook.name] = result["stdout"].strip()
    leased = [str(d.index) for d in gpu.lease.devices.all()]
    assert seen == {gpu.name: repr(",".join(leased)), cpu.name: "''"}
    assert len(leased) == 1


def test_an_instance_that_can_never_have_its_gpus_says_why_at_once(notebooks, owner, project):
    from apps.billing.models import ResourcePackage

    four = ResourcePackage.objects.create(
        module="workarea",
        name="GPU x4 (more than the host has)",
        cpu_cores=4,
        memory_gb=8,
        device_kind="cuda",
        device_count=4,
        price_per_minute=0,
    )  # the test host declares two CUDA devices (BML_DEVICES)
    notebook = wait_status(create(owner, project, four), "failed", timeout=20)
    assert "needs 4 cuda device(s); this host has 2" in notebook.reason
    assert notebook.lease_id is None
