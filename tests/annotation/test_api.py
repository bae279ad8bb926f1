"""The text-annotation API as a user drives it: a relationship task and its tags, uploads
(local and from storage, with the spec's limits), annotating by character offsets, finishing
and review, export, and who may see and do what."""

import csv
import io
import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from apps.annotation.models import Document, Span, Task, Triple, Upload
from apps.projects import services as projects
from apps.projects.models import Project, Role
from apps.storage import selectors as storage_selectors
from apps.storage import services as storage
from tests.annotation.conftest import (
    DOCX_PARAGRAPHS,
    PDF_LINES,
    STORAGE_PATH,
    TXT_TEXT,
    docx_bytes,
    pdf_bytes,
    tag_of,
    txt_bytes,
    upload_txt,
    zip_bytes,
)
from tests.conftest import read_body

API = "/api/v1/annotation-tasks/"


@pytest.fixture
def api(owner, api_client_for):
    return api_client_for(owner)


def url(task, tail=""):
    return f"{API}{task.pk}/{tail}"


def doc_url(document, tail=""):
    return f"{API}{document.task_id}/documents/{document.pk}/{tail}"


def task_body(project, **overrides):
    return {
        "project": project.pk,
        "name": "people_ties",
        "scenario": "relation",
        "storage_path": STORAGE_PATH,
        "review_required": True,
        "entity_types": ["person", "company"],
        "relation_types": ["father-child", "husband-wife"],
        **overrides,
    }


def files(*pairs):
    return {"files": [SimpleUploadedFile(name, data) for name, data in pairs]}


def span(api, document, word, occurrence=0, tag=None):
    """Mark the n-th occurrence of `word` in the document's text (found here by the test,
    sent as offsets)."""
    start = -1
    for _ in range(occurrence + 1):
        start = document.text.index(word, start + 1)
    tag = tag or tag_of(document.task, "person")
    response = api.post(
        doc_url(document, "spans/"),
        {"start": start, "end": start + len(word), "tag": tag.pk},
        format="json",
    )
    assert response.status_code == 201, response.json()
    return response.json()


# -- tasks and tags ----------------------------------------------------------------------


