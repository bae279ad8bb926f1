"""Writes and rules of text annotation: tasks and their tags, uploads (the spec's limits,
text extraction, sentence splitting), annotating (spans and triples, by offsets), finishing a
file, review, and who may do what.

Roles follow the project's: developers (and owners) annotate, owners review, viewers read.
An upload is all or nothing: a refused file refuses the upload, recorded in the history with
its reason, and nothing already in the task changes.
"""

import io
import posixpath
import re
import unicodedata
from dataclasses import dataclass

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, connection, transaction
from django.db.models import Max
from django.utils import timezone

from apps.annotation import documents, packages, sandbox, selectors, sentences
from apps.annotation.models import (
    Document,
    DocumentStatus,
    Scenario,
    Sentence,
    Span,
    Tag,
    TagKind,
    Task,
    Triple,
    Upload,
    UploadStatus,
)
from apps.projects.models import Role
from apps.projects.services import require_role
from apps.storage import ownership
from apps.storage import selectors as storage_selectors
from apps.storage import services as storage
from apps.storage.paths import parse_bos_uri
from bml_site.numbers import as_id

TASK_NAME_RULE = re.compile(r"^(?!_)[A-Za-z0-9_]{2,30}(?<!_)$")
TASK_NAME_HELP = "Task names are 2-30 letters, digits and '_', not starting or ending with '_'."
GUIDE_MAGIC = {".pdf": b"%PDF", ".docx": b"PK\x03\x04", ".doc": b"\xd0\xcf\x11\xe0"}
GUIDE_TYPES = tuple(GUIDE_MAGIC)
MAX_GUIDE_BYTES = 20 * 1024 * 1024
MAX_ZIP_BYTES = packages.MAX_PACKAGE_BYTES
TAG_COLORS = ("#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1",
              "#ff9da7", "#9c755f", "#bab0ac")  # fmt: skip
OPEN_STATUSES = (DocumentStatus.TODO, DocumentStatus.ANNOTATING, DocumentStatus.FAILED)


def predicate_kind(task: Task) -> str:
    return TagKind.RELATION if task.scenario == Scenario.RELATION else TagKind.ATTRIBUTE


def object_kind(task: Task) -> str:
    """What the object of a triple is: another entity, or an attribute value."""
    return TagKind.ENTITY if task.scenario == Scenario.RELATION else TagKind.ATTRIBUTE


# -- tasks and tags ----------------------------------------------------------------------


def create_task(
    user,
    project,
    *,
    name: str,
    scenario: str,
    storage_path: str,
    review_required: bool = False,
    entity_types=(),
    predicate_types=(),
    guide: tuple[str, bytes] | None = None,
) -> Task:
    """The spec's "Create annotation task". `predicate_types` are relationship types for an
    entity-relationship task, attribute types for an entity-attribute one."""
    require_role(user, project, Role.DEVELOPER)
    name = (name or "").strip()
    if not TASK_NAME_RULE.match(name):
        raise ValidationError({"name": TASK_NAME_HELP})
    if scenario not in Scenario.values:
        raise ValidationError({"scenario": "Choose entity-relationship or entity-attribute."})
    path = ownership.owned_path(user, project, storage_path, "storage_path", required=True)
    if guide is not None:
        _check_guide(*guide)
    try:
        with transaction.atomic():
            task = Task.objects.create(
                project=project,
                name=name,
                scenario=scenario,
                storage_path=path.rstrip("/") + "/",
                review_required=bool(review_required),
                created_by=user,
            )
            for kind, names in (
                (TagKind.ENTITY, entity_types),
                (predicate_kind(task), predicate_types),
            ):
                for tag_name in _clean_names(names):
                    add_tag(user, task, kind, tag_name)
    except IntegrityError:
        raise ValidationError({"name": f"A task named '{name}' exists in this project."}) from None
    if guide is not None:
        _save_guide(user, task, *guide)  # checked above
    return task


