from rest_framework import serializers

from apps.notebooks.models import Notebook
from apps.notebooks.services import MAX_AUTO_STOP_MINUTES, MAX_DISK_GB


class NotebookSerializer(serializers.ModelSerializer):
    package_name = serializers.CharField(source="package.name", read_only=True)
    lab_url = serializers.CharField(read_only=True)
    disk_quota_bytes = serializers.IntegerField(read_only=True)
    billed_amount = serializers.DecimalField(max_digits=12, decimal_places=3, read_only=True)

    class Meta:
        model = Notebook
        fields = [
            "id",
            "project",
            "name",
            "package",
            "package_name",
            "disk_gb",
            "disk_quota_bytes",
            "disk_used_bytes",
            "storage_path",
            "auto_stop_minutes",
            "desired",
            "status",
            "reason",
            "lab_url",
            "terminals",
            "started_at",
            "ready_at",
            "stopped_at",
            "restarts",
            "last_activity_at",
            "synced_at",
            "sync_error",
            "billed_seconds",
            "billed_amount",
            "created_at",
        ]
        read_only_fields = fields


class NotebookCreateSerializer(serializers.Serializer):
    project = serializers.IntegerField()
    name = serializers.CharField(help_text="letters, digits, '-', '_'; starts with a letter")
    package = serializers.IntegerField(help_text="a workarea resource package")
    disk_gb = serializers.IntegerField(default=10, help_text=f"1 to {MAX_DISK_GB}")
    storage_path = serializers.CharField(required=False, allow_blank=True, default="")
    auto_stop_minutes = serializers.IntegerField(
        required=False, allow_null=True, default=None, help_text=f"0 to {MAX_AUTO_STOP_MINUTES}"
    )
    start = serializers.BooleanField(default=True)


class NotebookUpdateSerializer(serializers.Serializer):
    auto_stop_minutes = serializers.IntegerField(required=False)
    storage_path = serializers.CharField(required=False, allow_blank=True)


class ConvertSerializer(serializers.Serializer):
    path = serializers.CharField(help_text="a .ipynb file of the instance, e.g. demo/x.ipynb")
