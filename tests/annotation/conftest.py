"""Fixtures of the text-annotation tests: an owner, their project and a bucket, members of
each role, a relationship task, and real documents (docx, pdf, txt, zip) made in memory."""

import io
import zipfile

import pytest

from apps.annotation import services
from apps.projects.models import Project, Role
from apps.projects.services import add_member
from apps.storage import services as storage

BUCKET = "ann-data"
STORAGE_PATH = f"bos://{BUCKET}/tasks/"

# Two short English documents; "Alice" repeats in the txt so offsets, not words, tell spans apart.
TXT_TEXT = "Alice met Bob in Paris. Alice married Bob! Was Carol there? Yes."
DOCX_PARAGRAPHS = [
    "John Smith founded Acme Corp in London.",
    "His daughter Mary Smith runs it today.",
]
PDF_LINES = [
    "Marie Curie was born in Warsaw.",
    "Her husband Pierre Curie was a physicist.",
]


@pytest.fixture
def owner(make_user):
    return make_user()


@pytest.fixture
def project(owner):
    return Project.objects.get(owner=owner)


@pytest.fixture
def bucket(owner, project):
    return storage.create_bucket(owner, project, BUCKET)


@pytest.fixture
def put(owner, bucket):
    """Store bytes at bos://ann-data/<key>; returns the bos:// path."""

    def put(key: str, data: bytes) -> str:
        storage.upload_object(owner, bucket, key, io.BytesIO(data), len(data))
        return f"bos://{BUCKET}/{key}"

    return put


@pytest.fixture
def member(owner, project, make_user):
    """member(role) -> a new user with that role in the owner's project."""

    def make(role: str = Role.DEVELOPER):
        user = make_user()
        add_member(owner, project, user, role)
        return user

    return make


@pytest.fixture
def task(owner, project, bucket):
    """An entity-relationship task that needs review, with tags person / city and spouse."""
    return services.create_task(
        owner,
        project,
        name="family_ties",
        scenario="relation",
        storage_path=STORAGE_PATH,
        review_required=True,
        entity_types=["person", "city"],
        predicate_types=["spouse"],
    )


def tag_of(task, name: str):
    return task.tags.get(name=name)


def txt_bytes(text: str = TXT_TEXT) -> bytes:
    return text.encode("utf-8")


def docx_bytes(paragraphs=DOCX_PARAGRAPHS) -> bytes:
    import docx

    document = docx.Document()
    for paragraph in paragraphs:
        document.add_paragraph(paragraph)
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def pdf_bytes(lines=PDF_LINES) -> bytes:
    from fpdf import FPDF

    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("Helvetica", size=12)
    for line in lines:
        pdf.cell(0, 10, line, new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())


def zip_bytes(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def upload_txt(user, task, name: str = "story.txt", text: str = TXT_TEXT):
    """Upload one txt document through the service; returns that document."""
    record = services.upload(user, task, files=[(name, txt_bytes(text))])
    return task.documents.get(upload=record)
