from rest_framework import serializers

from apps.warehouse.models import Model, ModelType, ModelVersion


class ModelVersionSerializer(serializers.ModelSerializer):
    source_job = serializers.SerializerMethodField(help_text="the job it was released from")

    class Meta:
        model = ModelVersion
        fields = [
            "version",
            "model_type",
            "fields",
            "path",
            "source",
            "source_detail",
            "source_job",
            "lineage",
            "description",
            "info",
            "size_bytes",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    def get_source_job(self, version) -> str | None:
        return version.source_job.job_id if version.source_job_id else None


class ModelSerializer(serializers.ModelSerializer):
    project = serializers.IntegerField(source="project_id", allow_null=True, required=False)
    version_count = serializers.IntegerField(read_only=True, default=0)
    tags = serializers.ListField(child=serializers.CharField(), required=False)

    class Meta:
        model = Model
        fields = [
            "id",
            "project",
            "name",
            "description",
            "tags",
            "is_common",
            "version_count",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["id", "is_common", "created_at", "updated_at"]


class VersionInputSerializer(serializers.Serializer):
    model_type = serializers.ChoiceField(choices=ModelType.choices)
    path = serializers.CharField(
        required=False, allow_blank=True, help_text="bos:// file or folder (or upload `file`)"
    )
    file = serializers.FileField(required=False, help_text="the model file, uploaded")
    fields = serializers.JSONField(required=False, help_text="type-specific fields")
    description = serializers.CharField(required=False, allow_blank=True, default="")


class ImportSerializer(VersionInputSerializer):
    project = serializers.IntegerField()
    name = serializers.CharField()
    tags = serializers.ListField(child=serializers.CharField(), required=False)


class ReleaseSerializer(serializers.Serializer):
    job_id = serializers.CharField()
    model_type = serializers.ChoiceField(
        choices=ModelType.choices,
        required=False,
        help_text="default: what the job's algorithm produces (e.g. bml_logistic_regression)",
    )
    name = serializers.CharField(required=False, help_text="a new model's name")
    model = serializers.IntegerField(required=False, help_text="or an existing model's id")
    subpath = serializers.CharField(
        required=False,
        allow_blank=True,
        default="",
        help_text="file or folder of the job's results; default: the algorithm's model",
    )
    fields = serializers.JSONField(required=False)
    description = serializers.CharField(required=False, allow_blank=True, default="")
