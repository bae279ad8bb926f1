"""Safe reading of the zip packages an AutoDL job trains on. No Django import.

The packages come from the user, so every entry is treated as hostile until it has passed
the screens below. What a screen catches becomes a `Refusal` (the entry is skipped, the rest
of the package is still used); only what makes the whole package unusable (not a zip, an
absurd number of entries, the job's expansion budget spent) raises `ArchiveError`.

Screens, in the order they run on each entry (the first one broken names the refusal):

    bad_name            a NUL byte or an empty path in the entry name
    absolute_path       "/etc/x", "\\x", "C:x"
    path_traversal      a ".." component ("/" and "\\" both count as separators: a zip made
                        on Windows may use either)
    symlink             the Unix mode in external_attr says S_IFLNK
    special_file        any other non-regular Unix file type (device, fifo, socket)
    os_metadata         __MACOSX/, ._* AppleDouble files, .DS_Store, Thumbs.db, desktop.ini:
                        junk that archivers add and users never meant as photos
    nested_archive      .zip/.tar/.gz/.tgz/.bz2/.xz/.rar/.7z members (never opened)
    extension           anything but .jpg/.jpeg/.png (case-insensitive)
    encrypted           general-purpose flag bit 0x1
    member_too_large    declared uncompressed size over the per-member cap
    compression_ratio   declared uncompressed / compressed size over the ratio cap
    integrity           while extracting: more bytes than declared, fewer, a bad CRC, or a
                        damaged stream

Extraction never uses the entry's name on disk: an entry is written to a name the caller
chooses (see `extract_member`), inside `dest`, opened with O_EXCL (never overwriting, never
through a planted symlink), after its resolved path has been checked to lie inside `dest`.
The stream is read at most declared size + 1 bytes, so a lying header cannot make us write
more than the caps allow, and the bytes written count against one `ExpansionBudget` shared
by all the job's packages.
"""

from __future__ import annotations

import hashlib
import lzma
import os
import stat
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png"})
ARCHIVE_EXTENSIONS = frozenset({".zip", ".tar", ".gz", ".tgz", ".bz2", ".xz", ".rar", ".7z"})
OS_METADATA_NAMES = frozenset({".ds_store", "thumbs.db", "desktop.ini"})
ENCRYPTED_FLAG = 0x1
UTF8_NAME_FLAG = 0x800
CHUNK_BYTES = 1 << 20


@dataclass(frozen=True)
class ArchiveLimits:
    """Caps against expansion bombs. The defaults leave room for any data set the spec allows
    in practice while keeping one job from filling its host's disk:

    max_entries        200,000: the spec caps a job at 100,000 photos; twice that leaves room
                       for folders and junk, while a central directory of millions of entries
                       is only ever an attack.
    max_member_bytes   64 MiB: ENAS photos are at most 3 MB and transfer-learning photos
                       "temporarily unlimited", but no JPEG/PNG a camera makes comes near it.
    max_total_bytes    32 GiB for all packages together: 100,000 photos of ~300 KB, the size
                       of the workspace disk a single-card job gets.
    max_ratio          100: JPEG and PNG are already compressed, so zip barely shrinks them
                       (ratios near 1); zip bombs live at ratios of 1,000 and more.
    """

    max_entries: int = 200_000
    max_member_bytes: int = 64 << 20
    max_total_bytes: int = 32 << 30
    max_ratio: float = 100.0


class ArchiveError(Exception):
    """The whole package cannot be used; `rule` names the broken rule."""

    def __init__(self, rule: str, message: str):
        super().__init__(message)
        self.rule = rule
        self.message = message


@dataclass(frozen=True)
class Refusal:
    archive: str
    member: str
    rule: str
    reason: str

    def as_dict(self) -> dict:
        return {
            "archive": self.archive,
            "member": self.member,
            "rule": self.rule,
            "reason": self.reason,
        }


