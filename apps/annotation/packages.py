"""What an annotation upload brings: the spec's "support 'Single file' and 'Compressed package'
for uploading. When upload a single file, support the file types of txt, doc, docx and pdf. A
maximum of 4 files can be uploaded at one time, and each file shall not exceed 2M."

Pure Python (no Django, no database): ``unpack(files)`` takes what the user sent, each entry a
document or a ``.zip`` package, and returns the documents to import as ``(name, data)``, or raises
``UploadError`` with a message naming the file and the rule.

* At least one file; at most ``MAX_FILES`` documents in all, the members of packages counted.
* Each document at most ``MAX_FILE_BYTES`` (2 MB) and not empty; a package at most
  ``MAX_PACKAGE_BYTES`` (room for ``MAX_FILES`` documents of the largest size).
* Package members: directories, ``__MACOSX/``, ``.DS_Store``, ``._*`` (macOS), ``Thumbs.db`` and
  ``desktop.ini`` are ignored; absolute paths, ``..``, symbolic links, encrypted members, nested
  archives and members of other types are refused. A member's declared size is checked before it
  is read and the read is bounded, so a zip bomb (even one whose header lies) inflates at most
  ``MAX_FILE_BYTES + 1`` bytes per member. A document from a package is named by its base name.
* Member names that are not flagged UTF-8 (zips made on Chinese Windows) are decoded as UTF-8 when
  they are valid UTF-8, else as GB18030, not as the CP437 the zip format assumes.

The documents' content is not looked at here: ``documents.extract_text`` does that.
"""

import io
import stat
import zipfile

__all__ = [
    "DOCUMENT_TYPES",
    "MAX_FILES",
    "MAX_FILE_BYTES",
    "MAX_PACKAGE_BYTES",
    "UploadError",
    "unpack",
]

MAX_FILES = 4
MAX_FILE_BYTES = 2 * 1024 * 1024
MAX_PACKAGE_BYTES = MAX_FILES * MAX_FILE_BYTES

DOCUMENT_TYPES = ("txt", "doc", "docx", "pdf")
PACKAGE_TYPES = ("zip",)
ARCHIVE_TYPES = ("zip", "rar", "7z", "tar", "gz", "tgz", "bz2", "xz", "tbz2", "txz", "zst", "lz")

_IGNORED_NAMES = {".ds_store", "thumbs.db", "desktop.ini"}
_READABLE_METHODS = (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA)
_MB = 1024 * 1024


class UploadError(ValueError):
    """An upload that breaks a rule; ``str(error)`` is meant for the user."""


def _base_name(path: str) -> str:
    return path.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1]


def _extension(name: str) -> str:
    base = _base_name(name)
    return base.rsplit(".", 1)[-1].lower() if "." in base else ""


def _size(size: int) -> str:
    shown = f"{size / _MB:.1f} MB"
    return f"{size:,} bytes" if shown == f"{MAX_FILE_BYTES / _MB:.1f} MB" else shown


def _check_document_size(name: str, size: int) -> None:
    if size > MAX_FILE_BYTES:
        raise UploadError(
            f"{name} is {_size(size)}; the limit is {MAX_FILE_BYTES // _MB} MB per file"
        )
    if size == 0:
        raise UploadError(f"{name} is empty")


def _types_text() -> str:
    return ", ".join(DOCUMENT_TYPES)


class _Planned:
    """A document to return: uploaded as such (``data``) or a member of a package, read last."""

    __slots__ = ("name", "data", "package_name", "package", "member", "path")

    def __init__(self, name, data, package_name=None, package=None, member=None, path=None):
        self.name = name
        self.data = data
        self.package_name = package_name
        self.package = package
        self.member = member
        self.path = path

    def read(self) -> bytes:
        """The document's content; a member is read with at most MAX_FILE_BYTES + 1 bytes
        inflated whatever its header says (zipfile also stops at the declared size and then
        checks the CRC, so a header that lies about the size makes the read fail)."""
        if self.data is not None:
            return self.data
        try:
            with self.package.open(self.member) as stream:
                content = stream.read(MAX_FILE_BYTES + 1)
        except Exception:  # BadZipFile (bad CRC, a lying header), zlib.error, EOFError, ...
            raise UploadError(
                f"{self.package_name} is damaged: {self.path} could not be read"
            ) from None
        _check_document_size(self.path, len(content))
        return content


