"""The data set import runner (workers/runners/table_import.py): real CSV files in a temporary
workspace, converted for real; the assertions are what a user sees (rows in the parquet parts,
summary.json, error.json, the preview).

No Django and no database: run with `pytest tests/workers/test_table_import.py -p no:django`.
"""

import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from tests.workers.storeless import empty_store_after_each_test, object_store  # noqa: F401
from workers.runners import table_import, table_reading
from workers.runners.table_import import column_name_problem, preview, validate_columns

REPO = Path(__file__).resolve().parents[2]


COLUMNS_ABC = [
    {"name": "id", "type": "int"},
    {"name": "score", "type": "float"},
    {"name": "name", "type": "string"},
]


@pytest.fixture
def workspace(tmp_path, monkeypatch):
    """A workspace as cwd, like the supervisor gives the runner."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "train_data").mkdir()
    return tmp_path


def write(path: Path, content) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, str):
        content = content.encode("utf-8")
    path.write_bytes(content)
    return path


def run_import(workspace: Path, files: dict, columns=COLUMNS_ABC, **params):
    """Write the input files, run the runner in-process; (exit code, summary or error)."""
    inputs = []
    for name, content in files.items():
        write(workspace / "train_data" / name, content)
        inputs.append(f"train_data/{name}")
    settings = {
        "inputs": inputs,
        "separator": ",",
        "header": True,
        "encoding": "utf-8",
        "abnormal": "skip",
        "columns": columns,
        "output_dir": "output",
        **params,
    }
    (workspace / "params.json").write_text(json.dumps(settings, ensure_ascii=False))
    code = table_import.main(["--params", "params.json"])
    output = workspace / settings["output_dir"]
    result_file = output / ("summary.json" if code == 0 else "error.json")
    return code, json.loads(result_file.read_text(), parse_constant=_no_constants)


def _no_constants(name):
    raise AssertionError(f"{name} in JSON output")


def rows_of(workspace: Path, summary: dict, output_dir: str = "output") -> dict:
    tables = [pq.read_table(workspace / output_dir / part) for part in summary["parts"]]
    return pa.concat_tables(tables).to_pydict()


def stats_of(summary: dict, name: str) -> dict:
    return next(s for s in summary["stats"] if s["name"] == name)


# ---------------------------------------------------------------------------------------------
# Clean files


def test_a_clean_file_converts_every_type_and_describes_it(workspace):
    code, summary = run_import(
        workspace,
        {
            "a.csv": "n,x,s,flag,when\n"
            "1,0.5,alice,true,2024-01-02\n"
            "2,,bob,false,2024/01/03 10:00:00\n"
            '3,NA,"c, d",,2024-01-04T05:06:07.5\n'
            "4,2.5,,1,\n"
            "6,4.5,bob,no,2024-02-01 00:00\n"
        },
        columns=[
            {"name": "n", "type": "int"},
            {"name": "x", "type": "float"},
            {"name": "s", "type": "string"},
            {"name": "flag", "type": "bool"},
            {"name": "when", "type": "datetime"},
        ],
    )
    assert code == 0
    assert summary["rows"] == summary["new_rows"] == 5
    assert summary["parts"] == ["part-00000.parquet"]
    assert summary["abnormal"] == {"rule": "skip", "count": 0, "lines": [], "examples": []}
    schema = pq.read_schema(workspace / "output" / "part-00000.parquet")
    assert [str(t) for t in schema.types] == ["int64", "double", "string", "bool", "timestamp[us]"]
    rows = rows_of(workspace, summary)
    assert rows["n"] == [1, 2, 3, 4, 6]
    assert rows["x"] == [0.5, None, None, 2.5, 4.5]  # empty and NA are missing values
    assert rows["s"] == ["alice", "bob", "c, d", "", "bob"]  # strings stay as written
    assert rows["flag"] == [True, False, None, True, False]
    assert [str(v) if v else None for v in rows["when"]] == [
        "2024-01-02 00:00:00",
        "2024-01-03 10:00:00",
        "2024-01-04 05:06:07.500000",
        None,
        "2024-02-01 00:00:00",
    ]

    n = stats_of(summary, "n")
    assert (n["count"], n["missing"], n["unique"], n["unique_exact"]) == (5, 0, 5, True)
    assert n["mean"] == pytest.approx(3.2)
    assert n["variance"] == pytest.approx(np.var([1, 2, 3, 4, 6], ddof=1))
    assert n["std"] == pytest.approx(math.sqrt(n["variance"]))
    assert (n["min"], n["max"], n["median"], n["quantiles_exact"]) == (1, 6, 3.0, True)
    assert n["q1"] == 2.0 and n["q3"] == 4.0
    assert len(n["histogram"]["edges"]) == 21 and sum(n["histogram"]["counts"]) == 5
    assert n["histogram"]["edges"][0] == 1 and n["histogram"]["edges"][-1] == 6
    assert n["top"][0] == [1, 1] and len(n["top"]) == 5
    x = stats_of(summary, "x")
    assert (x["count"], x["missing"], x["mean"]) == (3, 2, pytest.approx(2.5))
    s = stats_of(summary, "s")
    assert (s["count"], s["missing"], s["unique"]) == (5, 0, 4)
    assert s["top"][0] == ["bob", 2] and s["mean"] is None and s["histogram"] is None
    flag = stats_of(summary, "flag")
    assert (flag["count"], flag["missing"], flag["top"]) == (4, 1, [[False, 2], [True, 2]])
    when = stats_of(summary, "when")
    assert (when["min"], when["max"]) == ("2024-01-02T00:00:00", "2024-02-01T00:00:00")
    assert when["mean"] is None and when["missing"] == 1
    assert summary["seconds"]["convert"] <= summary["seconds"]["total"]
    assert summary["peak_rss_mb"] > 0


def test_the_module_runs_as_a_program(tmp_path):
    """The supervisor's way: python -m ... --params params.json, the workspace as cwd."""
    write(tmp_path / "d" / "a.csv", "id,score,name\n1,1.5,a\n2,2.5,b\n")
    params = {
        "inputs": ["d/a.csv"],
        "separator": ",",
        "header": True,
        "encoding": "utf-8",
        "abnormal": "skip",
        "columns": COLUMNS_ABC,
        "output_dir": "out",
    }
    (tmp_path / "params.json").write_text(json.dumps(params))
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    command = [sys.executable, "-m", "workers.runners.table_import", "--params", "params.json"]
    done = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "converted 2 rows" in done.stdout
    assert json.loads((tmp_path / "out" / "summary.json").read_text())["rows"] == 2

    (tmp_path / "d" / "a.csv").write_text("")
    done = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True)
    assert done.returncode == 1
    assert "file a.csv is empty" in done.stderr and "Traceback" not in done.stderr
    assert not list((tmp_path / "out").glob("*.parquet"))


