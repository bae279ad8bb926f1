from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from apps.notebooks import convert, selectors, servers, services, workspace
from apps.notebooks.api.serializers import (
    ConvertSerializer,
    NotebookCreateSerializer,
    NotebookSerializer,
    NotebookUpdateSerializer,
)
from apps.projects.models import Role
from apps.projects.selectors import get_project
from apps.projects.services import require_role
from apps.serving.api.serializers import ProjectInputSerializer, validated


class NotebookViewSet(mixins.ListModelMixin, viewsets.GenericViewSet):
    """Notebook instances of your projects (`?project=`): a JupyterLab each, opened at
    `lab_url` through the appliance (members with the developer role). POST creates one
    (and starts it unless `start` is false); `start/` and `stop/` (everything is kept);
    DELETE removes it with its files. `files/` lists its notebooks and `convert/` turns one
    into the code of a deep learning job."""

    serializer_class = NotebookSerializer
    lookup_value_regex = r"[0-9]+"
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def get_queryset(self):
        project_id = self.request.query_params.get("project")
        project = get_project(self.request.user, project_id) if project_id else None
        return selectors.notebooks_for(self.request.user, project)

    def get_object(self):
        notebook = selectors.get_notebook(self.request.user, self.kwargs["pk"])
        self.check_object_permissions(self.request, notebook)
        return notebook

    def answer(self, notebook, code=status.HTTP_200_OK) -> Response:
        notebook.refresh_from_db()
        return Response(NotebookSerializer(notebook).data, status=code)

    @extend_schema(parameters=[OpenApiParameter("project", int)])
    def list(self, request, *args, **kwargs):
        return super().list(request, *args, **kwargs)

    @extend_schema(request=NotebookCreateSerializer, responses={201: NotebookSerializer})
    def create(self, request):
        project = get_project(
            request.user, validated(ProjectInputSerializer, request.data)["project"]
        )
        self.check_object_permissions(request, project)  # a viewer: 403 whatever the body
        values = validated(NotebookCreateSerializer, request.data)
        notebook = services.create_notebook(
            request.user,
            project,
            name=values["name"],
            package_id=values["package"],
            disk_gb=values["disk_gb"],
            storage_path=values["storage_path"],
            auto_stop_minutes=values["auto_stop_minutes"],
            start=values["start"],
        )
        return self.answer(notebook, status.HTTP_201_CREATED)

    def retrieve(self, request, pk=None):
        return self.answer(self.get_object())

    @extend_schema(request=NotebookUpdateSerializer, responses=NotebookSerializer)
    def partial_update(self, request, pk=None):
        notebook = self.get_object()
        values = validated(NotebookUpdateSerializer, request.data)
        return self.answer(services.update_notebook(request.user, notebook, **values))

    @extend_schema(responses={204: None})
    def destroy(self, request, pk=None):
        services.delete_notebook(request.user, self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(request=None, responses=NotebookSerializer)
    @action(detail=True, methods=["post"])
    def start(self, request, pk=None):
        return self.answer(services.start_notebook(request.user, self.get_object()))

    @extend_schema(request=None, responses=NotebookSerializer)
    @action(detail=True, methods=["post"])
    def stop(self, request, pk=None):
        return self.answer(services.stop_notebook(request.user, self.get_object()))

    @extend_schema(responses=OpenApiTypes.OBJECT)
    @action(detail=True, methods=["get"])
    def files(self, request, pk=None):
        """The instance's notebooks (.ipynb), relative to its workspace."""
        return Response({"notebooks": workspace.notebook_files(self.get_object())})

    @extend_schema(request=ConvertSerializer, responses=OpenApiTypes.OBJECT)
    @action(detail=True, methods=["post"])
    def convert(self, request, pk=None):
        """A notebook as the code of a deep learning job (`!cmd` and `%pip` made to work)."""
        notebook = self.get_object()
        require_role(request.user, notebook.project, Role.DEVELOPER)
        path = validated(ConvertSerializer, request.data)["path"]
        return Response({"path": path, "code": convert.to_job_code(notebook, path)})

    @extend_schema(responses=OpenApiTypes.OBJECT)
    @action(detail=True, methods=["get"])
    def log(self, request, pk=None):
        """The end of the Jupyter server's output (64 KB)."""
        return Response({"text": servers.log_tail(self.get_object(), 64 * 1024)})
