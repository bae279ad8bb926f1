from django.db.models import Count, IntegerField, OuterRef, Subquery, Value
from django.db.models.functions import Coalesce
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.response import Response

from apps.annotation import export, selectors, services
from apps.annotation.api.serializers import (
    DocumentDetailSerializer,
    DocumentSerializer,
    ExportSerializer,
    FinishSerializer,
    ProjectInputSerializer,
    ReviewInputSerializer,
    SentenceDoneSerializer,
    SentenceViewSerializer,
    SpanInputSerializer,
    SpanSerializer,
    TagInputSerializer,
    TagSerializer,
    TagUpdateSerializer,
    TaskCreateSerializer,
    TaskSerializer,
    TripleInputSerializer,
    TripleSerializer,
    UploadInputSerializer,
    UploadSerializer,
    validated,
)
from apps.annotation.models import DocumentStatus, Sentence, Span, Triple
from apps.projects.selectors import get_project
from bml_site.api_body import JSONParser, object_body

DOCUMENT = r"documents/(?P<document>[0-9]+)"
DOCUMENT_PARAM = OpenApiParameter("document", int, OpenApiParameter.PATH)


def path_params(*names: str) -> list[OpenApiParameter]:
    return [OpenApiParameter(name, int, OpenApiParameter.PATH) for name in names]


def read_upload(upload, limit: int) -> tuple[str, bytes]:
    """An uploaded file's name and bytes, read no further than just past the largest size an
    upload may have (the services refuse it by its size)."""
    return upload.name, upload.read(limit + 1)


def count_of(model, **filters):
    rows = model.objects.filter(document=OuterRef("pk"), **filters).order_by()
    counted = rows.values("document").annotate(n=Count("pk")).values("n")
    return Coalesce(Subquery(counted, output_field=IntegerField()), Value(0))