def test_tsv_in_gbk_with_chinese_names(workspace):
    text = "编号\t名字\t分数\n1\t张三\t90.5\n2\t李四\t88\n"
    code, summary = run_import(
        workspace,
        {"a.tsv": text.encode("gbk")},
        columns=[
            {"name": "编号", "type": "int"},
            {"name": "名字", "type": "string"},
            {"name": "分数", "type": "float"},
        ],
        separator="\t",
        encoding="gbk",
    )
    assert code == 0
    assert rows_of(workspace, summary) == {
        "编号": [1, 2],
        "名字": ["张三", "李四"],
        "分数": [90.5, 88.0],
    }


def test_crlf_endings_a_byte_order_mark_and_spaces_around_numbers(workspace):
    code, summary = run_import(
        workspace,
        {"a.csv": "\ufeff1, 1.5 ,a\r\n2,2.5,b\r\n\r\n3 ,3.5,c\r\n"},
        header=False,
    )
    assert code == 0
    assert rows_of(workspace, summary) == {
        "id": [1, 2, 3],
        "score": [1.5, 2.5, 3.5],
        "name": ["a", "b", "c"],
    }
    assert summary["abnormal"]["count"] == 0


def test_several_inputs_and_the_previous_version_in_the_statistics(workspace):
    code, first = run_import(
        workspace, {"old.csv": "id,score,name\n1,1.0,a\n2,2.0,b\n"}, output_dir="v1"
    )
    assert code == 0
    code, summary = run_import(
        workspace,
        {"a.csv": "id,score,name\n3,3.0,c\n", "b.csv": "id,score,name\n4,4.0,d\n5,5.0,e\n"},
        previous_parts=["v1/part-00000.parquet"],
        output_dir="v2",
    )
    assert code == 0
    assert (summary["rows"], summary["new_rows"]) == (5, 3)
    assert rows_of(workspace, summary, "v2")["id"] == [3, 4, 5]  # new rows only
    score = stats_of(summary, "score")
    assert (score["count"], score["mean"], score["min"], score["max"]) == (5, 3.0, 1.0, 5.0)
    assert stats_of(summary, "name")["unique"] == 5


