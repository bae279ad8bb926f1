from rest_framework import serializers

from apps.datasets.models import (
    AbnormalRule,
    ColumnType,
    Dataset,
    DatasetVersion,
    UploadMode,
)


class DatasetVersionSerializer(serializers.ModelSerializer):
    job_id = serializers.CharField(
        source="job.job_id", default=None, read_only=True, allow_null=True
    )

    class Meta:
        model = DatasetVersion
        fields = [
            "number",
            "mode",
            "source",
            "options",
            "columns",
            "status",
            "reason",
            "bad_lines",
            "abnormal",
            "rows",
            "parts",
            "measurements",
            "job_id",
            "created_at",
            "finished_at",
        ]
        read_only_fields = fields


class DatasetSerializer(serializers.ModelSerializer):
    project = serializers.IntegerField(source="project_id", allow_null=True)
    status = serializers.CharField(read_only=True)
    rows = serializers.IntegerField(read_only=True)
    current_version = serializers.IntegerField(
        source="current_version.number", default=None, read_only=True, allow_null=True
    )
    storage_path = serializers.CharField(
        required=False,
        allow_blank=True,
        help_text="bos:// folder for its parquet files; default: the project's storage.",
    )

    class Meta:
        model = Dataset
        fields = [
            "id",
            "project",
            "name",
            "data_type",
            "description",
            "storage_path",
            "is_public",
            "status",
            "rows",
            "current_version",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["id", "data_type", "is_public", "created_at", "updated_at"]


class SourceSerializer(serializers.Serializer):
    source = serializers.CharField(help_text="bos:// csv/tsv/txt file, or a folder of them")
    separator = serializers.CharField(default=",", trim_whitespace=False)
    header = serializers.BooleanField(default=False)
    encoding = serializers.CharField(default="utf-8")


class PreviewSerializer(SourceSerializer):
    header = serializers.BooleanField(
        default=False,
        allow_null=True,
        help_text="Whether the first line is a header; null: as the answer's `header_guess` "
        "(whether the first rows look like a header) says.",
    )


class ColumnSerializer(serializers.Serializer):
    name = serializers.CharField()
    type = serializers.ChoiceField(choices=ColumnType.choices)


class UploadSerializer(SourceSerializer):
    mode = serializers.ChoiceField(choices=UploadMode.choices, default=UploadMode.SUPPLEMENT)
    abnormal = serializers.ChoiceField(choices=AbnormalRule.choices, default=AbnormalRule.SKIP)
    columns = ColumnSerializer(many=True)


class ParquetPartsSerializer(serializers.Serializer):
    version = serializers.IntegerField(allow_null=True, help_text="null: no version yet")
    rows = serializers.IntegerField()
    parts = serializers.ListField(child=serializers.CharField(), help_text="bos:// parquet files")
