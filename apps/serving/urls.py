from django.urls import path

from apps.serving import views

app_name = "serving"

urlpatterns = [
    path("", views.service_list, name="list"),
    path("new/", views.service_create, name="create"),
    path("<int:pk>/", views.service_detail, name="detail"),
    path("<int:pk>/status.json", views.service_status, name="status"),
    path("<int:pk>/quality.json", views.service_quality, name="quality"),
    path("<int:pk>/edit/", views.service_edit, name="edit"),
    path("<int:pk>/stop/", views.service_stop, name="stop"),
    path("<int:pk>/restart/", views.service_restart, name="restart"),
    path("<int:pk>/delete/", views.service_delete, name="delete"),
    path("<int:pk>/new-key/", views.service_new_key, name="new-key"),
    path(
        "<int:pk>/revisions/<int:revision>/recover/",
        views.service_recover,
        name="recover",
    ),
    path(
        "<int:pk>/versions/<int:number>/replicas/<int:index>/",
        views.replica_detail,
        name="replica",
    ),
]