@dataclass(frozen=True)
class ScreenedMember:
    """An entry that passed the screens: `parts` are its path components, safe to reason
    about (no "..", no empty or "." components, never absolute)."""

    info: zipfile.ZipInfo
    name: str
    parts: tuple[str, ...]


@dataclass(frozen=True)
class ExtractedFile:
    archive: str
    member: str
    parts: tuple[str, ...]
    path: Path
    size: int
    sha256: str


class ExpansionBudget:
    """Bytes all of a job's packages may still expand to."""

    def __init__(self, total_bytes: int):
        self.total_bytes = total_bytes
        self.left = total_bytes

    def claim(self, size: int) -> None:
        if size > self.left:
            raise ArchiveError(
                "expansion_total",
                f"the training data expands past {self.total_bytes:,} bytes "
                "(expansion_total rule); use fewer or smaller photos",
            )
        self.left -= size


def open_archive(path: Path, limits: ArchiveLimits) -> zipfile.ZipFile:
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise ArchiveError(
            "not_a_zip", f"{path.name} is not a readable zip package: {exc}"
        ) from exc
    if len(archive.infolist()) > limits.max_entries:
        count = len(archive.infolist())
        archive.close()
        raise ArchiveError(
            "too_many_entries",
            f"{path.name} holds {count:,} entries, more than {limits.max_entries:,} "
            "(too_many_entries rule)",
        )
    return archive


def screen_members(
    archive: zipfile.ZipFile, archive_name: str, limits: ArchiveLimits
) -> tuple[list[ScreenedMember], list[Refusal]]:
    """The file entries worth extracting, and a refusal for every other file entry
    (folder entries are neither: they hold nothing)."""
    kept, refused = [], []
    for info in archive.infolist():
        name = display_name(info)
        if info.is_dir() and not _is_link(info):
            continue
        parts = _safe_parts(name)
        broken = _broken_name_rule(name, parts) or _broken_entry_rule(info, parts, limits)
        if broken:
            refused.append(Refusal(archive_name, name, *broken))
        else:
            kept.append(ScreenedMember(info, name, parts))
    return kept, refused


def display_name(info: zipfile.ZipInfo) -> str:
    """The entry name as its maker meant it. Without the UTF-8 flag, zipfile decodes names as
    cp437; archivers on Chinese Windows write GBK there, so a class folder named in Chinese
    would show as mojibake in our messages. Both fail the class-name rule either way."""
    if info.flag_bits & UTF8_NAME_FLAG:
        return info.filename
    raw = info.filename.encode("cp437", errors="replace")
    for encoding in ("utf-8", "gbk"):
        try:
            return raw.decode(encoding)
        except UnicodeDecodeError:
            continue
    return info.filename


def _safe_parts(name: str) -> tuple[str, ...]:
    pieces = name.replace("\\", "/").split("/")
    return tuple(piece for piece in pieces if piece not in ("", "."))


def _broken_name_rule(name: str, parts: tuple[str, ...]) -> tuple[str, str] | None:
    if "\x00" in name or not parts:
        return "bad_name", "the entry name is empty or holds a NUL byte"
    if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        return "absolute_path", "absolute entry paths could write anywhere on the machine"
    if ".." in parts:
        return "path_traversal", "a '..' in the entry path would write outside the data folder"
    return None


