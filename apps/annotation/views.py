"""Console pages of text annotation (the spec's "Data Annotation"): the task list, the create
form, a task's tabs (data overview, result review, task management, tag management), the
upload form, and the annotation page with its small JSON views (one sentence at a time; the
writes are the services of apps.annotation.services, by character offsets)."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db.models import Count, Q
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from apps.annotation import export, packages, selectors, services
from apps.annotation.models import (
    Document,
    DocumentStatus,
    Scenario,
    Sentence,
    Span,
    TagKind,
    Triple,
)
from apps.projects.models import Membership, Role
from apps.projects.selectors import current_project
from apps.projects.services import require_role
from apps.projects.web import report_errors
from apps.storage import selectors as storage_selectors

PAGE_SIZE = 50
NEARBY = 8  # sentences listed on each side of the current one
REVIEW_FILES = 10  # files a page of the review tab shows
REVIEW_SENTENCES = 100  # annotated sentences shown per file on the review tab
TABS = ("overview", "review", "manage", "tags")
CREATE_FIELDS = ("name", "scenario", "storage_path", "entity_types", "predicate_types", "guide")
MAX_READ_BYTES = 32 * 2**20  # larger files are refused unread
UPLOAD_TYPES = ".txt,.doc,.docx,.pdf,.zip"
GUIDE_TYPES = ".doc,.docx,.pdf"


def errors_by_field(exc: ValidationError, fields=()) -> dict[str, list[str]]:
    """{form field: [messages]}; errors of no field of the form go to "general"."""
    found: dict[str, list[str]] = {}
    items = exc.message_dict.items() if hasattr(exc, "error_dict") else [("", exc.messages)]
    for key, texts in items:
        found.setdefault(key if key in fields else "general", []).extend(texts)
    return found


def role_of(user, project) -> str:
    membership = Membership.objects.filter(project=project, user=user).first()
    return membership.role if membership else ""


def writable_task(request, pk):
    """The task, if the user may change it: 404 for strangers, 403 for viewers."""
    task = selectors.get_task(request.user, pk)
    require_role(request.user, task.project, Role.DEVELOPER)
    return task


def task_url(task, tab: str = "overview") -> str:
    return reverse("annotation:detail", kwargs={"pk": task.pk}) + f"?tab={tab}"


# -- the list ------------------------------------------------------------------------------


def _figures(tasks) -> None:
    """Files, sentences done and review counts of a page of tasks, in two queries."""
    ids = [t.pk for t in tasks]
    by_status: dict[int, dict] = {}
    for row in (
        Document.objects.filter(task__in=ids).values("task", "status").annotate(n=Count("id"))
    ):
        by_status.setdefault(row["task"], {})[row["status"]] = row["n"]
    sentences = {
        row["document__task"]: row
        for row in Sentence.objects.filter(document__task__in=ids)
        .values("document__task")
        .annotate(total=Count("id"), done=Count("id", filter=Q(done=True)))
    }
    for task in tasks:
        statuses = by_status.get(task.pk, {})
        task.files = sum(statuses.values())
        task.waiting = statuses.get(DocumentStatus.SUBMITTED, 0)
        task.passed = statuses.get(DocumentStatus.PASSED, 0)
        task.failed = statuses.get(DocumentStatus.FAILED, 0)
        task.annotated = task.waiting + task.passed + statuses.get(DocumentStatus.DONE, 0)
        counts = sentences.get(task.pk, {"total": 0, "done": 0})
        task.sentences, task.sentences_done = counts["total"], counts["done"]
        task.percent = round(100 * task.sentences_done / task.sentences) if task.sentences else 0


@login_required
@require_safe
def task_list(request):
    project = current_project(request)
    found = selectors.tasks_for(request.user, project) if project else []
    page = Paginator(found, PAGE_SIZE).get_page(request.GET.get("page"))
    _figures(page)
    may_write = bool(project) and role_of(request.user, project) in (Role.OWNER, Role.DEVELOPER)
    return render(
        request,
        "annotation/list.html",
        {"project": project, "page": page, "may_write": may_write},
    )


# -- create --------------------------------------------------------------------------------


def _names(text: str) -> list[str]:
    """Comma or newline separated names, each once (a repeated name is not an error)."""
    names = [n.strip() for n in text.replace("，", ",").replace("\n", ",").split(",")]
    return list(dict.fromkeys(n for n in names if n))


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def task_create(request):
    project = current_project(request)
    if project is not None:  # a viewer is refused the form, not only its submission
        require_role(request.user, project, Role.DEVELOPER)
    buckets = (
        list(storage_selectors.data_buckets_for(request.user, project).order_by("created_at"))
        if project
        else []
    )
    form = {
        "name": "",
        "scenario": Scenario.RELATION,
        "storage_path": f"bos://{buckets[0].name}/annotation/" if buckets else "",
        "entity_types": "",
        "predicate_types": "",
        "review_required": "no",
    }
    errors: dict[str, list[str]] = {}
    if request.method == "POST":
        form = {k: request.POST.get(k, "").strip() for k in form}
        if project is None:
            errors = {"general": ["Create a project first: annotation tasks belong to one."]}
        else:
            guide = request.FILES.get("guide")
            try:
                if form["review_required"] not in ("yes", "no"):
                    raise ValidationError({"review_required": "Choose yes or no."})
                task = services.create_task(
                    request.user,
                    project,
                    name=form["name"],
                    scenario=form["scenario"],
                    storage_path=form["storage_path"],
                    review_required=form["review_required"] == "yes",
                    entity_types=_names(form["entity_types"]),
                    predicate_types=_names(form["predicate_types"]),
                    guide=(guide.name, guide.read(services.MAX_GUIDE_BYTES + 1)) if guide else None,
                )
                messages.success(request, f"Annotation task {task.name} created: upload files.")
                return redirect("annotation:detail", pk=task.pk)
            except ValidationError as exc:
                errors = errors_by_field(exc, (*CREATE_FIELDS, "review_required"))
    return render(
        request,
        "annotation/create.html",
        {
            "project": project,
            "form": form,
            "errors": errors,
            "may_write": bool(project)
            and role_of(request.user, project) in (Role.OWNER, Role.DEVELOPER),
            "buckets": buckets,
            "scenarios": Scenario.choices,
            "name_rule": services.TASK_NAME_HELP,
            "guide_types": GUIDE_TYPES,
        },
    )


# -- a task's tabs -------------------------------------------------------------------------


def _overview(request, task) -> dict:
    page = Paginator(task.documents.defer("text").order_by("position"), PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    ids = [d.pk for d in page]
    done = dict(
        Sentence.objects.filter(document__in=ids, done=True)
        .values("document")
        .annotate(n=Count("id"))
        .values_list("document", "n")
    )
    spans = dict(
        Span.objects.filter(document__in=ids)
        .values("document")
        .annotate(n=Count("id"))
        .values_list("document", "n")
    )
    for document in page:
        document.done = done.get(document.pk, 0)
        document.span_count = spans.get(document.pk, 0)
        document.open = document.status in services.OPEN_STATUSES
    return {"documents": page}


def highlight(text: str, base: int, spans: list[dict]) -> list[dict]:
    """A sentence cut at every span boundary: each piece with the spans over it, each span
    drawn as an underline in its own lane so overlapping spans stay readable (the annotation
    page draws the same in JavaScript)."""
    lanes: list[int] = []  # the end of the last span in each lane
    for span in sorted(spans, key=lambda s: (s["start"], -s["end"])):
        lane = next((i for i, end in enumerate(lanes) if end <= span["start"]), len(lanes))
        lanes[lane : lane + 1] = [span["end"]]
        span["lane"] = lane
    bounds = {0, len(text)}
    for span in spans:
        bounds.update((span["start"] - base, span["end"] - base))
    cuts = sorted(bounds)
    pieces = []
    for a, b in zip(cuts, cuts[1:], strict=False):
        over = [s for s in spans if s["start"] - base <= a and s["end"] - base >= b]
        piece = {"text": text[a:b], "labels": "", "style": ""}
        if over:
            # Lane i is drawn 4i px under the text, whatever the depth of this piece.
            depth = 4 * (max(s["lane"] for s in over) + 1)
            layers = [
                f"linear-gradient({s['color']},{s['color']}) "
                f"0 calc(100% - {depth - 4 * s['lane'] - 4}px)/100% 3px no-repeat"
                for s in over
            ]
            tint = over[0]["color"] + "26"
            layers.append(f"linear-gradient({tint},{tint})")
            piece["style"] = f"background:{','.join(layers)};padding-bottom:{depth}px"
            piece["labels"] = ", ".join(f"{s['label']} ({s['text']})" for s in over)
        pieces.append(piece)
    return pieces


def _review(request, task) -> dict:
    waiting = task.documents.filter(status=DocumentStatus.SUBMITTED).select_related("reviewed_by")
    submitted = Paginator(waiting.order_by("position"), REVIEW_FILES).get_page(
        request.GET.get("page")
    )
    for document in submitted:
        sentences = list(
            document.sentences.annotate(n=Count("spans")).filter(n__gt=0).order_by("index")
        )
        document.annotated_total = len(sentences)
        shown = sentences[:REVIEW_SENTENCES]
        document.more = len(sentences) - len(shown)
        spans: dict[int, list] = {}
        for span in document.spans.filter(sentence__in=shown).select_related("tag"):
            spans.setdefault(span.sentence_id, []).append(
                {"id": span.pk, "start": span.start, "end": span.end, "label": span.tag.name,
                 "color": span.tag.color, "text": document.text[span.start : span.end]}
            )  # fmt: skip
        names = {s["id"]: s["text"] for found in spans.values() for s in found}
        triples: dict[int, list] = {}
        for triple in document.triples.filter(sentence__in=shown).select_related("predicate"):
            triples.setdefault(triple.sentence_id, []).append(
                (names.get(triple.subject_id), triple.predicate.name, names.get(triple.object_id))
            )
        document.review_sentences = [
            {
                "index": s.index,
                "pieces": highlight(document.text[s.start : s.end], s.start, spans.get(s.pk, [])),
                "triples": triples.get(s.pk, []),
            }
            for s in shown
        ]
    reviewed = task.documents.filter(
        status__in=(DocumentStatus.PASSED, DocumentStatus.FAILED)
    ).select_related("reviewed_by")
    return {
        "submitted": submitted,
        "reviewed": reviewed.defer("text").order_by("-reviewed_at")[:PAGE_SIZE],
        "may_review": role_of(request.user, task.project) == Role.OWNER,
    }


def _manage(request, task) -> dict:
    uploads = list(task.uploads.select_related("created_by")[:PAGE_SIZE])
    exports = list(task.exports.select_related("created_by")[:PAGE_SIZE])
    for record in exports:
        record.jsonl_url = export.download_url(record.jsonl_uri)
        record.csv_url = export.download_url(record.csv_uri)
    return {
        "uploads": uploads,
        "exports": exports,
        "guide_url": export.download_url(task.guide_uri),
        "guide_types": GUIDE_TYPES,
    }


def _tags(request, task) -> dict:
    used = {
        row["tag"]: row["n"]
        for row in Span.objects.filter(tag__task=task).values("tag").annotate(n=Count("id"))
    }
    for row in (
        Triple.objects.filter(predicate__task=task).values("predicate").annotate(n=Count("id"))
    ):
        used[row["predicate"]] = used.get(row["predicate"], 0) + row["n"]
    tags = list(task.tags.all())
    for tag in tags:
        tag.used = used.get(tag.pk, 0)
    predicate = services.predicate_kind(task)
    return {
        "next_color": services.TAG_COLORS[len(tags) % len(services.TAG_COLORS)],
        "tag_groups": [
            (TagKind.ENTITY, TagKind.ENTITY.label, [t for t in tags if t.kind == TagKind.ENTITY]),
            (predicate, TagKind(predicate).label, [t for t in tags if t.kind == predicate]),
        ],
    }


def progress_bars(figures: dict) -> list[dict]:
    def bar(label, value, total):
        percent = round(100 * value / total) if total else 0
        return {"label": label, "value": value, "total": total, "percent": percent}

    return [
        bar("Files annotated", figures["files_annotated"], figures["files"]),
        bar("Files reviewed", figures["files_reviewed"], figures["files"]),
        bar("Files passed", figures["files_passed"], figures["files"]),
        bar("Sentences done", figures["sentences_done"], figures["sentences"]),
    ]


@login_required
@require_safe
def task_detail(request, pk):
    task = selectors.get_task(request.user, pk)
    tab = request.GET.get("tab", "overview")
    if tab not in TABS or (tab == "review" and not task.review_required):
        tab = "overview"
    role = role_of(request.user, task.project)
    figures = selectors.progress(task)
    context = {
        "task": task,
        "tab": tab,
        "may_write": role in (Role.OWNER, Role.DEVELOPER),
        "progress": figures,
        "bars": progress_bars(figures),
        "waiting": figures["files_by_status"].get(DocumentStatus.SUBMITTED, 0),
    }
    context.update({"overview": _overview, "review": _review, "manage": _manage, "tags": _tags}[
        tab
    ](request, task))  # fmt: skip
    return render(request, "annotation/detail.html", context)


@login_required
@require_safe
def task_annotate(request, pk):
    """The "Manual annotation" tab: the next file to annotate."""
    task = selectors.get_task(request.user, pk)
    document = services.next_open_document(task)
    if document is None:
        if task.documents.exists():
            messages.info(request, "Every file is annotated: none is waiting for annotation.")
        else:
            messages.info(request, "No file is waiting for annotation: upload files first.")
        return redirect(task_url(task))
    return redirect("annotation:document", pk=task.pk, document=document.pk)


@login_required
@require_POST
def task_delete(request, pk):
    task = writable_task(request, pk)
    with report_errors(request):
        services.delete_task(request.user, task)
        messages.success(request, f"Annotation task {task.name} deleted.")
        return redirect("annotation:list")
    return redirect(task_url(task))


@login_required
@require_POST
def task_export(request, pk):
    task = writable_task(request, pk)
    with report_errors(request):
        record = export.export_task(request.user, task)
        messages.success(
            request,
            f"Exported {record.sentences} sentences, {record.spans} spans and "
            f"{record.triples} triples to {record.jsonl_uri}.",
        )
    return redirect(task_url(task, "manage") + "#exports")


@login_required
@require_POST
def task_guide(request, pk):
    task = writable_task(request, pk)
    guide = request.FILES.get("guide")
    with report_errors(request):
        if guide is None:
            raise ValidationError({"guide": "Choose a doc, docx or pdf file."})
        services.set_guide(request.user, task, guide.name, guide.read(services.MAX_GUIDE_BYTES + 1))
        messages.success(request, f"Task description {task.guide_name} saved.")
    return redirect(task_url(task, "manage"))


# -- uploads -------------------------------------------------------------------------------


def _received(files) -> list[tuple[str, bytes]]:
    """The uploaded files' bytes. The service judges them (and records a refusal); only a
    file far past every limit is refused here, before it is read into memory."""
    for f in files:
        if f.size > MAX_READ_BYTES:
            raise ValidationError(
                {"files": f"{f.name} is {f.size / 2**20:.1f} MB; the limit is "
                 f"{packages.MAX_FILE_BYTES // 2**20} MB per file."}
            )  # fmt: skip
    return [(f.name, f.read()) for f in files]


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def task_upload(request, pk):
    task = selectors.get_task(request.user, pk)
    role = role_of(request.user, task.project)
    form = {"source": request.POST.get("source", "local"), "bos_uri": ""}
    errors: dict[str, list[str]] = {}
    if request.method == "POST":
        require_role(request.user, task.project, Role.DEVELOPER)
        form["bos_uri"] = request.POST.get("bos_uri", "").strip()
        files = request.FILES.getlist("files")
        try:
            if form["source"] == "bos":
                if not form["bos_uri"]:
                    raise ValidationError({"bos_uri": "Enter the bos:// path of a file."})
                record = services.upload(request.user, task, bos_uri=form["bos_uri"])
            else:
                if not files:
                    raise ValidationError({"files": "Choose the files to upload."})
                record = services.upload(request.user, task, files=_received(files))
            messages.success(
                request,
                f"Uploaded {record.documents} file{'s' if record.documents != 1 else ''} "
                f"({record.sentences} sentences).",
            )
            return redirect(task_url(task))
        except ValidationError as exc:
            errors = errors_by_field(exc, ("files", "bos_uri"))
    buckets = storage_selectors.data_buckets_for(request.user, task.project)
    return render(
        request,
        "annotation/upload.html",
        {
            "task": task,
            "form": form,
            "errors": errors,
            "may_write": role in (Role.OWNER, Role.DEVELOPER),
            "max_files": packages.MAX_FILES,
            "max_file_mb": packages.MAX_FILE_BYTES // 2**20,
            "accept": UPLOAD_TYPES,
            "buckets": buckets,
        },
    )


# -- tags ----------------------------------------------------------------------------------


@login_required
@require_POST
def tag_add(request, pk):
    task = writable_task(request, pk)
    post = request.POST
    with report_errors(request):
        tag = services.add_tag(
            request.user,
            task,
            post.get("kind", ""),
            post.get("name", ""),
            color=post.get("color", ""),
            shortcut=post.get("shortcut", ""),
        )
        messages.success(request, f"Tag {tag.name} added.")
    return redirect(task_url(task, "tags"))


@login_required
@require_POST
def tag_update(request, pk, tag):
    task = writable_task(request, pk)
    found = selectors.get_tag(task, tag)
    post = request.POST
    with report_errors(request):
        services.update_tag(
            request.user,
            found,
            name=post.get("name"),
            color=post.get("color"),
            shortcut=post.get("shortcut"),
        )
        messages.success(request, f"Tag {found.name} saved.")
    return redirect(task_url(task, "tags"))


@login_required
@require_POST
def tag_remove(request, pk, tag):
    task = writable_task(request, pk)
    found = selectors.get_tag(task, tag)
    with report_errors(request):
        services.remove_tag(request.user, found)
        messages.success(request, f"Tag {found.name} removed.")
    return redirect(task_url(task, "tags"))
