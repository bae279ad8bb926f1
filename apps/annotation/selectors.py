"""Reads of text annotation, scoped to the requesting user (another project's task is a
404)."""

from django.db.models import Count, Q
from django.http import Http404

from apps.annotation.models import Document, DocumentStatus, Sentence, Span, Tag, Task, Triple


def tasks_for(user, project=None):
    tasks = Task.objects.filter(project__memberships__user=user).select_related("project")
    if project is not None:
        tasks = tasks.filter(project=project)
    return tasks.order_by("-created_at", "-pk")


def _get(queryset, pk, what: str):
    try:
        return queryset.get(pk=int(pk))
    except (queryset.model.DoesNotExist, TypeError, ValueError):
        raise Http404(f"No such {what}.") from None


def get_task(user, pk) -> Task:
    return _get(tasks_for(user), pk, "annotation task")


def get_document(task: Task, pk) -> Document:
    return _get(task.documents.select_related("task"), pk, "document")


def get_tag(task: Task, pk) -> Tag:
    return _get(task.tags.all(), pk, "tag")


def get_span(document: Document, pk) -> Span:
    return _get(document.spans.select_related("tag", "document__task"), pk, "span")


def get_triple(document: Document, pk) -> Triple:
    return _get(document.triples.select_related("document__task"), pk, "triple")


def get_sentence(document: Document, index) -> Sentence:
    try:
        return document.sentences.select_related("document__task").get(index=int(index))
    except (Sentence.DoesNotExist, TypeError, ValueError):
        raise Http404("No such sentence.") from None


def unannotated_count(document: Document) -> int:
    """Sentences with no span that were not checked as done either: nobody has looked at
    them yet (a sentence with nothing to annotate is marked as done)."""
    return document.sentences.filter(done=False).exclude(spans__isnull=False).count()


def progress(task: Task) -> dict:
    """Files by status, sentences done, annotations: the task management figures."""
    by_status = dict(
        task.documents.values_list("status").annotate(n=Count("id")).values_list("status", "n")
    )
    sentences = Sentence.objects.filter(document__task=task).aggregate(
        total=Count("id"), done=Count("id", filter=Q(done=True))
    )
    files = sum(by_status.values())
    finished = sum(
        by_status.get(s, 0)
        for s in (DocumentStatus.SUBMITTED, DocumentStatus.PASSED, DocumentStatus.DONE)
    )
    return {
        "files": files,
        "files_annotated": finished,
        "files_reviewed": by_status.get(DocumentStatus.PASSED, 0)
        + by_status.get(DocumentStatus.FAILED, 0),
        "files_passed": by_status.get(DocumentStatus.PASSED, 0),
        "files_by_status": by_status,
        "sentences": sentences["total"],
        "sentences_done": sentences["done"],
        "spans": Span.objects.filter(document__task=task).count(),
        "triples": Triple.objects.filter(document__task=task).count(),
    }


def sentence_view(document: Document, sentence: Sentence) -> dict:
    """One sentence with its spans and triples, as the annotation page draws it."""
    text = document.text
    spans = [
        {"id": s.pk, "start": s.start, "end": s.end, "text": text[s.start : s.end],
         "tag": s.tag_id, "label": s.tag.name, "kind": s.tag.kind, "color": s.tag.color}
        for s in sentence.spans.select_related("tag")
    ]  # fmt: skip
    triples = [
        {"id": t.pk, "subject": t.subject_id, "predicate": t.predicate_id,
         "label": t.predicate.name, "object": t.object_id}
        for t in sentence.triples.select_related("predicate")
    ]  # fmt: skip
    return {
        "index": sentence.index,
        "start": sentence.start,
        "end": sentence.end,
        "text": text[sentence.start : sentence.end],
        "done": sentence.done,
        "spans": spans,
        "triples": triples,
    }
