"""The text of an uploaded annotation document: the spec's "when upload a single file, support the
file types of txt, doc, docx and pdf".

Pure Python (no Django, no database): ``extract_text(name, data)`` returns the document's text, or
raises ``DocumentError`` with a message a user can read (it names the file and the problem).

* The type comes from the extension and the content must match it (magic bytes), so an ``.exe``
  renamed ``.pdf`` is refused.
* ``.txt``: UTF-8 (with or without BOM), UTF-16/UTF-32 with BOM, else GB18030 (what Chinese Windows
  writes); binary data (NUL bytes, mostly control characters) is refused.
* ``.docx`` (python-docx): the body's paragraphs in order, joined by ``"\\n"``; a table gives one
  line per row, its cells' text joined by ``"\\t"`` (vertically merged cells once); content
  controls are looked into. Headers, footers, footnotes and text boxes are not included.
* ``.pdf`` (pypdf): the text of the pages joined by ``"\\n"``; encrypted PDFs are refused, even
  those that open with an empty password.
* ``.doc`` (Word 97-2003 binary, an OLE2 file read with olefile): the main document's text through
  the FIB and the piece table (the CLX in the 0Table/1Table stream), 8-bit (cp1252) and 16-bit
  (UTF-16LE) pieces. Field codes are dropped (their results kept), a table row becomes one line
  with its cells joined by ``"\\t"``. Encrypted files and files older than Word 97 are refused.

Then line endings become ``"\\n"``, NUL and other control characters (except ``\\n`` and ``\\t``)
and BOMs are removed, and a document with no text left is refused.
"""

import io
import re
import struct
import zipfile

import docx
import olefile
from docx.oxml.ns import qn
from docx.text.paragraph import Paragraph
from pypdf import PdfReader

__all__ = ["ACCEPTED_TYPES", "DocumentError", "extract_text"]

ACCEPTED_TYPES = ("txt", "doc", "docx", "pdf")

# A .docx is a zip: the most its parts may hold once uncompressed (python-docx reads them all).
MAX_DOCX_UNCOMPRESSED = 100 * 1024 * 1024

_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_ZIP_MAGIC = b"PK\x03\x04"


class DocumentError(ValueError):
    """A document that cannot be imported; ``str(error)`` is meant for the user."""


def _display_name(name: str) -> str:
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    return base or name


def _extension(name: str) -> str:
    base = _display_name(name)
    return base.rsplit(".", 1)[-1].lower() if "." in base else ""


def extract_text(name: str, data: bytes) -> str:
    """The text of the document ``name`` whose content is ``data``; ``DocumentError`` when it is
    not a document of an accepted type, is damaged or encrypted, or has no text."""
    shown = _display_name(name)
    extension = _extension(name)
    readers = {"txt": _txt_text, "docx": _docx_text, "pdf": _pdf_text, "doc": _doc_text}
    reader = readers.get(extension)
    if reader is None:
        raise DocumentError(
            f"{shown}: this type of file is not accepted; the accepted types are "
            + ", ".join(ACCEPTED_TYPES)
        )
    text = _normalise(reader(shown, data))
    if not text.strip():
        raise DocumentError(f"{shown} has no text")
    return text


# -- normalisation ------------------------------------------------------------------------------

_LINE_ENDINGS = re.compile("\r\n|[\r\v\f\x85\u2028\u2029]")
# C0 and C1 controls but \t and \n, DEL, and the BOM / zero width no-break space.
_CONTROLS = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ufeff]")


def _normalise(text: str) -> str:
    return _CONTROLS.sub("", _LINE_ENDINGS.sub("\n", text))


# -- txt ----------------------------------------------------------------------------------------

# Controls that do not occur in text files (\t \n \v \f \r and ESC, SUB (DOS end of file) allowed).
_BINARY_CONTROLS = re.compile("[\x00-\x08\x0e-\x19\x1c-\x1f\x7f]")

_BOMS = (
    (b"\xef\xbb\xbf", "utf-8"),
    (b"\xff\xfe\x00\x00", "utf-32-le"),
    (b"\x00\x00\xfe\xff", "utf-32-be"),
    (b"\xff\xfe", "utf-16-le"),
    (b"\xfe\xff", "utf-16-be"),
)


