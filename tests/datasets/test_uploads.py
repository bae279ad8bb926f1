"""Uploads end to end: the spec's iris walk-through, supplement, replace, failures."""

import io

import pyarrow.parquet as pq
import pytest
from django.core.exceptions import ValidationError

from apps.datasets import selectors, services
from apps.datasets.models import DatasetStatus
from apps.storage.client import get_client
from tests.datasets.conftest import IRIS, IRIS_COLUMNS, upload


def read_parquet(uri: str):
    bucket, key = uri.removeprefix("bos://").split("/", 1)
    return pq.read_table(io.BytesIO(get_client().get_object(bucket, key).read()))


def stat(version, name):
    return next(s for s in version.stats if s["name"] == name)


def test_the_specs_iris_walkthrough(owner, dataset, put):
    """Headerless iris.csv, comma separator: preview guesses, convert, statistics."""
    source = put("data/iris.csv", IRIS)
    preview = services.preview_source(owner, dataset, source=source, separator=",", header=False)
    assert [c["type"] for c in preview["columns"]] == ["float"] * 4 + ["string"]
    assert preview["rows"][0] == ["5.1", "3.5", "1.4", "0.2", "Iris-setosa"]

    version = upload(owner, dataset, source, mode="replace")

    assert version.status == DatasetStatus.SUCCEEDED, version.reason
    assert dataset.current_version == version and dataset.rows == 150
    table = read_parquet(version.parts[0])
    assert table.num_rows == 150 and table.column_names[0] == "sepal_length"
    sepal = stat(version, "sepal_length")
    assert sepal["count"] == 150 and sepal["missing"] == 0 and sepal["unique"] == 35
    assert sepal["min"] == 4.3 and sepal["max"] == 7.9
    assert sepal["mean"] == pytest.approx(5.8433, abs=1e-3)
    assert sepal["std"] == pytest.approx(0.8281, abs=1e-3)  # sample std, as pandas gives
    assert sepal["median"] == pytest.approx(5.8)
    assert sum(sepal["histogram"]["counts"]) == 150
    species = stat(version, "species")
    assert species["unique"] == 3 and sorted(c for _, c in species["top"]) == [50, 50, 50]
    page = selectors.read_rows(version, offset=148, limit=10)
    assert page["total"] == 150 and len(page["rows"]) == 2
    assert page["rows"][-1] == [5.9, 3.0, 5.1, 1.8, "Iris-virginica"]
    assert version.measurements["seconds"]["convert"] > 0


def test_supplement_appends_rows_of_the_same_columns(owner, dataset, put):
    source = put("data/iris.csv", IRIS)
    first = upload(owner, dataset, source)
    more = put("more/extra.csv", b"1.0,2.0,3.0,4.0,Iris-new\n2.0,3.0,4.0,5.0,Iris-new\n")
    second = upload(owner, dataset, more, mode="supplement")
    assert second.status == DatasetStatus.SUCCEEDED, second.reason
    assert dataset.current_version == second and second.rows == 152
    assert second.parts[: len(first.parts)] == first.parts  # old parts kept, not copied
    assert stat(second, "species")["unique"] == 4
    assert stat(second, "sepal_length")["min"] == 1.0
    last = selectors.read_rows(second, offset=151, limit=5)["rows"]
    assert last == [[2.0, 3.0, 4.0, 5.0, "Iris-new"]]


def test_supplement_with_other_columns_is_refused_naming_the_rule(owner, dataset, put):
    upload(owner, dataset, put("data/iris.csv", IRIS))
    other = put("data/other.csv", b"a,b\n1,2\n")
    with pytest.raises(ValidationError) as error:
        services.start_upload(
            owner,
            dataset,
            source=other,
            mode="supplement",
            header=True,
            columns=[{"name": "a", "type": "int"}, {"name": "b", "type": "int"}],
        )
    assert "Supplement appends rows of the same columns" in str(error.value)
    assert dataset.versions.count() == 1


