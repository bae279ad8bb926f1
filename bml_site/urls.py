from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.templatetags.static import static
from django.urls import include, path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.routers import DefaultRouter

from apps.annotation.api.views import AnnotationTaskViewSet
from apps.datasets.api.views import DatasetViewSet
from apps.jobs.api.views import JobViewSet
from apps.notebooks.api.views import NotebookViewSet
from apps.projects.api.views import MembershipViewSet, ProjectViewSet
from apps.serving.api.views import ServiceViewSet
from apps.storage.api.views import BucketViewSet
from apps.system import views as system_views
from apps.system.api.views import DeviceViewSet, ResourcePackageViewSet
from apps.visual.api.views import ComponentsView, ExperimentViewSet
from apps.warehouse.api.views import ModelVersionView, ModelViewSet

router = DefaultRouter()
router.register("projects", ProjectViewSet, basename="project")
router.register("buckets", BucketViewSet, basename="bucket")
router.register("resource-packages", ResourcePackageViewSet, basename="resource-package")
router.register("devices", DeviceViewSet, basename="device")
router.register("jobs", JobViewSet, basename="job")
router.register("datasets", DatasetViewSet, basename="dataset")
router.register("models", ModelViewSet, basename="model")
router.register("services", ServiceViewSet, basename="service")
router.register("annotation-tasks", AnnotationTaskViewSet, basename="annotation-task")
router.register("notebooks", NotebookViewSet, basename="notebook")
router.register("visual-experiments", ExperimentViewSet, basename="visual-experiment")

members = MembershipViewSet.as_view({"get": "list", "post": "create"})
member = MembershipViewSet.as_view({"patch": "partial_update", "delete": "destroy"})

api_urls = [
    path("projects/<int:project_pk>/members/", members, name="project-members"),
    path("projects/<int:project_pk>/members/<int:pk>/", member, name="project-member"),
    path("", include("apps.storage.api.urls")),
    path(
        "models/<int:pk>/versions/<int:version>/",
        ModelVersionView.as_view(),
        name="model-version",
    ),
    path("visual-components/", ComponentsView.as_view(), name="visual-components"),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    path("", include(router.urls)),
]

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="projects:list", permanent=False), name="home"),
    path("login/", auth_views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("projects/", include("apps.projects.urls")),
    path("storage/", include("apps.storage.urls")),
    path("jobs/", include("apps.jobs.urls")),
    path("datasets/", include("apps.datasets.urls")),
    path("models/", include("apps.warehouse.urls")),
    path("services/", include("apps.serving.urls")),
    path("annotation/", include("apps.annotation.urls")),
    path("workarea/", include("apps.notebooks.urls")),
    path("visual/", include("apps.visual.urls")),
    path("resources/", system_views.resources, name="resources"),
    path("healthz", system_views.healthz, name="healthz"),
    # Browsers ask for /favicon.ico on pages without an icon link (the admin's, the API's).
    path("favicon.ico", RedirectView.as_view(url=static("bml/favicon.svg"), permanent=True)),
    path("metrics", system_views.prometheus_metrics, name="metrics"),
    path("admin/", admin.site.urls),
    path("api/v1/", include(api_urls)),
    path("api-auth/", include("rest_framework.urls")),
]

handler404 = "bml_site.errors.not_found"
handler500 = "bml_site.errors.server_error"
