from django.urls import path

from apps.jobs import views

app_name = "jobs"

urlpatterns = [
    path("", views.job_list, name="list"),
    path("new/", views.job_create, name="create"),
    path("<str:job_id>/", views.job_detail, name="detail"),
    path("<str:job_id>/terminate/", views.job_terminate, name="terminate"),
    path("<str:job_id>/delete/", views.job_delete, name="delete"),
]
