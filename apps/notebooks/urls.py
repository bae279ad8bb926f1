from django.urls import path

from apps.notebooks import views

app_name = "notebooks"

urlpatterns = [
    path("", views.notebook_list, name="list"),
    path("new/", views.notebook_create, name="create"),
    path("<int:pk>/", views.notebook_detail, name="detail"),
    path("<int:pk>/status.json", views.notebook_status, name="status"),
    path("<int:pk>/start/", views.notebook_start, name="start"),
    path("<int:pk>/stop/", views.notebook_stop, name="stop"),
    path("<int:pk>/delete/", views.notebook_delete, name="delete"),
    path("<int:pk>/settings/", views.notebook_settings, name="settings"),
    path("<int:pk>/submit-job/", views.notebook_submit_job, name="submit-job"),
]
