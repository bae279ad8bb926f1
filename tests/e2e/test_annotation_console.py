"""The spec's entity-relationship annotation walk-through in a browser: create a task, add tags,
upload a docx and a pdf, mark entities by selecting words with the mouse and link them into
triples, submit the file for review, fail it, annotate it again, pass it, export, and check
that the exported offsets slice exactly the words that were selected."""

import json

import pytest

from tests.e2e.conftest import sign_in

pytestmark = pytest.mark.e2e

# "Bob Jones" and "Paris" repeat: the second ones are marked, which only offsets tell apart.
SENTENCE = "Alice Smith married Bob Jones in Paris, and later Bob Jones painted Paris."
DOCX_PARAGRAPHS = [SENTENCE, "They lived in Rome for ten years."]
PDF_LINES = ["Marie Curie was born in Warsaw.", "Pierre Curie was a physicist."]

# Where characters [start, end) of the sentence are on the screen, found by walking its text
# nodes (the highlights split them).
CHAR_BOX = """([start, end]) => {
  const root = document.getElementById("sentence-text");
  const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
  const range = document.createRange();
  let seen = 0, startSet = false;
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const length = node.data.length;
    if (!startSet && start < seen + length) { range.setStart(node, start - seen); startSet = true; }
    if (end <= seen + length) { range.setEnd(node, end - seen); break; }
    seen += length;
  }
  const first = range.getClientRects()[0], rects = range.getClientRects();
  const last = rects[rects.length - 1];
  return {x1: first.left, y1: (first.top + first.bottom) / 2,
          x2: last.right, y2: (last.top + last.bottom) / 2};
}"""


def make_docx(path):
    import docx

    document = docx.Document()
    for paragraph in DOCX_PARAGRAPHS:
        document.add_paragraph(paragraph)
    document.save(path)


def make_pdf(path):
    from fpdf import FPDF

    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("Helvetica", size=12)
    for line in PDF_LINES:
        pdf.cell(0, 10, line, new_x="LMARGIN", new_y="NEXT")
    pdf.output(str(path))


def select_words(page, start: int, end: int):
    """Drag the mouse over characters [start, end) of the current sentence."""
    box = page.evaluate(CHAR_BOX, [start, end])
    page.mouse.move(box["x1"] + 1, box["y1"])
    page.mouse.down()
    page.mouse.move((box["x1"] + box["x2"]) / 2, box["y2"], steps=4)
    page.mouse.move(box["x2"] - 1, box["y2"], steps=4)
    page.mouse.up()
    page.wait_for_selector("#tag-popup:not([hidden])")
    shown = page.inner_text("#tag-popup-text")
    assert SENTENCE[start:end] in shown, shown  # the pop-up names what was selected


def mark(page, start: int, end: int, tag: str, key: str = ""):
    before = page.locator("#span-list li[data-span]").count()
    select_words(page, start, end)
    if key:
        page.keyboard.press(key)  # the tag's shortcut key
    else:
        page.click(f"#tag-choices button:has-text('{tag}')")
    page.wait_for_function(
        f"document.querySelectorAll('#span-list li[data-span]').length === {before + 1}"
    )
    assert page.locator("#tag-popup").is_hidden()


def open_file(page, task_url: str, name: str):
    page.goto(task_url + "?tab=overview")
    page.click(f"#documents tr[data-document='{name}'] td:nth-child(2) a")
    page.wait_for_selector("#annotator[data-ready='1']")