def _clean_names(names) -> list[str]:
    if isinstance(names, str):
        names = re.split(r"[,\n，]", names)
    cleaned = [n.strip() for n in names or () if n and n.strip()]
    return list(dict.fromkeys(cleaned))  # "person, person" is one tag


def _check_guide(name: str, data: bytes) -> None:
    if posixpath.splitext(name.lower())[1] not in GUIDE_TYPES:
        raise ValidationError({"guide": "The task description must be a doc, docx or pdf file."})
    if not data:
        raise ValidationError({"guide": f"{name} is empty."})
    if len(data) > MAX_GUIDE_BYTES:
        raise ValidationError({"guide": f"{name} is over {MAX_GUIDE_BYTES // 2**20} MB."})
    magic = GUIDE_MAGIC[posixpath.splitext(name.lower())[1]]
    if not data.startswith(magic):
        raise ValidationError({"guide": f"{name} is not the kind of file its name says."})
    try:  # read like an uploaded document (sandboxed): a damaged file is refused now
        sandbox.extract_texts([(name, data)])
    except documents.DocumentError as exc:
        raise ValidationError({"guide": str(exc)}) from None


def set_guide(user, task: Task, name: str, data: bytes) -> Task:
    """Store the task description document beside the task's data (annotators open it)."""
    require_role(user, task.project, Role.DEVELOPER)
    _check_guide(name, data)
    return _save_guide(user, task, name, data)


def _save_guide(user, task: Task, name: str, data: bytes) -> Task:
    base = posixpath.basename(name.replace("\\", "/"))
    uri = _store(user, task, f"guide/{base}", data)
    task.guide_uri, task.guide_name = uri, base
    task.save(update_fields=["guide_uri", "guide_name", "updated_at"])
    return task


def _store(user, task: Task, relative: str, data: bytes) -> str:
    path = parse_bos_uri(task.storage_path)
    bucket = storage_selectors.get_bucket(user, path.bucket)
    key = path.key + relative
    storage.upload_object(user, bucket, key, io.BytesIO(data), len(data))
    return f"bos://{path.bucket}/{key}"


def add_tag(user, task: Task, kind: str, name: str, color: str = "", shortcut: str = "") -> Tag:
    require_role(user, task.project, Role.DEVELOPER)
    allowed = (TagKind.ENTITY, predicate_kind(task))
    if kind not in allowed:
        raise ValidationError({"kind": f"This task's tags are {' and '.join(allowed)} types."})
    name = _tag_name(name)
    if Tag.objects.filter(task=task, kind=kind, name=name).exists():
        raise ValidationError({"name": f"The tag '{name}' exists."})
    count = task.tags.count()
    return Tag.objects.create(
        task=task,
        kind=kind,
        name=name,
        color=_color(color) or TAG_COLORS[count % len(TAG_COLORS)],
        shortcut=_shortcut(task, shortcut, None),
    )


def _tag_name(name) -> str:
    """A tag's name as it is shown on every span: 1-50 visible characters."""
    name = (name if isinstance(name, str) else "").strip()
    if not 1 <= len(name) <= 50:
        raise ValidationError({"name": "A tag name is 1-50 characters."})
    if any(unicodedata.category(c) in ("Cc", "Cf") for c in name):
        raise ValidationError({"name": "A tag name may not hold control characters."})
    return name


def _color(value: str) -> str:
    value = (value or "").strip()
    if value and not re.fullmatch(r"#[0-9a-fA-F]{6}", value):
        raise ValidationError({"color": "A color is #rrggbb."})
    return value


def _shortcut(task: Task, key: str, tag: Tag | None) -> str:
    key = (key or "").strip().lower()
    if not key:
        return ""
    if len(key) != 1 or not key.isalnum():
        raise ValidationError({"shortcut": "A shortcut is one letter or digit."})
    taken = task.tags.filter(shortcut=key).exclude(pk=getattr(tag, "pk", None)).first()
    if taken:
        raise ValidationError({"shortcut": f"'{key}' already picks the tag '{taken.name}'."})
    return key