def _broken_entry_rule(
    info: zipfile.ZipInfo, parts: tuple[str, ...], limits: ArchiveLimits
) -> tuple[str, str] | None:
    file_type = stat.S_IFMT(info.external_attr >> 16)
    if file_type == stat.S_IFLNK:
        return "symlink", "symbolic links are not followed"
    if file_type not in (0, stat.S_IFREG):
        return "special_file", "only regular files are read"
    base = parts[-1].lower()
    if parts[0] == "__MACOSX" or base.startswith("._") or base in OS_METADATA_NAMES:
        return "os_metadata", "operating-system metadata, not a photo"
    suffix = PurePosixPath(base).suffix
    if suffix in ARCHIVE_EXTENSIONS:
        return "nested_archive", "archives inside the package are not opened; put photos in it"
    if suffix not in IMAGE_EXTENSIONS:
        return "extension", "only .jpg, .jpeg and .png photos are used"
    if info.flag_bits & ENCRYPTED_FLAG:
        return "encrypted", "encrypted entries cannot be read; zip without a password"
    if info.file_size > limits.max_member_bytes:
        return (
            "member_too_large",
            f"{info.file_size:,} bytes uncompressed, over the {limits.max_member_bytes:,} cap",
        )
    ratio = info.file_size / max(info.compress_size, 1)
    if ratio > limits.max_ratio:
        return (
            "compression_ratio",
            f"expands {ratio:,.0f} times, over the {limits.max_ratio:g} times cap",
        )
    return None


def _is_link(info: zipfile.ZipInfo) -> bool:
    return stat.S_ISLNK(info.external_attr >> 16)


def extract_member(
    archive: zipfile.ZipFile,
    archive_name: str,
    member: ScreenedMember,
    dest: Path,
    relative_target: str,
    budget: ExpansionBudget,
) -> ExtractedFile | Refusal:
    """Write one screened entry to dest/relative_target. Raises ArchiveError when the budget
    is spent (the job's data is too big as a whole, not this entry)."""
    root = dest.resolve()
    target = (root / relative_target).resolve()
    if not target.is_relative_to(root) or target == root:
        return Refusal(archive_name, member.name, "path_traversal", "target leaves the data folder")
    budget.claim(member.info.file_size)
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        size, digest = _copy_capped(archive, member.info, target)
    except _IntegrityError as exc:
        target.unlink(missing_ok=True)
        return Refusal(archive_name, member.name, "integrity", str(exc))
    return ExtractedFile(archive_name, member.name, member.parts, target, size, digest)


class _IntegrityError(Exception):
    pass


# What zipfile and its decompressors raise on a damaged entry. zipfile itself stops at the
# declared size and then checks the CRC, so an entry that lies about its size usually shows
# up here as "Bad CRC-32".
_DAMAGED_ENTRY_ERRORS = (
    zipfile.BadZipFile,
    zlib.error,
    lzma.LZMAError,
    EOFError,
    NotImplementedError,
    RuntimeError,
    OSError,
)


def _copy_capped(archive: zipfile.ZipFile, info: zipfile.ZipInfo, target: Path) -> tuple[int, str]:
    """Stream the entry into target, reading at most declared size + 1 bytes: one byte past
    the declaration proves it lies, without ever holding or writing more."""
    declared = info.file_size
    digest = hashlib.sha256()
    written = 0
    try:
        source = archive.open(info)
    except _DAMAGED_ENTRY_ERRORS as exc:
        raise _IntegrityError(f"damaged entry: {exc}") from exc
    with source, _create_new(target) as out:
        for chunk in _read_at_most(source, declared + 1):
            written += len(chunk)
            if written > declared:
                raise _IntegrityError(f"holds more than its declared {declared:,} bytes")
            digest.update(chunk)
            out.write(chunk)
    if written != declared:
        raise _IntegrityError(f"holds {written:,} bytes, not its declared {declared:,}")
    return written, digest.hexdigest()


def _read_at_most(source, limit: int):
    """Chunks of source, limit bytes in all at most. Only read errors become integrity
    errors: a failing write (a full disk) is the machine's problem, not the entry's."""
    left = limit
    while left > 0:
        try:
            chunk = source.read(min(CHUNK_BYTES, left))
        except _DAMAGED_ENTRY_ERRORS as exc:
            raise _IntegrityError(f"damaged entry: {exc}") from exc
        if not chunk:
            return
        left -= len(chunk)
        yield chunk


def _create_new(target: Path):
    """O_EXCL: never overwrite a file, never write through a symlink planted at target."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    return os.fdopen(os.open(target, flags, 0o644), "wb")
