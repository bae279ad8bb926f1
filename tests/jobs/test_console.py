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
