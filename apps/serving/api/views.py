from pathlib import Path

from django.db.models import Prefetch
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response

from apps.projects.models import Membership, Role
from apps.projects.selectors import get_project
from apps.serving import selectors, services
from apps.serving.api.serializers import (
    ProjectInputSerializer,
    ReplicaLogSerializer,
    RevisionSerializer,
    ServiceConfigSerializer,
    ServiceCreateSerializer,
    ServiceSerializer,
    ServiceUpdateSerializer,
    ServiceVersionInputSerializer,
    validated,
)
from apps.serving.models import Service, ServiceVersion
from apps.serving.quality import RANGES, series, version_filter, window

LOG_TAIL_BYTES = 64 * 1024
LOG_STREAMS = ("stdout", "stderr")


def with_versions(queryset):
    """Services with their versions, models, packages and replicas in four queries."""
    versions = ServiceVersion.objects.select_related("model_version__model", "package")
    return queryset.prefetch_related(Prefetch("versions", versions.prefetch_related("runs")))


def tail(path: Path, limit: int = LOG_TAIL_BYTES) -> tuple[str, int]:
    """(the last `limit` bytes of a file as text, its size); ("", 0) when there is none."""
    try:
        with open(path, "rb") as file:
            size = file.seek(0, 2)
            file.seek(max(0, size - limit))
            return file.read().decode("utf-8", errors="replace"), size
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        return "", 0


