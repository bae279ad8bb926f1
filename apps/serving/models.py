"""Online prediction services (the spec's "Prediction Service"): a service has versions,
each a model version of the warehouse served by N replica processes; traffic is split
across versions by their proportions. Every configuration change is kept as a revision."""

import secrets

from django.conf import settings
from django.db import models

from apps.projects.models import Project


def new_access_key() -> str:
    return secrets.token_urlsafe(24)


class Desired(models.TextChoices):
    RUNNING = "running", "Running"
    STOPPED = "stopped", "Stopped"


class ServiceStatus(models.TextChoices):
    DEPLOYING = "deploying", "Deploying"
    RUNNING = "running", "In service"
    ABNORMAL = "abnormal", "Abnormal"
    STOPPED = "stopped", "Stopped"
    FAILED = "failed", "Creation failed"


class Service(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="services")
    name = models.CharField(max_length=40)
    # The access address is assigned by the system (the spec) and unique on this appliance:
    # /v1/endpoints/<endpoint>/invocations. It is the name unless another project has it.
    endpoint = models.SlugField(max_length=60, unique=True)
    access_key = models.CharField(max_length=64, default=new_access_key)
    description = models.TextField(blank=True)
    desired = models.CharField(max_length=16, choices=Desired.choices, default=Desired.RUNNING)
    status = models.CharField(
        max_length=16, choices=ServiceStatus.choices, default=ServiceStatus.DEPLOYING
    )
    reason = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.UniqueConstraint(fields=["project", "name"], name="service_name_per_project")
        ]

    def __str__(self):
        return self.name


class ServiceVersion(models.Model):
    service = models.ForeignKey(Service, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField(help_text="the version number, 1-9999")
    # RESTRICT, not PROTECT: a version in use cannot be deleted on its own, but deleting the
    # project deletes both the service and the model.
    model_version = models.ForeignKey(
        "warehouse.ModelVersion", on_delete=models.RESTRICT, related_name="service_versions"
    )
    proportion = models.PositiveIntegerField(default=1)
    replicas = models.PositiveIntegerField(default=1)
    package = models.ForeignKey(
        "billing.ResourcePackage", on_delete=models.PROTECT, related_name="+"
    )
    max_batch_size = models.PositiveIntegerField(default=1)
    max_wait_ms = models.FloatField(default=5.0)
    status = models.CharField(
        max_length=16, choices=ServiceStatus.choices, default=ServiceStatus.DEPLOYING
    )
    reason = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["service", "number"]
        constraints = [
            models.UniqueConstraint(fields=["service", "number"], name="one_service_version")
        ]

    def __str__(self):
        return f"{self.service.name} v{self.number}"

    def launch_spec(self) -> dict:
        """What a replica is started with: a replica whose spec differs is replaced."""
        return {
            "model_version": self.model_version_id,
            "package": self.package_id,
            "max_batch_size": self.max_batch_size,
            "max_wait_ms": self.max_wait_ms,
        }


class ReplicaStatus(models.TextChoices):
    STARTING = "starting", "Starting"
    RUNNING = "running", "Running"
    RESTARTING = "restarting", "Restarting"
    FAILED = "failed", "Failed"
    PENDING = "pending", "Waiting for resources"


class Replica(models.Model):
    """One process serving a version (the spec's "duplicate"), supervised by the scheduler
    loop: started with a lease, restarted when it dies."""

    version = models.ForeignKey(ServiceVersion, on_delete=models.CASCADE, related_name="runs")
    index = models.PositiveIntegerField()
    status = models.CharField(
        max_length=16, choices=ReplicaStatus.choices, default=ReplicaStatus.STARTING
    )
    reason = models.TextField(blank=True)
    launch_spec = models.JSONField(default=dict)
    lease = models.ForeignKey(
        "workers.Lease", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    host = models.CharField(max_length=255, blank=True)
    run_dir = models.CharField(max_length=1024, blank=True)
    pid = models.PositiveIntegerField(null=True, blank=True)
    port = models.PositiveIntegerField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    ready_at = models.DateTimeField(null=True, blank=True)
    restarts = models.PositiveIntegerField(default=0)
    failures_in_a_row = models.PositiveIntegerField(default=0)
    retry_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["version", "index"]
        constraints = [
            models.UniqueConstraint(fields=["version", "index"], name="one_replica_index")
        ]

    def __str__(self):
        return f"{self.version} replica {self.index}"

    @property
    def name(self) -> str:
        return f"{self.version.service.endpoint}-v{self.version.number}-{self.index}"


class Revision(models.Model):
    """A service's configuration at one moment (the spec's "configuration history")."""

    service = models.ForeignKey(Service, on_delete=models.CASCADE, related_name="revisions")
    number = models.PositiveIntegerField()
    note = models.CharField(max_length=255)
    config = models.JSONField()
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["service", "-number"]
        constraints = [
            models.UniqueConstraint(fields=["service", "number"], name="one_revision_number")
        ]

    def __str__(self):
        return f"{self.service.name} revision {self.number}: {self.note}"


class QualityBucket(models.Model):
    """Requests of one service version in one minute, as the gateway counted them
    (version 0: refused before a version was chosen, e.g. a wrong access key)."""

    service = models.ForeignKey(Service, on_delete=models.CASCADE, related_name="quality")
    version_number = models.PositiveIntegerField(default=0)
    start = models.DateTimeField()
    requests = models.PositiveBigIntegerField(default=0)
    bytes_in = models.PositiveBigIntegerField(default=0)
    bytes_out = models.PositiveBigIntegerField(default=0)
    handle_ms = models.FloatField(default=0.0)
    status_2xx = models.PositiveBigIntegerField(default=0)
    status_3xx = models.PositiveBigIntegerField(default=0)
    status_4xx = models.PositiveBigIntegerField(default=0)
    status_5xx = models.PositiveBigIntegerField(default=0)

    class Meta:
        ordering = ["service", "start"]
        constraints = [
            models.UniqueConstraint(
                fields=["service", "version_number", "start"], name="one_quality_bucket"
            )
        ]

    def __str__(self):
        return f"{self.service.name} v{self.version_number} at {self.start:%Y-%m-%d %H:%M}"