class AnnotationTaskViewSet(mixins.ListModelMixin, viewsets.GenericViewSet):
    """Text annotation tasks (entity-relationship, entity-attribute) of your projects
    (`?project=`). A task has tags, upload history, documents split into sentences, spans
    and triples marked by character offsets into a document's text, review of finished
    documents (owners) and exports (JSON lines and CSV in the task's storage path)."""

    serializer_class = TaskSerializer
    lookup_value_regex = r"[0-9]+"
    parser_classes = [JSONParser, MultiPartParser, FormParser]
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def get_queryset(self):
        project_id = self.request.query_params.get("project")
        project = get_project(self.request.user, project_id) if project_id else None
        tasks = selectors.tasks_for(self.request.user, project)
        return tasks.select_related("created_by").prefetch_related("tags")

    def get_object(self):
        """The task in the URL: 404 outside your projects, 403 for a viewer's writes (before
        any input is read)."""
        task = selectors.get_task(self.request.user, self.kwargs["pk"])
        self.check_object_permissions(self.request, task)
        return task

    def get_document(self):
        return selectors.get_document(self.get_object(), self.kwargs["document"])

    def paged(self, queryset, serializer_class):
        page = self.paginate_queryset(queryset)
        return self.get_paginated_response(serializer_class(page, many=True).data)

    # -- tasks -----------------------------------------------------------------------------

    @extend_schema(parameters=[OpenApiParameter("project", int)])
    def list(self, request, *args, **kwargs):
        return super().list(request, *args, **kwargs)

    @extend_schema(request=TaskCreateSerializer, responses={201: TaskSerializer})
    def create(self, request):
        """JSON, or multipart with the task description document as `guide`."""
        project = get_project(
            request.user, validated(ProjectInputSerializer, request.data)["project"]
        )
        self.check_object_permissions(request, project)  # a viewer: 403 whatever the body
        values = validated(TaskCreateSerializer, request.data)
        guide = values.get("guide")
        task = services.create_task(
            request.user,
            project,
            name=values["name"],
            scenario=values["scenario"],
            storage_path=values["storage_path"],
            review_required=values["review_required"],
            entity_types=values["entity_types"],
            predicate_types=values["relation_types"] or values["attribute_types"],
            guide=read_upload(guide, services.MAX_GUIDE_BYTES) if guide else None,
        )
        return Response(TaskSerializer(task).data, status=status.HTTP_201_CREATED)

    def retrieve(self, request, pk=None):
        return Response(TaskSerializer(self.get_object()).data)

    @extend_schema(responses={204: None})
    def destroy(self, request, pk=None):
        """The task and its annotations; its files in storage stay."""
        services.delete_task(request.user, self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)

    # -- tags ------------------------------------------------------------------------------

    @extend_schema(methods=["GET"], responses=TagSerializer(many=True))
    @extend_schema(methods=["POST"], request=TagInputSerializer, responses={201: TagSerializer})
    @action(detail=True, methods=["get", "post"], pagination_class=None)
    def tags(self, request, pk=None):
        """GET: the task's tags. POST: add one (`kind` entity, relation or attribute)."""
        task = self.get_object()
        if request.method == "GET":
            return Response(TagSerializer(task.tags.all(), many=True).data)
        values = validated(TagInputSerializer, request.data)
        tag = services.add_tag(request.user, task, **values)
        return Response(TagSerializer(tag).data, status=status.HTTP_201_CREATED)

    @extend_schema(methods=["GET"], parameters=path_params("tag"), responses=TagSerializer)
    @extend_schema(
        methods=["PATCH"],
        parameters=path_params("tag"),
        request=TagUpdateSerializer,
        responses=TagSerializer,
    )
    @extend_schema(methods=["DELETE"], parameters=path_params("tag"), responses={204: None})
    @action(detail=True, methods=["get", "patch", "delete"], url_path=r"tags/(?P<tag>[0-9]+)")
    def tag(self, request, pk=None, tag=None):
        """PATCH: rename, recolor, change the shortcut. DELETE: refused while in use."""
        found = selectors.get_tag(self.get_object(), tag)
        if request.method == "DELETE":
            services.remove_tag(request.user, found)
            return Response(status=status.HTTP_204_NO_CONTENT)
        if request.method == "PATCH":
            found = services.update_tag(
                request.user, found, **validated(TagUpdateSerializer, request.data)
            )
        return Response(TagSerializer(found).data)

    # -- uploads ---------------------------------------------------------------------------

    @extend_schema(methods=["GET"], responses=UploadSerializer(many=True))
    @extend_schema(
        methods=["POST"], request=UploadInputSerializer, responses={201: UploadSerializer}
    )
    @action(detail=True, methods=["get", "post"])
    def uploads(self, request, pk=None):
        """GET: the upload history, newest first. POST: multipart `files` (up to 4 txt, doc,
        docx or pdf of 2 MB each, or a zip of them) or JSON `bos_uri` (one file in storage).
        A refused upload answers 400 and stays in the history with its reason."""
        task = self.get_object()
        if request.method == "GET":
            return self.paged(task.uploads.select_related("created_by"), UploadSerializer)
        files = request.FILES.getlist("files")
        bos_uri = str(object_body(request).get("bos_uri") or "").strip()
        if not files and not bos_uri:
            raise ValidationError({"files": ["Choose files to upload, or a bos:// file."]})
        if files and bos_uri:
            raise ValidationError({"bos_uri": ["Give files or a bos:// file, not both."]})
        record = services.upload(
            request.user,
            task,
            files=[read_upload(f, services.MAX_ZIP_BYTES) for f in files],
            bos_uri="" if files else bos_uri,
        )
        return Response(UploadSerializer(record).data, status=status.HTTP_201_CREATED)

    # -- documents -------------------------------------------------------------------------

    @extend_schema(
        parameters=[OpenApiParameter("status", str, enum=DocumentStatus.values)],
        responses=DocumentSerializer(many=True),
    )
    @action(detail=True, methods=["get"])
    def documents(self, request, pk=None):
        """The task's files in order (`?status=` filters), with their progress."""
        documents = self.get_object().documents.defer("text").order_by("position")
        wanted = request.query_params.get("status")
        if wanted:
            if wanted not in DocumentStatus.values:
                raise ValidationError(
                    {"status": f"status is one of {', '.join(DocumentStatus.values)}."}
                )
            documents = documents.filter(status=wanted)
        documents = documents.annotate(
            done_count=count_of(Sentence, done=True),
            span_count=count_of(Span),
            triple_count=count_of(Triple),
        )
        return self.paged(documents, DocumentSerializer)

    @extend_schema(methods=["GET"], parameters=[DOCUMENT_PARAM], responses=DocumentDetailSerializer)
    @extend_schema(methods=["DELETE"], parameters=[DOCUMENT_PARAM], responses={204: None})
    @action(detail=True, methods=["get", "delete"], url_path=DOCUMENT)
    def document(self, request, pk=None, document=None):
        """GET: the file with its text and sentence bounds. DELETE: it and its annotations."""
        found = self.get_document()
        if request.method == "DELETE":
            services.delete_document(request.user, found)
            return Response(status=status.HTTP_204_NO_CONTENT)
        return Response(DocumentDetailSerializer(found).data)

    @extend_schema(parameters=path_params("document", "index"), responses=SentenceViewSerializer)
    @action(
        detail=True,
        methods=["get"],
        url_path=DOCUMENT + r"/sentences/(?P<index>[0-9]+)",
        url_name="sentence",
    )
    def sentence(self, request, pk=None, document=None, index=None):
        """One sentence with its spans and triples (offsets into the document's text)."""
        found = self.get_document()
        return Response(selectors.sentence_view(found, selectors.get_sentence(found, index)))

    @extend_schema(
        parameters=path_params("document", "index"),
        request=SentenceDoneSerializer,
        responses=SentenceViewSerializer,
    )
    @action(
        detail=True,
        methods=["post"],
        url_path=DOCUMENT + r"/sentences/(?P<index>[0-9]+)/done",
        url_name="sentence-done",
    )
    def sentence_done(self, request, pk=None, document=None, index=None):
        """Check a sentence (also one with nothing to annotate), or uncheck it."""
        found = self.get_document()
        sentence = selectors.get_sentence(found, index)
        done = validated(SentenceDoneSerializer, request.data)["done"]
        services.mark_sentence(request.user, sentence, done)
        return Response(selectors.sentence_view(found, sentence))

    # -- annotating ------------------------------------------------------------------------

    @extend_schema(
        parameters=[DOCUMENT_PARAM], request=SpanInputSerializer, responses={201: SpanSerializer}
    )
    @action(detail=True, methods=["post"], url_path=DOCUMENT + "/spans", url_name="spans")
    def spans(self, request, pk=None, document=None):
        """Mark [start, end) of the document's text with a tag; it must lie in one sentence."""
        found = self.get_document()
        values = validated(SpanInputSerializer, request.data)
        span = services.add_span(request.user, found, **values)
        return Response(SpanSerializer(span).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        methods=["GET"], parameters=path_params("document", "span"), responses=SpanSerializer
    )
    @extend_schema(
        methods=["DELETE"], parameters=path_params("document", "span"), responses={204: None}
    )
    @action(
        detail=True,
        methods=["get", "delete"],
        url_path=DOCUMENT + r"/spans/(?P<span>[0-9]+)",
        url_name="span",
    )
    def span(self, request, pk=None, document=None, span=None):
        """DELETE removes the span and the triples it is part of."""
        found = selectors.get_span(self.get_document(), span)
        if request.method == "DELETE":
            services.remove_span(request.user, found)
            return Response(status=status.HTTP_204_NO_CONTENT)
        return Response(SpanSerializer(found).data)

    @extend_schema(
        parameters=[DOCUMENT_PARAM],
        request=TripleInputSerializer,
        responses={201: TripleSerializer},
    )
    @action(detail=True, methods=["post"], url_path=DOCUMENT + "/triples", url_name="triples")
    def triples(self, request, pk=None, document=None):
        """Link two spans of one sentence: subject, relationship (or attribute) tag, object."""
        found = self.get_document()
        values = validated(TripleInputSerializer, request.data)
        triple = services.add_triple(request.user, found, **values)
        return Response(TripleSerializer(triple).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        methods=["GET"], parameters=path_params("document", "triple"), responses=TripleSerializer
    )
    @extend_schema(
        methods=["DELETE"], parameters=path_params("document", "triple"), responses={204: None}
    )
    @action(
        detail=True,
        methods=["get", "delete"],
        url_path=DOCUMENT + r"/triples/(?P<triple>[0-9]+)",
        url_name="triple",
    )
    def triple(self, request, pk=None, document=None, triple=None):
        found = selectors.get_triple(self.get_document(), triple)
        if request.method == "DELETE":
            services.remove_triple(request.user, found)
            return Response(status=status.HTTP_204_NO_CONTENT)
        return Response(TripleSerializer(found).data)

    @extend_schema(parameters=[DOCUMENT_PARAM], request=None, responses=FinishSerializer)
    @action(detail=True, methods=["post"], url_path=DOCUMENT + "/finish", url_name="finish")
    def finish(self, request, pk=None, document=None):
        """The spec's "Save and go to next file": to review (or done), and the next open
        file's id (null when none is left). `warnings` says what may have been missed
        (sentences left without annotation); the file is finished all the same."""
        found = self.get_document()
        finished = services.finish_document(request.user, found)
        return Response(
            {
                "document": DocumentSerializer(found).data,
                "next": finished.next.pk if finished.next else None,
                "warnings": finished.warnings,
            }
        )

    @extend_schema(
        parameters=[DOCUMENT_PARAM], request=ReviewInputSerializer, responses=DocumentSerializer
    )
    @action(detail=True, methods=["post"], url_path=DOCUMENT + "/review", url_name="review")
    def review(self, request, pk=None, document=None):
        """Pass or fail a submitted file (owners only); a failed one is annotatable again."""
        found = self.get_document()
        values = validated(ReviewInputSerializer, request.data)
        found = services.review(request.user, found, **values)
        return Response(DocumentSerializer(found).data)

    # -- exports ---------------------------------------------------------------------------

    @extend_schema(methods=["GET"], responses=ExportSerializer(many=True))
    @extend_schema(methods=["POST"], request=None, responses={201: ExportSerializer})
    @action(detail=True, methods=["get", "post"])
    def exports(self, request, pk=None):
        """GET: the export history, newest first. POST: export every annotation now
        (annotations.jsonl and triples.csv under the task's storage path)."""
        task = self.get_object()
        if request.method == "GET":
            return self.paged(task.exports.select_related("created_by"), ExportSerializer)
        record = export.export_task(request.user, task)
        return Response(ExportSerializer(record).data, status=status.HTTP_201_CREATED)
