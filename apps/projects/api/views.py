from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from apps.projects import counters, selectors, services
from apps.projects.api.serializers import (
    MembershipSerializer,
    ProjectDeleteSerializer,
    ProjectSerializer,
    RoleSerializer,
)
from apps.projects.models import Membership, Project
from bml_site.api_body import object_body


class ProjectViewSet(viewsets.ModelViewSet):
    """Your projects, with running/total counts of notebooks, jobs and prediction services.

    Deleting needs `confirm_name` (the project's name) in the body, and removes everything
    the project owns, objects in the store included. The default project cannot be deleted.
    """

    serializer_class = ProjectSerializer
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # the API schema, built without a user
            return Project.objects.none()
        return selectors.projects_for(self.request.user)

    def get_object(self):
        project = selectors.get_project(self.request.user, self.kwargs["pk"])
        self.check_object_permissions(self.request, project)
        return project

    def get_serializer_context(self):
        context = super().get_serializer_context()
        user = self.request.user
        if user.is_authenticated:
            memberships = Membership.objects.filter(user=user)
            context["roles"] = dict(memberships.values_list("project_id", "role"))
            context["counts"] = counters.counts_for(context["roles"].keys())
        return context

    def perform_create(self, serializer):
        serializer.instance = services.create_project(
            self.request.user, serializer.validated_data["name"]
        )

    def perform_update(self, serializer):
        if "name" in serializer.validated_data:  # a PATCH may leave it out: nothing to do
            services.rename_project(
                self.request.user, serializer.instance, serializer.validated_data["name"]
            )

    @extend_schema(request=ProjectDeleteSerializer, responses={202: None})
    def destroy(self, request, *args, **kwargs):
        project = self.get_object()
        # The service checks the role, then the typed name (a viewer gets 403, not 400).
        services.delete_project(request.user, project, object_body(request).get("confirm_name", ""))
        return Response(status=status.HTTP_202_ACCEPTED)


class MembershipViewSet(
    mixins.ListModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    """Members of a project and their roles: owner, developer, viewer (viewers only read)."""

    serializer_class = MembershipSerializer
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def project(self):
        project = selectors.get_project(self.request.user, self.kwargs["project_pk"])
        self.check_object_permissions(self.request, project)
        return project

    def get_queryset(self):
        return Membership.objects.filter(project=self.project()).select_related("user")

    def get_object(self):
        membership = get_object_or_404(self.get_queryset(), pk=self.kwargs["pk"])
        self.check_object_permissions(self.request, membership)
        return membership

    def create(self, request, *args, **kwargs):
        self.project()  # 404/403 before the body is validated
        return super().create(request, *args, **kwargs)

    def perform_create(self, serializer):
        data = serializer.validated_data
        serializer.instance = services.add_member(
            self.request.user, self.project(), data["user"], data["role"]
        )

    @extend_schema(request=RoleSerializer)
    def partial_update(self, request, *args, **kwargs):
        membership = self.get_object()
        body = RoleSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        services.change_role(request.user, membership, body.validated_data["role"])
        return Response(MembershipSerializer(membership).data)

    def perform_destroy(self, membership):
        services.remove_member(self.request.user, membership)

    @action(detail=False, methods=["get"], url_path="me")
    def me(self, request, project_pk=None):
        membership = selectors.membership_for(request.user, project_pk)
        return Response(MembershipSerializer(membership).data)
