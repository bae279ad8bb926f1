from rest_framework import serializers

from apps.jobs.models import Job, JobInstance
from apps.jobs.services import SETTINGS_FIELDS


class JobInstanceSerializer(serializers.ModelSerializer):
    class Meta:
        model = JobInstance
        fields = ["index", "status", "reason", "exit_code", "host", "started_at", "ended_at"]


class JobSerializer(serializers.ModelSerializer):
    project = serializers.IntegerField(source="project_id")
    package = serializers.IntegerField(source="package_id")
    runs = JobInstanceSerializer(many=True, read_only=True)

    class Meta:
        model = Job
        fields = [
            "job_id",
            "project",
            "package",
            *SETTINGS_FIELDS,
            "status",
            "reason",
            "created_at",
            "started_at",
            "ended_at",
            "runs",
        ]
        read_only_fields = [
            "job_id",
            "status",
            "reason",
            "created_at",
            "started_at",
            "ended_at",
            "runs",
        ]
        extra_kwargs = {
            "kind": {"default": "deep_learning"},
            "time_limit_s": {
                "required": False,
                "help_text": "Maximum running time; default 3600 s.",
            },
        }


class LogAnalysisSerializer(serializers.Serializer):
    traceback = serializers.CharField()
    hint = serializers.CharField()


class JobLogSerializer(serializers.Serializer):
    analysis = LogAnalysisSerializer(required=False, help_text="Only for failed instances.")
    instance = serializers.IntegerField()
    status = serializers.CharField()
    size = serializers.IntegerField()
    text = serializers.CharField()


class JobSettingsSerializer(JobSerializer):
    """A job's settings, as a new job takes them (what `clone/` answers)."""

    class Meta(JobSerializer.Meta):
        fields = ["project", "package", *SETTINGS_FIELDS]
        read_only_fields = []


class JobMetricsSerializer(serializers.Serializer):
    instance = serializers.IntegerField()
    points = serializers.ListField(
        child=serializers.DictField(), help_text="what bml.report recorded, e.g. step and loss"
    )


class JobMetricColumnsSerializer(serializers.Serializer):
    """`?shape=columns`: the same points as one list per name (what the job page draws)."""

    instance = serializers.IntegerField()
    count = serializers.IntegerField(help_text="points reported")
    columns = serializers.DictField(
        child=serializers.ListField(child=serializers.FloatField(allow_null=True)),
        help_text="time, step and each metric: `count` values, null where a point lacks it",
    )
