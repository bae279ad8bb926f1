"""Reads of data sets, scoped to the requesting user; public data sets are readable by all."""

import math
from datetime import date, datetime

from django.db.models import OuterRef, Q, Subquery
from django.http import Http404

from apps.datasets.models import Dataset, DatasetStatus, DatasetVersion
from apps.datasets.storage_io import ObjectFile
from apps.projects.selectors import may_write
from apps.storage.paths import parse_bos_uri
from bml_site.numbers import as_id

MAX_PAGE_ROWS = 200


def _with_status(datasets):
    latest = DatasetVersion.objects.filter(dataset=OuterRef("pk")).order_by("-number")
    return datasets.select_related("current_version").annotate(
        latest_status=Subquery(latest.values("status")[:1])
    )


def datasets_for(user, project=None):
    datasets = Dataset.objects.filter(project__memberships__user=user, is_public=False)
    if project is not None:
        datasets = datasets.filter(project=project)
    return _with_status(datasets.distinct())


def public_datasets():
    return _with_status(Dataset.objects.filter(is_public=True))


def get_dataset(user, pk) -> Dataset:
    """A data set of one of the user's projects, or a public one; 404 otherwise."""
    try:
        pk = int(pk)
    except (TypeError, ValueError):
        raise Http404("No such data set.") from None
    dataset = (
        Dataset.objects.select_related("project", "current_version")
        .filter(Q(is_public=True) | Q(project__memberships__user=user), pk=pk)
        .first()
    )
    if dataset is None:
        raise Http404("No such data set.")
    return dataset


def user_may_write(user, dataset: Dataset) -> bool:
    if dataset.is_public:
        return False
    return may_write(user, dataset.project_id)


def get_version(dataset: Dataset, number=None) -> DatasetVersion | None:
    """A version by number (any status; 404 if there is none), or the current one (the
    last upload that succeeded; None while the data set has no data)."""
    if number in (None, ""):
        return dataset.current_version
    try:
        return dataset.versions.get(number=int(number))
    except (DatasetVersion.DoesNotExist, TypeError, ValueError):
        raise Http404("No such version.") from None


def json_value(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


def read_rows(version: DatasetVersion | None, offset: int = 0, limit: int = 50) -> dict:
    """A page of a version's rows, read from its parquet parts. No version (no data yet):
    no rows."""
    offset, limit = max(0, int(offset)), max(1, min(int(limit), MAX_PAGE_ROWS))
    page = {"version": None, "columns": [], "offset": offset, "limit": limit, "total": 0}
    if version is None or version.status != DatasetStatus.SUCCEEDED:
        return {**page, "rows": []}
    return {
        **page,
        "version": version.number,
        "columns": version.columns,
        "total": version.rows,
        "rows": read_parquet_rows(version.parts, offset, limit),
    }


def read_parquet_rows(parts: list[str], offset: int, limit: int) -> list[list]:
    """Rows [offset, offset + limit) of the bos:// parquet files `parts` read in order:
    only the footers and the row groups the page touches are fetched."""
    import pyarrow.parquet as pq

    rows: list[list] = []
    skip = offset
    for uri in parts:
        if len(rows) >= limit:
            break
        path = parse_bos_uri(uri)
        parquet = pq.ParquetFile(ObjectFile(path.bucket, path.key))
        if skip >= parquet.metadata.num_rows:
            skip -= parquet.metadata.num_rows
            continue
        for group in range(parquet.num_row_groups):
            group_rows = parquet.metadata.row_group(group).num_rows
            if skip >= group_rows:
                skip -= group_rows
                continue
            table = parquet.read_row_group(group).slice(skip, limit - len(rows))
            skip = 0
            columns = [table.column(i).to_pylist() for i in range(table.num_columns)]
            rows.extend([json_value(v) for v in row] for row in zip(*columns, strict=True))
            if len(rows) >= limit:
                break
    return rows


def parquet_part_response(version: DatasetVersion, part):
    """One parquet file of a version, streamed from the store (public ones included)."""
    from apps.storage.models import Bucket
    from apps.storage.streaming import object_response

    parts = version.parts if version else []
    index = as_id(part)  # never Python's count from the end: parts are numbered from 0
    if index is None or index >= len(parts):
        raise Http404("No such part of this version.")
    path = parse_bos_uri(parts[index])
    return object_response(Bucket(name=path.bucket), path.key)