def _txt_text(name: str, data: bytes) -> str:
    text = None
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            try:
                text = data[len(bom) :].decode(encoding)
            except UnicodeDecodeError:
                raise DocumentError(
                    f"{name} is not a valid text file: it starts like {encoding.upper()} text "
                    "but is not"
                ) from None
            break
    if text is None:
        if b"\x00" in data:
            raise DocumentError(f"{name} is not a text file (it contains binary data)")
        for encoding in ("utf-8", "gb18030"):
            try:
                text = data.decode(encoding)
                break
            except UnicodeDecodeError:
                continue
        else:
            raise DocumentError(
                f"{name} is not a text file in a known encoding (UTF-8, UTF-16 with BOM or GB18030)"
            )
    controls = len(_BINARY_CONTROLS.findall(text))
    if controls and controls * 20 > len(text):  # more than 5 % control characters
        raise DocumentError(f"{name} is not a text file (it contains binary data)")
    return text


# -- docx ---------------------------------------------------------------------------------------


def _docx_text(name: str, data: bytes) -> str:
    if not data.startswith(_ZIP_MAGIC):
        if data.startswith(_OLE_MAGIC) and _ole_has_stream(data, "EncryptedPackage"):
            raise DocumentError(f"{name} is encrypted; upload it without a password")
        raise DocumentError(f"{name} is not a Word .docx file")
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as package:
            members = package.infolist()
    except Exception:
        raise DocumentError(f"{name} is damaged and could not be read as a .docx file") from None
    if not any(member.filename == "word/document.xml" for member in members):
        raise DocumentError(f"{name} is not a Word .docx file")
    if sum(member.file_size for member in members) > MAX_DOCX_UNCOMPRESSED:
        raise DocumentError(f"{name} is too large once uncompressed")
    try:
        document = docx.Document(io.BytesIO(data))
        lines: list[str] = []
        _docx_blocks(document.element.body, lines)
    except DocumentError:
        raise
    except Exception:
        raise DocumentError(f"{name} is damaged and could not be read as a .docx file") from None
    return "\n".join(lines)


_W_P, _W_TBL, _W_SDT, _W_SDT_CONTENT = qn("w:p"), qn("w:tbl"), qn("w:sdt"), qn("w:sdtContent")
_W_TR, _W_TC = qn("w:tr"), qn("w:tc")


def _docx_blocks(container, lines: list[str]) -> None:
    """The text of the paragraphs and tables in ``container`` (a body, a table cell or a content
    control's content), in document order."""
    for child in container.iterchildren():
        if child.tag == _W_P:
            lines.append(Paragraph(child, None).text)
        elif child.tag == _W_TBL:
            _docx_table(child, lines)
        elif child.tag == _W_SDT:
            inner = child.find(_W_SDT_CONTENT)
            if inner is not None:
                _docx_blocks(inner, lines)


def _docx_table(table, lines: list[str]) -> None:
    for row in table.iterchildren(_W_TR):
        cells = []
        for cell in row.iterchildren(_W_TC):
            if getattr(cell, "vMerge", None) == "continue":
                continue  # the lower part of a vertically merged cell: its text is above
            cell_lines: list[str] = []
            _docx_blocks(cell, cell_lines)
            text = " ".join(" ".join(line.split()) for line in cell_lines if line.strip())
            if text:
                cells.append(text)
        if cells:
            lines.append("\t".join(cells))


# -- pdf ----------------------------------------------------------------------------------------


def _pdf_text(name: str, data: bytes) -> str:
    # The header may follow a little junk (readers accept it in the first 1024 bytes); the end of
    # file marker must be near the end, or the file was cut short.
    if b"%PDF-" not in data[:1024]:
        raise DocumentError(f"{name} is not a PDF file")
    if b"%%EOF" not in data[-1024:]:
        raise DocumentError(f"{name} is incomplete or damaged and could not be read as a PDF")
    try:
        reader = PdfReader(io.BytesIO(data), strict=False)
        if reader.is_encrypted:
            raise DocumentError(f"{name} is encrypted; upload it without a password")
        pages = [page.extract_text() or "" for page in reader.pages]
    except DocumentError:
        raise
    except Exception:  # pypdf raises many kinds of errors on damaged or malicious files
        raise DocumentError(
            f"{name} is incomplete or damaged and could not be read as a PDF"
        ) from None
    return "\n".join(pages)


# -- doc ----------------------------------------------------------------------------------------


class _DocFormatError(Exception):
    """The .doc is not as the format says; turned into the DocumentError asking for a .docx."""


