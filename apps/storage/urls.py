from django.urls import path

from apps.storage import views

app_name = "storage"

urlpatterns = [
    path("", views.bucket_list, name="buckets"),
    path("create/", views.bucket_create, name="bucket-create"),
    path("<str:name>/", views.browse, name="browse"),
    path("<str:name>/delete/", views.bucket_delete, name="bucket-delete"),
    path("<str:name>/folder/", views.folder_create, name="folder-create"),
    path("<str:name>/remove/", views.object_delete, name="object-delete"),
    path("<str:name>/download/<path:key>", views.download, name="download"),
]
