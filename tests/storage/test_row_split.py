"""A line-oriented input shared by rows among a job's instances: the byte ranges of the grant
(apps.storage.grants.input_files with split_rows) and the whole-line reads over HTTP Range
requests (bml.storage.fetch_rows), against the real embedded store."""

import io

import pytest
from bml import storage as sdk

from apps.storage import grants
from apps.storage.client import get_client

BUCKET = "rows"


@pytest.fixture
def put(object_store):
    client = get_client()
    client.make_bucket(BUCKET)

    def put(key: str, data: bytes) -> str:
        client.put_object(BUCKET, key, io.BytesIO(data), len(data))
        return f"bos://{BUCKET}/{key}"

    return put


def shares(uri: str, count: int, tmp_path) -> list[bytes]:
    """What each of `count` instances stages in, in rank order (b"" for nothing)."""
    pieces = []
    for index in range(count):
        item = grants.input_files(uri, (index, count), split_rows=True)
        assert item["rows"] and item["share"] == [index, count]
        [entry] = item["files"]
        target = tmp_path / str(index) / entry["path"]
        written = sdk.fetch_rows(entry["url"], target, *entry["range"], entry["size"])
        piece = target.read_bytes() if target.exists() else b""
        assert written == len(piece)
        pieces.append(piece)
    return pieces


CASES = {
    "trailing newline": b"r1,0,1.5\nr2,1,2\nr3,0,3.25\nr4,1,4\nr5,0,5\n",
    "no trailing newline": b"r1,0,1.5\nr2,1,2\nr3,0,3.25\nr4,1,4\nr5,0,5",
    "CRLF": b"a,0,1\r\nbb,1,2\r\nccc,0,3\r\ndddd,1,4\r\n",
    "uneven lines": b"x\n" + b"y" * 50 + b"\nz\n\nw\n",
    "one line": b"only,1,2,3\n",
    "two lines, no newline at the end": b"a,0\nb,1",
}


@pytest.mark.parametrize("count", [2, 3, 4])
@pytest.mark.parametrize("case", CASES)
def test_every_line_goes_to_exactly_one_instance(put, tmp_path, case, count):
    data = CASES[case]
    uri = put("in/samples.txt", data)
    for where, source in (("file", uri), ("folder", f"bos://{BUCKET}/in/")):
        pieces = shares(source, count, tmp_path / where)
        # Cut on line ends and in order: the pieces are the file, each a run of whole lines.
        assert b"".join(pieces) == data
        held = [piece for piece in pieces if piece]
        assert all(piece.endswith(b"\n") for piece in held[:-1])
        lines = [line for piece in pieces for line in piece.splitlines(keepends=True)]
        assert lines == data.splitlines(keepends=True)
        if len(lines) < count:
            assert b"" in pieces  # fewer lines than instances: someone has none


def test_a_line_longer_than_a_share_is_read_past_the_range_end(put, tmp_path):
    data = b"a\n" + b"b" * 200_000 + b"\nc\n"
    pieces = shares(put("long.txt", data), 4, tmp_path)
    assert pieces == [b"a\n" + b"b" * 200_000 + b"\n", b"", b"", b"c\n"]


def test_an_empty_file_gives_nobody_anything(put, tmp_path):
    uri = put("empty.txt", b"")
    assert shares(uri, 2, tmp_path) == [b"", b""]
    assert not any((tmp_path / str(i)).exists() for i in range(2))
    item = grants.input_files(uri, (1, 2), split_rows=True)
    assert item["input_bytes"] == 0 and item["input_files"] == 1


def test_empty_and_hidden_files_do_not_count_as_data(put, tmp_path):
    put("out/_SUCCESS", b"")
    put("out/.crc", b"x\n")
    put("out/empty", b"")
    data = b"1,0\n2,1\n3,0\n"
    put("out/part-00000", data)
    assert b"".join(shares(f"bos://{BUCKET}/out/", 3, tmp_path)) == data
    put("nothing/_SUCCESS", b"")
    item = grants.input_files(f"bos://{BUCKET}/nothing/", (0, 2), split_rows=True)
    assert item["error"] == f"bos://{BUCKET}/nothing/ holds no non-empty data files"


def test_with_as_many_files_as_instances_each_gets_whole_files(put):
    for name in ("a", "b", "c"):
        put(f"many/{name}", b"1,0\n")
    item = grants.input_files(f"bos://{BUCKET}/many/", (0, 2), split_rows=True)
    assert [f["path"] for f in item["files"]] == ["a", "c"]
    assert "rows" not in item and not any("range" in f for f in item["files"])
    assert item["share"] == [0, 2] and item["input_files"] == 3


def test_user_code_inputs_are_never_cut_into_rows(put):
    """Without split_rows (deep learning data: maybe binary, or a CSV with a header) files
    go whole: a file path to every instance, a folder's files one instance each."""
    uri = put("dl/images.bin", b"\x00\n\x01\n")
    item = grants.input_files(uri, (1, 2))
    assert [f["path"] for f in item["files"]] == ["images.bin"] and "share" not in item
    item = grants.input_files(f"bos://{BUCKET}/dl/", (1, 2))
    assert item["files"] == [] and item["share"] == [1, 2] and item["input_files"] == 1