def test_a_folder_of_inputs_is_read_file_by_file_in_name_order(workspace):
    folder = workspace / "train_data" / "upload"
    write(folder / "b.csv", "id,score,name\n3,3.0,c\n")
    write(folder / "a.csv", "id,score,name\n1,1.0,a\n2,2.0,b\n")
    write(folder / "more" / "c.csv", "id,score,name\n4,4.0,d\n")
    write(folder / "_SUCCESS", "")  # markers, hidden and empty files are not data
    write(folder / ".a.csv.crc", "junk")
    write(folder / "empty.csv", "")
    code, summary = run_import(workspace, {}, inputs=["train_data/upload"])
    assert code == 0
    assert rows_of(workspace, summary)["id"] == [1, 2, 3, 4]

    write(folder / "zz.csv", "id,score,name\n")  # an empty part of a split export
    code, summary = run_import(workspace, {}, inputs=["train_data/upload"])
    assert code == 0 and summary["rows"] == 4
    assert summary["warnings"] == ["file zz.csv has a header line but no data rows"]

    write(workspace / "train_data" / "nothing" / "_SUCCESS", "")
    code, error = run_import(workspace, {}, inputs=["train_data/nothing"])
    assert error["error"] == "folder train_data/nothing has no files"
    write(workspace / "train_data" / "one" / "a.csv", "")
    code, error = run_import(workspace, {}, inputs=["train_data/one"])
    assert error["error"] == "file a.csv is empty"


def test_previous_parts_must_match_the_schema(workspace):
    code, _ = run_import(workspace, {"old.csv": "id,score,name\n1,1.0,a\n"}, output_dir="v1")
    assert code == 0
    columns = [*COLUMNS_ABC[:2], {"name": "name", "type": "int"}]
    code, error = run_import(
        workspace,
        {"a.csv": "id,score,name\n3,3.0,4\n"},
        columns=columns,
        previous_parts=["v1/part-00000.parquet"],
        output_dir="v2",
    )
    assert code == 1
    assert error["error"].startswith("previous part v1/part-00000.parquet has columns")
    assert not list((workspace / "v2").glob("*.parquet"))


def test_big_row_groups_and_a_new_part_past_the_size_limit(workspace, monkeypatch):
    rows = 600_000
    values = np.arange(rows, dtype=np.float64) / 7
    table = pa.table({"a": values, "b": values * 2})
    pacsv.write_csv(table, workspace / "train_data" / "big.csv")
    columns = [{"name": "a", "type": "float"}, {"name": "b", "type": "float"}]
    code, summary = run_import(workspace, {}, columns=columns, inputs=["train_data/big.csv"])
    assert code == 0 and summary["rows"] == rows
    meta = pq.ParquetFile(workspace / "output" / "part-00000.parquet").metadata
    # pyarrow alone would write one 5,000-row group per streamed batch.
    groups = [meta.row_group(i).num_rows for i in range(meta.num_row_groups)]
    assert len(groups) == 2 and groups[0] >= 500_000 and sum(groups) == rows

    monkeypatch.setattr(table_import, "PART_BYTES", 1)  # every row group starts a new part
    code, summary = run_import(workspace, {}, columns=columns, inputs=["train_data/big.csv"])
    assert summary["parts"] == ["part-00000.parquet", "part-00001.parquet"]
    assert len(rows_of(workspace, summary)["a"]) == rows


# ---------------------------------------------------------------------------------------------
# Abnormal rows

