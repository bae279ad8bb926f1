from django.urls import path

from apps.jobs import ml_views, views

app_name = "jobs"

urlpatterns = [
    path("", views.job_list, name="list"),
    path("new/", views.job_create, name="create"),
    path("new-ml/", ml_views.ml_job_create, name="create-ml"),
    path("new-automl/", ml_views.automl_job_create, name="create-automl"),
    path("new-autodl/", ml_views.autodl_job_create, name="create-autodl"),
    path("<str:job_id>/", views.job_detail, name="detail"),
    path("<str:job_id>/terminate/", views.job_terminate, name="terminate"),
    path("<str:job_id>/resume/", views.job_resume, name="resume"),
    path("<str:job_id>/delete/", views.job_delete, name="delete"),
]
