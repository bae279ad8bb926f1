from django.urls import path

from apps.warehouse import views

app_name = "warehouse"

urlpatterns = [
    path("", views.model_list, name="list"),
    path("import/", views.model_import, name="import"),
    path("release/<str:job_id>/", views.release_job, name="release"),
    path("<int:model_id>/", views.model_detail, name="detail"),
    path("<int:model_id>/edit/", views.model_edit, name="edit"),
    path("<int:model_id>/delete/", views.model_delete, name="delete"),
    path("<int:model_id>/versions/<int:version>/", views.version_detail, name="version"),
    path(
        "<int:model_id>/versions/<int:version>/delete/",
        views.version_delete,
        name="version-delete",
    ),
]
