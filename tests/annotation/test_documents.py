"""Document text extraction: real .docx (python-docx), real PDFs (fpdf2, English: its core fonts
are Latin-1 only), .txt in the encodings Chinese users have, and Word 97 .doc files built here
byte by byte (an OLE2 container, a FIB and a piece table) since no Word is at hand."""

import io
import struct
import zipfile

import docx
import olefile
import pytest
from fpdf import FPDF
from pypdf import PdfReader, PdfWriter

from apps.annotation.documents import DocumentError, extract_text


def refused(name: str, data: bytes) -> str:
    with pytest.raises(DocumentError) as caught:
        extract_text(name, data)
    return str(caught.value)


# -- fixtures -----------------------------------------------------------------------------------


def make_docx(build) -> bytes:
    document = docx.Document()
    build(document)
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def make_pdf(*pages: list[str]) -> bytes:
    pdf = FPDF()
    pdf.set_font("helvetica", size=12)
    for lines in pages:
        pdf.add_page()
        for line in lines:
            pdf.cell(text=line)
            pdf.ln()
    return bytes(pdf.output())


TWO_PAGES = (["Alice is the mother of Bob.", "Bob lives in Paris."], ["Page two says hello."])


def encrypt_pdf(data: bytes, user_password: str) -> bytes:
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(data)))
    writer.encrypt(user_password=user_password, owner_password="owner", algorithm="RC4-128")
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()


# A minimal OLE2 / Compound File Binary writer ([MS-CFB], version 3, 512-byte sectors). Streams
# are padded to 4096 bytes so that they live in the regular FAT, not the mini stream.
ENDOFCHAIN, FREESECT, FATSECT, NOSTREAM = 0xFFFFFFFE, 0xFFFFFFFF, 0xFFFFFFFD, 0xFFFFFFFF


