"""The data standardization runner (workers/runners/ml_standardize.py): real sample files in a
temporary workspace, converted by the module run as a job runs it, and read back with
ml_data.load() as the training algorithms read them.

No Django and no database: run with `pytest tests/workers/test_ml_standardize.py -p no:django`.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.workers.storeless import empty_store_after_each_test, object_store  # noqa: F401
from workers.runners import ml_data, ml_standardize

REPO = Path(__file__).resolve().parents[2]
MODULE = "workers.runners.ml_standardize"


def _env(**extra) -> dict:
    env = {**os.environ, "PYTHONPATH": str(REPO), **extra}
    for name in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"):
        if name not in extra:
            env.pop(name, None)
    return env


def stage(workspace: Path, files: dict, fmt: str, kind: str, folder="train_data") -> list[str]:
    """Write the input files and params.json; returns the command line of the job."""
    for name, content in files.items():
        path = workspace / folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, str):
            content = content.encode()
        path.write_bytes(content)
    params = {"format": fmt, "type": kind, "input": folder, "output_dir": "data"}
    workspace.mkdir(parents=True, exist_ok=True)
    (workspace / "params.json").write_text(json.dumps(params))
    return [sys.executable, "-m", MODULE, "--params", "params.json"]


def run_job(workspace: Path, files: dict, fmt: str, kind="classification", code=0):
    command = stage(workspace, files, fmt, kind)
    done = subprocess.run(
        command, cwd=workspace, env=_env(), capture_output=True, text=True, timeout=120
    )
    assert done.returncode == code, done.stdout + done.stderr
    if code == 0:
        assert "Traceback" not in done.stderr, done.stderr
    return done


def read(workspace: Path, *parts: str) -> str:
    return (workspace / "data").joinpath(*parts).read_text()


def summary_rows(workspace: Path, name: str) -> np.ndarray:
    text = read(workspace, ml_data.SUMMARY_DIR, name)
    return np.array([[float(value) for value in line.split()] for line in text.splitlines()])


def assert_summary(workspace: Path, expected, rows=slice(None)) -> None:
    """feature_summary: flag id count weight_avg weight_max weight_min (10 digits written)."""
    found = summary_rows(workspace, "feature_summary")[rows]
    np.testing.assert_allclose(found, np.array(expected, dtype=float), rtol=1e-9)


# ---------------------------------------------------------------------------------------------
# Each format round-trips through ml_data.load()


def test_dense_classification_round_trip(tmp_path):
    text = ",1,0.5,-1.25,3e2\n7,0,2,0,-0.125\nid-3,1,1.5,4,1\n"
    done = run_job(tmp_path, {"a.csv": text}, "DENSE")
    data = ml_data.load(tmp_path / "data")
    assert data.info == {
        "sample_num": 3,
        "feature_num": 3,
        "label_num": 2,
        "format": "DENSE",
        "type": "classification",
        "skipped_num": 0,
    }
    np.testing.assert_array_equal(data.X, [[0.5, -1.25, 300.0], [2, 0, -0.125], [1.5, 4, 1]])
    assert data.y.tolist() == [1.0, 0.0, 1.0]
    assert data.numbers == ["", "7", "id-3"]
    assert data.feature_names == ["0", "1", "2"] and data.label_names == ["0", "1"]
    assert read(tmp_path, ml_data.DICTIONARY_DIR, "featureIDMap") == "3\n0 0\n1 1\n2 2\n"
    assert read(tmp_path, ml_data.DICTIONARY_DIR, "labelIDMap") == "2\n0 0\n1 1\n"
    # flag id count weight_avg weight_max weight_min
    assert_summary(
        tmp_path,
        [
            [1, 0, 3, 4 / 3, 2, 0.5],
            [1, 1, 3, 2.75 / 3, 4, -1.25],
            [1, 2, 3, 300.875 / 3, 300, -0.125],
        ],
    )
    assert read(tmp_path, ml_data.SUMMARY_DIR, "label_summary") == "1 0 1\n1 1 2\n"
    # labels "0"/"1" are their own ids: the rows are kept verbatim
    assert read(tmp_path, ml_data.OUT_DIR, "part-00000") == text
    assert "standardized 3 samples" in done.stdout and "rows/s" in done.stdout
    assert not list((tmp_path / "data").glob(".*")), "work files left behind"


@pytest.mark.parametrize(
    "labels, names, ids",
    [
        (["yes", "no", "maybe", "no"], ["maybe", "no", "yes"], [2, 1, 0, 1]),
        (["10", "2", "1", "2"], ["1", "2", "10"], [2, 1, 0, 1]),  # numbers in numeric order
        (["1", "3", "2", "1"], ["1", "2", "3"], [0, 2, 1, 0]),
        (["b", "a", "b", "b"], ["a", "b"], [1, 0, 1, 1]),
    ],
)
def test_dense_classification_labels_become_ids(tmp_path, labels, names, ids):
    text = "".join(f"n{i},{label},{i},{i / 4}\n" for i, label in enumerate(labels))
    done = run_job(tmp_path, {"a.csv": text}, "DENSE")
    assert "writing label ids" in done.stdout
    data = ml_data.load(tmp_path / "data")
    assert data.label_names == names and data.info["label_num"] == len(names)
    assert data.y.tolist() == ids
    assert data.numbers == ["n0", "n1", "n2", "n3"]
    np.testing.assert_array_equal(data.X, [[i, i / 4] for i in range(4)])
    part = read(tmp_path, ml_data.OUT_DIR, "part-00000")
    assert part == "".join(f"n{i},{ids[i]},{i},{i / 4}\n" for i in range(4))
    counts = [labels.count(name) for name in names]
    expected = "".join(f"1 {i} {count}\n" for i, count in enumerate(counts))
    assert read(tmp_path, ml_data.SUMMARY_DIR, "label_summary") == expected


def test_dense_regression_keeps_numbers_and_skips_other_labels(tmp_path):
    text = "a,1.5,1,2\nb,-2,3,4\nc,3e1,5,6\nd,abc,7,8\ne,NA,9,10\nf,,11,12\n"
    done = run_job(tmp_path, {"r.csv": text}, "DENSE", "regression")
    data = ml_data.load(tmp_path / "data")
    assert data.y.tolist() == [1.5, -2.0, 30.0]
    assert data.numbers == ["a", "b", "c"]
    np.testing.assert_array_equal(data.X, [[1, 2], [3, 4], [5, 6]])
    assert data.info["label_num"] == 0 and data.info["skipped_num"] == 3
    assert data.info["type"] == "regression"
    assert not (tmp_path / "data" / ml_data.DICTIONARY_DIR / "labelIDMap").exists()
    assert read(tmp_path, ml_data.SUMMARY_DIR, "label_summary") == ""
    assert "2 label is not a number: train_data/r.csv lines 4, 5" in done.stdout
    assert "has label 'abc', not a number (the type is regression)" in done.stdout
    assert "1 missing label: train_data/r.csv line 6" in done.stdout


def test_sparse_id_round_trip(tmp_path):
    text = "1,a,b,10,2\n,b,a,x y\n3,a,\n,b,x y,2\n"
    run_job(tmp_path, {"s.csv": text}, "SPARSE_ID")
    data = ml_data.load(tmp_path / "data")
    # numbers first, in numeric order, then the other strings; "x y": spaces are kept
    names = ["2", "10", "a", "b", "x y"]
    assert data.feature_names == names
    assert read(tmp_path, ml_data.DICTIONARY_DIR, "featureIDMap") == (
        "5\n0 2\n1 10\n2 a\n3 b\n4 x y\n"
    )
    assert data.info == {
        "sample_num": 4,
        "feature_num": 5,
        "label_num": 2,
        "format": "SPARSE_ID",
        "type": "classification",
        "skipped_num": 0,
    }
    np.testing.assert_array_equal(
        data.X.toarray(),
        [[1, 1, 0, 1, 0], [0, 0, 1, 0, 1], [0, 0, 0, 0, 0], [1, 0, 0, 0, 1]],
    )
    assert data.y.tolist() == [0, 1, 0, 1] and data.label_names == ["a", "b"]
    assert data.numbers == ["1", "", "3", ""]
    assert read(tmp_path, ml_data.OUT_DIR, "part-00000") == (
        "1,0,3 1,1 1,0 1\n,1,2 1,4 1\n3,0\n,1,4 1,0 1\n"
    )
    assert_summary(
        tmp_path,
        [
            [1, 0, 2, 1, 1, 1],
            [1, 1, 1, 1, 1, 1],
            [1, 2, 1, 1, 1, 1],
            [1, 3, 1, 1, 1, 1],
            [1, 4, 2, 1, 1, 1],
        ],
    )
    assert read(tmp_path, ml_data.SUMMARY_DIR, "label_summary") == "1 0 2\n1 1 2\n"


def test_sparse_id_weight_round_trip_and_bad_pairs(tmp_path):
    text = "1,0,f1 0.5,f2 -2\n2,1,f2 4,f3 1e-3 \n3,1,f1 abc\n4,0,f1\n5,1,\n6,0,f2 nan\n"
    done = run_job(tmp_path, {"s.csv": text}, "SPARSE_ID_WEIGHT", "regression")
    data = ml_data.load(tmp_path / "data")
    assert data.feature_names == ["f1", "f2", "f3"]
    np.testing.assert_array_equal(data.X.toarray(), [[0.5, -2, 0], [0, 4, 0.001], [0, 0, 0]])
    assert data.y.tolist() == [0.0, 1.0, 1.0]
    assert data.numbers == ["1", "2", "5"]
    assert data.info["format"] == "SPARSE_ID_WEIGHT" and data.info["skipped_num"] == 3
    assert_summary(
        tmp_path, [[1, 0, 1, 0.5, 0.5, 0.5], [1, 1, 2, 1, 4, -2], [1, 2, 1, 0.001, 0.001, 0.001]]
    )
    assert "2 weight is not a number: train_data/s.csv lines 3, 6" in done.stdout
    assert "has feature 'f1' with weight 'abc', not a number" in done.stdout
    assert "1 feature not written as 'feature weight': train_data/s.csv line 4" in done.stdout


def test_sparse_classification_labels_are_strings(tmp_path):
    text = "1,cat,a\n2,dog,b\n3,cat dog,a\n4,10,b\n5,9,a\n"
    run_job(tmp_path, {"s.csv": text}, "SPARSE_ID")
    data = ml_data.load(tmp_path / "data")
    assert data.label_names == ["9", "10", "cat", "cat dog", "dog"]
    assert data.y.tolist() == [2, 4, 3, 1, 0]


def test_dense_labels_that_read_as_their_ids_are_kept(tmp_path):
    # SUSY's labels: the rows stay as they are (ml_data reads the label as a number)
    text = ",1.000000000000000000e+00,0.5\n,0.000000000000000000e+00,1.5\n"
    done = run_job(tmp_path / "susy", {"susy.csv": text}, "DENSE")
    assert "writing label ids" not in done.stdout
    assert read(tmp_path / "susy", ml_data.OUT_DIR, "part-00000") == text
    data = ml_data.load(tmp_path / "susy" / "data")
    assert data.label_names == ["0.000000000000000000e+00", "1.000000000000000000e+00"]
    assert data.y.tolist() == [1, 0]

    # "1e0" also reads as 1 but its id is 2: the labels are rewritten
    done = run_job(tmp_path / "mixed", {"mixed.csv": text + ",1e0,2\n"}, "DENSE")
    assert "writing label ids" in done.stdout
    assert read(tmp_path / "mixed", ml_data.OUT_DIR, "part-00000") == ",1,0.5\n,0,1.5\n,2,2\n"
    assert ml_data.load(tmp_path / "mixed" / "data").y.tolist() == [1, 0, 2]


# ---------------------------------------------------------------------------------------------
# Malformed rows


def test_malformed_dense_rows_are_skipped_and_counted(tmp_path):
    lines = [
        ",1,0.5,1.5",
        "2,0,2,3",
        "3\t1\t4\t5",  # tabs: one field
        "4,,1,2",  # no label
        "5,1,x,2",  # not a number
        "6,1,2",  # ragged
        "7,1,2,3,4",  # ragged
        "",  # empty lines are no rows
        "9,0,NA,1",
        "10,1,nan,1",
        "11,0,7,8",
    ]
    done = run_job(tmp_path, {"a.csv": "\n".join(lines) + "\n"}, "DENSE")
    data = ml_data.load(tmp_path / "data")
    np.testing.assert_array_equal(data.X, [[0.5, 1.5], [2, 3], [7, 8]])
    assert data.numbers == ["", "2", "11"] and data.y.tolist() == [1, 0, 0]
    assert data.info["skipped_num"] == 7 and data.info["sample_num"] == 3
    out = done.stdout
    assert "skipped 7 malformed rows (3 rows kept)" in out
    assert "1 too few fields: train_data/a.csv line 3" in out
    assert "is the separator a comma?" in out
    assert "2 wrong number of fields: train_data/a.csv lines 6, 7" in out
    assert "has 3 fields, expected 4 (No, label and 2 weights" in out
    assert "1 missing label: train_data/a.csv line 4" in out
    assert "3 weight is not a number: train_data/a.csv lines 5, 9, 10" in out
    assert "has weight1 = 'x', not a number" in out
    # the summaries only count the kept rows
    assert_summary(tmp_path, [1, 0, 3, 9.5 / 3, 7, 0.5], rows=0)


def test_first_valid_row_sets_the_dense_width(tmp_path):
    text = "1\t0\t1\n,1,1,2,3\n,0,4,5,6\n,1,7,8\n"
    done = run_job(tmp_path, {"a.csv": text}, "DENSE")
    data = ml_data.load(tmp_path / "data")
    assert data.info["feature_num"] == 3
    np.testing.assert_array_equal(data.X, [[1, 2, 3], [4, 5, 6]])
    assert "DENSE rows have 3 weights" in done.stdout
    assert "1 wrong number of fields: train_data/a.csv line 4" in done.stdout


@pytest.mark.parametrize(
    "fmt, files, message",
    [
        (
            "DENSE",
            {"x.csv": "1\t0\t0.5\t0.7\n2\t1\t0.1\t0.2\n"},
            "no valid DENSE rows in train_data/x.csv: line 1 has 1 field, expected "
            "No,label,weight1,...,weightN: is the separator a comma? (line 1: '1\\t0\\t0.5\\t0.7')",
        ),
        (
            "DENSE",
            {"x.csv": "\n,1,a,b\n,0,c,d\n"},
            "no valid DENSE rows in train_data/x.csv: line 2 has weight1 = 'a', not a number",
        ),
        (
            "SPARSE_ID",
            {"x.csv": "1,,a,b\n2,,c\n"},
            "no valid SPARSE_ID rows in train_data/x.csv: line 1 has no label",
        ),
        (
            "SPARSE_ID_WEIGHT",
            {"x.csv": "1 0 a:1 b:2\n", "y.csv": "1,0,a:1\n"},
            "no valid SPARSE_ID_WEIGHT rows in the 2 files of train_data (train_data/x.csv): "
            "line 1 has 1 field, expected No,label,feature1 weight1,feature2 weight2,...: "
            "is the separator a comma?",
        ),
        ("DENSE", {"_SUCCESS": "", "empty.csv": ""}, "train_data holds no non-empty files"),
    ],
)
def test_no_valid_row_fails_clearly(tmp_path, fmt, files, message):
    done = run_job(tmp_path, files, fmt, code=1)
    assert message in done.stderr
    assert done.stderr.startswith("data standardization failed: ")
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "data" / ml_data.INFO_FILE).exists()
    assert not list((tmp_path / "data").rglob("part-*"))
    assert not list((tmp_path / "data").glob(".*")), "work files left behind"


def test_parameter_errors(tmp_path):
    command = stage(tmp_path, {"a.csv": ",1,2\n"}, "CSV", "classification")
    done = subprocess.run(command, cwd=tmp_path, env=_env(), capture_output=True, text=True)
    assert done.returncode == 1
    assert "unknown input data format 'CSV'" in done.stderr


# ---------------------------------------------------------------------------------------------
# Files, line ends, quotes, big files


def test_folders_line_ends_and_quotes(tmp_path):
    files = {
        "a.csv": b'\xef\xbb\xbf,1,1,2\r\n"q",0,3,4\r\nx"y,1,5,6\r\n',  # BOM, CR LF, quotes
        "sub/b.csv": "b1,0,7,8",  # no final newline
        ".hidden.csv": "garbage\n",
        "_SUCCESS": "",
        "_logs/c.csv": "garbage\n",
    }
    done = run_job(tmp_path, files, "DENSE")
    data = ml_data.load(tmp_path / "data")
    # quotes have no special meaning in the input; the DENSE part quotes such a No so that
    # ml_data's CSV reader gives it back as it was
    assert data.numbers == ["", '"q"', 'x"y', "b1"]
    np.testing.assert_array_equal(data.X, [[1, 2], [3, 4], [5, 6], [7, 8]])
    assert data.info["skipped_num"] == 0
    assert "garbage" not in done.stdout and "_logs" not in done.stdout


def test_big_file_blocks_keep_line_numbers_and_rows(tmp_path):
    rng = np.random.default_rng(3)
    rows = 160_000  # ~9.5 MB: more than one block
    values = rng.standard_normal((rows, 6)).round(6)
    lines = [f",{i % 3},{','.join(map(str, values[i]))}" for i in range(rows)]
    bad = {4: "5,1,oops,1,2,3,4,5", 99_999: "6,1,2", 119_000: "7\t1"}
    for index, line in bad.items():
        lines[index] = line
    text = "\n".join(lines) + "\n"
    assert len(text) > ml_standardize.BLOCK_BYTES
    done = run_job(tmp_path, {"big.csv": text}, "DENSE", "regression")
    assert "1 weight is not a number: train_data/big.csv line 5" in done.stdout
    assert "1 wrong number of fields: train_data/big.csv line 100000" in done.stdout
    assert "1 too few fields: train_data/big.csv line 119001" in done.stdout
    kept = [line for index, line in enumerate(lines) if index not in bad]
    assert read(tmp_path, ml_data.OUT_DIR, "part-00000") == "\n".join(kept) + "\n"
    data = ml_data.load(tmp_path / "data")
    good = np.delete(values, list(bad), axis=0)
    np.testing.assert_array_equal(data.X, good)
    assert data.info["sample_num"] == rows - 3
    column = good[:, 2]
    assert_summary(tmp_path, [1, 2, rows - 3, column.mean(), column.max(), column.min()], rows=2)


def test_read_blocks_split_on_line_ends(tmp_path):
    path = tmp_path / "a.txt"
    path.write_bytes(b"\xef\xbb\xbfone\r\ntwo\rthree\nfour\nlast")
    for size in (1, 3, 7, 1 << 20):
        blocks = list(ml_standardize.read_blocks(path, size))
        assert all(block.endswith(b"\n") for block in blocks)
        assert b"".join(blocks) == b"one\ntwo\nthree\nfour\nlast\n"


def test_dense_fast_and_robust_paths_agree():
    block = b",1,0.5,2\n3,0,1.5,-1\n,1,2.5,4\n"
    fast = ml_standardize.dense_block(block, 2, False)
    robust = ml_standardize._dense_block_robust(block, 2, False)
    for result in (fast, robust):
        assert result.out == block and result.rows == 3 and result.lines == 3
        assert result.labels == {"1": 2, "0": 1}
    for name in ("sums", "maxs", "mins"):
        np.testing.assert_array_equal(getattr(fast, name), getattr(robust, name))
    np.testing.assert_array_equal(fast.sums, [4.5, 5])

    # rows of another width only: the fast path leaves their lines out itself
    ragged = b",1,0.5,2\n3,0,1.5\n,1,2.5,4,5\n4\t1\n,0,1,1\n"
    fast = ml_standardize.dense_block(ragged, 2, False)
    robust = ml_standardize._dense_block_robust(ragged, 2, False)
    for result in (fast, robust):
        assert result.out == b",1,0.5,2\n,0,1,1\n" and result.rows == 2 and result.lines == 5
        assert result.skips.counts[: ml_standardize.FIELD_COUNT] == [1, 2]
        assert [e[:2] for e in result.skips.examples] == [(1, 4), (2, 2), (2, 3)]
        np.testing.assert_array_equal(result.sums, [1.5, 3])


def test_line_problems():
    assert ml_standardize.dense_problem(b",1,2,3", None, False) is None
    assert ml_standardize.dense_problem(b",1,2,3", 3, False)[0] == ml_standardize.FIELD_COUNT
    assert ml_standardize.dense_problem(b",x,2,3", None, True)[0] == ml_standardize.BAD_LABEL
    assert ml_standardize.dense_problem(b",1,inf,3", None, False)[0] == ml_standardize.BAD_WEIGHT
    assert ml_standardize.dense_problem(b"\xff,1,2,3", None, False)[0] == ml_standardize.NOT_UTF8
    assert ml_standardize.sparse_problem(b"1,0,a,b", False, False) is None
    assert ml_standardize.sparse_problem(b"1,0,a 1,b", True, False)[0] == ml_standardize.BAD_PAIR
    assert ml_standardize.sparse_problem(b"1,0,a 1,b +2.", True, False) is None


# ---------------------------------------------------------------------------------------------
# Several instances


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_instances(root: Path, shares: list[dict], fmt: str, kind="classification"):
    """One process per share, as the job engine starts them (each in its own workspace), then
    the union of their data/ folders, as the engine stages it to <output>/<job_id>/data/."""
    port = free_port()
    processes = []
    for rank, files in enumerate(shares):
        workspace = root / f"instance-{rank}"
        command = stage(workspace, files, fmt, kind)
        env = _env(
            RANK=str(rank),
            WORLD_SIZE=str(len(shares)),
            MASTER_ADDR="127.0.0.1",
            MASTER_PORT=str(port),
            OMP_NUM_THREADS="1",
        )
        processes.append(
            subprocess.Popen(
                command,
                cwd=workspace,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    outputs = []
    for process in processes:
        out, err = process.communicate(timeout=240)
        outputs.append((process.returncode, out, err))
    for code, out, err in outputs:
        assert code == 0, out + err
    merged = root / "merged"  # a workspace-like folder: the union is merged/data
    for rank in range(len(shares)):
        shutil.copytree(root / f"instance-{rank}" / "data", merged / "data", dirs_exist_ok=True)
    return merged, outputs


def rows_by_name(data: ml_data.Standardized) -> list[tuple]:
    X = data.X.tocsr()
    rows = []
    for i in range(X.shape[0]):
        start, end = X.indptr[i], X.indptr[i + 1]
        features = {
            data.feature_names[j]: w
            for j, w in zip(X.indices[start:end], X.data[start:end], strict=True)
        }
        rows.append((data.numbers[i], data.label_names[int(data.y[i])], features))
    return rows


def test_two_instances_share_global_dictionaries(tmp_path):
    shares = [
        {"p0.csv": "1,x,a 1,10 2\n2,y,b 0.5\n", "sub/p1.csv": "3,x,a 3\n"},
        {"p2.csv": "4,z,c 4,2 1\n5,y,b 1.5,a 2\n6,y,a\n"},  # the last row has no weight
    ]
    merged, outputs = run_instances(tmp_path, shares, "SPARSE_ID_WEIGHT")
    data = ml_data.load(merged / "data")
    assert data.feature_names == ["2", "10", "a", "b", "c"]
    assert data.label_names == ["x", "y", "z"]
    assert data.info["sample_num"] == 5 and data.info["skipped_num"] == 1
    assert data.info["feature_num"] == 5 and data.info["label_num"] == 3
    assert sorted(rows_by_name(data)) == [
        ("1", "x", {"a": 1.0, "10": 2.0}),
        ("2", "y", {"b": 0.5}),
        ("3", "x", {"a": 3.0}),
        ("4", "z", {"c": 4.0, "2": 1.0}),
        ("5", "y", {"b": 1.5, "a": 2.0}),
    ]
    # instance 0 writes the dictionaries and summaries; every instance its own part
    instance1 = sorted(
        str(p.relative_to(tmp_path / "instance-1" / "data"))
        for p in (tmp_path / "instance-1" / "data").rglob("*")
        if p.is_file()
    )
    assert instance1 == ["preprocess_out/part-00001"]
    assert_summary(
        merged,
        [
            [1, 0, 1, 1, 1, 1],
            [1, 1, 1, 2, 2, 2],
            [1, 2, 3, 2, 3, 1],
            [1, 3, 2, 1, 1.5, 0.5],
            [1, 4, 1, 4, 4, 4],
        ],
    )
    assert read(merged, ml_data.SUMMARY_DIR, "label_summary") == "1 0 2\n1 1 2\n1 2 1\n"
    assert "instance 1: skipped 1 malformed rows" in outputs[1][1]
    assert "train_data/p2.csv line 3" in outputs[1][1]
    assert "all instances: skipped 1 malformed rows (5 rows kept)" in outputs[0][1]


def test_two_instances_dense_with_an_empty_share(tmp_path):
    shares = [
        {"a.csv": ",b,1,2\n,c,3,4\n"},
        {".hidden": "not data\n"},  # this instance received no file of the input
    ]
    merged, outputs = run_instances(tmp_path, shares, "DENSE")
    assert (tmp_path / "instance-1" / "data" / "preprocess_out" / "part-00001").read_bytes() == b""
    data = ml_data.load(merged / "data")
    assert data.label_names == ["b", "c"] and data.y.tolist() == [0, 1]
    np.testing.assert_array_equal(data.X, [[1, 2], [3, 4]])
    assert "no non-empty input files on this instance" in outputs[1][1]

    shares = [{"a.csv": ",b,1,2\n,c,3,4\n"}, {"b.csv": ",a,5,6\n,c,7,8\n"}]
    merged, _ = run_instances(tmp_path / "again", shares, "DENSE")
    data = ml_data.load(merged / "data")
    assert data.label_names == ["a", "b", "c"]
    assert data.y.tolist() == [1, 2, 0, 2]
    np.testing.assert_array_equal(data.X, [[1, 2], [3, 4], [5, 6], [7, 8]])
