"""Console views of one document: the annotation page and its small JSON views (one
sentence at a time; the writes are the services of apps.annotation.services, by character
offsets), "Save and go to next file", review, delete."""

import json
from functools import wraps

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Count
from django.http import JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST, require_safe

from apps.annotation import export, selectors, services
from apps.annotation.models import (
    Sentence,
)
from apps.annotation.views import (
    NEARBY,
    errors_by_field,
    role_of,
    task_url,
    writable_task,
)
from apps.projects.models import Role
from apps.projects.services import require_role
from apps.projects.web import report_errors
from bml_site.numbers import as_id


def _tags_json(task) -> list[dict]:
    return [
        {"id": t.pk, "name": t.name, "kind": t.kind, "color": t.color, "shortcut": t.shortcut}
        for t in task.tags.all()
    ]


def sentence_payload(document, sentence) -> dict:
    """One sentence as the annotation page draws it, its neighbours for context, a window of
    the sentence list and the file's progress: never the whole document."""
    text = document.text
    window = list(
        document.sentences.filter(
            index__gte=sentence.index - NEARBY, index__lte=sentence.index + NEARBY
        )
        .annotate(span_count=Count("spans"))
        .order_by("index")
    )
    around = {s.index: s for s in window}

    def brief(found):
        return {"index": found.index, "text": text[found.start : found.end]} if found else None

    return {
        "sentence": selectors.sentence_view(document, sentence),
        "previous": brief(around.get(sentence.index - 1)),
        "next": brief(around.get(sentence.index + 1)),
        "nearby": [
            {
                "index": s.index,
                "snippet": text[s.start : min(s.end, s.start + 60)],
                "done": s.done,
                "spans": s.span_count,
            }
            for s in window
        ],  # fmt: skip
        "progress": {
            "done": document.sentences.filter(done=True).count(),
            "total": document.sentence_count,
            "unannotated": selectors.unannotated_count(document),
        },
        "status": document.status,
        "status_label": document.get_status_display(),
    }


def _first_sentence(document, asked):
    if (index := as_id(asked)) is not None:
        found = document.sentences.filter(index=index).first()
        if found:
            return found
    return (
        document.sentences.filter(done=False).order_by("index").first()
        or document.sentences.order_by("index").first()
    )


@login_required
@require_safe
def document_page(request, pk, document):
    task = selectors.get_task(request.user, pk)
    found = selectors.get_document(task, document)
    role = role_of(request.user, task.project)
    editable = role in (Role.OWNER, Role.DEVELOPER) and found.status in services.OPEN_STATUSES
    sentence = _first_sentence(found, request.GET.get("sentence"))
    urls = {
        name: reverse(f"annotation:{name}", kwargs={"pk": task.pk, "document": found.pk})
        for name in ("spans", "triples")
    }
    base = reverse("annotation:sentence", kwargs={"pk": task.pk, "document": found.pk, "index": 0})
    urls["sentence"] = base[: -len("0/")]
    payload = {
        "scenario": task.scenario,
        "editable": editable,
        "tags": _tags_json(task),
        "predicate_kind": services.predicate_kind(task),
        "object_kind": services.object_kind(task),
        "urls": urls,
        "current": sentence_payload(found, sentence) if sentence else None,
    }
    return render(
        request,
        "annotation/document.html",
        {
            "task": task,
            "document": found,
            "editable": editable,
            "may_write": role in (Role.OWNER, Role.DEVELOPER),
            "payload": payload,
            "current": payload["current"],
            "guide_url": export.download_url(task.guide_uri),
            "tags": payload["tags"],
        },
    )


def json_view(view):
    """The annotation page's JSON: errors as {"errors": {field: [messages]}} with 400 or 403."""

    @wraps(view)
    def wrapped(request, *args, **kwargs):
        try:
            return view(request, *args, **kwargs)
        except ValidationError as exc:
            return JsonResponse({"errors": errors_by_field(exc, ())}, status=400)
        except PermissionDenied as exc:
            message = str(exc) or "Your role in this project does not allow that."
            return JsonResponse({"errors": {"general": [message]}}, status=403)

    return wrapped


