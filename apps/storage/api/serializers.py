from rest_framework import serializers

from apps.storage.models import Bucket


class BucketSerializer(serializers.ModelSerializer):
    project = serializers.IntegerField(source="project_id", help_text="Owning project id.")
    uri = serializers.SerializerMethodField()

    class Meta:
        model = Bucket
        fields = ["name", "project", "uri", "created_at"]
        read_only_fields = ["uri", "created_at"]

    def get_uri(self, bucket) -> str:
        return f"bos://{bucket.name}/"


class EntrySerializer(serializers.Serializer):
    name = serializers.CharField()
    key = serializers.CharField()
    uri = serializers.CharField()
    is_folder = serializers.BooleanField()
    size = serializers.IntegerField(allow_null=True)
    last_modified = serializers.DateTimeField(allow_null=True)


class FolderSerializer(serializers.Serializer):
    path = serializers.CharField(help_text="Folder key, e.g. 'data/train/'.")


class UploadResultSerializer(serializers.Serializer):
    bucket = serializers.CharField()
    key = serializers.CharField()
    size = serializers.IntegerField()
    etag = serializers.CharField()
