"""Text annotation (the spec's "Data Annotation"): entity-relationship and entity-attribute
tasks. A task's documents are split into sentences (offsets into the document's text);
annotators mark spans (entities, attribute values) and link them into triples (subject,
relation or attribute type, object); reviewers pass or fail whole documents.

Every position is a character offset into Document.text (Python str indices), so
overlapping spans and repeated words are told apart by where they are, never by searching.
"""

from django.conf import settings
from django.db import models

from apps.projects.models import Project


class Scenario(models.TextChoices):
    RELATION = "relation", "Entity-relationship"
    ATTRIBUTE = "attribute", "Entity-attribute"


class Task(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="annotation_tasks")
    name = models.CharField(max_length=30)
    scenario = models.CharField(max_length=16, choices=Scenario.choices)
    storage_path = models.CharField(max_length=1100, help_text="bos:// folder of its files")
    guide_uri = models.CharField(
        max_length=1100, blank=True, help_text="the task description document (doc/docx/pdf)"
    )
    guide_name = models.CharField(max_length=255, blank=True)
    review_required = models.BooleanField(default=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.UniqueConstraint(fields=["project", "name"], name="annotation_task_name")
        ]

    def __str__(self):
        return self.name


class TagKind(models.TextChoices):
    ENTITY = "entity", "Entity type"
    RELATION = "relation", "Relationship type"
    ATTRIBUTE = "attribute", "Attribute type"


class Tag(models.Model):
    task = models.ForeignKey(Task, on_delete=models.CASCADE, related_name="tags")
    kind = models.CharField(max_length=16, choices=TagKind.choices)
    name = models.CharField(max_length=50)
    color = models.CharField(max_length=7, default="#4e79a7")
    shortcut = models.CharField(max_length=1, blank=True, help_text="a key that picks it")

    class Meta:
        ordering = ["task", "kind", "pk"]
        constraints = [
            models.UniqueConstraint(fields=["task", "kind", "name"], name="one_tag_name")
        ]

    def __str__(self):
        return f"{self.get_kind_display()}: {self.name}"


class UploadStatus(models.TextChoices):
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"


class Upload(models.Model):
    """One upload (the spec's upload history): up to 4 files, or a zip of them."""

    task = models.ForeignKey(Task, on_delete=models.CASCADE, related_name="uploads")
    source = models.CharField(max_length=1100)
    status = models.CharField(max_length=16, choices=UploadStatus.choices)
    message = models.TextField(blank=True)
    files = models.JSONField(default=list)
    documents = models.PositiveIntegerField(default=0)
    sentences = models.PositiveIntegerField(default=0)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self):
        return f"{self.task.name} upload {self.pk}"


class DocumentStatus(models.TextChoices):
    TODO = "todo", "Not annotated"
    ANNOTATING = "annotating", "Annotating"
    SUBMITTED = "submitted", "Waiting for review"
    FAILED = "failed", "Failed review"
    PASSED = "passed", "Passed"
    DONE = "done", "Annotated"  # finished, in a task without review


class Document(models.Model):
    task = models.ForeignKey(Task, on_delete=models.CASCADE, related_name="documents")
    upload = models.ForeignKey(Upload, on_delete=models.SET_NULL, null=True, blank=True)
    name = models.CharField(max_length=255)
    position = models.PositiveIntegerField(help_text="order within the task")
    text = models.TextField()
    sentence_count = models.PositiveIntegerField(default=0)
    status = models.CharField(
        max_length=16, choices=DocumentStatus.choices, default=DocumentStatus.TODO
    )
    review_note = models.TextField(blank=True)
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    reviewed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["task", "position"]
        constraints = [
            models.UniqueConstraint(fields=["task", "position"], name="one_document_position")
        ]
        indexes = [models.Index(fields=["task", "status"])]

    def __str__(self):
        return self.name


class Sentence(models.Model):
    document = models.ForeignKey(Document, on_delete=models.CASCADE, related_name="sentences")
    index = models.PositiveIntegerField()
    start = models.PositiveIntegerField()
    end = models.PositiveIntegerField()
    done = models.BooleanField(default=False, help_text="its annotations were submitted")

    class Meta:
        ordering = ["document", "index"]
        constraints = [
            models.UniqueConstraint(fields=["document", "index"], name="one_sentence_index")
        ]

    def __str__(self):
        return f"{self.document} #{self.index}"


class Span(models.Model):
    """A marked stretch of a sentence: an entity, or (entity-attribute) an attribute value."""

    document = models.ForeignKey(Document, on_delete=models.CASCADE, related_name="spans")
    sentence = models.ForeignKey(Sentence, on_delete=models.CASCADE, related_name="spans")
    start = models.PositiveIntegerField(help_text="offset into the document's text")
    end = models.PositiveIntegerField()
    tag = models.ForeignKey(Tag, on_delete=models.CASCADE, related_name="spans")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["document", "start", "end", "pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["sentence", "start", "end", "tag"], name="one_span_per_place_and_tag"
            )
        ]

    def __str__(self):
        return f"{self.tag.name} [{self.start}:{self.end}]"


class Triple(models.Model):
    """Subject span, relation (or attribute type) tag, object span, within one sentence."""

    document = models.ForeignKey(Document, on_delete=models.CASCADE, related_name="triples")
    sentence = models.ForeignKey(Sentence, on_delete=models.CASCADE, related_name="triples")
    subject = models.ForeignKey(Span, on_delete=models.CASCADE, related_name="+")
    predicate = models.ForeignKey(Tag, on_delete=models.CASCADE, related_name="triples")
    object = models.ForeignKey(Span, on_delete=models.CASCADE, related_name="+")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["document", "sentence", "pk"]
        constraints = [
            models.UniqueConstraint(fields=["subject", "predicate", "object"], name="one_triple")
        ]

    def __str__(self):
        return f"({self.subject_id}, {self.predicate.name}, {self.object_id})"


class Export(models.Model):
    task = models.ForeignKey(Task, on_delete=models.CASCADE, related_name="exports")
    status = models.CharField(max_length=16, choices=UploadStatus.choices)
    message = models.TextField(blank=True)
    jsonl_uri = models.CharField(max_length=1100, blank=True)
    csv_uri = models.CharField(max_length=1100, blank=True)
    documents = models.PositiveIntegerField(default=0)
    sentences = models.PositiveIntegerField(default=0)
    spans = models.PositiveIntegerField(default=0)
    triples = models.PositiveIntegerField(default=0)
    seconds = models.FloatField(default=0)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self):
        return f"{self.task.name} export {self.pk}"