def _writable_document(request, pk, document):
    task = writable_task(request, pk)
    return selectors.get_document(task, document)


def _body(request) -> dict:
    if request.content_type == "application/json":
        try:
            data = json.loads(request.body or b"{}")
        except ValueError:
            raise ValidationError("The request body is not JSON.") from None
        return data if isinstance(data, dict) else {}
    return request.POST


def _answer(document, sentence_id, status: int = 200) -> JsonResponse:
    document.refresh_from_db(fields=["status"])
    sentence = Sentence.objects.get(pk=sentence_id)
    return JsonResponse(sentence_payload(document, sentence), status=status)


@login_required
@require_safe
@json_view
def sentence_data(request, pk, document, index):
    task = selectors.get_task(request.user, pk)
    found = selectors.get_document(task, document)
    return JsonResponse(sentence_payload(found, selectors.get_sentence(found, index)))


@login_required
@require_POST
@json_view
def sentence_done(request, pk, document, index):
    found = _writable_document(request, pk, document)
    sentence = selectors.get_sentence(found, index)
    done = str(_body(request).get("done", "true")).lower() not in ("false", "0", "")
    services.mark_sentence(request.user, sentence, done)
    return _answer(found, sentence.pk)


@login_required
@require_POST
@json_view
def span_add(request, pk, document):
    found = _writable_document(request, pk, document)
    data = _body(request)
    span = services.add_span(
        request.user, found, start=data.get("start"), end=data.get("end"), tag=data.get("tag")
    )
    return _answer(found, span.sentence_id, status=201)


@login_required
@require_POST
@json_view
def span_remove(request, pk, document, span):
    found = _writable_document(request, pk, document)
    target = selectors.get_span(found, span)
    sentence_id = target.sentence_id
    services.remove_span(request.user, target)
    return _answer(found, sentence_id)


@login_required
@require_POST
@json_view
def triple_add(request, pk, document):
    found = _writable_document(request, pk, document)
    data = _body(request)
    triple = services.add_triple(
        request.user,
        found,
        subject=data.get("subject"),
        predicate=data.get("predicate"),
        object=data.get("object"),
    )
    return _answer(found, triple.sentence_id, status=201)


@login_required
@require_POST
@json_view
def triple_remove(request, pk, document, triple):
    found = _writable_document(request, pk, document)
    target = selectors.get_triple(found, triple)
    sentence_id = target.sentence_id
    services.remove_triple(request.user, target)
    return _answer(found, sentence_id)


@login_required
@require_POST
def document_finish(request, pk, document):
    """The spec's "Save and go to next file"."""
    found = _writable_document(request, pk, document)
    with report_errors(request):
        finished = services.finish_document(request.user, found)
        following = finished.next
        for warning in finished.warnings:
            messages.warning(request, f"{found.name}: {warning}")
        done = "submitted for review" if found.task.review_required else "annotated"
        if following is None:
            messages.success(request, f"{found.name} {done}. No file is left to annotate.")
            return redirect(task_url(found.task))
        messages.success(request, f"{found.name} {done}. Next file: {following.name}.")
        return redirect("annotation:document", pk=found.task_id, document=following.pk)
    return redirect("annotation:document", pk=found.task_id, document=found.pk)


@login_required
@require_POST
def document_review(request, pk, document):
    task = selectors.get_task(request.user, pk)
    found = selectors.get_document(task, document)
    decision = request.POST.get("decision", "")
    with report_errors(request):
        if decision not in ("pass", "fail"):
            require_role(request.user, task.project, Role.OWNER)
            raise ValidationError("Choose Pass or Fail.")
        services.review(
            request.user, found, passed=decision == "pass", note=request.POST.get("note", "")
        )
        if decision == "pass":
            messages.success(request, f"{found.name} passed review.")
        else:
            messages.success(request, f"{found.name} failed review: it goes back to annotation.")
    return redirect(task_url(task, "review"))


@login_required
@require_POST
def document_delete(request, pk, document):
    found = _writable_document(request, pk, document)
    with report_errors(request):
        services.delete_document(request.user, found)
        messages.success(request, f"{found.name} deleted with its annotations.")
    return redirect(task_url(found.task))
