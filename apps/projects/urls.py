from django.urls import path

from apps.projects import views

app_name = "projects"

urlpatterns = [
    path("", views.project_list, name="list"),
    path("create/", views.project_create, name="create"),
    path("api-token/", views.api_token, name="api-token"),
    path("<int:project_id>/switch/", views.project_switch, name="switch"),
    path("<int:project_id>/settings/", views.project_settings, name="settings"),
    path("<int:project_id>/rename/", views.project_rename, name="rename"),
    path(
        "<int:project_id>/notebook-terminal/",
        views.project_notebook_terminal,
        name="notebook-terminal",
    ),
    path("<int:project_id>/delete/", views.project_delete, name="delete"),
    path("<int:project_id>/members/add/", views.member_add, name="member-add"),
    path(
        "<int:project_id>/members/<int:membership_id>/role/",
        views.member_role,
        name="member-role",
    ),
    path(
        "<int:project_id>/members/<int:membership_id>/remove/",
        views.member_remove,
        name="member-remove",
    ),
]
