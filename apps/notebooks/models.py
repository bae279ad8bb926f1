import secrets

from django.conf import settings
from django.db import models

from apps.projects.models import Project


class Desired(models.TextChoices):
    RUNNING = "running", "Running"
    STOPPED = "stopped", "Stopped"


class NotebookStatus(models.TextChoices):
    STARTING = "starting", "Starting"
    RUNNING = "running", "Running"
    RESTARTING = "restarting", "Restarting"
    STOPPING = "stopping", "Stopping"
    STOPPED = "stopped", "Stopped"
    FAILED = "failed", "Failed"


def new_token() -> str:
    return secrets.token_urlsafe(32)


class Notebook(models.Model):
    """A notebook instance: a JupyterLab server of its own (while running), and a directory
    that outlives it (code, data/, the per-instance Python environment)."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="notebooks")
    name = models.CharField(max_length=39)
    package = models.ForeignKey(
        "billing.ResourcePackage", on_delete=models.PROTECT, related_name="notebooks"
    )
    disk_gb = models.PositiveIntegerField(help_text="The startup disk: a quota on the instance.")
    storage_path = models.CharField(
        max_length=1100, blank=True, help_text="bos:// folder synchronized with data/."
    )
    auto_stop_minutes = models.PositiveIntegerField(
        default=120, help_text="Stop after this long without activity (0: never)."
    )
    desired = models.CharField(max_length=8, choices=Desired.choices, default=Desired.RUNNING)
    status = models.CharField(
        max_length=16, choices=NotebookStatus.choices, default=NotebookStatus.STARTING
    )
    reason = models.TextField(blank=True)
    # The running server: its process, port and the token only the proxy knows.
    host = models.CharField(max_length=255, blank=True)
    pid = models.PositiveIntegerField(null=True, blank=True)
    port = models.PositiveIntegerField(null=True, blank=True)
    token = models.CharField(max_length=64, default=new_token, editable=False)
    lease = models.ForeignKey(
        "workers.Lease", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    terminals = models.BooleanField(default=False, help_text="Started with terminals enabled.")
    started_at = models.DateTimeField(null=True, blank=True)
    ready_at = models.DateTimeField(null=True, blank=True)
    stopped_at = models.DateTimeField(null=True, blank=True)
    restarts = models.PositiveIntegerField(default=0)
    failures_in_a_row = models.PositiveSmallIntegerField(default=0)
    retry_at = models.DateTimeField(null=True, blank=True)
    # Billing (per minute while running, the spec's "Warm Tip").
    billed_seconds = models.PositiveBigIntegerField(default=0)
    # Housekeeping figures written by the scheduler's background checks.
    disk_used_bytes = models.PositiveBigIntegerField(default=0)
    last_activity_at = models.DateTimeField(null=True, blank=True)
    synced_at = models.DateTimeField(null=True, blank=True)
    sync_error = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["project", "name"], name="notebook_name_per_project")
        ]

    def __str__(self):
        return self.name

    @property
    def base_url(self) -> str:
        return f"/notebooks/{self.pk}/"

    @property
    def lab_url(self) -> str:
        return f"{self.base_url}lab"

    @property
    def is_open(self) -> bool:
        """Whether Jupyter answers now (the proxy lets members in)."""
        return self.status == NotebookStatus.RUNNING and self.port is not None

    @property
    def disk_quota_bytes(self) -> int:
        return self.disk_gb * 1024**3

    @property
    def billed_amount(self):
        return self.package.price_per_minute * (self.billed_seconds // 60)