def test_annotate_two_triples_review_them_and_export_the_exact_words(page, tmp_path):
    docx_path, pdf_path = tmp_path / "family.docx", tmp_path / "curie.pdf"
    make_docx(docx_path)
    make_pdf(pdf_path)
    sign_in(page)
    page.click("text=Object storage (BOS)")
    page.fill("input[name=name]", "e2e-notes")
    page.click("text=Create bucket")
    page.wait_for_selector("text=Bucket bos://e2e-notes/ created.")

    # Create the task: entity types now, the relationship tags in tag management.
    page.click("aside.sidenav >> text=Data annotation")
    page.click("text=Create annotation task")
    page.fill("#task-name", "family_e2e")
    page.check("input[name=scenario][value=attribute]")
    assert page.is_visible("text=Attribute types")
    page.check("input[name=scenario][value=relation]")
    assert page.is_visible("text=Relationship types")
    # The suggested folder (in a bucket of the project) follows the name.
    page.wait_for_function(
        "document.getElementById('storage-path').value.endsWith('/annotation/family_e2e/')",
        timeout=5000,
    )
    page.fill("#storage-path", "bos://e2e-notes/annotation/family_e2e/")
    page.fill("textarea[name=entity_types]", "person, city")
    page.check("input[name=review_required][value=yes]")
    page.click("#task-form button:text('OK')")
    page.wait_for_selector("text=Annotation task family_e2e created")
    task_url = page.url.split("?")[0]

    page.click("#task-tabs >> text=Tag management")
    for name, key in (("spouse", "s"), ("visited", "v")):
        page.select_option("#tag-add select[name=kind]", "relation")
        page.fill("#tag-add input[name=name]", name)
        page.fill("#tag-add input[name=shortcut]", key)
        page.click("#tag-add button:text('Add tag')")
        page.wait_for_selector(f"text=Tag {name} added.")
    page.fill("tr[data-tag=person] input[name=shortcut]", "p")
    page.click("tr[data-tag=person] button:text('Save')")
    page.wait_for_selector("text=Tag person saved.")

    # Upload the two files from this computer.
    page.click("text=Upload data")
    assert page.is_hidden("#bos-uri")  # "Select from BOS" shows its path field instead
    page.check("input[name=source][value=bos]")
    page.wait_for_selector("#bos-uri", state="visible")  # annotation.js is deferred
    assert page.is_hidden("#upload-files")
    page.check("input[name=source][value=local]")
    page.wait_for_selector("#upload-files", state="visible")
    page.set_input_files("#upload-files", [str(docx_path), str(pdf_path)])
    page.click("#upload-form button:text('OK')")
    page.wait_for_selector("text=Uploaded 2 files")
    assert page.is_visible("#documents tr[data-document='family.docx']")
    assert page.is_visible("#documents tr[data-document='curie.pdf']")

    # Annotate: select words with the mouse, pick a tag (by its key, or by a click).
    open_file(page, task_url, "family.docx")
    assert page.inner_text("#sentence-text") == SENTENCE
    assert page.inner_text("#next-sentence") == DOCX_PARAGRAPHS[1]
    page.keyboard.press("j")  # next sentence, and back
    page.wait_for_function("document.getElementById('sentence-text').dataset.index === '1'")
    page.keyboard.press("k")
    page.wait_for_function("document.getElementById('sentence-text').dataset.index === '0'")
    select_words(page, 0, 5)
    page.keyboard.press("Escape")  # changed my mind
    assert page.locator("#tag-popup").is_hidden()

    alice = (0, len("Alice Smith"))
    bob = (SENTENCE.index("Bob Jones"), SENTENCE.index("Bob Jones") + len("Bob Jones"))
    mark(page, *alice, "person", key="p")
    mark(page, *bob, "person")
    # Entity 1 and entity 2 were filled by the two new spans; the relationship is chosen.
    assert "Alice Smith" in page.locator("#triple-subject option:checked").inner_text()
    assert "Bob Jones" in page.locator("#triple-object option:checked").inner_text()
    page.select_option("#triple-predicate", label="spouse")
    page.click("#triple-submit")
    page.wait_for_selector("#triple-list li[data-triple]:has-text('spouse')")
    assert page.inner_text("#triple-list li[data-triple]").startswith("Alice Smith —spouse→ Bob")

    # The second sentence has no annotation: the button asks first. Cancel stays on the file.
    asked = []

    def answer(dialog):
        asked.append(dialog.message)
        dialog.dismiss() if len(asked) == 1 else dialog.accept()

    page.on("dialog", answer)
    page.click("#finish")
    page.evaluate("1")  # runs once the dialog is answered
    assert asked == ["1 of 2 sentences has no annotation (no span, not marked as done). "
                     "Save and go to the next file anyway?"]  # fmt: skip
    assert page.is_visible("#annotator") and "family.docx" in page.inner_text("h1")
    page.click("#finish")
    page.wait_for_selector("text=family.docx submitted for review. Next file: curie.pdf.")
    assert len(asked) == 2
    assert page.is_visible("text=family.docx: 1 of 2 sentences has no annotation")

    # The owner fails it, with a note.
    page.goto(task_url + "?tab=review")
    review = page.locator("article[data-document='family.docx']")
    assert "Alice Smith —spouse→ Bob Jones" in review.inner_text()
    review.locator("input[name=note]").fill("The visit to Paris is missing")
    review.locator("button:text('Fail')").click()
    page.wait_for_selector("text=family.docx failed review")

    # Annotated again: the second "Bob Jones" visited the second "Paris".
    open_file(page, task_url, "family.docx")
    assert "The visit to Paris is missing" in page.inner_text("#review-note")
    # The page opens at the first sentence not done yet; the sentence list goes back.
    assert page.inner_text("#sentence-text") == DOCX_PARAGRAPHS[1]
    page.click("#mark-done")  # nothing to mark in it: no question when saving this time
    page.wait_for_selector("#sentence-done:not([hidden])")
    page.click("#sentence-list li[data-index='0'] a")
    page.wait_for_function("document.getElementById('sentence-text').dataset.index === '0'")
    assert page.locator("#span-list li[data-span]").count() == 2
    later_bob = SENTENCE.index("Bob Jones", bob[1])
    last_paris = SENTENCE.rindex("Paris")
    mark(page, later_bob, later_bob + len("Bob Jones"), "person")
    mark(page, last_paris, last_paris + len("Paris"), "city")
    page.keyboard.press("v")  # the relationship's shortcut key
    assert page.locator("#triple-predicate option:checked").inner_text() == "visited"
    page.click("#triple-submit")
    page.wait_for_selector("#triple-list li[data-triple]:has-text('visited')")
    assert page.locator("#triple-list li[data-triple]").count() == 2
    page.click("#finish")
    page.wait_for_selector("text=family.docx submitted for review.")
    assert len(asked) == 2  # every sentence had an annotation: not asked

    page.goto(task_url + "?tab=review")
    page.locator("article[data-document='family.docx'] button:text('Pass')").click()
    page.wait_for_selector("text=family.docx passed review.")
    assert "Passed" in page.inner_text("#reviewed tr[data-document='family.docx']")

    # Export, then read the JSONL through the console's download link.
    page.click("#task-tabs >> text=Task management")
    assert "family.docx" in page.inner_text("#uploads-history")
    page.click("#exports button:text('Export')")
    page.wait_for_selector("text=Exported")
    href = page.get_attribute("#exports-history a.download-jsonl", "href")
    response = page.request.get(href)
    assert response.ok
    lines = [json.loads(line) for line in response.text().splitlines()]
    line = next(item for item in lines if item["document"] == "family.docx" and item["triples"])
    assert line["text"] == SENTENCE and line["end"] - line["start"] == len(SENTENCE)
    marked = {(span["sentence_start"], span["sentence_end"]): span for span in line["spans"]}
    expected = [alice, bob, (later_bob, later_bob + 9), (last_paris, last_paris + 5)]
    assert sorted(marked) == sorted(expected)
    for (start, end), span in marked.items():
        assert SENTENCE[start:end] == span["text"]  # exactly the selected words
        assert (span["start"] - line["start"], span["end"] - line["start"]) == (start, end)
    triples = {(t["subject_text"], t["predicate"], t["object_text"]) for t in line["triples"]}
    assert triples == {("Alice Smith", "spouse", "Bob Jones"), ("Bob Jones", "visited", "Paris")}
    by_id = {span["id"]: span for span in line["spans"]}
    visited = next(t for t in line["triples"] if t["predicate"] == "visited")
    assert by_id[visited["subject"]]["sentence_start"] == later_bob
    assert by_id[visited["object"]]["sentence_start"] == last_paris
