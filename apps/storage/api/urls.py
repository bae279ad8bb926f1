from django.urls import path

from apps.storage.api import views

urlpatterns = [
    path("buckets/<str:name>/objects/", views.ObjectListView.as_view(), name="bucket-objects"),
    path("buckets/<str:name>/objects/<path:key>", views.ObjectView.as_view(), name="bucket-object"),
    path("buckets/<str:name>/folders/", views.FolderView.as_view(), name="bucket-folders"),
    path("buckets/<str:name>/upload/", views.MultiUploadView.as_view(), name="bucket-upload"),
]
