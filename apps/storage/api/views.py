from django.core.exceptions import ValidationError
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.parsers import FileUploadParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.projects.selectors import get_project
from apps.storage import selectors, services, streaming
from apps.storage.api.serializers import (
    BucketSerializer,
    EntrySerializer,
    FolderSerializer,
    UploadResultSerializer,
)
from bml_site.api_body import object_body


class BucketViewSet(
    mixins.ListModelMixin,
    mixins.CreateModelMixin,
    mixins.RetrieveModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    """Buckets of the projects you belong to. Deleting needs an empty bucket."""

    serializer_class = BucketSerializer
    lookup_field = "name"
    lookup_value_regex = r"[a-z0-9.\-]+"

    def get_queryset(self):
        project_id = self.request.query_params.get("project")
        project = get_project(self.request.user, project_id) if project_id else None
        return selectors.buckets_for(self.request.user, project)

    def get_object(self):
        bucket = selectors.get_bucket(self.request.user, self.kwargs["name"])
        self.check_object_permissions(self.request, bucket)
        return bucket

    @extend_schema(parameters=[OpenApiParameter("project", int, description="Project id")])
    def list(self, request, *args, **kwargs):
        return super().list(request, *args, **kwargs)

    def perform_create(self, serializer):
        project = get_project(self.request.user, serializer.validated_data["project_id"])
        serializer.instance = services.create_bucket(
            self.request.user, project, serializer.validated_data["name"]
        )

    def perform_destroy(self, bucket):
        services.delete_bucket(self.request.user, bucket)


class BucketScopedView(APIView):
    def bucket(self, request, name):
        """The bucket, 404 outside your projects, 403 for a viewer's write."""
        bucket = selectors.get_bucket(request.user, name)
        self.check_object_permissions(request, bucket)
        return bucket


class ObjectListView(BucketScopedView):
    """Folders and files directly under `prefix` (one level, like a file browser)."""

    @extend_schema(
        parameters=[OpenApiParameter("prefix", str, description="Folder, e.g. 'data/'")],
        responses=EntrySerializer(many=True),
    )
    def get(self, request, name):
        bucket = self.bucket(request, name)
        entries = services.list_folder(bucket, request.query_params.get("prefix", ""))
        data = [{**entry.__dict__, "uri": f"bos://{bucket.name}/{entry.key}"} for entry in entries]
        return Response(EntrySerializer(data, many=True).data)


class ObjectView(BucketScopedView):
    """One object: GET downloads (streamed), PUT uploads the raw request body, DELETE removes
    it (a key ending in '/' removes the folder and everything under it)."""

    parser_classes = [FileUploadParser]

    @extend_schema(responses={(200, "application/octet-stream"): OpenApiTypes.BINARY})
    def get(self, request, name, key):
        bucket = self.bucket(request, name)
        return streaming.object_response(bucket, key)

    @extend_schema(
        request={"application/octet-stream": OpenApiTypes.BINARY},
        responses={201: UploadResultSerializer},
    )
    def put(self, request, name, key):
        bucket = self.bucket(request, name)
        length = request.headers.get("Content-Length")
        if not length or not (length.isascii() and length.isdigit()):
            return Response(
                {"Content-Length": "Uploads must state their length (no chunked bodies)."},
                status=status.HTTP_411_LENGTH_REQUIRED,
            )
        # Django under ASGI spools the body to a temporary file; read it as a stream.
        result = services.upload_object(
            request.user,
            bucket,
            key,
            request._request,
            int(length),
            request.headers.get("X-Object-Content-Type"),
        )
        return Response(UploadResultSerializer(result).data, status=status.HTTP_201_CREATED)

    @extend_schema(responses={204: None})
    def delete(self, request, name, key):
        bucket = self.bucket(request, name)
        services.delete_path(request.user, bucket, key)
        return Response(status=status.HTTP_204_NO_CONTENT)


class FolderView(BucketScopedView):
    @extend_schema(request=FolderSerializer, responses={201: FolderSerializer})
    def post(self, request, name):
        bucket = self.bucket(request, name)
        serializer = FolderSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        key = services.create_folder(request.user, bucket, serializer.validated_data["path"])
        return Response({"path": key}, status=status.HTTP_201_CREATED)


class MultiUploadView(BucketScopedView):
    """Several files at once as multipart/form-data (field `files`), into folder `prefix`."""

    parser_classes = [MultiPartParser]

    @extend_schema(
        request={
            "multipart/form-data": {
                "type": "object",
                "properties": {
                    "prefix": {"type": "string"},
                    "files": {"type": "array", "items": {"type": "string", "format": "binary"}},
                },
            }
        },
        responses={201: UploadResultSerializer(many=True)},
    )
    def post(self, request, name):
        bucket = self.bucket(request, name)
        files = request.FILES.getlist("files")
        if not files:
            raise ValidationError({"files": "Choose at least one file to upload."})
        prefix = object_body(request).get("prefix", "")
        if prefix and not prefix.endswith("/"):
            prefix += "/"
        results = [
            services.upload_object(request.user, bucket, prefix + f.name, f, f.size, f.content_type)
            for f in files
        ]
        return Response(
            UploadResultSerializer(results, many=True).data, status=status.HTTP_201_CREATED
        )
