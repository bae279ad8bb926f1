from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.response import Response

from apps.jobs.selectors import get_job
from apps.projects.selectors import get_project
from apps.warehouse import releases, selectors, services
from apps.warehouse.api.serializers import (
    ImportSerializer,
    ModelSerializer,
    ModelVersionSerializer,
    ReleaseSerializer,
    VersionInputSerializer,
)
from apps.warehouse.models import Model
from bml_site.api_body import JSONParser, object_body


def _upload(data):
    """(stream, name, size) of an uploaded model file, or None."""
    upload = data.get("file")
    return (upload, upload.name, upload.size) if upload else None


class ModelViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    """The model warehouse: your projects' models (`?project=`) and the common models
    (`?common=1`). POST imports a new model (version 1) from a bos:// path or an uploaded
    `file`, validated by loading it; `versions/` lists or adds versions; `release/` turns a
    succeeded job's output into a model version. PATCH edits tags and description; DELETE
    removes every version and its files."""

    serializer_class = ModelSerializer
    parser_classes = [JSONParser, MultiPartParser, FormParser]
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # the API schema, built without a user
            return Model.objects.none()
        if self.request.query_params.get("common") in ("1", "true"):
            return selectors.common_models()
        project_id = self.request.query_params.get("project")
        project = get_project(self.request.user, project_id) if project_id else None
        return selectors.models_for(self.request.user, project)

    def get_object(self):
        model = selectors.get_model(self.request.user, self.kwargs["pk"])
        if not model.is_common:
            self.check_object_permissions(self.request, model)
        return model

    @extend_schema(parameters=[OpenApiParameter("project", int), OpenApiParameter("common", bool)])
    def list(self, request, *args, **kwargs):
        return super().list(request, *args, **kwargs)

    @extend_schema(request=ImportSerializer, responses={201: ModelVersionSerializer})
    def create(self, request, *args, **kwargs):
        data = ImportSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        version = services.import_model(
            request.user,
            get_project(request.user, values["project"]),
            name=values["name"],
            model_type=values["model_type"],
            path=values.get("path", ""),
            upload=_upload(values),
            fields=values.get("fields"),
            tags=values.get("tags"),
            description=values.get("description", ""),
        )
        body = {"model": version.model_id, **ModelVersionSerializer(version).data}
        return Response(body, status=status.HTTP_201_CREATED)

    def perform_update(self, serializer):
        data = serializer.validated_data
        model = serializer.instance
        if data.get("name", model.name) != model.name:
            raise ValidationError({"name": ["A model keeps its name; import it anew to rename."]})
        if data.get("project_id", model.project_id) != model.project_id:
            raise ValidationError({"project": ["A model stays in its project."]})
        model = services.update_model(
            self.request.user,
            serializer.instance,
            tags=data.get("tags"),
            description=data.get("description"),
        )
        model.version_count = model.versions.count()  # a PATCH answers it as a GET does
        serializer.instance = model

    def perform_destroy(self, instance):
        services.delete_model(self.request.user, instance)

    @extend_schema(methods=["GET"], responses=ModelVersionSerializer(many=True))
    @extend_schema(
        methods=["POST"],
        request=VersionInputSerializer,
        responses={201: ModelVersionSerializer},
    )
    @action(detail=True, methods=["get", "post"])
    def versions(self, request, pk=None):
        """GET: the versions, newest first (paged). POST: import a new version."""
        model = self.get_object()
        if request.method == "GET":
            page = self.paginate_queryset(model.versions.select_related("source_job"))
            return self.get_paginated_response(ModelVersionSerializer(page, many=True).data)
        data = VersionInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        version = services.add_version(
            request.user,
            model,
            model_type=values["model_type"],
            path=values.get("path", ""),
            upload=_upload(values),
            fields=values.get("fields"),
            description=values.get("description", ""),
        )
        return Response(ModelVersionSerializer(version).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=ReleaseSerializer, responses={201: ModelVersionSerializer})
    @action(detail=False, methods=["post"])
    def release(self, request):
        """Release a succeeded job's results as a new model (`name`) or a new version of one
        (`model`); type, subpath and fields default to what the job's algorithm produces.
        The version records its lineage (job, algorithm, parameters, metrics, data paths)."""
        data = ReleaseSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        job = get_job(request.user, values["job_id"])
        model = selectors.get_model(request.user, values["model"]) if "model" in values else None
        version = releases.release_from_job(
            request.user,
            job,
            model_type=values.get("model_type", ""),
            name=values.get("name", ""),
            model=model,
            subpath=values.get("subpath", ""),
            fields=values.get("fields"),
            description=values.get("description", ""),
        )
        body = {"model": version.model_id, **ModelVersionSerializer(version).data}
        return Response(body, status=status.HTTP_201_CREATED)


class ModelVersionView(generics.RetrieveUpdateDestroyAPIView):
    """One version: GET its details, PATCH its description, DELETE it (its files too)."""

    serializer_class = ModelVersionSerializer
    http_method_names = ["get", "patch", "delete", "head", "options"]

    def get_object(self):
        model = selectors.get_model(self.request.user, self.kwargs["pk"])
        if not model.is_common:
            self.check_object_permissions(self.request, model)
        return selectors.get_version(model, self.kwargs["version"])

    def perform_update(self, serializer):
        serializer.instance = services.update_version(
            self.request.user,
            serializer.instance,
            description=object_body(self.request).get("description"),  # absent: kept
        )

    def perform_destroy(self, instance):
        services.delete_version(self.request.user, instance)