def update_tag(user, tag: Tag, *, name=None, color=None, shortcut=None) -> Tag:
    require_role(user, tag.task.project, Role.DEVELOPER)
    if name is not None:
        name = _tag_name(name)
        clash = Tag.objects.filter(task=tag.task, kind=tag.kind, name=name).exclude(pk=tag.pk)
        if clash.exists():
            raise ValidationError({"name": f"The tag '{name}' exists."})
        tag.name = name
    if color is not None:
        tag.color = _color(color) or tag.color
    if shortcut is not None:
        tag.shortcut = _shortcut(tag.task, shortcut, tag)
    tag.save()
    return tag


def remove_tag(user, tag: Tag) -> None:
    """Refused while annotations use it: removing a tag must not silently drop work."""
    require_role(user, tag.task.project, Role.DEVELOPER)
    used = tag.spans.count() + tag.triples.count()
    if used:
        raise ValidationError(
            {"tag": f"The tag '{tag.name}' is used by {used} annotation(s); remove them first."}
        )
    tag.delete()


def delete_task(user, task: Task) -> None:
    """The task and its annotations go; its files in storage stay (they are the user's)."""
    require_role(user, task.project, Role.DEVELOPER)
    task.delete()


# -- uploads -----------------------------------------------------------------------------


def upload(user, task: Task, files=None, bos_uri: str = "") -> Upload:
    """Add documents from the user's computer (`files`: [(name, bytes)]) or one bos:// file
    (a document or a zip). A refusal is recorded in the upload history, then raised."""
    require_role(user, task.project, Role.DEVELOPER)
    source = bos_uri or "local: " + ", ".join(name for name, _ in files or [])
    try:
        received = _read_bos(user, task.project, bos_uri) if bos_uri else list(files or [])
        found = _unique_names(packages.unpack(received))
        extracted = sandbox.extract_texts(found)
        texts = [(name, data, text) for (name, data), text in zip(found, extracted, strict=True)]
    except (packages.UploadError, documents.DocumentError, ValidationError) as exc:
        message = exc.messages[0] if isinstance(exc, ValidationError) else str(exc)
        Upload.objects.create(
            task=task,
            source=source[:1100],
            status=UploadStatus.FAILED,
            message=message,
            files=[name for name, _ in files or []] or [bos_uri],
            created_by=user,
        )
        raise ValidationError({"files": message}) from None
    with transaction.atomic():
        record = Upload.objects.create(
            task=task,
            source=source[:1100],
            status=UploadStatus.SUCCEEDED,
            files=[name for name, _, _ in texts],
            created_by=user,
        )
        position = (task.documents.aggregate(n=Max("position"))["n"] or 0) + 1
        total = 0
        for offset, (name, _, text) in enumerate(texts):
            total += _add_document(task, record, position + offset, name, text)
        record.documents, record.sentences = len(texts), total
        record.save(update_fields=["documents", "sentences"])
    for name, data, _ in texts:  # the originals beside the task's data, as the spec keeps them
        _store(user, task, f"uploads/{record.pk}/{name}", data)
    return record


def _unique_names(found: list[tuple[str, bytes]]) -> list[tuple[str, bytes]]:
    """Same-named files from different folders of a zip stay apart: "a.txt", "a (2).txt"."""
    seen: dict[str, int] = {}
    unique = []
    for name, data in found:
        seen[name] = seen.get(name, 0) + 1
        if seen[name] > 1:
            stem, ext = posixpath.splitext(name)
            name = f"{stem} ({seen[name]}){ext}"
        unique.append((name, data))
    return unique


def _read_bos(user, project, uri: str) -> list[tuple[str, bytes]]:
    """One document (or zip) from a bucket of the task's own project."""
    owned = ownership.owned_path(user, project, uri, "files", required=True)
    bucket, path = storage_selectors.resolve_path(user, owned, "files")
    if not path.key or path.key.endswith("/"):
        raise ValidationError({"files": "Choose one file (a document or a zip) in storage."})
    try:
        size = storage.stat_object(bucket, path.key).size
    except Exception:
        raise ValidationError({"files": f"{uri} does not exist."}) from None
    name = posixpath.basename(path.key)
    limit = MAX_ZIP_BYTES if name.lower().endswith(".zip") else packages.MAX_FILE_BYTES
    if size > limit:
        raise packages.UploadError(
            f"{name} is {size / 2**20:.1f} MB; the limit is {limit // 2**20} MB per file"
        )
    response = storage.open_object(bucket, path.key)
    try:
        return [(name, response.read(limit + 1))]
    finally:
        response.close()
        response.release_conn()


