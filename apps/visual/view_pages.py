"""A page of a node's output table stored as a view (workers.runners.visual.views): the
view's own small files and only the rows of its base that the page needs, read from the
store (ranged reads of the row groups they fall in) or from this host's copy of the base
when it has one, through the view's operations."""

from pathlib import Path

from apps.datasets.selectors import json_value
from apps.datasets.storage_io import ObjectFile, read_object_bytes
from apps.storage.client import ObjectNotFound
from apps.storage.paths import parse_bos_uri
from apps.visual.models import NodeRun
from apps.visual.node_jobs import local_output
from workers.runners.visual import views

VIEW_FILE_BYTES = 256 << 20  # a view's mask or added columns: far below this


class BaseGone(Exception):
    """The stored table a view was made from is no longer there."""


def _files(uris: list[str]) -> dict[str, str]:
    """{file name: bos:// uri} of a view's folder."""
    from apps.visual.results import stored_files

    files = stored_files(uris, "")
    return {uri.rsplit("/", 1)[-1]: uri for uri in files}


def _read(uri: str) -> bytes:
    path = parse_bos_uri(uri)
    return read_object_bytes(path.bucket, path.key, VIEW_FILE_BYTES)


def _spec_and_ops(output: dict) -> tuple[dict, list[dict]]:
    """The view's spec and its operations with their files read from the store."""
    files = _files(output["uris"])
    if views.VIEW_FILE not in files:
        raise BaseGone("the view's files are gone")
    view = views.parse_spec(_read(files[views.VIEW_FILE]))

    def read(name: str) -> bytes:
        if name not in files:
            raise BaseGone(f"the view's file {name} is gone")
        return _read(files[name])

    return view, views.loaded_ops(view, read)


def _base_rows(view: dict, positions):
    """The base table's rows at `positions` (ascending), as a frame."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from apps.visual.results import stored_files

    base = NodeRun.objects.filter(pk=view["base"]["node_run"]).first()
    output = (base.outputs if base else {}).get(view["base"]["port"])
    if not output:
        raise BaseGone("the table this view was made from is gone")
    local = local_output(base, view["base"]["port"])
    pieces, start = [], 0
    for uri in stored_files(output["uris"], ".parquet"):
        path = parse_bos_uri(uri)
        stored = ObjectFile(path.bucket, path.key)
        here = _on_this_host(local, output["uris"], uri, stored.size)
        parquet = pq.ParquetFile(here or stored)
        rows = parquet.metadata.num_rows
        inside = positions[(positions >= start) & (positions < start + rows)] - start
        group_start = 0
        for group in range(parquet.num_row_groups if len(inside) else 0):
            group_rows = parquet.metadata.row_group(group).num_rows
            wanted = inside[(inside >= group_start) & (inside < group_start + group_rows)]
            if len(wanted):
                pieces.append(parquet.read_row_group(group).take(wanted - group_start))
            group_start += group_rows
        start += rows
    if not pieces:
        raise BaseGone("the table this view was made from has fewer rows than it did")
    table = pa.concat_tables(pieces, promote_options="default")
    return table.replace_schema_metadata(None).to_pandas()


def _on_this_host(local: str | None, uris: list[str], uri: str, size: int) -> str | None:
    """The file of `uri` in this host's copy of the output (`local`: the folder an earlier
    run left, node_jobs.local_output) when it is there with the store's size: read from the
    disk's cache, not in ranged requests to the store."""
    if not local:
        return None
    folder = next((u for u in uris if u.endswith("/") and uri.startswith(u)), None)
    relative = uri[len(folder) :] if folder else uri.rsplit("/", 1)[-1]
    candidate = Path(local) / relative
    try:
        inside = Path(local).resolve() in candidate.resolve().parents
        if inside and not candidate.is_symlink() and candidate.stat().st_size == size:
            return str(candidate)
    except OSError:
        pass
    return None


def page_rows(output: dict, offset: int, limit: int) -> list[list]:
    """Rows [offset, offset + limit) of a view output, as JSON values in its schema's
    column order. BaseGone when its files or its base's are no longer stored."""
    try:
        view, ops = _spec_and_ops(output)
        total = int(output.get("rows") or 0)
        positions, at = views.page_positions(ops, total, offset, limit)
        if not len(positions):
            return []
        base = _base_rows(view, positions)
    except ObjectNotFound:
        raise BaseGone("a file it is made of is no longer stored") from None
    frame = views.apply_ops(base, ops, at)
    names = [c["name"] for c in output["schema"]["columns"]]
    columns = [frame[name].tolist() for name in names]
    return [[json_value(v) for v in row] for row in zip(*columns, strict=True)]
