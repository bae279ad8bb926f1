import secrets

from django.conf import settings
from django.db import models

from apps.projects.models import Project


class JobStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    # The code has ended, its outputs (or log) wait for the object store: retried until
    # stored (then the code's outcome) or given up (failed). workers.scheduler.
    STAGING = "staging", "Staging outputs"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    TERMINATED = "terminated", "Terminated"
    TIMED_OUT = "timed_out", "Timed out"


ACTIVE = (JobStatus.QUEUED, JobStatus.RUNNING, JobStatus.STAGING)
FINISHED = (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.TERMINATED, JobStatus.TIMED_OUT)


def new_job_id() -> str:
    # The spec's job ids look like "job-8c0yiasq02caa6hf": lowercase letters and digits.
    alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
    return "job-" + "".join(secrets.choice(alphabet) for _ in range(16))


class Job(models.Model):
    """One job of any kind; what it runs is decided by its algorithm (apps.jobs.algorithms)."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="jobs")
    job_id = models.CharField(max_length=32, unique=True, default=new_job_id, editable=False)
    name = models.CharField(max_length=39)
    kind = models.CharField(max_length=32)
    algorithm = models.CharField(max_length=64)
    params = models.JSONField(default=dict)
    package = models.ForeignKey(
        "billing.ResourcePackage", on_delete=models.PROTECT, related_name="jobs"
    )
    instances = models.PositiveSmallIntegerField(default=1)
    time_limit_s = models.PositiveIntegerField()
    output_path = models.CharField(max_length=1100)
    train_data_path = models.CharField(max_length=1100, blank=True)
    test_data_path = models.CharField(max_length=1100, blank=True)
    notify_email = models.EmailField(blank=True)
    notify_webhook = models.URLField(blank=True)
    status = models.CharField(max_length=16, choices=JobStatus.choices, default=JobStatus.QUEUED)
    reason = models.TextField(blank=True)
    # Delete asked while running: the rows go once the runs have stopped (reconcile).
    delete_requested = models.BooleanField(default=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["status", "created_at"])]

    def __str__(self):
        return f"{self.name} ({self.job_id})"


class JobInstance(models.Model):
    """One process group of a job (instance `index` of `job.instances`), on one host."""

    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="runs")
    index = models.PositiveSmallIntegerField()
    host = models.CharField(max_length=255, blank=True)
    status = models.CharField(max_length=16, choices=JobStatus.choices, default=JobStatus.QUEUED)
    reason = models.TextField(blank=True)
    exit_code = models.IntegerField(null=True, blank=True)
    run_dir = models.CharField(max_length=1024, blank=True)
    lease = models.ForeignKey(
        "workers.Lease", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    started_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["job", "index"]
        constraints = [
            models.UniqueConstraint(fields=["job", "index"], name="one_run_per_instance_index")
        ]

    def __str__(self):
        return f"{self.job.job_id}/{self.index}"
