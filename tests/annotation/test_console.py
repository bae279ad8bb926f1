"""The console of text annotation: the task list and create form (errors next to the fields),
uploads refused and accepted, the annotation page (one sentence at a time) and its JSON writes
by character offsets, "Save and go to next file", review, tag management, task management
(upload and export history) and what viewers and strangers get."""

import json

import pytest
from django.test import Client

from apps.annotation import services
from apps.annotation.models import Document, DocumentStatus, Span, Task, Triple, Upload
from apps.projects.models import Role
from tests.annotation.conftest import (
    BUCKET,
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


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def web(owner):
    return client_for(owner)


def page(client, url) -> str:
    response = client.get(url)
    assert response.status_code == 200, url
    return response.content.decode()


def post_json(client, url, body):
    return client.post(url, json.dumps(body), content_type="application/json")


def doc_url(task, document, rest=""):
    return f"/annotation/{task.pk}/documents/{document.pk}/{rest}"


def create_form(**changes) -> dict:
    return {
        "name": "family_ties",
        "scenario": "relation",
        "storage_path": STORAGE_PATH,
        "entity_types": "person, city\nperson",
        "predicate_types": "spouse\nparent",
        "review_required": "yes",
        **changes,
    }


# -- the list and the create form ----------------------------------------------------------


def test_the_create_form_suggests_a_bucket_and_shows_errors_next_to_the_fields(web, bucket):
    form = page(web, "/annotation/new/")
    assert f'value="bos://{BUCKET}/annotation/"' in form  # a bucket of the project
    assert "2-30 letters, digits and &#x27;_&#x27;" in form  # the name rule is shown
    assert "Relationship types" in form and "Attribute types" in form

    response = web.post("/annotation/new/", create_form(name="_bad name_"))
    assert response.status_code == 200
    text = response.content.decode()
    assert text.count('class="field-error"') == 1
    assert "Task names are 2-30 letters" in text
    assert 'value="_bad name_"' in text and "person, city\nperson</textarea>" in text
    response = web.post("/annotation/new/", create_form(storage_path=""))
    assert "This path is required." in response.content.decode()

    response = web.post("/annotation/new/", create_form(storage_path="bos://nobody/x/"))
    assert "No bucket of yours is named in" in response.content.decode()
    response = web.post("/annotation/new/", create_form(review_required=""))
    assert "Choose yes or no." in response.content.decode()
    guide = _file("rules.txt", b"just text")
    response = web.post("/annotation/new/", {**create_form(), "guide": guide})
    assert "must be a doc, docx or pdf file" in response.content.decode()
    assert not Task.objects.exists()


def _file(name: str, data: bytes):
    from django.core.files.uploadedfile import SimpleUploadedFile

    return SimpleUploadedFile(name, data)


def test_create_a_task_with_its_description_then_find_it_everywhere(web, bucket):
    guide = _file("rules #1.docx", docx_bytes(["Mark every person."]))
    response = web.post("/annotation/new/", {**create_form(), "guide": guide})
    task = Task.objects.get(name="family_ties")
    assert response.status_code == 302 and response.url == f"/annotation/{task.pk}/"
    assert task.review_required and task.storage_path == STORAGE_PATH
    # A repeated name is taken once; relationship types are relation tags.
    assert sorted(task.tags.values_list("kind", "name")) == [
        ("entity", "city"),
        ("entity", "person"),
        ("relation", "parent"),
        ("relation", "spouse"),
    ]
    detail = page(web, response.url)
    assert "Annotation task family_ties created" in detail
    assert "Result review" in detail and "Tag management" in detail

    manage = page(web, response.url + "?tab=manage")
    link = f"/storage/{BUCKET}/download/tasks/guide/rules%20%231.docx"
    assert f'href="{link}"' in manage
    assert read_body(web.get(link)).startswith(b"PK")

    listing = page(web, "/annotation/")
    assert 'data-task="family_ties"' in listing and "Entity-relationship" in listing
    assert f"/annotation/{task.pk}/upload/" in listing  # Upload
    assert f"/annotation/{task.pk}/annotate/" in listing  # Annotate
    assert f"/annotation/{task.pk}/delete/" in listing  # Delete
    assert "Data annotation" in page(web, "/projects/")  # in the left navigation


def test_an_entity_attribute_task_has_attribute_tags(web, bucket):
    form = create_form(name="people_facts", scenario="attribute", predicate_types="career")
    web.post("/annotation/new/", form)
    task = Task.objects.get(name="people_facts")
    assert task.tags.get(name="career").kind == "attribute"
    tags = page(web, f"/annotation/{task.pk}/?tab=tags")
    assert "Attribute type tags" in tags
    assert "Result review" in tags  # review was asked for

    form = create_form(name="no_review", review_required="no")
    web.post("/annotation/new/", form)
    task = Task.objects.get(name="no_review")
    assert not task.review_required
    assert "Result review" not in page(web, f"/annotation/{task.pk}/")


# -- uploads -------------------------------------------------------------------------------


def test_uploads_refused_are_shown_and_recorded_and_accepted_ones_become_files(web, task, put):
    url = f"/annotation/{task.pk}/upload/"
    form = page(web, url)
    assert 'accept=".txt,.doc,.docx,.pdf,.zip"' in form and "multiple" in form
    assert "at most 4 files at a time, each at most 2 MB" in form

    five = [_file(f"f{i}.txt", txt_bytes()) for i in range(5)]
    response = web.post(url, {"source": "local", "files": five})
    assert response.status_code == 200
    assert "5 files: at most 4 per upload" in response.content.decode()
    big = _file("big.txt", b"a. " * (1024 * 1024))
    response = web.post(url, {"source": "local", "files": [big]})
    assert "big.txt is 3.0 MB; the limit is 2 MB per file" in response.content.decode()
    response = web.post(url, {"source": "local"})
    assert "Choose the files to upload." in response.content.decode()
    response = web.post(url, {"source": "bos", "bos_uri": f"bos://{BUCKET}/missing.txt"})
    assert "does not exist" in response.content.decode()
    assert not task.documents.exists()

    files = [
        _file("story.txt", txt_bytes()),
        _file("acme.docx", docx_bytes()),
        _file("curie.pdf", pdf_bytes()),
    ]
    response = web.post(url, {"source": "local", "files": files})
    assert response.status_code == 302 and response.url == f"/annotation/{task.pk}/?tab=overview"
    overview = page(web, response.url)
    assert "Uploaded 3 files" in overview
    for name in ("story.txt", "acme.docx", "curie.pdf"):
        assert f'data-document="{name}"' in overview
    assert "0 / 4" in overview  # story.txt: no sentence done of 4

    uri = put("texts/pack.zip", zip_bytes({"a.txt": b"One. Two.", "b.txt": b"Three."}))
    response = web.post(url, {"source": "bos", "bos_uri": uri})
    assert response.status_code == 302
    assert task.documents.count() == 5

    history = page(web, f"/annotation/{task.pk}/?tab=manage")
    assert history.count('class="tag status-failed"') == 3  # the refused uploads, with why
    assert "5 files: at most 4 per upload" in history
    assert "big.txt is 3.0 MB" in history
    assert history.count('class="tag status-succeeded"') == 2
    assert Upload.objects.filter(task=task).count() == 5


# -- the annotation page and its JSON ------------------------------------------------------


def test_the_annotation_page_renders_one_sentence_with_its_neighbours(web, owner, task):
    text = " ".join(f"Sentence number {i} talks about Alice." for i in range(3000))
    document = upload_txt(owner, task, "long.txt", text)
    assert document.sentence_count == 3000
    html = page(web, doc_url(task, document))
    assert "Sentence number 0 talks about Alice." in html
    assert "Sentence number 1 talks about Alice." in html  # the next one, for context
    assert "Sentence number 20 talks" not in html and "Sentence number 2999" not in html
    assert len(html) < 40_000
    assert "Save and go to next file" in html
    assert 'id="annotation-data"' in html

    html = page(web, doc_url(task, document, "?sentence=1500"))
    assert "Sentence number 1500 talks about Alice." in html
    assert "Sentence number 1499 talks" in html and "Sentence number 1501 talks" in html
    assert "Sentence number 1 talks" not in html
    for odd in ("\u00b2", "99999999999999999999", "-1"):  # the first undone sentence
        assert "Sentence number 0 talks" in page(web, doc_url(task, document, f"?sentence={odd}"))

    data = web.get(doc_url(task, document, "sentences/2999/")).json()
    assert data["sentence"]["text"] == "Sentence number 2999 talks about Alice."
    assert data["previous"]["index"] == 2998 and data["next"] is None
    assert data["progress"] == {"done": 0, "total": 3000, "unannotated": 3000}
    assert [s["index"] for s in data["nearby"]] == list(range(2991, 3000))
    assert web.get(doc_url(task, document, "sentences/3000/")).status_code == 404


def test_spans_and_triples_are_written_by_offsets(web, owner, task):
    document = upload_txt(owner, task)
    person, city, spouse = tag_of(task, "person"), tag_of(task, "city"), tag_of(task, "spouse")
    second_alice = TXT_TEXT.index("Alice", 1)  # "Alice" twice: the second one is meant
    assert second_alice == 24
    response = post_json(
        web,
        doc_url(task, document, "spans/"),
        {"start": second_alice, "end": second_alice + 5, "tag": person.pk},
    )
    assert response.status_code == 201
    data = response.json()
    assert data["sentence"]["index"] == 1 and data["sentence"]["text"] == "Alice married Bob!"
    assert [(s["start"], s["text"], s["label"]) for s in data["sentence"]["spans"]] == [
        (24, "Alice", "person")
    ]
    assert data["status"] == "annotating"
    bob = TXT_TEXT.index("Bob", second_alice)
    body = {"start": bob, "end": bob + 3, "tag": person.pk}
    data = post_json(web, doc_url(task, document, "spans/"), body).json()
    alice_id, bob_id = (s["id"] for s in data["sentence"]["spans"])

    across = post_json(
        web, doc_url(task, document, "spans/"), {"start": 18, "end": 29, "tag": city.pk}
    )
    assert across.status_code == 400
    assert across.json()["errors"]["general"] == ["A span must lie inside one sentence."]
    paris = post_json(
        web, doc_url(task, document, "spans/"), {"start": 17, "end": 22, "tag": city.pk}
    ).json()["sentence"]
    assert paris["index"] == 0

    triple = {"subject": alice_id, "predicate": spouse.pk, "object": bob_id}
    response = post_json(web, doc_url(task, document, "triples/"), triple)
    assert response.status_code == 201
    data = response.json()
    assert data["sentence"]["triples"][0]["label"] == "spouse"
    assert data["sentence"]["done"] is True and data["progress"]["done"] == 1
    mixed = {"subject": alice_id, "predicate": spouse.pk, "object": paris["spans"][0]["id"]}
    response = post_json(web, doc_url(task, document, "triples/"), mixed)
    assert response.status_code == 400
    assert "same sentence" in response.json()["errors"]["general"][0]

    # Removing: the triple, then a span (its triples go with it), a sentence marked done.
    triple_id = data["sentence"]["triples"][0]["id"]
    data = web.post(doc_url(task, document, f"triples/{triple_id}/remove/")).json()
    assert data["sentence"]["triples"] == []
    data = web.post(doc_url(task, document, f"spans/{bob_id}/remove/")).json()
    assert [s["text"] for s in data["sentence"]["spans"]] == ["Alice"]
    data = post_json(web, doc_url(task, document, "sentences/2/done/"), {"done": True}).json()
    assert data["sentence"]["index"] == 2 and data["sentence"]["done"] is True
    assert web.post(doc_url(task, document, "spans/999999/remove/")).status_code == 404
    assert Span.objects.filter(document=document).count() == 2
    assert not Triple.objects.exists()


def test_save_and_go_to_next_file_then_review_pass_and_fail(web, owner, task, member):
    first = upload_txt(owner, task, "one.txt")
    second = upload_txt(owner, task, "two.txt", "Carol lives in Rome.")
    person, spouse = tag_of(task, "person"), tag_of(task, "spouse")
    alice = services.add_span(owner, first, start=24, end=29, tag=person)
    bob = services.add_span(owner, first, start=38, end=41, tag=person)
    services.add_triple(owner, first, subject=alice.pk, predicate=spouse.pk, object=bob.pk)

    response = web.post(doc_url(task, first, "finish/"))
    assert response.status_code == 302 and response.url == doc_url(task, second)
    assert "one.txt submitted for review. Next file: two.txt." in page(web, response.url)
    first.refresh_from_db()
    assert first.status == DocumentStatus.SUBMITTED
    read_only = page(web, doc_url(task, first))
    assert "Save and go to next file" not in read_only and 'id="read-only"' in read_only
    refused = post_json(web, doc_url(task, first, "spans/"), {"start": 0, "end": 5, "tag": 1})
    assert refused.status_code == 400 and "waiting for review" in str(refused.json())

    response = web.post(doc_url(task, second, "finish/"))
    assert response.url == f"/annotation/{task.pk}/?tab=overview"
    assert "No file is left to annotate." in page(web, response.url)

    # A developer reads the review tab but may not review.
    developer = client_for(member(Role.DEVELOPER))
    review = page(developer, f"/annotation/{task.pk}/?tab=review")
    assert "Reviewing needs the owner role" in review
    assert 'data-document="one.txt"' in review
    response = developer.post(doc_url(task, first, "review/"), {"decision": "pass"})
    assert response.status_code == 403

    review = page(web, f"/annotation/{task.pk}/?tab=review")
    assert "Reviewing needs the owner role" not in review
    assert review.count('class="card review-file"') == 2
    assert 'title="person (Alice)"' in review and "—spouse→" in review
    response = web.post(doc_url(task, first, "review/"), {"decision": "fail", "note": "Bob?"})
    assert response.url == f"/annotation/{task.pk}/?tab=review"
    first.refresh_from_db()
    assert (first.status, first.review_note) == (DocumentStatus.FAILED, "Bob?")
    again = page(developer, doc_url(task, first))
    assert "Failed review by" in again and "Bob?" in again
    assert "Save and go to next file" in again  # annotated again...
    response = developer.post(doc_url(task, first, "finish/"))
    assert response.status_code == 302
    response = web.post(doc_url(task, first, "review/"), {"decision": "pass"})
    assert "one.txt passed review." in page(web, response.url)
    first.refresh_from_db()
    assert first.status == DocumentStatus.PASSED
    response = web.post(doc_url(task, first, "review/"), {"decision": "pass"})
    assert "is not waiting for review" in page(web, response.url)


def test_save_and_go_to_next_file_counts_the_sentences_left_without_annotation(web, owner, task):
    """The page gives the finish button the count its confirmation uses (and every answer
    of the annotator keeps it current); finishing anyway says what was left."""
    document = upload_txt(owner, task)  # four sentences
    html = page(web, doc_url(task, document))
    assert 'id="finish-form" data-unannotated="4" data-total="4"' in html
    data = post_json(
        web,
        doc_url(task, document, "spans/"),
        {"start": 0, "end": 5, "tag": tag_of(task, "person").pk},
    ).json()
    assert data["progress"]["unannotated"] == 3
    data = post_json(web, doc_url(task, document, "sentences/3/done/"), {"done": True}).json()
    assert data["progress"] == {"done": 1, "total": 4, "unannotated": 2}
    assert 'data-unannotated="2"' in page(web, doc_url(task, document))

    response = web.post(doc_url(task, document, "finish/"))
    assert response.status_code == 302
    shown = page(web, response.url)
    assert "story.txt: 2 of 4 sentences have no annotation" in shown
    document.refresh_from_db()
    assert document.status == DocumentStatus.SUBMITTED


def test_the_manual_annotation_tab_opens_the_next_open_file(web, owner, task):
    response = web.get(f"/annotation/{task.pk}/annotate/")
    assert response.url == f"/annotation/{task.pk}/?tab=overview"
    assert "No file is waiting for annotation" in page(web, response.url)
    document = upload_txt(owner, task)
    assert web.get(f"/annotation/{task.pk}/annotate/").url == doc_url(task, document)
    services.finish_document(owner, document)
    response = web.get(f"/annotation/{task.pk}/annotate/")
    assert "Every file is annotated" in page(web, response.url)


# -- tags ----------------------------------------------------------------------------------


def test_tag_management_adds_renames_recolors_and_refuses_to_remove_a_used_tag(web, owner, task):
    url = f"/annotation/{task.pk}/tags/"
    response = web.post(url, {"kind": "relation", "name": "parent", "shortcut": "p"})
    assert response.url == f"/annotation/{task.pk}/?tab=tags"
    parent = tag_of(task, "parent")
    assert (parent.kind, parent.shortcut) == ("relation", "p")
    response = web.post(url, {"kind": "entity", "name": "place", "shortcut": "P"})
    assert "already picks the tag" in page(web, response.url)

    person = tag_of(task, "person")
    response = web.post(
        f"{url}{person.pk}/", {"name": "human", "color": "#112233", "shortcut": "h"}
    )
    assert "Tag human saved." in page(web, response.url)
    person.refresh_from_db()
    assert (person.name, person.color, person.shortcut) == ("human", "#112233", "h")

    document = upload_txt(owner, task)
    services.add_span(owner, document, start=0, end=5, tag=person)
    response = web.post(f"{url}{person.pk}/remove/")
    tags = page(web, response.url)
    assert "The tag &#x27;human&#x27; is used by 1 annotation(s)" in tags
    assert task.tags.filter(pk=person.pk).exists()
    response = web.post(f"{url}{parent.pk}/remove/")
    assert "Tag parent removed." in page(web, response.url)
    assert not task.tags.filter(name="parent").exists()


# -- task management -----------------------------------------------------------------------


def test_export_from_task_management_and_read_it_through_the_download_link(web, owner, task):
    document = upload_txt(owner, task)
    person, spouse = tag_of(task, "person"), tag_of(task, "spouse")
    alice = services.add_span(owner, document, start=24, end=29, tag=person)
    bob = services.add_span(owner, document, start=38, end=41, tag=person)
    services.add_triple(owner, document, subject=alice.pk, predicate=spouse.pk, object=bob.pk)

    response = web.post(f"/annotation/{task.pk}/export/")
    assert response.url == f"/annotation/{task.pk}/?tab=manage#exports"
    manage = page(web, f"/annotation/{task.pk}/?tab=manage")
    assert "Exported 4 sentences, 2 spans and 1 triples" in manage
    record = task.exports.get()
    jsonl = f"/storage/{BUCKET}/download/tasks/exports/{record.pk}/annotations.jsonl"
    assert f'href="{jsonl}"' in manage and "triples.csv" in manage
    lines = [json.loads(line) for line in read_body(web.get(jsonl)).decode().splitlines()]
    married = next(line for line in lines if line["triples"])
    for span in married["spans"]:
        assert TXT_TEXT[span["start"] : span["end"]] == span["text"]
        assert married["text"][span["sentence_start"] : span["sentence_end"]] == span["text"]
    assert married["triples"][0]["subject_text"] == "Alice"
    assert "Files annotated" in manage and "Sentences done" in manage


def test_delete_a_document_and_a_task(web, owner, task):
    document = upload_txt(owner, task)
    response = web.post(doc_url(task, document, "delete/"))
    assert "story.txt deleted" in page(web, response.url)
    assert not Document.objects.filter(pk=document.pk).exists()
    response = web.post(f"/annotation/{task.pk}/delete/")
    assert response.url == "/annotation/"
    assert "Annotation task family_ties deleted." in page(web, response.url)
    assert not Task.objects.filter(pk=task.pk).exists()


# -- who may do what -----------------------------------------------------------------------


def test_viewers_read_everything_and_change_nothing(owner, project, task, member):
    document = upload_txt(owner, task)
    person = tag_of(task, "person")
    viewer = client_for(member(Role.VIEWER))
    viewer.post(f"/projects/{project.pk}/switch/")
    listing = page(viewer, "/annotation/")
    assert 'data-task="family_ties"' in listing
    assert "Create annotation task" not in listing and "/upload/" not in listing
    html = page(viewer, doc_url(task, document))
    assert "Save and go to next file" not in html
    assert "lets you read the annotations, not change them" in html
    assert "Uploading needs the developer or owner role" in page(
        viewer, f"/annotation/{task.pk}/upload/"
    )
    assert viewer.get(doc_url(task, document, "sentences/0/")).status_code == 200

    refused = post_json(
        viewer, doc_url(task, document, "spans/"), {"start": 0, "end": 5, "tag": person.pk}
    )
    assert refused.status_code == 403
    assert "viewer" in refused.json()["errors"]["general"][0]
    assert viewer.post(doc_url(task, document, "finish/")).status_code == 403
    assert viewer.post(f"/annotation/{task.pk}/export/").status_code == 403
    assert viewer.post(f"/annotation/{task.pk}/tags/", {"name": "x"}).status_code == 403
    assert viewer.post("/annotation/new/", create_form()).status_code == 403
    assert not Span.objects.exists() and task.tags.count() == 3


def test_strangers_see_nothing(owner, task, make_user):
    document = upload_txt(owner, task)
    stranger = client_for(make_user())
    assert "family_ties" not in page(stranger, "/annotation/")
    for url in (
        f"/annotation/{task.pk}/",
        f"/annotation/{task.pk}/?tab=review",
        f"/annotation/{task.pk}/upload/",
        doc_url(task, document),
        doc_url(task, document, "sentences/0/"),
    ):
        assert stranger.get(url).status_code == 404, url
    response = post_json(stranger, doc_url(task, document, "spans/"), {"start": 0, "end": 5})
    assert response.status_code == 404
    # Another project's bucket is not a storage path of this one.
    response = stranger.post("/annotation/new/", create_form())
    assert "No bucket of yours is named in" in response.content.decode()


def test_the_suggested_place_is_never_the_warehouses_internal_bucket(web, owner, project):
    """The model warehouse keeps its files in a bucket of the project (bml-models-p<id>):
    browsable, but never offered as the place for a task's or a data set's files."""
    from apps.datasets.services import default_storage_path
    from apps.storage import services as storage
    from apps.warehouse.services import warehouse_bucket

    internal = warehouse_bucket(owner, project)  # made first: the oldest bucket
    storage.create_bucket(owner, project, "zz-texts")
    form = page(web, "/annotation/new/")
    assert 'value="bos://zz-texts/annotation/"' in form and internal not in form
    assert default_storage_path(owner, project, "ds").startswith("bos://zz-texts/")