class ServiceViewSet(mixins.ListModelMixin, viewsets.GenericViewSet):
    """Online prediction services of your projects (`?project=`). POST creates one with its
    first version; `versions/` adds a version, `config/` replaces the whole version list
    (the spec's "Edit"), `revisions/` is the configuration history and
    `revisions/<n>/recover/` rolls back to one. `stop/`, `restart/`, `new-key/` do what they
    say; DELETE removes a stopped or failed service. The access key is shown to developers
    and owners only."""

    serializer_class = ServiceSerializer
    lookup_value_regex = r"[0-9]+"
    http_method_names = ["get", "post", "put", "patch", "delete", "head", "options"]

    def get_queryset(self):
        project_id = self.request.query_params.get("project")
        project = get_project(self.request.user, project_id) if project_id else None
        return with_versions(selectors.services_for(self.request.user, project))

    def get_object(self):
        service = selectors.get_service(self.request.user, self.kwargs["pk"])
        self.check_object_permissions(self.request, service)
        return service

    def get_serializer_context(self):
        context = super().get_serializer_context()
        memberships = Membership.objects.filter(user=self.request.user)
        context["writable_projects"] = {
            m.project_id for m in memberships if m.allows(Role.DEVELOPER)
        }
        return context

    def answer(self, service: Service, code=status.HTTP_200_OK) -> Response:
        fresh = with_versions(Service.objects.filter(pk=service.pk)).get()
        return Response(self.get_serializer(fresh).data, status=code)

    @extend_schema(parameters=[OpenApiParameter("project", int)])
    def list(self, request, *args, **kwargs):
        return super().list(request, *args, **kwargs)

    @extend_schema(request=ServiceCreateSerializer, responses={201: ServiceSerializer})
    def create(self, request):
        project = get_project(
            request.user, validated(ProjectInputSerializer, request.data)["project"]
        )
        self.check_object_permissions(request, project)  # a viewer: 403 whatever the body
        values = validated(ServiceCreateSerializer, request.data, project=project)
        service = services.create_service(
            request.user,
            project,
            name=values["name"],
            description=values["description"],
            version=ServiceVersionInputSerializer.config(values["version"]),
        )
        return self.answer(service, status.HTTP_201_CREATED)

    def retrieve(self, request, pk=None):
        return self.answer(self.get_object())

    @extend_schema(request=ServiceUpdateSerializer, responses=ServiceSerializer)
    def partial_update(self, request, pk=None):
        """Only the description is edited here; versions through `config/`."""
        service = self.get_object()
        values = validated(ServiceUpdateSerializer, request.data)
        service = services.update_description(request.user, service, values["description"])
        return self.answer(service)

    @extend_schema(responses={204: None})
    def destroy(self, request, pk=None):
        services.delete_service(request.user, self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(request=ServiceVersionInputSerializer, responses={201: ServiceSerializer})
    @action(detail=True, methods=["post"])
    def versions(self, request, pk=None):
        """Add a version (its number must be new to the service)."""
        service = self.get_object()
        values = validated(ServiceVersionInputSerializer, request.data, project=service.project)
        services.add_version(request.user, service, ServiceVersionInputSerializer.config(values))
        return self.answer(service, status.HTTP_201_CREATED)

    @extend_schema(request=ServiceConfigSerializer, responses=ServiceSerializer)
    @action(detail=True, methods=["put"])
    def config(self, request, pk=None):
        """Replace the whole version list: versions left out are removed."""
        service = self.get_object()
        values = validated(ServiceConfigSerializer, request.data, project=service.project)
        configs = [ServiceVersionInputSerializer.config(item) for item in values["versions"]]
        return self.answer(services.edit_service(request.user, service, configs))

    @extend_schema(request=None, responses=ServiceSerializer)
    @action(detail=True, methods=["post"])
    def stop(self, request, pk=None):
        return self.answer(services.stop_service(request.user, self.get_object()))

    @extend_schema(request=None, responses=ServiceSerializer)
    @action(detail=True, methods=["post"])
    def restart(self, request, pk=None):
        return self.answer(services.restart_service(request.user, self.get_object()))

    @extend_schema(request=None, responses=ServiceSerializer)
    @action(detail=True, methods=["post"], url_path="new-key", url_name="new-key")
    def new_key(self, request, pk=None):
        """A new access key; the old one stops working within a second."""
        return self.answer(services.new_key(request.user, self.get_object()))

    @extend_schema(responses=RevisionSerializer(many=True))
    @action(detail=True, methods=["get"], pagination_class=None)
    def revisions(self, request, pk=None):
        """The configuration history, newest first."""
        revisions = self.get_object().revisions.select_related("created_by")
        return Response(RevisionSerializer(revisions, many=True).data)

    @extend_schema(request=None, responses=ServiceSerializer)
    @action(
        detail=True,
        methods=["post"],
        url_path=r"revisions/(?P<revision>[0-9]+)/recover",
        url_name="revision-recover",
    )
    def recover(self, request, pk=None, revision=None):
        """Apply a past configuration again (recorded as a new revision)."""
        service = self.get_object()
        found = selectors.get_revision(service, revision)
        return self.answer(services.recover(request.user, service, found))

    @extend_schema(
        parameters=[
            OpenApiParameter("range", str, enum=[*RANGES], description="default 1h"),
            OpenApiParameter("start", OpenApiTypes.DATETIME, description="or start and end"),
            OpenApiParameter("end", OpenApiTypes.DATETIME),
            OpenApiParameter("version", int, description="one version's figures only"),
        ],
        responses=OpenApiTypes.OBJECT,
    )
    @action(detail=True, methods=["get"])
    def quality(self, request, pk=None):
        """Requests, traffic, handling time and status proportions per time point."""
        service = self.get_object()
        params = request.query_params
        win = window(params.get("range") or "1h", params.get("start", ""), params.get("end", ""))
        return Response(series(service, win, version_filter(params.get("version"))))

    @extend_schema(
        parameters=[OpenApiParameter("stream", str, enum=[*LOG_STREAMS])],
        responses=ReplicaLogSerializer,
    )
    @action(
        detail=True,
        methods=["get"],
        url_path=r"versions/(?P<number>[0-9]+)/replicas/(?P<index>[0-9]+)/logs",
        url_name="version-replica-logs",
    )
    def logs(self, request, pk=None, number=None, index=None):
        """The end of a replica's stdout or stderr (the last 64 KB)."""
        stream = request.query_params.get("stream") or "stdout"
        if stream not in LOG_STREAMS:
            raise ValidationError({"stream": "stream must be stdout or stderr."})
        version = selectors.get_version(self.get_object(), number)
        replica = selectors.get_replica(version, index)
        text, size = tail(Path(replica.run_dir) / f"{stream}.log") if replica.run_dir else ("", 0)
        return Response({"stream": stream, "text": text, "size": size})
