"""Extraction runs in a child process with limits; it gives what the parser gives, and its
refusals keep their messages."""

import pytest

from apps.annotation import documents, sandbox
from tests.annotation.conftest import docx_bytes


def test_the_child_gives_the_parsers_text_and_its_refusals():
    data = docx_bytes(["第一句。第二句！", "Third one."])
    texts = sandbox.extract_texts([("a.docx", data), ("b.txt", b"3.5 GHz.")])
    assert texts == [documents.extract_text("a.docx", data), "3.5 GHz."]
    with pytest.raises(documents.DocumentError, match="x.pdf is not a PDF file"):
        sandbox.extract_texts([("x.pdf", b"MZ\x90\x00" + b"\x00" * 100)])