# Line numbers as an editor shows them: the blank line 3 and the quoted two-line value on
# lines 6-7 count as lines, so the abnormal rows are on lines 4, 5, 8, 10 and 11.
MESSY = (
    "id,score,name\n"  # 1
    "1,0.5,a\n"  # 2
    "\n"  # 3
    "2,x,b\n"  # 4 a score that is not a number
    "3,1.5\n"  # 5 a field short
    '4,2.5,"two\nlines"\n'  # 6-7
    "5,6.5,c,extra\n"  # 8 a field too many
    "6,7.5,d\n"  # 9
    "7.5,8.5,e\n"  # 10 an id that is not an int
    "99999999999999999999,9.5,f\n"  # 11 an int beyond int64
    "8,NA,\n"  # 12 missing values are not abnormal
)


def test_rule_skip_drops_abnormal_rows_and_says_where_they_are(workspace):
    code, summary = run_import(workspace, {"a.csv": MESSY}, abnormal="skip")
    assert code == 0
    assert rows_of(workspace, summary) == {
        "id": [1, 4, 6, 8],
        "score": [0.5, 2.5, 7.5, None],
        "name": ["a", "two\nlines", "d", ""],
    }
    abnormal = summary["abnormal"]
    assert (abnormal["rule"], abnormal["count"], abnormal["lines"]) == (
        "skip",
        5,
        [4, 5, 8, 10, 11],
    )
    assert abnormal["examples"][:3] == [
        {"line": 4, "file": "a.csv", "reason": "column score: 'x' is not a float"},
        {"line": 5, "file": "a.csv", "reason": "expected 3 columns, got 2"},
        {"line": 8, "file": "a.csv", "reason": "expected 3 columns, got 4"},
    ]
    assert abnormal["examples"][3]["reason"] == "column id: '7.5' is not an int"
    assert stats_of(summary, "id")["count"] == 4  # statistics describe the rows kept


def test_rule_fill_keeps_every_row_with_defaults(workspace):
    code, summary = run_import(workspace, {"a.csv": MESSY}, abnormal="fill")
    assert code == 0
    rows = rows_of(workspace, summary)
    assert rows["id"] == [1, 2, 3, 4, 5, 6, 0, 0, 8]  # in file order, bad ints -> 0
    assert rows["score"] == [0.5, 0.0, 1.5, 2.5, 6.5, 7.5, 8.5, 9.5, None]  # NA stays missing
    assert rows["name"] == ["a", "b", None, "two\nlines", "c", "d", "e", "f", ""]  # padded
    assert summary["abnormal"]["count"] == 5
    assert summary["abnormal"]["lines"] == [4, 5, 8, 10, 11]


def test_rule_fail_stops_naming_file_lines_and_rule(workspace):
    code, error = run_import(workspace, {"a.csv": MESSY}, abnormal="fail")
    assert code == 1
    assert error["lines"] == [4, 5, 8, 10, 11]
    assert "file a.csv" in error["error"] and "line 4" in error["error"]
    assert "'fail'" in error["error"] and "'x' is not a float" in error["error"]
    assert not list((workspace / "output").glob("*.parquet"))


def test_fill_defaults_for_bool_and_datetime(workspace):
    columns = [{"name": "flag", "type": "bool"}, {"name": "when", "type": "datetime"}]
    code, summary = run_import(
        workspace,
        {"a.csv": "flag,when\ntrue,2024-01-01\nmaybe,2024-13-45\n,\n"},
        columns=columns,
        abnormal="fill",
    )
    assert code == 0
    rows = rows_of(workspace, summary)
    assert rows["flag"] == [True, False, None]
    assert [str(v) if v else None for v in rows["when"]] == [
        "2024-01-01 00:00:00",
        "1970-01-01 00:00:00",
        None,
    ]
    assert summary["abnormal"]["count"] == 1


