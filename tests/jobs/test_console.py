import io
import json

from django.test import Client

from apps.billing.models import ResourcePackage
from apps.jobs.models import Job, JobStatus
from apps.jobs.templates_code import available_templates
from apps.projects.models import Project
from apps.storage import services as storage
from tests.jobs.helpers import run_until, status_of
from workers import devices


def test_console_create_from_template_then_details_list_and_clone(make_user):
    owner = make_user()
    devices.sync_inventory()
    storage.create_bucket(owner, Project.objects.get(owner=owner), "console-jobs")
    web = Client()
    web.force_login(owner)
    form = web.get("/jobs/new/").content.decode()
    assert "PyTorch: digits classifier" in form and "PaddlePaddle: digits" in form
    assert "bml.report" in form and "Select code file" in form

    package = ResourcePackage.objects.get(module="train", name__startswith="CPU Instance_2")
    response = web.post(
        "/jobs/new/",
        {
            "name": "console-job",
            "package": package.pk,
            "instances": 1,
            "time_limit_s": 120,
            "output_path": "bos://console-jobs/out/",
            "framework": "python",
            "code_source": "editor",
            "code": available_templates()["plain_python"].code,
        },
        follow=True,
    )
    job = Job.objects.get(name="console-job")
    assert f"Job console-job submitted ({job.job_id})" in response.content.decode()
    run_until(lambda: status_of(job) not in ("queued", "running"), "job end")
    assert job.status == JobStatus.SUCCEEDED, job.reason

    detail = web.get(f"/jobs/{job.job_id}/").content.decode()
    assert "Succeeded" in detail and f"/api/v1/jobs/{job.job_id}/metrics/" in detail
    assert job.job_id in web.get("/jobs/", {"status": "succeeded"}).content.decode()
    assert job.job_id not in web.get("/jobs/", {"status": "running"}).content.decode()
    clone = web.get("/jobs/new/", {"clone": job.job_id}).content.decode()
    assert 'value="console-job-clone"' in clone
    assert '<option value="python" selected' in clone


def test_console_form_errors_name_the_rule_and_keep_the_input(make_user):
    owner = make_user()
    web = Client()
    web.force_login(owner)
    response = web.post(
        "/jobs/new/",
        {
            "name": "1bad",
            "package": "",
            "instances": "1",
            "time_limit_s": "60",
            "output_path": "bos://nowhere/",
            "code": "print('kept')",
        },
    )
    page = response.content.decode()
    assert response.status_code == 200
    assert "start with a letter" in page and "print(&#x27;kept&#x27;)" in page
    assert not Job.objects.exists()


def test_console_job_from_a_code_folder_with_a_start_command(make_user):
    owner = make_user()
    devices.sync_inventory()
    project = Project.objects.get(owner=owner)
    bucket = storage.create_bucket(owner, project, "code-jobs")
    for key, text in {
        "src/train.py": "import helper, sys\nprint('args', sys.argv[1:], helper.VALUE)\n",
        "src/helper.py": "VALUE = 42\n",
    }.items():
        storage.upload_object(owner, bucket, key, io.BytesIO(text.encode()), len(text))
    web = Client()
    web.force_login(owner)
    form = {
        "name": "from-files",
        "package": ResourcePackage.objects.get(
            module="train", name__startswith="CPU Instance_2"
        ).pk,
        "instances": 1,
        "time_limit_s": 60,
        "output_path": "bos://code-jobs/out/",
        "framework": "python",
        "code_source": "file",
        "code": "this editor text is ignored",
        "code_path": "bos://code-jobs/src/",
        "start_command": "",
    }
    page = web.post("/jobs/new/", form).content.decode()
    assert "A code path needs a start command." in page and not Job.objects.exists()

    web.post("/jobs/new/", {**form, "start_command": "python train.py --epochs 2"})
    job = Job.objects.get(name="from-files")
    assert job.params == {
        "framework": "python",
        "code_path": "bos://code-jobs/src/",
        "start_command": "python train.py --epochs 2",
    }
    run_until(lambda: status_of(job) not in ("queued", "running"), "job end")
    assert job.status == JobStatus.SUCCEEDED, job.reason
    log = web.get(f"/api/v1/jobs/{job.job_id}/logs/").json()
    assert "args ['--epochs', '2'] 42" in json.dumps(log)
    clone = web.get("/jobs/new/", {"clone": job.job_id}).content.decode()
    assert 'value="file" checked' in clone and 'value="python train.py --epochs 2"' in clone