def _ole_has_stream(data: bytes, stream: str) -> bool:
    try:
        with olefile.OleFileIO(io.BytesIO(data)) as ole:
            return ole.exists(stream)
    except Exception:
        return False


def _doc_text(name: str, data: bytes) -> str:
    if not data.startswith(_OLE_MAGIC):
        if data.startswith(_ZIP_MAGIC):
            raise DocumentError(f"{name} is not a Word .doc file (it looks like a .docx file)")
        if data.startswith(b"\xdb\xa5"):  # Word 2 for Windows, not an OLE2 file
            raise DocumentError(f"{name} is in a Word format older than Word 97; save it as .docx")
        if data.startswith(b"{\\rtf"):
            raise DocumentError(
                f"{name} is not a Word .doc file (it is an RTF file); save it as .docx"
            )
        raise DocumentError(f"{name} is not a Word .doc file")
    try:
        with olefile.OleFileIO(io.BytesIO(data)) as ole:
            if not ole.exists("WordDocument"):
                if ole.exists("EncryptedPackage"):
                    raise DocumentError(f"{name} is encrypted; upload it without a password")
                raise DocumentError(f"{name} is not a Word .doc file")
            word = ole.openstream("WordDocument").read()
            fib = _read_fib(word)
            if fib.encrypted:
                raise DocumentError(f"{name} is encrypted; upload it without a password")
            if fib.too_old:
                raise DocumentError(
                    f"{name} is in a Word format older than Word 97; save it as .docx"
                )
            table_name = "1Table" if fib.table_1 else "0Table"
            if not ole.exists(table_name):
                raise _DocFormatError(f"no {table_name} stream")
            table = ole.openstream(table_name).read()
        raw = _piece_table_text(word, table, fib)
    except DocumentError:
        raise
    except Exception:  # olefile, struct and bounds errors on a damaged or unusual file
        raise DocumentError(f"could not read the text of {name}; save it as .docx") from None
    return _doc_special_characters(raw)


_OLD_WORD_IDENTS = (0xA5DC, 0xA699, 0xA5DB)


class _Fib:
    __slots__ = ("encrypted", "too_old", "table_1", "ccp_text", "fc_clx", "lcb_clx")


def _read_fib(word: bytes) -> _Fib:
    """The few fields of the File Information Block ([MS-DOC] 2.5.1) the text needs."""
    ident, n_fib = struct.unpack_from("<HH", word, 0)
    (flags,) = struct.unpack_from("<H", word, 0x0A)
    fib = _Fib()
    fib.ccp_text = fib.fc_clx = fib.lcb_clx = 0
    fib.encrypted = bool(flags & 0x0100)  # fEncrypted (also set when obfuscated)
    fib.table_1 = bool(flags & 0x0200)  # fWhichTblStm
    # Word 6 and Word 95 (wIdent 0xA5DC or 0xA699, nFib 101-105) have another FIB and keep their
    # text in a code page that depends on the language: not read.
    fib.too_old = ident in _OLD_WORD_IDENTS or (ident == 0xA5EC and n_fib < 0x00C0)
    if fib.too_old:
        return fib
    if ident != 0xA5EC:
        raise _DocFormatError("not a Word binary document")
    if fib.encrypted:
        return fib
    offset = 32  # after FibBase
    (csw,) = struct.unpack_from("<H", word, offset)
    offset += 2 + 2 * csw  # FibRgW97
    (cslw,) = struct.unpack_from("<H", word, offset)
    offset += 2
    if cslw < 4:
        raise _DocFormatError("FibRgLw97 too short")
    (fib.ccp_text,) = struct.unpack_from("<i", word, offset + 12)  # FibRgLw97.ccpText
    offset += 4 * cslw
    (cb_rg_fc_lcb,) = struct.unpack_from("<H", word, offset)
    offset += 2
    if cb_rg_fc_lcb < 34:
        raise _DocFormatError("FibRgFcLcb97 too short")
    fib.fc_clx, fib.lcb_clx = struct.unpack_from("<II", word, offset + 33 * 8)  # fcClx, lcbClx
    if fib.ccp_text < 0:
        raise _DocFormatError("negative ccpText")
    return fib


