from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from apps.datasets import selectors, services
from apps.datasets.api.serializers import (
    DatasetSerializer,
    DatasetVersionSerializer,
    ParquetPartsSerializer,
    PreviewSerializer,
    UploadSerializer,
)
from apps.datasets.models import Dataset
from apps.projects.selectors import get_project

VERSION_PARAM = OpenApiParameter("version", int, description="default: the current version")


class DatasetViewSet(
    mixins.ListModelMixin,
    mixins.CreateModelMixin,
    mixins.RetrieveModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    """Table data sets of your projects, and the public ones (`?public=1`): create, list,
    get, delete; upload in two steps (`preview/`, then `versions/`); read `rows/`,
    `statistics/` and the parquet parts of a version (`parquet/`)."""

    serializer_class = DatasetSerializer

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # the API schema, built without a user
            return Dataset.objects.none()
        if self.request.query_params.get("public") in ("1", "true"):
            return selectors.public_datasets()
        project_id = self.request.query_params.get("project")
        project = get_project(self.request.user, project_id) if project_id else None
        return selectors.datasets_for(self.request.user, project)

    def get_object(self):
        dataset = selectors.get_dataset(self.request.user, self.kwargs["pk"])
        if not dataset.is_public:
            self.check_object_permissions(self.request, dataset)
        return dataset

    @extend_schema(parameters=[OpenApiParameter("project", int), OpenApiParameter("public", bool)])
    def list(self, request, *args, **kwargs):
        return super().list(request, *args, **kwargs)

    def perform_create(self, serializer):
        data = serializer.validated_data
        project = get_project(self.request.user, data.get("project_id"))
        serializer.instance = services.create_dataset(
            self.request.user,
            project,
            data["name"],
            storage_path=data.get("storage_path", ""),
            description=data.get("description", ""),
        )

    def perform_destroy(self, instance):
        services.delete_dataset(self.request.user, instance)

    @extend_schema(request=PreviewSerializer, responses=OpenApiTypes.OBJECT)
    @action(detail=True, methods=["post"])
    def preview(self, request, pk=None):
        """Step 1 of an upload: the source's first rows with guessed column names/types,
        and `header_guess`: whether the first line looks like a header."""
        dataset = self.get_object()  # 404/403 before the body is looked at
        source = PreviewSerializer(data=request.data)
        source.is_valid(raise_exception=True)
        result = services.preview_source(request.user, dataset, **source.validated_data)
        return Response(result)

    @extend_schema(methods=["GET"], responses=DatasetVersionSerializer(many=True))
    @extend_schema(
        methods=["POST"], request=UploadSerializer, responses={202: DatasetVersionSerializer}
    )
    @action(detail=True, methods=["get", "post"], pagination_class=None)
    def versions(self, request, pk=None):
        """GET: the uploads, newest first. POST: step 2, start converting the source into a
        new version (202; status `processing`, then `succeeded` or `failed`)."""
        dataset = self.get_object()
        if request.method == "GET":
            return Response(DatasetVersionSerializer(dataset.versions.all(), many=True).data)
        upload = UploadSerializer(data=request.data)
        upload.is_valid(raise_exception=True)
        version = services.start_upload(request.user, dataset, **upload.validated_data)
        return Response(DatasetVersionSerializer(version).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(
        parameters=[VERSION_PARAM, OpenApiParameter("offset", int), OpenApiParameter("limit", int)],
        responses=OpenApiTypes.OBJECT,
    )
    @action(detail=True, methods=["get"])
    def rows(self, request, pk=None):
        """A page of raw data (at most 200 rows)."""
        version = selectors.get_version(self.get_object(), request.query_params.get("version"))
        try:
            offset = int(request.query_params.get("offset", 0))
            limit = int(request.query_params.get("limit", 50))
        except ValueError:
            return Response(
                {"offset": "offset and limit are whole numbers."},
                status=status.HTTP_400_BAD_REQUEST,
            )
        return Response(selectors.read_rows(version, offset, limit))

    @extend_schema(parameters=[VERSION_PARAM], responses=OpenApiTypes.OBJECT)
    @action(detail=True, methods=["get"])
    def statistics(self, request, pk=None):
        """Per column: count, unique, missing, mean, variance, std, min, max, quartiles,
        histogram, top values."""
        version = selectors.get_version(self.get_object(), request.query_params.get("version"))
        if version is None:
            return Response({"version": None, "rows": 0, "columns": []})
        return Response({"version": version.number, "rows": version.rows, "columns": version.stats})

    @extend_schema(
        parameters=[VERSION_PARAM, OpenApiParameter("part", int)],
        responses={
            (200, "application/json"): ParquetPartsSerializer,
            (200, "application/octet-stream"): OpenApiTypes.BINARY,
        },
    )
    @action(detail=True, methods=["get"])
    def parquet(self, request, pk=None):
        """Without `part`: the version's parquet parts (bos:// paths, row count). With
        `part=<index>`: that parquet file, streamed."""
        version = selectors.get_version(self.get_object(), request.query_params.get("version"))
        part = request.query_params.get("part")
        if part is None:
            if version is None:
                return Response({"version": None, "rows": 0, "parts": []})
            return Response(
                {"version": version.number, "rows": version.rows, "parts": version.parts}
            )
        return selectors.parquet_part_response(version, part)
