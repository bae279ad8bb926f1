from django.conf import settings
from django.db import models

from apps.projects.models import Project


class DatasetStatus(models.TextChoices):
    EMPTY = "empty", "No data yet"
    PROCESSING = "processing", "Processing"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"


class UploadMode(models.TextChoices):
    # The spec: supplement adds data of the same dimensions, replace swaps in new dimensions.
    SUPPLEMENT = "supplement", "Supplement (append rows of the same columns)"
    REPLACE = "replace", "Replace (new data, new columns allowed)"


class AbnormalRule(models.TextChoices):
    SKIP = "skip", "Skip the row"
    FILL = "fill", "Fill a default value"
    FAIL = "fail", "Fail the upload"


class ColumnType(models.TextChoices):
    INT = "int", "int"
    FLOAT = "float", "float"
    STRING = "string", "string"
    BOOL = "bool", "bool"
    DATETIME = "datetime", "datetime"


class Dataset(models.Model):
    """A table-format data set (the spec's user data); public ones (iris, Boston housing)
    have no project and are readable by everyone."""

    project = models.ForeignKey(
        Project, on_delete=models.CASCADE, related_name="datasets", null=True, blank=True
    )
    name = models.CharField(max_length=50)
    data_type = models.CharField(max_length=16, default="table")
    description = models.TextField(blank=True)
    storage_path = models.CharField(max_length=1100, help_text="bos:// folder of its versions")
    is_public = models.BooleanField(default=False)
    current_version = models.ForeignKey(
        "DatasetVersion", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-updated_at"]
        constraints = [
            models.UniqueConstraint(fields=["project", "name"], name="dataset_name_per_project"),
            models.UniqueConstraint(
                fields=["name"], condition=models.Q(is_public=True), name="public_dataset_name"
            ),
        ]

    def __str__(self):
        return self.name

    @property
    def latest_version(self):
        return self.versions.order_by("-number").first()

    @property
    def status(self) -> str:
        """Processing while an upload converts, else the outcome of the last upload (lists
        annotate it as latest_status: one query for the page, not one per row)."""
        if hasattr(self, "latest_status"):
            return self.latest_status or DatasetStatus.EMPTY
        latest = self.latest_version
        return latest.status if latest else DatasetStatus.EMPTY

    @property
    def rows(self) -> int:
        return self.current_version.rows if self.current_version else 0


class DatasetVersion(models.Model):
    """One upload: its options, the conversion job, and (when it succeeded) the parquet
    parts and statistics. A failed upload leaves the current version as it was."""

    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    mode = models.CharField(max_length=16, choices=UploadMode.choices)
    source = models.CharField(max_length=1100, help_text="bos:// file or folder uploaded")
    options = models.JSONField(default=dict, help_text="separator, header, encoding, abnormal")
    columns = models.JSONField(default=list, help_text="[{name, type}] of the whole version")
    status = models.CharField(
        max_length=16, choices=DatasetStatus.choices, default=DatasetStatus.PROCESSING
    )
    reason = models.TextField(blank=True)
    bad_lines = models.JSONField(default=list, help_text="first offending line numbers")
    abnormal = models.JSONField(default=dict, help_text="rows skipped or filled, examples")
    rows = models.PositiveBigIntegerField(default=0)
    parts = models.JSONField(default=list, help_text="bos:// parquet files, in order")
    stats = models.JSONField(default=list, help_text="per-column statistics")
    measurements = models.JSONField(default=dict, help_text="conversion seconds, peak memory")
    job = models.ForeignKey(
        "jobs.Job", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True
    )
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["dataset", "-number"]
        constraints = [
            models.UniqueConstraint(fields=["dataset", "number"], name="one_version_number")
        ]

    def __str__(self):
        return f"{self.dataset.name} v{self.number}"
