from rest_framework import serializers

from apps.serving.api.serializers import ProjectInputSerializer
from apps.visual import selectors
from apps.visual.models import Experiment, RunMode


class ExperimentSerializer(serializers.ModelSerializer):
    last_run = serializers.SerializerMethodField()

    class Meta:
        model = Experiment
        fields = [
            "id",
            "project",
            "name",
            "description",
            "graph",
            "storage_path",
            "created_at",
            "updated_at",
            "last_run",
        ]

    def get_last_run(self, experiment) -> dict | None:
        run = selectors.last_run(experiment)
        return None if run is None else {"number": run.number, "status": run.status}


class ExperimentCreateSerializer(ProjectInputSerializer):
    name = serializers.CharField(help_text="1-50 letters, digits, '_', '-'; starts with a letter")
    description = serializers.CharField(required=False, allow_blank=True, default="")


class ExperimentUpdateSerializer(serializers.Serializer):
    name = serializers.CharField(required=False)
    description = serializers.CharField(required=False, allow_blank=True)


class GraphSerializer(serializers.Serializer):
    graph = serializers.JSONField(help_text="{nodes: [...], edges: [...]} (apps.visual.graph)")


class CopySerializer(serializers.Serializer):
    name = serializers.CharField(required=False, allow_blank=True, default="")


class RunCreateSerializer(serializers.Serializer):
    mode = serializers.ChoiceField(choices=RunMode.choices, default=RunMode.ALL)
    node = serializers.CharField(required=False, allow_blank=True, default="")
    sample_rows = serializers.IntegerField(required=False, allow_null=True, default=None)


class ReleaseSerializer(serializers.Serializer):
    node = serializers.CharField(required=False, allow_blank=True, default="")
    name = serializers.CharField(required=False, allow_blank=True, default="")
    model = serializers.IntegerField(required=False, allow_null=True, default=None)
    description = serializers.CharField(required=False, allow_blank=True, default="")


class ComponentSerializer(serializers.Serializer):
    """A component of the palette (workers.runners.visual.base.Component.describe)."""

    name = serializers.CharField()
    label = serializers.CharField()
    group = serializers.CharField()
    description = serializers.CharField()
    inputs = serializers.JSONField()
    outputs = serializers.JSONField()
    params = serializers.JSONField()


class RunSummarySerializer(serializers.Serializer):
    """A run of the history (apps.visual.results.run_summary)."""

    number = serializers.IntegerField()
    status = serializers.CharField()
    mode = serializers.CharField()
    target = serializers.CharField()
    sample_rows = serializers.IntegerField(allow_null=True)
    started_at = serializers.DateTimeField()
    ended_at = serializers.DateTimeField(allow_null=True)
    duration_s = serializers.FloatField(allow_null=True)
    reason = serializers.CharField()
    cleared = serializers.BooleanField()
