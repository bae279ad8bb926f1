from django.urls import path

from apps.datasets import views

app_name = "datasets"

urlpatterns = [
    path("", views.dataset_list, name="list"),
    path("new/", views.dataset_create, name="create"),
    path("<int:dataset_id>/", views.dataset_detail, name="detail"),
    path("<int:dataset_id>/upload/", views.dataset_upload, name="upload"),
    path("<int:dataset_id>/delete/", views.dataset_delete, name="delete"),
]