def _add_document(task: Task, record: Upload, position: int, name: str, text: str) -> int:
    bounds = sentences.split(text)
    document = Document.objects.create(
        task=task, upload=record, name=name[:255], position=position, text=text,
        sentence_count=len(bounds),
    )  # fmt: skip
    # A 2 MB document has ~70,000 sentences: one executemany instead of model instances
    # (bulk_create spends ~15 us a row building them; this is 10x faster).
    table = connection.ops.quote_name(Sentence._meta.db_table)
    columns = ", ".join(
        connection.ops.quote_name(c) for c in ("document_id", "index", "start", "end", "done")
    )
    with connection.cursor() as cursor:
        cursor.executemany(
            f"INSERT INTO {table} ({columns}) VALUES (%s, %s, %s, %s, %s)",
            [(document.pk, i, start, end, False) for i, (start, end) in enumerate(bounds)],
        )
    return len(bounds)


def delete_document(user, document: Document) -> None:
    require_role(user, document.task.project, Role.DEVELOPER)
    document.delete()


# -- annotating --------------------------------------------------------------------------


def _may_annotate(user, document: Document) -> None:
    require_role(user, document.task.project, Role.DEVELOPER)
    if document.status not in OPEN_STATUSES:
        raise ValidationError(
            {"document": f"{document.name} is {document.get_status_display().lower()}; "
             "it can be annotated again after a failed review."}
        )  # fmt: skip


def _started(document: Document) -> None:
    if document.status == DocumentStatus.TODO:
        Document.objects.filter(pk=document.pk).update(status=DocumentStatus.ANNOTATING)
        document.status = DocumentStatus.ANNOTATING


def _tag(task: Task, tag_id, kinds, field: str) -> Tag:
    pk = as_id(tag_id)
    tag = Tag.objects.filter(task=task, pk=pk).first() if pk is not None else None
    if tag is None:
        raise ValidationError({field: "No such tag in this task."})
    if tag.kind not in kinds:
        raise ValidationError({field: f"'{tag.name}' is not a {' or '.join(kinds)} tag."})
    return tag


def add_span(user, document: Document, *, start, end, tag) -> Span:
    """Mark [start, end) of the document's text (offsets, never a search for the words);
    the span must lie inside one sentence."""
    _may_annotate(user, document)
    try:
        start, end = int(start), int(end)
    except (TypeError, ValueError, OverflowError):  # OverflowError: 1e309 is infinity
        raise ValidationError({"start": "start and end are character offsets."}) from None
    if not 0 <= start < end <= len(document.text):
        raise ValidationError({"start": f"[{start}, {end}) is not a stretch of the text."})
    sentence = document.sentences.filter(start__lte=start, end__gte=end).first()
    if sentence is None:
        raise ValidationError({"start": "A span must lie inside one sentence."})
    kinds = (TagKind.ENTITY, object_kind(document.task))
    found = _tag(document.task, getattr(tag, "pk", tag), kinds, "tag")
    span, _ = _get_or_create(
        Span,
        document=document,
        sentence=sentence,
        start=start,
        end=end,
        tag=found,
        defaults={"created_by": user},
    )
    _started(document)
    return span


def remove_span(user, span: Span) -> None:
    """The span and the triples it is part of."""
    _may_annotate(user, span.document)
    with transaction.atomic():
        Triple.objects.filter(subject=span).delete()
        Triple.objects.filter(object=span).delete()
        span.delete()