def test_abnormal_rows_deep_in_a_file_neither_lose_nor_repeat_rows(workspace, monkeypatch):
    """Small read blocks make many batches: the fast path delivers some before it meets a bad
    row, and the robust re-read must carry on exactly after them."""
    monkeypatch.setattr(table_reading, "BLOCK_SIZE", 1 << 16)
    lines, expected, bad = ["id,score,name"], [], []
    for i in range(40_000):
        if i in (25_000, 33_000):
            bad.append(len(lines) + 1)
            lines.append(f"{i},{'oops' if i == 25_000 else '1,2,3'},n")
        else:
            lines.append(f"{i},{i / 4},n{i}")
            expected.append(i)
    code, summary = run_import(workspace, {"a.csv": "\n".join(lines) + "\n"})
    assert code == 0
    assert rows_of(workspace, summary)["id"] == expected
    assert summary["abnormal"]["lines"] == bad
    assert stats_of(summary, "id")["count"] == len(expected)


def test_all_rows_abnormal_is_an_error(workspace):
    code, error = run_import(workspace, {"a.csv": "id,score,name\nx,1,a\ny,2,b\n"})
    assert code == 1
    assert "all 2 rows are abnormal" in error["error"]


# ---------------------------------------------------------------------------------------------
# Bad input: a clear message each


def test_an_empty_file(workspace):
    assert run_import(workspace, {"a.csv": ""})[1]["error"] == "file a.csv is empty"


def test_a_header_without_rows(workspace):
    code, error = run_import(workspace, {"a.csv": "id,score,name\n\n"})
    assert (code, error["error"]) == (1, "file a.csv has a header line but no data rows")


def test_gbk_bytes_read_as_utf8(workspace):
    code, error = run_import(workspace, {"a.csv": "id,score,name\n1,2.5,名字\n".encode("gbk")})
    assert code == 1 and error["lines"] == [2]
    assert "file a.csv is not valid UTF-8 (line 2)" in error["error"]
    assert "GBK/GB18030" in error["error"] and "choose that encoding" in error["error"]


def test_gbk_bytes_far_into_a_file(workspace):
    content = b"id,score,name\n" + b"1,2.5,a\n" * 100_000 + "2,3.5,名字\n".encode("gbk")
    code, error = run_import(workspace, {"a.csv": content})
    assert code == 1 and error["lines"] == [100_002]
    assert "not valid UTF-8" in error["error"]


@pytest.mark.parametrize(
    "quoted_row",
    [
        '2,"2.5,b',  # the row is then short of a field: pyarrow hands it over as abnormal
        '2,2.5,"b',  # the row still has 3 fields: its name would be the rest of the file
        '2,"2.5',  # ... or its score, which then is not a number
    ],
)
def test_an_unterminated_quote(workspace, quoted_row):
    columns = COLUMNS_ABC if quoted_row.count(",") == 2 else COLUMNS_ABC[:2]
    first = "1,1.5,a" if len(columns) == 3 else "1,1.5"
    rest = "\n".join(["3,3.5,c"] * 1000 if len(columns) == 3 else ["3,3.5"] * 1000)
    content = f"{','.join(c['name'] for c in columns)}\n{first}\n{quoted_row}\n{rest}\n"
    code, error = run_import(workspace, {"a.csv": content}, columns=columns)
    assert code == 1 and error["lines"] == [3]
    assert 'the quote (") opened on line 3 is never closed' in error["error"]


def test_a_line_over_16_mb_fails_fast(workspace):
    content = b"id,score,name\n1,1.5,a\n2,2.5," + b"x" * (40 << 20) + b"\n3,3.5,c\n"
    started = time.monotonic()
    code, error = run_import(workspace, {"a.csv": content})
    assert time.monotonic() - started < 20
    assert code == 1 and error["lines"] == [3]
    assert "line 3 is longer than 16 MB" in error["error"]


