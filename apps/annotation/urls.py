from django.urls import path

from apps.annotation import document_views as doc
from apps.annotation import views

app_name = "annotation"

DOCUMENT = "<int:pk>/documents/<int:document>/"

urlpatterns = [
    path("", views.task_list, name="list"),
    path("new/", views.task_create, name="create"),
    path("<int:pk>/", views.task_detail, name="detail"),
    path("<int:pk>/annotate/", views.task_annotate, name="annotate"),
    path("<int:pk>/upload/", views.task_upload, name="upload"),
    path("<int:pk>/export/", views.task_export, name="export"),
    path("<int:pk>/guide/", views.task_guide, name="guide"),
    path("<int:pk>/delete/", views.task_delete, name="delete"),
    path("<int:pk>/tags/", views.tag_add, name="tag-add"),
    path("<int:pk>/tags/<int:tag>/", views.tag_update, name="tag-update"),
    path("<int:pk>/tags/<int:tag>/remove/", views.tag_remove, name="tag-remove"),
    path(DOCUMENT, doc.document_page, name="document"),
    path(DOCUMENT + "finish/", doc.document_finish, name="finish"),
    path(DOCUMENT + "review/", doc.document_review, name="review"),
    path(DOCUMENT + "delete/", doc.document_delete, name="document-delete"),
    path(DOCUMENT + "sentences/<int:index>/", doc.sentence_data, name="sentence"),
    path(DOCUMENT + "sentences/<int:index>/done/", doc.sentence_done, name="sentence-done"),
    path(DOCUMENT + "spans/", doc.span_add, name="spans"),
    path(DOCUMENT + "spans/<int:span>/remove/", doc.span_remove, name="span-remove"),
    path(DOCUMENT + "triples/", doc.triple_add, name="triples"),
    path(
        DOCUMENT + "triples/<int:triple>/remove/",
        doc.triple_remove,
        name="triple-remove",
    ),
]