def add_triple(user, document: Document, *, subject, predicate, object) -> Triple:  # noqa: A002
    """The spec's "entity 1, relationship, entity 2" (or "entity, attribute") submit."""
    _may_annotate(user, document)
    task = document.task
    spans = {s.pk: s for s in document.spans.filter(pk__in=[as_id(subject), as_id(object)])}
    head, tail = spans.get(as_id(subject)), spans.get(as_id(object))
    if head is None or tail is None:
        raise ValidationError({"subject": "Both ends of a triple are spans of this document."})
    if head.tag.kind != TagKind.ENTITY:
        raise ValidationError({"subject": "The first end of a triple is an entity."})
    if tail.tag.kind != object_kind(task):
        what = "an entity" if task.scenario == Scenario.RELATION else "an attribute value"
        raise ValidationError({"object": f"The second end is {what}."})
    if head.pk == tail.pk:
        raise ValidationError({"object": "A triple links two different spans."})
    if head.sentence_id != tail.sentence_id:
        raise ValidationError({"object": "Both ends must be in the same sentence."})
    tag = _tag(task, getattr(predicate, "pk", predicate), (predicate_kind(task),), "predicate")
    triple, _ = _get_or_create(
        Triple,
        document=document,
        sentence_id=head.sentence_id,
        subject=head,
        predicate=tag,
        object=tail,
        defaults={"created_by": user},
    )
    Sentence.objects.filter(pk=head.sentence_id).update(done=True)
    _started(document)
    return triple


def _get_or_create(model, defaults, **key):
    """The same annotation sent twice at once (a double click) is one annotation, not a 500."""
    try:
        with transaction.atomic():
            return model.objects.get_or_create(defaults=defaults, **key)
    except IntegrityError:
        return model.objects.get(**key), False


def remove_triple(user, triple: Triple) -> None:
    _may_annotate(user, triple.document)
    triple.delete()


def mark_sentence(user, sentence: Sentence, done: bool = True) -> Sentence:
    """A sentence checked (done), also one with nothing to annotate."""
    _may_annotate(user, sentence.document)
    sentence.done = bool(done)
    sentence.save(update_fields=["done"])
    _started(sentence.document)
    return sentence


@dataclass
class Finished:
    next: Document | None  # the next open file, if any is left
    warnings: list[str]  # what the annotator may have missed; finishing went ahead


def finish_document(user, document: Document) -> Finished:
    """The spec's "Save and go to next file": to review (or done), and the next open file.
    Sentences left without any annotation are only warned about: a file may well hold
    sentences with nothing to mark."""
    _may_annotate(user, document)
    warnings = []
    if left := selectors.unannotated_count(document):
        total = document.sentence_count
        verb = "has" if left == 1 else "have"
        warnings.append(
            f"{left} of {total} sentences {verb} no annotation (no span, not marked as done)."
        )
    status = DocumentStatus.SUBMITTED if document.task.review_required else DocumentStatus.DONE
    document.status = status
    document.save(update_fields=["status", "updated_at"])
    return Finished(next_open_document(document.task, after=document.position), warnings)


def next_open_document(task: Task, after: int = 0) -> Document | None:
    open_docs = task.documents.filter(status__in=OPEN_STATUSES).order_by("position")
    return open_docs.filter(position__gt=after).first() or open_docs.first()


def review(user, document: Document, *, passed: bool, note: str = "") -> Document:
    """Pass or fail a submitted file (owners review); a failed one goes back to annotation."""
    membership = require_role(user, document.task.project, Role.VIEWER)
    if not membership.allows(Role.OWNER):
        raise PermissionDenied("Reviewing needs the owner role in this project.")
    if not document.task.review_required:
        raise ValidationError({"document": "This task does not need review."})
    if document.status != DocumentStatus.SUBMITTED:
        raise ValidationError({"document": f"{document.name} is not waiting for review."})
    document.status = DocumentStatus.PASSED if passed else DocumentStatus.FAILED
    document.review_note = str(note or "")[:2000]
    document.reviewed_by, document.reviewed_at = user, timezone.now()
    document.save()
    return document