def test_a_long_row_within_the_limit_is_read(workspace, monkeypatch):
    # Rows longer than a read block get a second try with blocks as big as the line limit.
    monkeypatch.setattr(table_reading, "BLOCK_SIZE", 1 << 16)
    long_name = "y" * 300_000
    content = "id,score,name\n1,1.5,a\n" + f"2,2.5,{long_name}\n" + "3,3.5,c\n" * 20_000
    code, summary = run_import(workspace, {"a.csv": content})
    assert code == 0
    rows = rows_of(workspace, summary)
    assert rows["id"][:3] == [1, 2, 3] and len(rows["id"]) == 20_002
    assert rows["name"][1] == long_name


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"columns": [*COLUMNS_ABC[:2], {"name": "ID", "type": "string"}]},
            "column name 'ID' is used twice (columns 1 and 3)",
        ),
        (
            {"columns": [*COLUMNS_ABC[:2], {"name": "first name", "type": "string"}]},
            "column 3 name 'first name' contains a space",
        ),
        (
            {"columns": [*COLUMNS_ABC[:2], {"name": "a-b", "type": "string"}]},
            "column 3 name 'a-b' contains '-'",
        ),
        (
            {"columns": [*COLUMNS_ABC[:2], {"name": "name", "type": "text"}]},
            "column 'name' has unknown type 'text'",
        ),
        ({"columns": COLUMNS_ABC[:2]}, "file a.csv has 3 columns but 2 are declared"),
        ({"separator": ";"}, "file a.csv has 1 column but 3 are declared (is the separator"),
        ({"encoding": "utf-9"}, "unknown encoding 'utf-9'"),
        ({"abnormal": "ignore"}, "unknown rule for abnormal rows 'ignore'"),
        ({"separator": ",,"}, "separator must be one character"),
    ],
)
def test_bad_parameters_are_explained(workspace, change, message):
    code, error = run_import(workspace, {"a.csv": "id,score,name\n1,1.5,a\n"}, **change)
    assert code == 1
    assert message in error["error"]


def test_a_missing_input_file(workspace):
    code, error = run_import(workspace, {}, inputs=["train_data/nope.csv"])
    assert (code, error["error"]) == (1, "file train_data/nope.csv was not found")


# ---------------------------------------------------------------------------------------------
# Statistics beyond what fits in memory exactly


def test_statistics_of_many_rows_are_estimated_within_bounds(workspace):
    rng = np.random.default_rng(7)
    rows = 150_000
    measure = rng.normal(10, 3, rows).round(6)
    category = rng.integers(0, 5, rows)
    ident = np.array([f"user-{i:06d}" for i in rng.permutation(rows)])
    pacsv.write_csv(
        pa.table({"measure": measure, "category": category, "ident": ident}),
        workspace / "train_data" / "many.csv",
    )
    columns = [
        {"name": "measure", "type": "float"},
        {"name": "category", "type": "int"},
        {"name": "ident", "type": "string"},
    ]
    code, summary = run_import(workspace, {}, columns=columns, inputs=["train_data/many.csv"])
    assert code == 0

    m = stats_of(summary, "measure")
    assert m["mean"] == pytest.approx(measure.mean(), rel=1e-12)
    assert m["variance"] == pytest.approx(measure.var(ddof=1), rel=1e-9)
    assert (m["min"], m["max"]) == (measure.min(), measure.max())
    assert m["quantiles_exact"] is False  # more rows than the sample holds
    assert m["median"] == pytest.approx(np.median(measure), abs=0.05)
    assert m["q1"] == pytest.approx(np.quantile(measure, 0.25), abs=0.05)
    true_unique = len(np.unique(measure))
    assert m["unique_exact"] is False
    assert m["unique"] == pytest.approx(true_unique, rel=0.05)
    assert sum(m["histogram"]["counts"]) == rows
    assert m["top"] == []  # too many distinct values for a meaningful top list

    c = stats_of(summary, "category")
    assert (c["unique"], c["unique_exact"]) == (5, True)
    assert dict(map(tuple, c["top"])) == dict(
        zip(*np.unique(category, return_counts=True), strict=True)
    )

    ident_stats = stats_of(summary, "ident")
    assert ident_stats["unique_exact"] is False
    assert ident_stats["unique"] == pytest.approx(rows, rel=0.05)


def test_summary_is_strict_json_with_infinities_and_empty_columns(workspace):
    code, summary = run_import(
        workspace,
        {"a.csv": "id,score,name\n1,inf,a\n2,-inf,b\n3,,c\n"},
        columns=[
            {"name": "id", "type": "float"},
            {"name": "score", "type": "float"},
            {"name": "name", "type": "string"},
        ],
    )
    assert code == 0  # run_import's json.loads refuses NaN/Infinity
    score = stats_of(summary, "score")
    assert (score["count"], score["missing"], score["mean"], score["min"]) == (2, 1, None, None)


