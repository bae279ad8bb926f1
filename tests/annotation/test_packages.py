"""Upload rules: single files (txt, doc, docx, pdf) or zip packages, at most 4 documents per
upload, each at most 2 MB, and the zip members a package may not hold. Zips are made in memory."""

import io
import stat
import struct
import zipfile

import pytest

from apps.annotation.packages import MAX_FILE_BYTES, MAX_FILES, UploadError, unpack


def make_zip(members, compression=zipfile.ZIP_DEFLATED) -> bytes:
    """``members``: (name or ZipInfo, bytes) pairs."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as package:
        for name, data in members:
            package.writestr(name, data)
    return buffer.getvalue()


def refused(files) -> str:
    with pytest.raises(UploadError) as caught:
        unpack(files)
    return str(caught.value)


def test_limits_are_the_specs():
    assert MAX_FILES == 4
    assert MAX_FILE_BYTES == 2 * 1024 * 1024


def test_single_documents_pass_through():
    files = [("a.txt", b"hello"), ("b.DOCX", b"PK.."), ("c.pdf", b"%PDF"), ("d.doc", b"x")]
    assert unpack(files) == files


def test_documents_are_named_by_their_base_name():
    assert unpack([("C:\\Users\\li\\报告.txt", b"x"), ("dir/sub/a.pdf", b"y")]) == [
        ("报告.txt", b"x"),
        ("a.pdf", b"y"),
    ]


def test_no_files():
    assert refused([]) == "no files were uploaded"


def test_a_document_larger_than_2_mb():
    big = b"x" * (3 * 1024 * 1024)
    assert refused([("big.pdf", big)]) == "big.pdf is 3.0 MB; the limit is 2 MB per file"
    just_over = b"x" * (MAX_FILE_BYTES + 1)
    assert refused([("a.txt", just_over)]) == (
        "a.txt is 2,097,153 bytes; the limit is 2 MB per file"
    )
    assert unpack([("a.txt", b"x" * MAX_FILE_BYTES)]) == [("a.txt", b"x" * MAX_FILE_BYTES)]


def test_an_empty_document():
    assert refused([("a.txt", b"")]) == "a.txt is empty"


def test_at_most_4_documents():
    files = [(f"{i}.txt", b"x") for i in range(5)]
    assert refused(files) == "5 files: at most 4 per upload"
    assert len(unpack(files[:4])) == 4


def test_members_of_packages_count():
    package = make_zip([("a.txt", b"a"), ("b.txt", b"b"), ("c.txt", b"c")])
    assert refused([("p.zip", package), ("d.pdf", b"d"), ("e.doc", b"e")]) == (
        "5 files: at most 4 per upload"
    )
    assert unpack([("p.zip", package), ("d.pdf", b"d")]) == [
        ("a.txt", b"a"),
        ("b.txt", b"b"),
        ("c.txt", b"c"),
        ("d.pdf", b"d"),
    ]


def test_other_types_are_refused():
    message = refused([("photo.jpg", b"\xff\xd8")])
    assert message.startswith("photo.jpg: this type of file is not accepted")
    assert "txt, doc, docx, pdf" in message
    assert refused([("README", b"x")]).startswith("README: this type of file is not accepted")


def test_package_members_use_base_names_and_keep_their_order():
    package = make_zip(
        [("docs/", b""), ("docs/第一章.txt", "正文".encode()), ("docs/sub/b.DOCX", b"PK")]
    )
    assert unpack([("资料.zip", package)]) == [("第一章.txt", "正文".encode()), ("b.DOCX", b"PK")]


def test_stored_and_other_compression_methods():
    for method in (zipfile.ZIP_STORED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA):
        assert unpack([("p.zip", make_zip([("a.txt", b"abc")], method))]) == [("a.txt", b"abc")]


def test_directories_and_macos_and_windows_litter_are_ignored():
    package = make_zip(
        [
            ("folder/", b""),
            ("__MACOSX/folder/._a.txt", b"resource fork"),
            ("folder/.DS_Store", b"\0\0\0\1Bud1"),
            ("._a.txt", b"apple double"),
            ("folder/Thumbs.db", b"\xd0\xcf"),
            ("folder/a.txt", b"text"),
        ]
    )
    assert unpack([("p.zip", package)]) == [("a.txt", b"text")]


def test_a_package_without_documents():
    assert refused([("p.zip", make_zip([("folder/", b"")]))]) == "p.zip holds no documents"


def test_gbk_member_names_from_chinese_windows():
    """Chinese Windows writes GBK names without the UTF-8 flag; zipfile reads them as CP437."""
    package = bytearray(make_zip([("abcd.txt", "正文".encode())]))
    gbk = "报告.txt".encode("gbk")
    assert len(gbk) == len(b"abcd.txt")
    package = bytes(package).replace(b"abcd.txt", gbk)
    assert unpack([("p.zip", package)]) == [("报告.txt", "正文".encode())]


@pytest.mark.parametrize("path", ["../x.txt", "a/../../x.txt", "/etc/x.txt", "C:/x.txt"])
def test_member_paths_that_leave_the_package(path):
    package = make_zip([(zipfile.ZipInfo(path), b"x")])  # zipfile keeps such names as given
    assert zipfile.ZipFile(io.BytesIO(package)).namelist() == [path]
    assert refused([("p.zip", package)]) == f"a zip member's path leaves the package: {path}"


def test_backslash_member_path_that_leaves_the_package():
    package = make_zip([("..\\x.txt", b"x")])
    assert refused([("p.zip", package)]) == "a zip member's path leaves the package: ../x.txt"


def test_symbolic_links_are_refused():
    info = zipfile.ZipInfo("link.txt")
    info.create_system = 3
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    package = make_zip([(info, b"/etc/passwd")])
    assert refused([("p.zip", package)]) == (
        "symbolic links are not accepted in a zip package: link.txt"
    )


def test_encrypted_members_are_refused():
    package = bytearray(make_zip([("secret.txt", b"x")]))
    # Set the "encrypted" general purpose flag in the local and central headers.
    for signature, flag_offset in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        at = package.index(signature) + flag_offset
        (flags,) = struct.unpack_from("<H", package, at)
        struct.pack_into("<H", package, at, flags | 0x1)
    assert refused([("p.zip", bytes(package))]) == (
        "encrypted zip members are not accepted: secret.txt"
    )


@pytest.mark.parametrize(
    "inner", ["inner.zip", "a.rar", "a.7z", "a.tar", "a.tar.gz", "a.tgz", "a.bz2", "a.xz"]
)
def test_nested_archives_are_refused(inner):
    package = make_zip([("a.txt", b"x"), (inner, b"whatever")])
    assert refused([("p.zip", package)]) == f"nested archives are not accepted: {inner}"


def test_members_of_other_types_are_refused_by_name():
    package = make_zip([("a.txt", b"x"), ("img/photo.jpg", b"\xff"), ("run.exe", b"MZ")])
    assert refused([("p.zip", package)]) == (
        "p.zip holds files of types that are not accepted: img/photo.jpg, run.exe; "
        "only txt, doc, docx, pdf documents can be in a package"
    )


def test_a_member_larger_than_2_mb_is_refused_before_reading():
    package = make_zip([("big.txt", b"\0" * (3 * 1024 * 1024))])
    assert len(package) < 100_000  # it compresses to almost nothing: a small zip bomb
    assert refused([("p.zip", package)]) == "big.txt is 3.0 MB; the limit is 2 MB per file"


def test_an_empty_member_is_refused():
    assert refused([("p.zip", make_zip([("a.txt", b"")]))]) == "a.txt is empty"


def lie_about_size(package: bytes, size: int) -> bytes:
    """Patch the uncompressed size in the member's local and central headers."""
    data = bytearray(package)
    local = data.index(b"PK\x03\x04")
    struct.pack_into("<I", data, local + 22, size)
    central = data.index(b"PK\x01\x02")
    struct.pack_into("<I", data, central + 24, size)
    return bytes(data)