def test_create_a_relationship_task_with_its_tags(api, project, bucket):
    response = api.post(API, task_body(project), format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["scenario"] == "relation" and body["review_required"] is True
    assert body["storage_path"] == STORAGE_PATH and body["guide_uri"] == ""
    assert {(t["kind"], t["name"]) for t in body["tags"]} == {
        ("entity", "person"),
        ("entity", "company"),
        ("relation", "father-child"),
        ("relation", "husband-wife"),
    }
    assert body["progress"]["files"] == 0 and body["progress"]["sentences"] == 0

    listed = api.get(API, {"project": project.pk}).json()
    assert [t["name"] for t in listed["results"]] == ["people_ties"]
    assert api.get(url(Task.objects.get(pk=body["id"]))).json()["name"] == "people_ties"


@pytest.mark.parametrize("name", ["_bad", "bad_", "a", "x" * 31, "with space", ""])
def test_task_name_rule_errors_name_the_field(api, project, bucket, name):
    response = api.post(API, task_body(project, name=name), format="json")
    assert response.status_code == 400
    assert "name" in response.json()
    assert not Task.objects.exists()


def test_a_task_name_is_unique_in_its_project(api, project, bucket):
    assert api.post(API, task_body(project), format="json").status_code == 201
    again = api.post(API, task_body(project), format="json")
    assert again.status_code == 400 and "exists" in again.json()["name"][0]


def test_storage_path_must_be_a_bucket_of_the_tasks_project(api, owner, project, bucket, make_user):
    stranger = make_user()
    theirs = storage.create_bucket(stranger, Project.objects.get(owner=stranger), "someone-elses")
    response = api.post(
        API, task_body(project, storage_path=f"bos://{theirs.name}/x/"), format="json"
    )
    assert response.status_code == 400 and "storage_path" in response.json()
    second = storage.create_bucket(owner, projects.create_project(owner, "second"), "second-data")
    response = api.post(
        API, task_body(project, storage_path=f"bos://{second.name}/x/"), format="json"
    )
    assert response.status_code == 400
    assert "another project" in response.json()["storage_path"][0]
    assert not Task.objects.exists()


def test_create_with_a_guide_document_by_multipart(api, owner, project, bucket):
    body = task_body(project, scenario="attribute", relation_types=[])
    body["attribute_types"] = ["career", "nationality"]
    body["guide"] = SimpleUploadedFile("rules.docx", docx_bytes(["Mark every person."]))
    response = api.post(API, body, format="multipart")
    assert response.status_code == 201, response.json()
    task = Task.objects.get(pk=response.json()["id"])
    assert task.guide_name == "rules.docx"
    assert response.json()["guide_uri"] == f"{STORAGE_PATH}guide/rules.docx"
    assert {t.name for t in task.tags.filter(kind="attribute")} == {"career", "nationality"}
    bucket_obj = storage_selectors.get_bucket(owner, bucket.name)
    assert storage.stat_object(bucket_obj, "tasks/guide/rules.docx").size > 0

    body["name"], body["guide"] = "second_task", SimpleUploadedFile("rules.exe", b"MZ\x90")
    refused = api.post(API, body, format="multipart")
    assert refused.status_code == 400 and "guide" in refused.json()
    # A corrupt PDF (the right header, nothing readable) is refused like an upload would be.
    corrupt = b"%PDF-1.7\n1 0 obj <</Type /Catalog /Pages 9 0 R>> garbage\n%%EOF\n"
    body["guide"] = SimpleUploadedFile("rules.pdf", corrupt)
    refused = api.post(API, body, format="multipart")
    assert refused.status_code == 400, refused.json()
    assert "rules.pdf is incomplete or damaged" in refused.json()["guide"][0]
    assert not Task.objects.filter(name="second_task").exists()


def test_tags_add_list_edit_and_remove(api, task):
    response = api.post(url(task, "tags/"), {"kind": "entity", "name": "company"}, format="json")
    assert response.status_code == 201, response.json()
    company = response.json()
    assert company["color"].startswith("#")

    twice = api.post(url(task, "tags/"), {"kind": "entity", "name": "company"}, format="json")
    assert twice.status_code == 400 and "exists" in twice.json()["name"][0]
    wrong_kind = api.post(url(task, "tags/"), {"kind": "attribute", "name": "x"}, format="json")
    assert wrong_kind.status_code == 400 and "kind" in wrong_kind.json()
    for hidden in ("a\x01b", "tab\there", "zero\u200bwidth"):
        response = api.post(url(task, "tags/"), {"kind": "entity", "name": hidden}, format="json")
        assert response.status_code == 400 and "control" in response.json()["name"][0], hidden

    edited = api.patch(
        url(task, f"tags/{company['id']}/"),
        {"name": "firm", "color": "#112233", "shortcut": "F"},
        format="json",
    )
    assert edited.status_code == 200, edited.json()
    assert (edited.json()["name"], edited.json()["color"], edited.json()["shortcut"]) == (
        "firm",
        "#112233",
        "f",
    )
    clash = api.patch(url(task, f"tags/{company['id']}/"), {"name": "person"}, format="json")
    assert clash.status_code == 400 and "name" in clash.json()
    bad_color = api.patch(url(task, f"tags/{company['id']}/"), {"color": "red"}, format="json")
    assert bad_color.status_code == 400 and "color" in bad_color.json()

    names = [t["name"] for t in api.get(url(task, "tags/")).json()]
    assert sorted(names) == ["city", "firm", "person", "spouse"]
    assert api.delete(url(task, f"tags/{company['id']}/")).status_code == 204
    assert api.get(url(task, f"tags/{company['id']}/")).status_code == 404


def test_a_tag_in_use_is_not_removed(api, owner, task):
    document = upload_txt(owner, task)
    person = tag_of(task, "person")
    span(api, document, "Alice")
    response = api.delete(url(task, f"tags/{person.pk}/"))
    assert response.status_code == 400 and "tag" in response.json()
    assert task.tags.filter(pk=person.pk).exists() and Span.objects.count() == 1


# -- uploads -----------------------------------------------------------------------------


def test_upload_docx_and_pdf_into_documents_and_sentences(api, task):
    response = api.post(
        url(task, "uploads/"),
        files(("family.docx", docx_bytes()), ("curie.pdf", pdf_bytes())),
        format="multipart",
    )
    assert response.status_code == 201, response.json()
    record = response.json()
    assert record["status"] == "succeeded" and record["documents"] == 2
    assert record["files"] == ["family.docx", "curie.pdf"]

    listed = api.get(url(task, "documents/")).json()
    assert [d["name"] for d in listed["results"]] == ["family.docx", "curie.pdf"]
    assert all(d["status"] == "todo" and d["sentence_count"] >= 2 for d in listed["results"])
    assert record["sentences"] == sum(d["sentence_count"] for d in listed["results"])

    for row, expected in zip(listed["results"], (DOCX_PARAGRAPHS, PDF_LINES), strict=True):
        detail = api.get(doc_url(Document.objects.get(pk=row["id"]))).json()
        text = detail["text"]
        pieces = [text[s["start"] : s["end"]] for s in detail["sentences"]]
        assert [s["index"] for s in detail["sentences"]] == list(range(len(pieces)))
        for sentence in expected:  # each written sentence is one sentence, at its offsets
            assert sentence in pieces, (sentence, pieces)
        one = api.get(doc_url(Document.objects.get(pk=row["id"]), "sentences/0/")).json()
        assert one["text"] == pieces[0] and one["spans"] == [] and one["done"] is False

    history = api.get(url(task, "uploads/")).json()["results"]
    assert [(h["status"], h["documents"]) for h in history] == [("succeeded", 2)]
    assert api.get(url(task)).json()["progress"]["files"] == 2


def test_bad_uploads_are_refused_and_lose_nothing(api, owner, task):
    document = upload_txt(owner, task)
    alice = span(api, document, "Alice")
    exe = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00" + bytes(200)
    bad = {
        "five files": files(*[(f"f{i}.txt", b"Hello there.") for i in range(5)]),
        "3 MB": files(("big.txt", b"Word. " * (3 * 2**20 // 6))),
        "exe": files(("report.pdf", exe)),
        "zip slip": files(("pack.zip", zip_bytes({"../evil.txt": b"Escape."}))),
    }
    for what, body in bad.items():
        response = api.post(url(task, "uploads/"), body, format="multipart")
        assert response.status_code == 400, (what, response.json())
        assert list(response.json()) == ["files"], (what, response.json())
        assert response.json()["files"][0], what

    messages = {
        what: Upload.objects.filter(status="failed").order_by("pk")[i].message
        for i, what in enumerate(bad)
    }
    assert "4" in messages["five files"]
    assert "big.txt" in messages["3 MB"] and "2" in messages["3 MB"]
    assert "report.pdf" in messages["exe"]
    assert ".." in messages["zip slip"] or "outside" in messages["zip slip"].lower()

    history = api.get(url(task, "uploads/")).json()["results"]
    assert [h["status"] for h in history] == ["failed"] * 4 + ["succeeded"]
    assert history[0]["message"] == messages["zip slip"]
    # Nothing already annotated is lost.
    assert list(task.documents.values_list("pk", flat=True)) == [document.pk]
    assert api.get(doc_url(document, f"spans/{alice['id']}/")).json()["text"] == "Alice"

    nothing = api.post(url(task, "uploads/"), {}, format="json")
    assert nothing.status_code == 400 and "files" in nothing.json()
    for not_an_object in ("x", [], [{"bos_uri": "bos://b/k"}], 1):
        shaped = api.post(url(task, "uploads/"), not_an_object, format="json")
        assert shaped.status_code == 400 and "body" in shaped.json(), not_an_object
    both = api.post(
        url(task, "uploads/"),
        {"files": [SimpleUploadedFile("a.txt", txt_bytes())], "bos_uri": "bos://b/k.txt"},
        format="multipart",
    )
    assert both.status_code == 400 and "bos_uri" in both.json()


def test_upload_a_single_file_from_storage(api, task, put):
    uri = put("incoming/story.txt", txt_bytes())
    response = api.post(url(task, "uploads/"), {"bos_uri": uri}, format="json")
    assert response.status_code == 201, response.json()
    assert response.json()["source"] == uri and response.json()["documents"] == 1
    document = task.documents.get()
    assert document.name == "story.txt" and document.text == TXT_TEXT

    missing = api.post(url(task, "uploads/"), {"bos_uri": uri + "x"}, format="json")
    assert missing.status_code == 400 and "files" in missing.json()
    assert task.uploads.filter(status="failed").count() == 1


def test_documents_filter_by_status_and_delete(api, owner, task):
    first = upload_txt(owner, task, "one.txt")
    second = upload_txt(owner, task, "two.txt")
    span(api, first, "Bob")
    rows = api.get(url(task, "documents/"), {"status": "annotating"}).json()["results"]
    assert [(r["id"], r["spans"]) for r in rows] == [(first.pk, 1)]
    assert api.get(url(task, "documents/"), {"status": "nope"}).status_code == 400
    assert api.delete(doc_url(second)).status_code == 204
    assert api.get(doc_url(second)).status_code == 404
    assert [r["id"] for r in api.get(url(task, "documents/")).json()["results"]] == [first.pk]


# -- annotating --------------------------------------------------------------------------


def test_annotate_by_offsets(api, owner, task):
    document = upload_txt(owner, task)
    first = span(api, document, "Alice", 0)
    second = span(api, document, "Alice", 1)
    assert first["id"] != second["id"]
    assert (first["start"], second["start"]) == (0, TXT_TEXT.index("Alice", 1))
    assert first["text"] == second["text"] == "Alice"
    assert (first["sentence"], second["sentence"]) == (0, 1)
    again = span(api, document, "Alice", 1)  # the same place and tag is the same span
    assert again["id"] == second["id"] and Span.objects.count() == 2

    across = TXT_TEXT.index("Paris")
    refused = api.post(
        doc_url(document, "spans/"),
        {"start": across, "end": TXT_TEXT.index("married"), "tag": tag_of(task, "city").pk},
        format="json",
    )
    assert refused.status_code == 400 and "one sentence" in str(refused.json())
    outside = api.post(
        doc_url(document, "spans/"),
        {"start": 5, "end": 10_000, "tag": tag_of(task, "person").pk},
        format="json",
    )
    assert outside.status_code == 400
    predicate_as_span = api.post(
        doc_url(document, "spans/"),
        {"start": 0, "end": 5, "tag": tag_of(task, "spouse").pk},
        format="json",
    )
    assert predicate_as_span.status_code == 400 and "tag" in predicate_as_span.json()
    person = tag_of(task, "person").pk
    for raw in (
        f'{{"start": 1e309, "end": 2, "tag": {person}}}',  # infinity
        f'{{"start": 0, "end": 1e999, "tag": {person}}}',
        '{"start": 0, "end": 5, "tag": "\u00b2"}',  # "²".isdigit() is True, int("²") fails
        f'{{"start": 0, "end": 5, "tag": {2**63}}}',  # beyond the database's integers
    ):
        odd = api.post(doc_url(document, "spans/"), raw, content_type="application/json")
        assert odd.status_code == 400, raw

    bob = span(api, document, "Bob", 1)
    spouse = tag_of(task, "spouse")
    for ends in ({"subject": 2**63, "object": 10**30}, {"subject": "1e309", "object": "\u00b2"}):
        odd = api.post(
            doc_url(document, "triples/"), {**ends, "predicate": spouse.pk}, format="json"
        )
        assert odd.status_code == 400 and "subject" in odd.json(), ends
    odd = api.post(
        doc_url(document, "triples/"),
        {"subject": second["id"], "predicate": "\u00b2", "object": bob["id"]},
        format="json",
    )
    assert odd.status_code == 400 and "predicate" in odd.json()
    response = api.post(
        doc_url(document, "triples/"),
        {"subject": second["id"], "predicate": spouse.pk, "object": bob["id"]},
        format="json",
    )
    assert response.status_code == 201, response.json()
    triple = response.json()
    assert (triple["subject_text"], triple["label"], triple["object_text"]) == (
        "Alice",
        "spouse",
        "Bob",
    )
    cross = api.post(
        doc_url(document, "triples/"),
        {"subject": first["id"], "predicate": spouse.pk, "object": bob["id"]},
        format="json",
    )
    assert cross.status_code == 400 and "same sentence" in str(cross.json())

    view = api.get(doc_url(document, "sentences/1/")).json()
    assert view["done"] is True  # a submitted triple checks its sentence
    assert [s["text"] for s in view["spans"]] == ["Alice", "Bob"]
    assert [t["id"] for t in view["triples"]] == [triple["id"]]
    assert document.text[view["start"] : view["end"]] == view["text"] == "Alice married Bob!"

    assert api.delete(doc_url(document, f"spans/{bob['id']}/")).status_code == 204
    assert not Triple.objects.exists()
    view = api.get(doc_url(document, "sentences/1/")).json()
    assert view["triples"] == [] and [s["text"] for s in view["spans"]] == ["Alice"]

    marked = api.post(doc_url(document, "sentences/2/done/"), {"done": True}, format="json")
    assert marked.status_code == 200 and marked.json()["done"] is True
    assert api.get(doc_url(document, "sentences/99/")).status_code == 404
    detail = api.get(doc_url(document)).json()
    assert detail["status"] == "annotating"
    assert [s["done"] for s in detail["sentences"]] == [False, True, True, False]


def test_remove_a_triple(api, owner, task):
    document = upload_txt(owner, task)
    alice, bob = span(api, document, "Alice", 1), span(api, document, "Bob", 1)
    triple = api.post(
        doc_url(document, "triples/"),
        {"subject": alice["id"], "predicate": tag_of(task, "spouse").pk, "object": bob["id"]},
        format="json",
    ).json()
    assert api.get(doc_url(document, f"triples/{triple['id']}/")).status_code == 200
    assert api.delete(doc_url(document, f"triples/{triple['id']}/")).status_code == 204
    assert not Triple.objects.exists() and Span.objects.count() == 2


def test_finish_review_and_annotate_again(api, owner, task, member, api_client_for):
    first = upload_txt(owner, task, "one.txt")
    second = upload_txt(owner, task, "two.txt")
    developer = api_client_for(member(Role.DEVELOPER))
    span(developer, first, "Carol")

    finished = developer.post(doc_url(first, "finish/"), {}, format="json")
    assert finished.status_code == 200, finished.json()
    assert finished.json()["document"]["status"] == "submitted"
    assert finished.json()["next"] == second.pk
    locked = developer.post(
        doc_url(first, "spans/"), {"start": 0, "end": 5, "tag": tag_of(task, "person").pk},
        format="json",
    )  # fmt: skip
    assert locked.status_code == 400 and "document" in locked.json()

    refused = developer.post(doc_url(first, "review/"), {"passed": True}, format="json")
    assert refused.status_code == 403
    failed = api.post(
        doc_url(first, "review/"), {"passed": False, "note": "Alice too"}, format="json"
    )
    assert failed.status_code == 200, failed.json()
    assert (failed.json()["status"], failed.json()["review_note"]) == ("failed", "Alice too")
    span(developer, first, "Alice")  # a failed file is annotatable again
    again = developer.post(doc_url(first, "finish/"), {}, format="json").json()
    assert again["document"]["status"] == "submitted" and again["next"] == second.pk

    passed = api.post(doc_url(first, "review/"), {"passed": True}, format="json")
    assert passed.json()["status"] == "passed"
    twice = api.post(doc_url(first, "review/"), {"passed": True}, format="json")
    assert twice.status_code == 400

    last = developer.post(doc_url(second, "finish/"), {}, format="json").json()
    assert last["next"] is None
    progress = api.get(url(task)).json()["progress"]
    assert (progress["files"], progress["files_annotated"], progress["files_passed"]) == (2, 2, 1)


def test_without_review_a_finished_file_is_done(api, owner, task):
    Task.objects.filter(pk=task.pk).update(review_required=False)
    document = upload_txt(owner, task)
    body = api.post(doc_url(document, "finish/"), {}, format="json").json()
    assert body == {**body, "next": None} and body["document"]["status"] == "done"
    refused = api.post(doc_url(document, "review/"), {"passed": True}, format="json")
    assert refused.status_code == 400


def test_finishing_warns_about_sentences_left_without_annotation(api, owner, task):
    """Four sentences: one with a span (twice), one marked as done, two not looked at. The
    file is finished all the same; a file fully looked at gets no warning."""
    document = upload_txt(owner, task)
    assert document.sentence_count == 4
    span(api, document, "Alice", 0)
    span(api, document, "Bob", 0)  # a second span in the same sentence counts once
    marked = api.post(doc_url(document, "sentences/3/done/"), {"done": True}, format="json")
    assert marked.status_code == 200, marked.json()

    body = api.post(doc_url(document, "finish/"), {}, format="json").json()
    assert body["warnings"] == [
        "2 of 4 sentences have no annotation (no span, not marked as done)."
    ]
    assert body["document"]["status"] == "submitted"  # warned, not refused

    complete = upload_txt(owner, task, "one.txt", "Alice met Bob in Paris.")
    span(api, complete, "Alice")
    body = api.post(doc_url(complete, "finish/"), {}, format="json").json()
    assert body["warnings"] == [] and body["document"]["status"] == "submitted"


# -- export ------------------------------------------------------------------------------


def test_export_offsets_slice_the_annotated_words(api, owner, task, bucket):
    document = upload_txt(owner, task)
    words = [("Alice", 0), ("Alice", 1), ("Bob", 1), ("Carol", 0)]
    marked = [span(api, document, word, n) for word, n in words]
    api.post(
        doc_url(document, "triples/"),
        {"subject": marked[1]["id"], "predicate": tag_of(task, "spouse").pk,
         "object": marked[2]["id"]},
        format="json",
    )  # fmt: skip

    response = api.post(url(task, "exports/"), {}, format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["counts"] == {"documents": 1, "sentences": 4, "spans": 4, "triples": 1}
    assert body["jsonl_uri"].startswith(STORAGE_PATH) and body["csv_uri"].endswith(".csv")

    web = Client()
    web.force_login(owner)
    download = web.get(body["jsonl_url"])
    assert download.status_code == 200
    lines = [json.loads(line) for line in read_body(download).decode().splitlines()]
    found = []
    for line in lines:
        assert document.text[line["start"] : line["end"]] == line["text"]
        for s in line["spans"]:
            assert document.text[s["start"] : s["end"]] == s["text"]
            assert line["text"][s["sentence_start"] : s["sentence_end"]] == s["text"]
            found.append((s["start"], s["text"]))
    assert sorted(found) == sorted((m["start"], m["text"]) for m in marked)
    assert lines[1]["triples"][0]["subject_text"] == "Alice"

    rows = list(
        csv.DictReader(io.StringIO(read_body(web.get(body["csv_url"])).decode("utf-8-sig")))
    )
    assert [(r["subject"], r["predicate"], r["object"]) for r in rows] == [
        ("Alice", "spouse", "Bob")
    ]
    assert int(rows[0]["subject_start"]) == marked[1]["start"]
    history = api.get(url(task, "exports/")).json()["results"]
    assert [h["id"] for h in history] == [body["id"]]


# -- who may see and do what -------------------------------------------------------------


def test_viewers_read_but_are_refused_writes(owner, task, member, api_client_for):
    document = upload_txt(owner, task)
    viewer = api_client_for(member(Role.VIEWER))
    assert viewer.get(url(task)).status_code == 200
    assert viewer.get(url(task, "documents/")).json()["count"] == 1
    assert viewer.get(doc_url(document, "sentences/0/")).status_code == 200
    assert viewer.get(url(task, "uploads/")).status_code == 200
    person = tag_of(task, "person")
    writes = [
        ("post", API, {"project": task.project_id, "name": "mine", "scenario": "relation",
                       "storage_path": STORAGE_PATH}),
        ("post", url(task, "tags/"), {"kind": "entity", "name": "x"}),
        ("patch", url(task, f"tags/{person.pk}/"), {"name": "y"}),
        ("post", url(task, "uploads/"), {"bos_uri": "bos://ann-data/x.txt"}),
        ("post", doc_url(document, "spans/"), {"start": 0, "end": 5, "tag": person.pk}),
        ("post", doc_url(document, "finish/"), {}),
        ("post", url(task, "exports/"), {}),
        ("delete", doc_url(document), {}),
        ("delete", url(task), {}),
    ]  # fmt: skip
    for method, path, body in writes:
        assert getattr(viewer, method)(path, body, format="json").status_code == 403, path
    assert Task.objects.filter(pk=task.pk).exists() and not Span.objects.exists()
    assert task.uploads.count() == 1 and task.tags.count() == 3


def test_another_users_task_is_404(owner, task, make_user, api_client_for):
    document = upload_txt(owner, task)
    stranger = api_client_for(make_user())
    assert stranger.get(API).json()["results"] == []
    for path in (url(task), url(task, "documents/"), doc_url(document), url(task, "exports/")):
        assert stranger.get(path).status_code == 404, path
    assert stranger.delete(url(task)).status_code == 404
    assert stranger.post(url(task, "exports/"), {}, format="json").status_code == 404
    listing = stranger.get(API, {"project": task.project_id})
    assert listing.status_code == 404
    assert Task.objects.filter(pk=task.pk).exists()


def test_documents_come_only_from_the_tasks_own_project(api, owner, task):
    """A member of two projects cannot carry one project's objects into the other's task
    through a storage path (one ownership rule for every path, apps.storage.ownership)."""
    other = projects.create_project(owner, name="elsewhere")
    bucket = storage.create_bucket(owner, other, "elsewhere-docs")
    storage.upload_object(owner, bucket, "story.txt", io.BytesIO(txt_bytes()), len(txt_bytes()))
    response = api.post(
        url(task, "uploads/"), {"bos_uri": "bos://elsewhere-docs/story.txt"}, format="json"
    )
    assert response.status_code == 400
    assert "another project" in json.dumps(response.json())
    assert not task.documents.exists()