def _piece_table_text(word: bytes, table: bytes, fib: _Fib) -> str:
    """The main document's characters (CPs 0 to ccpText) through the piece table ([MS-DOC] 2.9.38
    Clx, 2.8.35 PlcPcd, 2.9.177 Pcd, 2.9.73 FcCompressed)."""
    if fib.fc_clx + fib.lcb_clx > len(table) or fib.lcb_clx == 0:
        raise _DocFormatError("the CLX is outside the table stream")
    clx = table[fib.fc_clx : fib.fc_clx + fib.lcb_clx]
    position = 0
    while True:  # skip the Prc entries (clxt 1) to the Pcdt (clxt 2)
        kind = clx[position]
        if kind == 1:
            (cb_grpprl,) = struct.unpack_from("<h", clx, position + 1)
            if cb_grpprl < 0:
                raise _DocFormatError("negative Prc size")
            position += 3 + cb_grpprl
        elif kind == 2:
            break
        else:
            raise _DocFormatError("unexpected CLX entry")
    (lcb,) = struct.unpack_from("<I", clx, position + 1)
    plc = clx[position + 5 : position + 5 + lcb]
    count = (lcb - 4) // 12
    if lcb < 16 or 4 + 12 * count != lcb or len(plc) != lcb:
        raise _DocFormatError("bad PlcPcd size")
    cps = struct.unpack_from(f"<{count + 1}I", plc, 0)
    pieces: list[str] = []
    total = 0
    for index in range(count):
        cp_start, cp_end = cps[index], cps[index + 1]
        if cp_start >= fib.ccp_text:
            break
        if cp_end < cp_start:
            raise _DocFormatError("piece CPs out of order")
        length = min(cp_end, fib.ccp_text) - cp_start
        total += length
        if total > len(word):  # every character takes at least one byte of the stream
            raise _DocFormatError("more text than the file holds")
        (fc_value,) = struct.unpack_from("<I", plc, 4 * (count + 1) + 8 * index + 2)
        fc = fc_value & 0x3FFFFFFF
        if fc_value & 0x40000000:  # fCompressed: 8-bit characters at fc / 2
            chunk = word[fc // 2 : fc // 2 + length]
            if len(chunk) != length:
                raise _DocFormatError("piece outside the WordDocument stream")
            pieces.append(chunk.decode("cp1252", errors="replace"))
        else:  # UTF-16LE characters at fc
            chunk = word[fc : fc + 2 * length]
            if len(chunk) != 2 * length:
                raise _DocFormatError("piece outside the WordDocument stream")
            pieces.append(chunk.decode("utf-16-le", errors="replace"))
    return "".join(pieces)


_FIELD_MARKS = re.compile("([\x13\x14\x15])")
_DOC_CHARACTERS = str.maketrans(
    {
        "\r": "\n",  # paragraph end
        "\x0b": "\n",  # line break
        "\x0c": "\n",  # page or section break
        "\x0e": "\n",  # column break
        "\x1e": "-",  # non-breaking hyphen
        "\x1f": "",  # optional hyphen
        "\x07": "\t",  # cell mark (a row's end mark, right after its last cell's, is a line end)
    }
)


def _doc_special_characters(raw: str) -> str:
    """Field codes dropped (``\\x13 code \\x14 result \\x15`` keeps the result; nested fields
    too), Word's special characters turned into text."""
    kept: list[str] = []
    open_fields: list[bool] = []  # per open field: still in its code part
    in_code = 0  # how many open fields are in their code part
    for part in _FIELD_MARKS.split(raw):
        if part == "\x13":
            open_fields.append(True)
            in_code += 1
        elif part == "\x14":
            if open_fields and open_fields[-1]:
                open_fields[-1] = False
                in_code -= 1
        elif part == "\x15":
            if open_fields and open_fields.pop():
                in_code -= 1
        elif not in_code:
            kept.append(part)
    text = "".join(kept).replace("\x07\x07", "\r")
    return text.translate(_DOC_CHARACTERS)


def main() -> int:
    """`python -m apps.annotation.documents`: {"files": [[name, base64], ...]} on stdin ->
    {"texts": [...]} or {"error": message} on stdout. The appliance runs this in a child
    process with a time and memory limit (apps.annotation.sandbox): a hostile PDF or zip
    can at worst exhaust the child."""
    import base64
    import json
    import sys

    request = json.load(sys.stdin)
    try:
        texts = [extract_text(name, base64.b64decode(data)) for name, data in request["files"]]
    except DocumentError as exc:
        json.dump({"error": str(exc)}, sys.stdout)
    else:
        json.dump({"texts": texts}, sys.stdout, ensure_ascii=False)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