def test_a_zip_bomb_with_a_lying_header_inflates_no_more_than_the_limit():
    honest = make_zip([("bomb.txt", b"A" * (50 * 1024 * 1024))])
    assert len(honest) < 200_000
    bomb = lie_about_size(honest, 1000)
    assert zipfile.ZipFile(io.BytesIO(bomb)).infolist()[0].file_size == 1000
    assert refused([("bomb.zip", bomb)]) == "bomb.zip is damaged: bomb.txt could not be read"


def test_a_lying_header_within_the_limit_is_still_caught():
    bomb = lie_about_size(make_zip([("bomb.txt", b"A" * (3 * 1024 * 1024))]), MAX_FILE_BYTES)
    assert refused([("bomb.zip", bomb)]) == "bomb.zip is damaged: bomb.txt could not be read"


def test_a_corrupt_zip():
    assert refused([("x.zip", b"PK\x03\x04 not really a zip")]) == "x.zip is not a valid zip file"
    assert refused([("x.zip", b"MZ\x90\x00")]) == "x.zip is not a valid zip file"
    package = make_zip([("a.txt", b"hello " * 1000)])
    truncated = package[: len(package) // 2]
    assert refused([("x.zip", truncated)]) == "x.zip is not a valid zip file"


def test_a_damaged_member():
    package = bytearray(make_zip([("a.txt", b"hello world " * 100)]))
    at = package.index(b"PK\x03\x04") + 30 + len(b"a.txt") + 5
    package[at] ^= 0xFF  # a byte of the compressed data
    assert refused([("x.zip", bytes(package))]) == "x.zip is damaged: a.txt could not be read"


def test_a_package_larger_than_the_upload_can_hold():
    huge = b"x" * (MAX_FILES * MAX_FILE_BYTES + 1)
    assert refused([("p.zip", huge)]) == "p.zip is 8.0 MB; the limit is 8 MB per zip package"
