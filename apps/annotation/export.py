"""Export of a task's annotations, streamed with bounded memory (one document at a time, to
temporary files, then into the task's storage path):

- annotations.jsonl: one sentence per line: {"document", "document_id", "sentence",
  "start", "end", "text", "spans": [{"id", "start", "end", "text", "label", "kind",
  "sentence_start", "sentence_end"}], "triples": [{"subject", "predicate", "object",
  "subject_text", "object_text"}]}; start/end are offsets into the document's text,
  sentence_start/sentence_end into the sentence's own text, so either slices to exactly the
  annotated words.
- triples.csv: one triple per row with both ends' text, labels and offsets, the shape an
  information-extraction training job reads.

Sentences without annotations are exported too (marked by empty lists): a model learns
from what has no entity as well.
"""

import csv
import json
import tempfile
import time
from pathlib import Path

from django.db import transaction

from apps.annotation.models import Export, Task, UploadStatus
from apps.projects.models import Role
from apps.projects.services import require_role
from apps.storage import selectors as storage_selectors
from apps.storage import services as storage
from apps.storage.paths import parse_bos_uri

CSV_HEADER = [
    "document", "sentence", "subject", "subject_label", "subject_start", "subject_end",
    "predicate", "object", "object_label", "object_start", "object_end",
]  # fmt: skip


def export_task(user, task: Task) -> Export:
    require_role(user, task.project, Role.DEVELOPER)
    started = time.monotonic()
    counts = {"documents": 0, "sentences": 0, "spans": 0, "triples": 0}
    with tempfile.TemporaryDirectory(prefix="bml-export-") as tmp:
        jsonl_path, csv_path = Path(tmp) / "annotations.jsonl", Path(tmp) / "triples.csv"
        with (
            jsonl_path.open("w", encoding="utf-8") as jsonl,
            csv_path.open("w", encoding="utf-8-sig", newline="") as table,
        ):
            rows = csv.writer(table)
            rows.writerow(CSV_HEADER)
            for document in task.documents.order_by("position").only("pk", "name", "text"):
                write_document(document, jsonl, rows, counts)
        with transaction.atomic():
            record = Export.objects.create(
                task=task, status=UploadStatus.SUCCEEDED, created_by=user, **counts
            )
        folder = f"exports/{record.pk}/"
        record.jsonl_uri = _put(user, task, folder + jsonl_path.name, jsonl_path)
        record.csv_uri = _put(user, task, folder + csv_path.name, csv_path)
    record.seconds = round(time.monotonic() - started, 3)
    record.save(update_fields=["jsonl_uri", "csv_uri", "seconds"])
    return record


def write_document(document, jsonl, rows, counts: dict) -> None:
    text, name = document.text, document.name
    spans_by_sentence: dict[int, list] = {}
    spans = {}
    for span in document.spans.values(
        "pk", "sentence_id", "start", "end", "tag__name", "tag__kind"
    ).order_by("start", "end", "pk"):
        spans[span["pk"]] = span
        spans_by_sentence.setdefault(span["sentence_id"], []).append(span)
    triples_by_sentence: dict[int, list] = {}
    for triple in document.triples.values(
        "sentence_id", "subject_id", "predicate__name", "object_id"
    ).order_by("pk"):
        triples_by_sentence.setdefault(triple["sentence_id"], []).append(triple)
    counts["documents"] += 1
    for sentence in document.sentences.values("pk", "index", "start", "end").order_by("index"):
        base = sentence["start"]
        line_spans = [
            {"id": s["pk"], "start": s["start"], "end": s["end"],
             "text": text[s["start"] : s["end"]], "label": s["tag__name"],
             "kind": s["tag__kind"], "sentence_start": s["start"] - base,
             "sentence_end": s["end"] - base}
            for s in spans_by_sentence.get(sentence["pk"], ())
        ]  # fmt: skip
        line_triples = []
        for t in triples_by_sentence.get(sentence["pk"], ()):
            head, tail = spans[t["subject_id"]], spans[t["object_id"]]
            head_text, tail_text = (
                text[head["start"] : head["end"]],
                text[tail["start"] : tail["end"]],
            )
            line_triples.append(
                {"subject": t["subject_id"], "predicate": t["predicate__name"],
                 "object": t["object_id"], "subject_text": head_text, "object_text": tail_text}
            )  # fmt: skip
            rows.writerow(
                [name, sentence["index"], head_text, head["tag__name"], head["start"],
                 head["end"], t["predicate__name"], tail_text, tail["tag__name"],
                 tail["start"], tail["end"]]
            )  # fmt: skip
        jsonl.write(
            json.dumps(
                {
                    "document": name,
                    "document_id": document.pk,
                    "sentence": sentence["index"],
                    "start": base,
                    "end": sentence["end"],
                    "text": text[base : sentence["end"]],
                    "spans": line_spans,
                    "triples": line_triples,
                },
                ensure_ascii=False,
            )  # fmt: skip
            + "\n"
        )
        counts["sentences"] += 1
        counts["spans"] += len(line_spans)
        counts["triples"] += len(line_triples)


def _put(user, task: Task, relative: str, local: Path) -> str:
    path = parse_bos_uri(task.storage_path)
    bucket = storage_selectors.get_bucket(user, path.bucket)
    key = path.key + relative
    with local.open("rb") as fh:
        storage.upload_object(user, bucket, key, fh, local.stat().st_size)
    return f"bos://{path.bucket}/{key}"


def download_url(uri: str) -> str:
    """The console's streamed download link of a stored file ("" for no file)."""
    from django.urls import reverse

    if not uri:
        return ""
    path = parse_bos_uri(uri)
    return reverse("storage:download", kwargs={"name": path.bucket, "key": path.key})