def make_ole(streams: dict[str, bytes]) -> bytes:
    names = sorted(streams, key=lambda n: (len(n), n.upper()))
    contents = [streams[n].ljust(4096, b"\0") for n in names]
    sizes = [len(content) for content in contents]
    sectors: list[bytes] = []
    fat: list[int] = []
    starts = []
    for content in contents:
        content = content.ljust(-(-len(content) // 512) * 512, b"\0")
        count = len(content) // 512
        starts.append(len(sectors))
        fat.extend(range(len(sectors) + 1, len(sectors) + count))
        fat.append(ENDOFCHAIN)
        sectors.extend(content[i : i + 512] for i in range(0, len(content), 512))

    def entry(name, kind, left, right, child, start, size):
        encoded = (name + "\0").encode("utf-16-le")
        return (
            encoded.ljust(64, b"\0")
            + struct.pack("<HBB3I", len(encoded), kind, 1, left, right, child)
            + b"\0" * 36
            + struct.pack("<IQ", start, size)
        )

    # The root's child is the last (largest) name; each entry's left sibling is the one before.
    directory = entry("Root Entry", 5, NOSTREAM, NOSTREAM, len(names), ENDOFCHAIN, 0)
    for index, name in enumerate(names):
        left = index if index > 0 else NOSTREAM
        directory += entry(name, 2, left, NOSTREAM, NOSTREAM, starts[index], sizes[index])
    directory = directory.ljust(-(-len(directory) // 512) * 512, b"\0")
    directory_start = len(sectors)
    directory_count = len(directory) // 512
    fat.extend(range(directory_start + 1, directory_start + directory_count))
    fat.append(ENDOFCHAIN)
    sectors.extend(directory[i : i + 512] for i in range(0, len(directory), 512))
    fat_count = 1
    while (len(fat) + fat_count) > fat_count * 128:
        fat_count += 1
    fat_start = len(sectors)
    fat.extend([FATSECT] * fat_count)
    fat.extend([FREESECT] * (fat_count * 128 - len(fat)))
    table = struct.pack(f"<{len(fat)}I", *fat)
    sectors.extend(table[i : i + 512] for i in range(0, len(table), 512))
    difat = list(range(fat_start, fat_start + fat_count)) + [FREESECT] * (109 - fat_count)
    header = (
        b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
        + b"\0" * 16
        + struct.pack("<HHHHH", 0x3E, 3, 0xFFFE, 9, 6)
        + b"\0" * 6
        # directory sectors (0 in version 3), FAT sectors, first directory sector, transaction,
        # mini stream cutoff, first mini FAT sector, mini FAT sectors, first DIFAT sector, DIFAT
        # sectors
        + struct.pack("<9I", 0, fat_count, directory_start, 0, 4096, ENDOFCHAIN, 0, ENDOFCHAIN, 0)
        + struct.pack("<109I", *difat)
    )
    assert len(header) == 512
    return header + b"".join(sectors)


TEXT_AT = 2048  # where the text pieces start in the WordDocument stream


def make_doc(
    pieces: list[tuple[str, bool]],
    ccp_text: int | None = None,
    ident: int = 0xA5EC,
    n_fib: int = 0x00C1,
    flags: int = 0x0200,
    fc_clx_shift: int = 0,
) -> bytes:
    """A Word 97 .doc whose text is ``pieces``: (text, compressed) in CP order; a compressed piece
    is stored as cp1252 bytes, the others as UTF-16LE. The main document is the first
    ``ccp_text`` characters (all of them by default). The table stream is 1Table when
    fWhichTblStm (0x0200) is in ``flags``, else 0Table."""
    body = b""
    cps = [0]
    descriptors = b""
    for text, compressed in pieces:
        offset = TEXT_AT + len(body)
        if compressed:
            body += text.encode("cp1252")
            fc = (offset * 2) | 0x40000000
        else:
            body += text.encode("utf-16-le")
            fc = offset
        cps.append(cps[-1] + len(text))
        descriptors += struct.pack("<HIH", 0, fc, 0)
    plc = struct.pack(f"<{len(cps)}I", *cps) + descriptors
    prc = b"\x01" + struct.pack("<h", 2) + b"\x00\x00"  # one property modifier, skipped
    clx = prc + b"\x02" + struct.pack("<I", len(plc)) + plc
    table = b"\0" * 16 + clx
    if ccp_text is None:
        ccp_text = cps[-1]
    fib = struct.pack("<HHHHHH", ident, n_fib, 0, 0x0804, 0, flags).ljust(32, b"\0")
    fib += struct.pack("<H", 14) + b"\0" * 28  # FibRgW97
    rg_lw = [0] * 22
    rg_lw[3] = ccp_text
    fib += struct.pack("<H", 22) + struct.pack("<22i", *rg_lw)  # FibRgLw97
    rg_fc_lcb = [0] * (93 * 2)
    rg_fc_lcb[33 * 2] = 16 + fc_clx_shift  # fcClx
    rg_fc_lcb[33 * 2 + 1] = len(clx)  # lcbClx
    fib += struct.pack("<H", 93) + struct.pack(f"<{93 * 2}I", *rg_fc_lcb)
    fib += struct.pack("<H", 0)  # cswNew
    word = fib.ljust(TEXT_AT, b"\0") + body
    table_name = "1Table" if flags & 0x0200 else "0Table"
    return make_ole({"WordDocument": word, table_name: table})


# -- txt ----------------------------------------------------------------------------------------

CHINESE = "刘备是刘禅的父亲。\n诸葛亮是蜀国的丞相！"


def test_txt_utf8():
    assert extract_text("a.txt", CHINESE.encode("utf-8")) == CHINESE


def test_txt_utf8_with_bom():
    assert extract_text("a.txt", b"\xef\xbb\xbf" + CHINESE.encode("utf-8")) == CHINESE


def test_txt_utf16_with_bom():
    assert extract_text("a.txt", CHINESE.encode("utf-16")) == CHINESE
    assert extract_text("a.txt", b"\xfe\xff" + CHINESE.encode("utf-16-be")) == CHINESE


def test_txt_gb18030_from_chinese_windows():
    data = (CHINESE + "\r\n第三行").encode("gb18030")
    with pytest.raises(UnicodeDecodeError):
        data.decode("utf-8")
    assert extract_text("a.txt", data) == CHINESE + "\n第三行"


def test_txt_line_endings_and_control_characters_are_normalised():
    data = "one\r\ntwo\rthree\x07\x1b\tfour\x0cfive\u2028six".encode()
    assert extract_text("a.TXT", data) == "one\ntwo\nthree\tfour\nfive\nsix"


def test_txt_of_binary_junk_is_refused():
    junk = bytes(range(256)) * 8
    assert refused("junk.txt", junk) == "junk.txt is not a text file (it contains binary data)"
    control_junk = bytes(range(1, 32)) * 40  # no NUL, mostly control characters
    assert refused("junk.txt", control_junk) == (
        "junk.txt is not a text file (it contains binary data)"
    )


def test_txt_in_an_unknown_encoding_is_refused():
    assert "not a text file in a known encoding" in refused("a.txt", b"abc\xff\xfe\xfd\x80 def")


def test_txt_with_only_whitespace_has_no_text():
    assert refused("blank.txt", b"  \r\n\t \r\n") == "blank.txt has no text"
    assert refused("empty.txt", b"") == "empty.txt has no text"


# -- docx ---------------------------------------------------------------------------------------


def test_docx_paragraphs_and_tables_in_document_order():
    def build(document):
        document.add_heading("三国人物", level=1)
        document.add_paragraph("刘备是刘禅的父亲。")
        table = document.add_table(rows=3, cols=3)
        rows = [["人物", "关系", "人物"], ["刘备", "父子", "刘禅"], ["诸葛亮", "君臣", "刘备"]]
        for r, row in enumerate(rows):
            for c, value in enumerate(row):
                table.cell(r, c).text = value
        document.add_paragraph("表格之后的段落。")
        paragraph = document.add_paragraph("Line one")
        paragraph.add_run().add_break()
        paragraph.add_run("line two\tafter a tab")

    assert extract_text("三国.docx", make_docx(build)) == (
        "三国人物\n"
        "刘备是刘禅的父亲。\n"
        "人物\t关系\t人物\n"
        "刘备\t父子\t刘禅\n"
        "诸葛亮\t君臣\t刘备\n"
        "表格之后的段落。\n"
        "Line one\nline two\tafter a tab"
    )


def test_docx_vertically_merged_cell_is_read_once():
    def build(document):
        table = document.add_table(rows=2, cols=2)
        table.cell(0, 0).text = "合并"
        table.cell(0, 1).text = "上"
        table.cell(1, 1).text = "下"
        table.cell(0, 0).merge(table.cell(1, 0))

    assert extract_text("m.docx", make_docx(build)) == "合并\t上\n下"


def test_empty_docx_has_no_text():
    assert refused("x.docx", make_docx(lambda document: None)) == "x.docx has no text"


def test_corrupt_docx_is_refused():
    data = make_docx(lambda document: document.add_paragraph("hello"))
    message = "x.docx is damaged and could not be read as a .docx file"
    assert refused("x.docx", data[: len(data) // 2]) == message
    broken = io.BytesIO()
    with zipfile.ZipFile(broken, "w") as package:
        package.writestr("[Content_Types].xml", "<not xml")
        package.writestr("word/document.xml", "<w:document")
    assert refused("x.docx", broken.getvalue()) == message


def test_non_zip_named_docx_is_refused():
    assert refused("x.docx", b"MZ\x90\x00" + b"\0" * 200) == "x.docx is not a Word .docx file"
    assert refused("x.docx", CHINESE.encode()) == "x.docx is not a Word .docx file"


def test_zip_without_a_word_document_is_not_a_docx():
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as package:
        package.writestr("readme.txt", "hello")
    assert refused("x.docx", buffer.getvalue()) == "x.docx is not a Word .docx file"


def test_encrypted_docx_is_refused():
    """Office keeps a password-protected .docx in an OLE2 file with an EncryptedPackage."""
    data = make_ole({"EncryptionInfo": b"\x04\x00\x04\x00", "EncryptedPackage": b"\x01" * 64})
    assert refused("x.docx", data) == "x.docx is encrypted; upload it without a password"


# -- pdf ----------------------------------------------------------------------------------------


def test_pdf_pages_joined_by_newlines():
    assert extract_text("a.pdf", make_pdf(*TWO_PAGES)) == (
        "Alice is the mother of Bob.\nBob lives in Paris.\nPage two says hello."
    )


def test_encrypted_pdf_is_refused_even_with_an_empty_password():
    message = "x.pdf is encrypted; upload it without a password"
    assert refused("x.pdf", encrypt_pdf(make_pdf(*TWO_PAGES), "")) == message
    assert refused("x.pdf", encrypt_pdf(make_pdf(*TWO_PAGES), "secret")) == message


def test_truncated_pdf_is_refused():
    data = make_pdf(*TWO_PAGES)
    message = "x.pdf is incomplete or damaged and could not be read as a PDF"
    assert refused("x.pdf", data[: len(data) // 2]) == message
    assert refused("x.pdf", data[:-10]) == message


def test_corrupt_pdf_is_refused():
    data = b"%PDF-1.7\n" + bytes(range(256)) * 20 + b"\n%%EOF\n"
    assert refused("x.pdf", data) == "x.pdf is incomplete or damaged and could not be read as a PDF"


def test_exe_renamed_pdf_is_refused():
    exe = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff" + b"\0" * 500 + b"This program"
    assert refused("x.pdf", exe) == "x.pdf is not a PDF file"


def test_pdf_without_text_is_refused():
    blank = FPDF()
    blank.add_page()
    assert refused("scan.pdf", bytes(blank.output())) == "scan.pdf has no text"


# -- doc ----------------------------------------------------------------------------------------


def test_doc_with_8_bit_and_16_bit_pieces():
    data = make_doc(
        [
            ("Liu Bei was the father of Liu Shan. \u201cQuoted\u201d caf\u00e9.\r", True),
            ("刘备是刘禅的父亲。\r", False),
            ("Last line\r", True),
        ]
    )
    assert olefile.isOleFile(io.BytesIO(data))
    assert extract_text("三国.doc", data) == (
        "Liu Bei was the father of Liu Shan. \u201cQuoted\u201d caf\u00e9.\n"
        "刘备是刘禅的父亲。\nLast line\n"
    )


def test_doc_main_text_only():
    """Footnotes and headers follow the main document in the CP space: ccpText cuts them off."""
    main = "正文。\r"
    data = make_doc([(main, False), ("FOOTNOTE TEXT\r", True)], ccp_text=len(main))
    assert extract_text("a.doc", data) == "正文。\n"


def test_doc_fields_tables_and_special_characters():
    text = (
        'See \x13 HYPERLINK "http://x.example" \x14the site\x15 now\x0bnext line\r'
        "\x13 PAGE \x15page field gone\r"
        "\x13 IF \x13 = 1 \x14 1 \x15 = 1 \x14nested\x15 field\r"
        "a\x07b\x07\x07c\x07d\x07\x07"
        "non\x1ebreaking soft\x1fhyphen\x0cpicture\x01 here\r"
    )
    assert extract_text("a.doc", make_doc([(text, False)])) == (
        "See the site now\nnext line\n"
        "page field gone\n"
        "nested field\n"
        "a\tb\nc\td\n"
        "non-breaking softhyphen\npicture here\n"
    )


def test_doc_with_0table_stream():
    data = make_doc([("Zero table.\r", True)], flags=0)
    assert extract_text("a.doc", data) == "Zero table.\n"


def test_encrypted_doc_is_refused():
    data = make_doc([("secret\r", True)], flags=0x0200 | 0x0100)
    assert refused("x.doc", data) == "x.doc is encrypted; upload it without a password"


def test_word_95_doc_is_refused():
    data = make_doc([("old\r", True)], ident=0xA5DC, n_fib=101)
    assert refused("x.doc", data) == (
        "x.doc is in a Word format older than Word 97; save it as .docx"
    )


def test_damaged_doc_is_refused():
    data = make_doc([("text\r", True)], fc_clx_shift=5000)  # the CLX is not where the FIB says
    assert refused("x.doc", data) == "could not read the text of x.doc; save it as .docx"
    truncated = make_doc([("text\r", True)])[:1536]
    assert refused("x.doc", truncated) == "could not read the text of x.doc; save it as .docx"


def test_empty_doc_has_no_text():
    assert refused("x.doc", make_doc([("\r", True)])) == "x.doc has no text"


def test_ole_file_that_is_not_a_word_document():
    data = make_ole({"Workbook": b"\x09\x08" + b"\0" * 100})  # an Excel .xls renamed
    assert refused("x.doc", data) == "x.doc is not a Word .doc file"


def test_non_ole_file_named_doc_is_refused():
    assert refused("x.doc", b"MZ\x90\x00" + b"\0" * 600) == "x.doc is not a Word .doc file"
    assert refused("x.doc", CHINESE.encode()) == "x.doc is not a Word .doc file"
    assert refused("x.doc", b"{\\rtf1\\ansi hello}") == (
        "x.doc is not a Word .doc file (it is an RTF file); save it as .docx"
    )
    docx_data = make_docx(lambda document: document.add_paragraph("hi"))
    assert refused("x.doc", docx_data) == (
        "x.doc is not a Word .doc file (it looks like a .docx file)"
    )


def test_random_damage_to_a_doc_gives_document_errors_only():
    data = bytearray(make_doc([("刘备是刘禅的父亲。\r", False), ("Hello world.\r", True)]))
    for position in range(0, len(data), 97):
        damaged = bytearray(data)
        damaged[position] ^= 0xFF
        try:
            extract_text("x.doc", bytes(damaged))
        except DocumentError:
            pass


# -- types --------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["photo.jpg", "sheet.xlsx", "noextension", "archive.zip"])
def test_other_types_are_refused_naming_the_accepted_ones(name):
    message = refused(name, b"anything")
    assert message.startswith(name)
    assert "txt, doc, docx, pdf" in message


def test_the_message_names_the_base_name():
    assert refused("folder/sub\\x.pdf", b"MZ") == "x.pdf is not a PDF file"