def unpack(files: list[tuple[str, bytes]]) -> list[tuple[str, bytes]]:
    """The documents ``(name, data)`` to import from the uploaded ``files`` (each a txt, doc, docx
    or pdf document, or a zip package of them), in the order sent; ``UploadError`` when a rule is
    broken. Nothing of a package is decompressed before every rule that can be checked on the
    package's directory has passed."""
    if not files:
        raise UploadError("no files were uploaded")
    # First the checks on names and declared sizes, for every file...
    planned: list[_Planned] = []
    for name, data in files:
        shown = _base_name(name) or name
        extension = _extension(shown)
        if extension in PACKAGE_TYPES:
            planned.extend(_plan_package(shown, data))
        elif extension in DOCUMENT_TYPES:
            _check_document_size(shown, len(data))
            planned.append(_Planned(shown, data))
        else:
            raise UploadError(
                f"{shown}: this type of file is not accepted; upload {_types_text()} "
                "documents or a zip package of them"
            )
    if not planned:
        raise UploadError("the upload holds no documents")
    if len(planned) > MAX_FILES:
        raise UploadError(f"{len(planned)} files: at most {MAX_FILES} per upload")
    # ...then the reading, bounded.
    return [(entry.name, entry.read()) for entry in planned]


def _member_name(member: zipfile.ZipInfo) -> str:
    """The member's path as its maker meant it: zips made on Chinese Windows store GBK names
    without the UTF-8 flag, which zipfile decodes as CP437."""
    name = member.filename
    if member.flag_bits & 0x800:
        return name
    try:
        raw = name.encode("cp437")
    except UnicodeEncodeError:
        return name
    for encoding in ("utf-8", "gb18030"):
        try:
            return raw.decode(encoding)
        except UnicodeDecodeError:
            continue
    return name


def _leaves_package(path: str) -> bool:
    if path.startswith("/") or (len(path) >= 2 and path[1] == ":"):  # /x, C:x, C:/x
        return True
    return ".." in path.split("/")


def _plan_package(package_name: str, data: bytes):
    if len(data) > MAX_PACKAGE_BYTES:
        raise UploadError(
            f"{package_name} is {len(data) / _MB:.1f} MB; the limit is "
            f"{MAX_PACKAGE_BYTES // _MB} MB per zip package"
        )
    try:
        package = zipfile.ZipFile(io.BytesIO(data))
        members = package.infolist()
    except Exception:  # BadZipFile, and odd errors (ValueError, OSError, ...) on damaged files
        raise UploadError(f"{package_name} is not a valid zip file") from None
    planned = []
    other_types = []
    for member in members:
        path = _member_name(member).replace("\\", "/")
        parts = [part for part in path.split("/") if part]
        if _leaves_package(path):
            raise UploadError(f"a zip member's path leaves the package: {path}")
        if member.is_dir() or path.endswith("/") or not parts:
            continue
        base = parts[-1]
        if "__MACOSX" in parts or base.lower() in _IGNORED_NAMES or base.startswith("._"):
            continue
        mode = member.external_attr >> 16
        if stat.S_ISLNK(mode):
            raise UploadError(f"symbolic links are not accepted in a zip package: {path}")
        extension = _extension(base)
        if extension in ARCHIVE_TYPES:
            raise UploadError(f"nested archives are not accepted: {path}")
        if extension not in DOCUMENT_TYPES:
            other_types.append(path)
            continue
        if member.flag_bits & 0x1:
            raise UploadError(f"encrypted zip members are not accepted: {path}")
        if member.compress_type not in _READABLE_METHODS:
            raise UploadError(
                f"{package_name} uses a compression method that cannot be read: {path}"
            )
        _check_document_size(path, member.file_size)
        planned.append(_Planned(base, None, package_name, package, member, path))
    if other_types:
        raise UploadError(
            f"{package_name} holds files of types that are not accepted: "
            + ", ".join(other_types[:5])
            + (f" and {len(other_types) - 5} more" if len(other_types) > 5 else "")
            + f"; only {_types_text()} documents can be in a package"
        )
    if not planned:
        raise UploadError(f"{package_name} holds no documents")
    return planned
