from django.conf import settings
from django.db import models

from apps.projects.models import Project


class Bucket(models.Model):
    """A bucket of the object store, owned by one project. S3 bucket names are global."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="buckets")
    name = models.CharField(max_length=63, unique=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return f"bos://{self.name}"
