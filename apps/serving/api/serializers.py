from django.db.models import Q
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from apps.billing.models import ResourcePackage
from apps.serving.models import Replica, ReplicaStatus, Revision, Service, ServiceVersion
from apps.serving.services import VersionConfig
from apps.warehouse.models import Model

# -- input -------------------------------------------------------------------------------


class ServiceVersionInputSerializer(serializers.Serializer):
    """One version as a user configures it; ranges are the services' rules, checked there.
    Needs `project` in its context: the model must be one of it or a common model."""

    number = serializers.IntegerField(help_text="the version number, 1-9999")
    model = serializers.IntegerField(help_text="a warehouse model of the project, or common")
    model_version = serializers.IntegerField(help_text="that model's version number")
    proportion = serializers.IntegerField(default=1, help_text="traffic weight, 0-100")
    replicas = serializers.IntegerField(default=1, help_text="replica processes, 1-8")
    package = serializers.IntegerField(
        required=False, allow_null=True, help_text="a prediction resource package (default)"
    )
    max_batch_size = serializers.IntegerField(default=1)
    max_wait_ms = serializers.FloatField(default=5.0)

    def validate(self, attrs):
        project = self.context["project"]
        model = Model.objects.filter(
            Q(is_common=True) | Q(project=project), pk=attrs.pop("model")
        ).first()
        if model is None:
            raise serializers.ValidationError({"model": "No such model in this project."})
        number = attrs["model_version"]
        attrs["model_version"] = model.versions.filter(version=number).first()
        if attrs["model_version"] is None:
            raise serializers.ValidationError(
                {"model_version": f"Model '{model.name}' has no version {number}."}
            )
        package = attrs.get("package")
        if package is not None:
            attrs["package"] = ResourcePackage.objects.filter(pk=package).first()
            if attrs["package"] is None:
                raise serializers.ValidationError({"package": "No such resource package."})
        return attrs

    @staticmethod
    def config(attrs) -> VersionConfig:
        return VersionConfig(**attrs)


class ProjectInputSerializer(serializers.Serializer):
    project = serializers.IntegerField()


class ServiceCreateSerializer(ProjectInputSerializer):
    name = serializers.CharField(help_text="letters, digits, '-', '_'; starts with a letter")
    description = serializers.CharField(required=False, allow_blank=True, default="")
    version = ServiceVersionInputSerializer()


class ServiceConfigSerializer(serializers.Serializer):
    versions = ServiceVersionInputSerializer(many=True, help_text="the whole version list")


class ServiceUpdateSerializer(serializers.Serializer):
    description = serializers.CharField(allow_blank=True)


def by_field(errors) -> dict:
    """DRF's nested errors ({"version": {"replicas": [...]}}) keyed by the field's own name,
    as the services name theirs ({"replicas": ...})."""
    flat: dict[str, list] = {}

    def walk(value, field):
        if isinstance(value, dict):
            for key, inner in value.items():
                walk(inner, field if key == "non_field_errors" or isinstance(key, int) else key)
        elif isinstance(value, list) and value and not isinstance(value[0], str):
            for item in value:
                walk(item, field)
        elif value:
            flat.setdefault(field, []).extend(value if isinstance(value, list) else [value])

    walk(errors, "non_field_errors")
    return flat


def validated(serializer_class, data, **context):
    serializer = serializer_class(data=data, context=context)
    if not serializer.is_valid():
        raise serializers.ValidationError(by_field(serializer.errors))
    return serializer.validated_data


# -- output ------------------------------------------------------------------------------


class ReplicaSerializer(serializers.ModelSerializer):
    class Meta:
        model = Replica
        fields = ["index", "status", "reason", "port", "pid", "restarts", "started_at", "ready_at"]
        read_only_fields = fields


class NamedSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()


class ServiceVersionSerializer(serializers.ModelSerializer):
    """Needs `total_proportion` (of all the service's versions) in its context."""

    model = NamedSerializer(source="model_version.model")
    model_version = serializers.IntegerField(source="model_version.version")
    model_type = serializers.CharField(source="model_version.model_type")
    traffic_share = serializers.SerializerMethodField(help_text="of the requests, 0..1")
    running_replicas = serializers.SerializerMethodField()
    package = NamedSerializer()
    replica_list = ReplicaSerializer(source="runs", many=True)

    class Meta:
        model = ServiceVersion
        fields = [
            "number",
            "model",
            "model_version",
            "model_type",
            "proportion",
            "traffic_share",
            "replicas",
            "running_replicas",
            "package",
            "max_batch_size",
            "max_wait_ms",
            "status",
            "reason",
            "replica_list",
        ]
        read_only_fields = fields

    def get_traffic_share(self, version) -> float:
        total = self.context.get("total_proportion") or 0
        return round(version.proportion / total, 4) if total else 0.0

    def get_running_replicas(self, version) -> int:
        return sum(1 for run in version.runs.all() if run.status == ReplicaStatus.RUNNING)


class ServiceSerializer(serializers.ModelSerializer):
    """Needs `request` and `writable_projects` (ids where the user is developer or owner)
    in its context: only they see the access key."""

    project = serializers.IntegerField(source="project_id", read_only=True)
    access_url = serializers.SerializerMethodField()
    access_key = serializers.SerializerMethodField()
    versions = serializers.SerializerMethodField()

    class Meta:
        model = Service
        fields = [
            "id",
            "project",
            "name",
            "endpoint",
            "access_url",
            "access_key",
            "status",
            "reason",
            "desired",
            "description",
            "created_at",
            "updated_at",
            "versions",
        ]
        read_only_fields = fields

    def get_access_url(self, service) -> str:
        path = f"/v1/endpoints/{service.endpoint}/invocations?interface=predict&action=predict"
        request = self.context.get("request")
        return request.build_absolute_uri(path) if request else path

    def get_access_key(self, service) -> str | None:
        writable = self.context.get("writable_projects", ())
        return service.access_key if service.project_id in writable else None

    @extend_schema_field(ServiceVersionSerializer(many=True))
    def get_versions(self, service):
        versions = list(service.versions.all())
        context = {**self.context, "total_proportion": sum(v.proportion for v in versions)}
        return ServiceVersionSerializer(versions, many=True, context=context).data


class RevisionSerializer(serializers.ModelSerializer):
    created_by = serializers.CharField(source="created_by.username", default=None)
    config = serializers.JSONField()

    class Meta:
        model = Revision
        fields = ["number", "note", "created_at", "created_by", "config"]
        read_only_fields = fields


class ReplicaLogSerializer(serializers.Serializer):
    stream = serializers.ChoiceField(choices=["stdout", "stderr"])
    text = serializers.CharField(help_text="the last 64 KB at most")
    size = serializers.IntegerField(help_text="of the whole file, in bytes")
