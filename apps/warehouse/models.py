from django.conf import settings
from django.db import models

from apps.projects.models import Project


class ModelType(models.TextChoices):
    # The spec's deep learning, machine learning, general-purpose and built-in types, as
    # this appliance loads them (workers/runners/model_loaders.py).
    PYTORCH = "pytorch", "PyTorch (TorchScript, or weights + architecture)"
    PADDLE = "paddle", "PaddlePaddle inference model"
    ONNX = "onnx", "ONNX"
    KERAS = "keras", "Keras (.keras / .h5)"
    SKLEARN = "sklearn", "scikit-learn (skops; joblib/pickle)"
    XGBOOST = "xgboost", "XGBoost / GBDT (json, ubj)"
    PMML = "pmml", "PMML"
    CUSTOM = "custom", "Custom (a Python predictor)"
    BML_LOGISTIC_REGRESSION = "bml_logistic_regression", "BML logistic regression (job model/)"
    BML_KMEANS = "bml_kmeans", "BML KMeans clustering (job model/)"
    BML_GBDT = "bml_gbdt", "BML GBDT (job model/)"
    BML_VISUAL = "bml_visual", "BML visual modeling (trained component)"
    IMAGE_CLASSIFICATION = "image_classification", "Transfer learning - image classification"


class Source(models.TextChoices):
    IMPORTED = "imported", "Imported"
    JOB = "job", "Released from a job"
    COMMON = "common", "Common model"


class Model(models.Model):
    """A model of the warehouse: user models hang off a project; common models (samples
    every install has) have none and are readable by everyone."""

    project = models.ForeignKey(
        Project, on_delete=models.CASCADE, related_name="models", null=True, blank=True
    )
    name = models.CharField(max_length=50)
    description = models.TextField(blank=True)
    tags = models.JSONField(default=list)
    is_common = models.BooleanField(default=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-updated_at", "-pk"]
        constraints = [
            models.UniqueConstraint(fields=["project", "name"], name="model_name_per_project"),
            models.UniqueConstraint(
                fields=["name"], condition=models.Q(is_common=True), name="common_model_name"
            ),
        ]
        indexes = [models.Index(fields=["project", "-updated_at"])]

    def __str__(self):
        return self.name


class ModelVersion(models.Model):
    """One version: its files (copied into the warehouse's own storage, so deleting the
    version leaves no orphans and deleting the source loses nothing), its type and the
    type's fields, and what loading it found."""

    model = models.ForeignKey(Model, on_delete=models.CASCADE, related_name="versions")
    version = models.PositiveIntegerField()
    model_type = models.CharField(max_length=32, choices=ModelType.choices)
    fields = models.JSONField(default=dict, help_text="type-specific fields given at import")
    path = models.CharField(max_length=1100, help_text="bos:// folder holding its files")
    source = models.CharField(max_length=16, choices=Source.choices, default=Source.IMPORTED)
    source_detail = models.CharField(max_length=1100, blank=True, help_text="where it came from")
    source_job = models.ForeignKey(
        "jobs.Job", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    description = models.TextField(blank=True)
    # Where a released version came from, kept as it was at release (the job may be deleted
    # later): job, algorithm, parameters, evaluation metrics, data paths (services.lineage).
    lineage = models.JSONField(default=dict, blank=True)
    info = models.JSONField(default=dict, help_text="what loading it found (warnings too)")
    size_bytes = models.PositiveBigIntegerField(default=0)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["model", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["model", "version"], name="one_model_version_number")
        ]

    def __str__(self):
        return f"{self.model.name} v{self.version}"