def test_replace_swaps_the_schema(owner, dataset, put):
    upload(owner, dataset, put("data/iris.csv", IRIS))
    people = "name\tage\tjoined\n张三\t31\t2024-01-02\nBob\t\t2023-05-06\n"
    new = put("data/people.tsv", people.encode())
    columns = [
        {"name": "name", "type": "string"},
        {"name": "age", "type": "int"},
        {"name": "joined", "type": "datetime"},
    ]
    version = upload(
        owner, dataset, new, columns=columns, mode="replace", separator="\t", header=True
    )
    assert version.status == DatasetStatus.SUCCEEDED, version.reason
    assert dataset.current_version == version and version.rows == 2
    assert [c["name"] for c in version.columns] == ["name", "age", "joined"]
    assert stat(version, "age")["missing"] == 1
    assert selectors.read_rows(version)["rows"][0][:2] == ["张三", 31]


def test_a_failed_upload_leaves_the_previous_version_readable(owner, dataset, put):
    good = upload(owner, dataset, put("data/iris.csv", IRIS))
    ragged = put("data/ragged.csv", b"1,2,3,4,a\n1,2,3\n5,6,7,8,b\n1,2,3,4,5,6\n")
    bad = upload(owner, dataset, ragged, abnormal="fail")
    assert bad.status == DatasetStatus.FAILED
    assert "2" in bad.reason and bad.bad_lines[:1] == [2]
    dataset.refresh_from_db()
    assert dataset.current_version == good and dataset.rows == 150
    assert len(selectors.read_rows(dataset.current_version, limit=200)["rows"]) == 150


def test_abnormal_rows_are_skipped_when_asked(owner, dataset, put):
    ragged = put("data/ragged.csv", b"1,2,3,4,a\n1,2,3\n5,6,7,8,b\nx,6,7,8,c\n")
    version = upload(owner, dataset, ragged, abnormal="skip")
    assert version.status == DatasetStatus.SUCCEEDED, version.reason
    assert version.rows == 2
    assert version.abnormal["count"] == 2 and version.abnormal["lines"] == [2, 4]


def test_a_file_in_the_wrong_encoding_fails_with_a_clear_reason(owner, dataset, put):
    gbk = put("data/gbk.csv", "1,2,3,4,山鸢尾\n".encode("gbk"))
    version = upload(owner, dataset, gbk, encoding="utf-8")
    assert version.status == DatasetStatus.FAILED
    assert "UTF-8" in version.reason and "GB" in version.reason
    ok = upload(owner, dataset, gbk, encoding="gbk")
    assert ok.status == DatasetStatus.SUCCEEDED, ok.reason
    assert selectors.read_rows(ok)["rows"][0][-1] == "山鸢尾"


@pytest.mark.parametrize(
    "data, header, message",
    [
        (b"", False, "empty"),
        (b"sepal_length,sepal_width,petal_length,petal_width,species\n", True, "no data rows"),
        (b'1,2,3,4,"unterminated\n5,6,7,8,b\n', False, "never closed"),
    ],
)
def test_bad_files_fail_with_a_reason(owner, dataset, put, data, header, message):
    if not data:  # refused before any job starts: nothing to convert
        with pytest.raises(ValidationError, match="empty"):
            services.start_upload(
                owner, dataset, source=put("data/empty.csv", data), columns=IRIS_COLUMNS
            )
        return
    version = upload(owner, dataset, put("data/bad.csv", data), header=header)
    assert version.status == DatasetStatus.FAILED
    assert message in version.reason.lower()


def test_a_100_mb_line_fails_fast_and_plainly(owner, dataset, put):
    line = b"1,2,3,4," + b"x" * (100 * 1024 * 1024) + b"\n"
    version = upload(owner, dataset, put("data/long.csv", line))
    assert version.status == DatasetStatus.FAILED
    assert "longer than" in version.reason


@pytest.mark.parametrize(
    "columns, message",
    [
        ([{"name": "a", "type": "float"}, {"name": "a", "type": "float"}], "a"),
        ([{"name": "sepal length", "type": "float"}], "sepal length"),
        ([{"name": "x", "type": "complex"}], "complex"),
    ],
)
def test_bad_column_settings_name_the_column_and_the_rule(owner, dataset, put, columns, message):
    with pytest.raises(ValidationError) as error:
        services.start_upload(
            owner, dataset, source=put("data/iris.csv", IRIS), columns=columns, mode="replace"
        )
    assert "columns" in error.value.message_dict
    assert message in error.value.message_dict["columns"][0]
    assert dataset.versions.count() == 0