# ---------------------------------------------------------------------------------------------
# Preview and the name rules the web side shares


def test_preview_names_types_and_rows():
    sample = (
        "sepal length,Sepal_Length,1st,,名字,flag,when\n"
        "5.1,3,1,x,张三,true,2024-01-01\n"
        "4.9,2,2,y,李四,false,2024/01/02 10:00:00\n"
    ).encode()
    # Cut in the middle of the last line, inside a multi-byte character.
    sample += "4.7,1,3,z,王".encode()[:-1]
    result = preview(sample, separator=",", header=True, encoding="utf-8")
    columns = result["columns"]
    assert [c["name"] for c in columns] == [
        "sepal length", "Sepal_Length", "1st", "", "名字", "flag", "when",
    ]  # fmt: skip
    assert [c["suggested_name"] for c in columns] == [
        "sepal_length", "Sepal_Length_2", "c_1st", "col_4", "名字", "flag", "when",
    ]  # fmt: skip
    assert [c["type"] for c in columns] == [
        "float", "int", "int", "string", "string", "bool", "datetime",
    ]  # fmt: skip
    assert [c["index"] for c in columns] == list(range(7))
    assert result["rows"][0] == ["5.1", "3", "1", "x", "张三", "true", "2024-01-01"]
    assert len(result["rows"]) == 2  # the cut-off line is not shown
    assert all(column_name_problem(c["suggested_name"]) is None for c in columns)


def test_preview_without_header_names_columns_and_warns_about_a_header_look():
    result = preview(b"a,b\n1,2.5\n3,4.5\n", separator=",", header=False, encoding="utf-8")
    assert [c["name"] for c in result["columns"]] == ["col_1", "col_2"]
    assert result["rows"][0] == ["a", "b"]
    assert any("looks like a header" in w for w in result["warnings"])


def test_preview_suggests_an_encoding_for_undecodable_bytes():
    with pytest.raises(ValueError, match="not valid UTF-8.*GBK/GB18030"):
        preview("名字,年龄\n张三,3\n".encode("gbk"), separator=",", header=True, encoding="utf-8")
    result = preview(
        "名字,年龄\n张三,3\n".encode("gbk"), separator=",", header=True, encoding="gbk"
    )
    assert result["columns"][1] == {
        "index": 1, "name": "年龄", "suggested_name": "年龄", "type": "int",
    }  # fmt: skip


def test_preview_rejects_empty_and_inconsistent_samples_and_warns_about_a_few_odd_lines():
    with pytest.raises(ValueError, match="empty"):
        preview(b"", separator=",", header=True, encoding="utf-8")
    with pytest.raises(ValueError, match="same number of fields"):
        preview(b"a,b\n1,2\n3\n4,5,6\n7\n", separator=",", header=True, encoding="utf-8")
    sample = b"a,b\n" + b"1,2\n" * 30 + b"3\n"
    warnings = preview(sample, separator=",", header=True, encoding="utf-8")["warnings"]
    assert warnings == ["line 32 has 1 field, not 2: such rows follow the rule for abnormal rows"]
    one_column = preview(b"a;b\n1;2\n", separator=",", header=True, encoding="utf-8")
    assert "separator" in one_column["warnings"][0]


def test_column_name_rules():
    assert column_name_problem("sepal_length") is None
    assert column_name_problem("名字_2") is None
    assert column_name_problem("_private") is None
    assert column_name_problem("sepal length") == (
        "contains a space: use only letters, digits and underscores"
    )
    assert column_name_problem("1st") == "starts with a digit"
    assert column_name_problem("") == "is empty"
    assert column_name_problem("x" * 129) == "is longer than 128 characters"
    validate_columns([{"name": "a", "type": "int"}, {"name": "b", "type": "datetime"}])
    with pytest.raises(ValueError, match="column 2 name 'b c' contains a space"):
        validate_columns([{"name": "a", "type": "int"}, {"name": "b c", "type": "int"}])
    with pytest.raises(ValueError, match="used twice"):
        validate_columns([{"name": "a", "type": "int"}, {"name": "A", "type": "int"}])
    with pytest.raises(ValueError, match="unknown type 'double'"):
        validate_columns([{"name": "a", "type": "double"}])
