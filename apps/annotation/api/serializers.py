"""Input and output shapes of the text-annotation API. Rules live in the services; these
only say what a request carries and what an answer shows."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from apps.annotation import selectors
from apps.annotation.export import download_url
from apps.annotation.models import (
    Document,
    Export,
    Scenario,
    Span,
    Tag,
    TagKind,
    Task,
    Triple,
    Upload,
)


def validated(serializer_class, data) -> dict:
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


# -- input -------------------------------------------------------------------------------


def names_field(help_text: str):
    return serializers.ListField(
        child=serializers.CharField(), required=False, default=list, help_text=help_text
    )


class ProjectInputSerializer(serializers.Serializer):
    project = serializers.IntegerField()


class TaskCreateSerializer(ProjectInputSerializer):
    name = serializers.CharField(
        allow_blank=True, help_text="2-30 letters, digits, '_'; not starting or ending with '_'"
    )
    scenario = serializers.ChoiceField(choices=Scenario.choices)
    storage_path = serializers.CharField(
        allow_blank=True, help_text="bos:// folder of the task's files"
    )
    review_required = serializers.BooleanField(default=False)
    entity_types = names_field("entity tag names")
    relation_types = names_field("relationship tag names (entity-relationship tasks)")
    attribute_types = names_field("attribute tag names (entity-attribute tasks)")
    guide = serializers.FileField(
        required=False, help_text="the task description (doc, docx or pdf; multipart)"
    )


class TagInputSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=TagKind.choices)
    name = serializers.CharField(allow_blank=True, max_length=200)
    color = serializers.CharField(required=False, allow_blank=True, default="")
    shortcut = serializers.CharField(required=False, allow_blank=True, default="")


class TagUpdateSerializer(serializers.Serializer):
    name = serializers.CharField(required=False, allow_blank=True, max_length=200)
    color = serializers.CharField(required=False, allow_blank=True)
    shortcut = serializers.CharField(required=False, allow_blank=True)


class UploadInputSerializer(serializers.Serializer):
    files = serializers.ListField(
        child=serializers.FileField(), required=False, help_text="up to 4 files, or one zip"
    )
    bos_uri = serializers.CharField(
        required=False, allow_blank=True, help_text="or one bos:// file (a document or a zip)"
    )


class SentenceDoneSerializer(serializers.Serializer):
    done = serializers.BooleanField(default=True)


class SpanInputSerializer(serializers.Serializer):
    start = serializers.IntegerField(help_text="offset into the document's text")
    end = serializers.IntegerField(help_text="offset just past the span")
    tag = serializers.IntegerField(help_text="an entity (or attribute) tag of the task")


class TripleInputSerializer(serializers.Serializer):
    subject = serializers.IntegerField(help_text="a span (an entity)")
    predicate = serializers.IntegerField(help_text="a relationship (or attribute) tag")
    object = serializers.IntegerField(help_text="a span (an entity, or an attribute value)")


class ReviewInputSerializer(serializers.Serializer):
    passed = serializers.BooleanField()
    note = serializers.CharField(required=False, allow_blank=True, default="", max_length=2000)


# -- output ------------------------------------------------------------------------------


class TagSerializer(serializers.ModelSerializer):
    class Meta:
        model = Tag
        fields = ["id", "kind", "name", "color", "shortcut"]
        read_only_fields = fields


class TaskSerializer(serializers.ModelSerializer):
    project = serializers.IntegerField(source="project_id", read_only=True)
    tags = TagSerializer(many=True, read_only=True)
    progress = serializers.SerializerMethodField()
    created_by = serializers.CharField(source="created_by.username", default=None)

    class Meta:
        model = Task
        fields = [
            "id",
            "project",
            "name",
            "scenario",
            "storage_path",
            "guide_uri",
            "guide_name",
            "review_required",
            "tags",
            "progress",
            "created_by",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    @extend_schema_field(OpenApiTypes.OBJECT)
    def get_progress(self, task) -> dict:
        return selectors.progress(task)


class UploadSerializer(serializers.ModelSerializer):
    created_by = serializers.CharField(source="created_by.username", default=None)

    class Meta:
        model = Upload
        fields = [
            "id",
            "source",
            "status",
            "message",
            "files",
            "documents",
            "sentences",
            "created_by",
            "created_at",
        ]
        read_only_fields = fields


class DocumentSerializer(serializers.ModelSerializer):
    """A row of the file list; counts come annotated by the view (or are counted here)."""

    sentences_done = serializers.SerializerMethodField()
    spans = serializers.SerializerMethodField()
    triples = serializers.SerializerMethodField()

    class Meta:
        model = Document
        fields = [
            "id",
            "name",
            "position",
            "status",
            "upload",
            "sentence_count",
            "sentences_done",
            "spans",
            "triples",
            "review_note",
            "reviewed_at",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    def get_sentences_done(self, document) -> int:
        found = getattr(document, "done_count", None)
        return document.sentences.filter(done=True).count() if found is None else found

    def get_spans(self, document) -> int:
        found = getattr(document, "span_count", None)
        return document.spans.count() if found is None else found

    def get_triples(self, document) -> int:
        found = getattr(document, "triple_count", None)
        return document.triples.count() if found is None else found


class SentenceBoundsSerializer(serializers.Serializer):
    index = serializers.IntegerField()
    start = serializers.IntegerField()
    end = serializers.IntegerField()
    done = serializers.BooleanField()


class DocumentDetailSerializer(DocumentSerializer):
    sentences = serializers.SerializerMethodField()

    class Meta(DocumentSerializer.Meta):
        fields = [*DocumentSerializer.Meta.fields, "text", "sentences"]
        read_only_fields = fields

    @extend_schema_field(SentenceBoundsSerializer(many=True))
    def get_sentences(self, document) -> list:
        rows = document.sentences.order_by("index").values("index", "start", "end", "done")
        return list(rows)


class SentenceViewSerializer(serializers.Serializer):
    """selectors.sentence_view: one sentence with its spans and triples."""

    index = serializers.IntegerField()
    start = serializers.IntegerField()
    end = serializers.IntegerField()
    text = serializers.CharField()
    done = serializers.BooleanField()
    spans = serializers.ListField(child=serializers.DictField())
    triples = serializers.ListField(child=serializers.DictField())


class SpanSerializer(serializers.ModelSerializer):
    text = serializers.SerializerMethodField()
    sentence = serializers.IntegerField(source="sentence.index", read_only=True)
    label = serializers.CharField(source="tag.name", read_only=True)
    kind = serializers.CharField(source="tag.kind", read_only=True)

    class Meta:
        model = Span
        fields = ["id", "sentence", "start", "end", "text", "tag", "label", "kind"]
        read_only_fields = fields

    def get_text(self, span) -> str:
        return span.document.text[span.start : span.end]


class TripleSerializer(serializers.ModelSerializer):
    sentence = serializers.IntegerField(source="sentence.index", read_only=True)
    label = serializers.CharField(source="predicate.name", read_only=True)
    subject_text = serializers.SerializerMethodField()
    object_text = serializers.SerializerMethodField()

    class Meta:
        model = Triple
        fields = [
            "id",
            "sentence",
            "subject",
            "predicate",
            "object",
            "label",
            "subject_text",
            "object_text",
        ]
        read_only_fields = fields

    def get_subject_text(self, triple) -> str:
        return triple.document.text[triple.subject.start : triple.subject.end]

    def get_object_text(self, triple) -> str:
        return triple.document.text[triple.object.start : triple.object.end]


class FinishSerializer(serializers.Serializer):
    document = DocumentSerializer()
    next = serializers.IntegerField(allow_null=True, help_text="the next open file, or null")
    warnings = serializers.ListField(
        child=serializers.CharField(),
        help_text="what may have been missed, e.g. sentences without annotation (not refused)",
    )


class ExportSerializer(serializers.ModelSerializer):
    counts = serializers.SerializerMethodField()
    jsonl_url = serializers.SerializerMethodField()
    csv_url = serializers.SerializerMethodField()
    created_by = serializers.CharField(source="created_by.username", default=None)

    class Meta:
        model = Export
        fields = [
            "id",
            "status",
            "message",
            "counts",
            "jsonl_uri",
            "csv_uri",
            "jsonl_url",
            "csv_url",
            "seconds",
            "created_by",
            "created_at",
        ]
        read_only_fields = fields

    @extend_schema_field(OpenApiTypes.OBJECT)
    def get_counts(self, export) -> dict:
        return {
            "documents": export.documents,
            "sentences": export.sentences,
            "spans": export.spans,
            "triples": export.triples,
        }

    def get_jsonl_url(self, export) -> str | None:
        return download_url(export.jsonl_uri) if export.jsonl_uri else None

    def get_csv_url(self, export) -> str | None:
        return download_url(export.csv_uri) if export.csv_uri else None
