"""Checks of running instances that may take a while, off the scheduler loop's thread:

- disk usage of the instance (shown in the console, read by the quota contents manager);
- activity: an instance idle for its auto-stop time is stopped (billing runs while it is
  running), but never while a kernel is busy;
- the storage path: data/ is synchronized with the bucket once the server is ready, every
  BML_NOTEBOOK_SYNC_S seconds, and once more after the server has stopped.
"""

import logging
import time
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import httpx
from django.conf import settings
from django.db import close_old_connections
from django.utils import timezone

from apps.notebooks import workspace
from apps.notebooks.models import Desired, Notebook
from apps.storage.paths import parse_bos_uri
from workers import sandbox

logger = logging.getLogger(__name__)

_POOL = ThreadPoolExecutor(max_workers=2, thread_name_prefix="notebook-housekeeping")
_checks: dict[int, Future] = {}
_final_syncs: dict[int, Future] = {}
_next_check: dict[int, float] = {}
_next_sync: dict[int, float] = {}


def schedule(notebook: Notebook, now, first: bool = False) -> None:
    """Start the checks of a running instance when they are due (at most one at a time)."""
    pk, clock = notebook.pk, time.monotonic()
    if pk in _checks or (not first and clock < _next_check.get(pk, 0)):
        return
    _next_check[pk] = clock + settings.NOTEBOOK_CHECK_S
    sync = bool(notebook.storage_path) and (first or clock >= _next_sync.get(pk, 0))
    if sync:
        _next_sync[pk] = clock + settings.NOTEBOOK_SYNC_S
    _checks[pk] = _POOL.submit(_run, check, notebook.pk, sync)


def final_sync(notebook: Notebook) -> None:
    _next_check.pop(notebook.pk, None)
    _next_sync.pop(notebook.pk, None)
    if notebook.storage_path:
        _final_syncs[notebook.pk] = _POOL.submit(_run, synchronize, notebook.pk)


def final_sync_done(notebook: Notebook) -> bool:
    future = _final_syncs.get(notebook.pk)
    if future is None or future.done():
        _final_syncs.pop(notebook.pk, None)
        return True
    return False


def collect_finished() -> None:
    for pk, future in list(_checks.items()):
        if future.done():
            del _checks[pk]


def _run(function, *args):
    try:
        return function(*args)
    except Exception:
        logger.exception("notebook housekeeping %s%s failed", function.__name__, args)
    finally:
        close_old_connections()


# -- the checks --------------------------------------------------------------------------


def check(pk: int, sync: bool) -> None:
    notebook = Notebook.objects.select_related("package").filter(pk=pk).first()
    if notebook is None:
        return
    used, files_changed = workspace.scan(notebook)
    workspace.record_disk_usage(notebook, used)
    Notebook.objects.filter(pk=pk).update(disk_used_bytes=used)
    if notebook.port:
        check_activity(notebook, files_changed_at=datetime.fromtimestamp(files_changed, UTC))
    if sync:
        synchronize(pk)


def jupyter_get(notebook: Notebook, path: str):
    response = httpx.get(
        f"http://127.0.0.1:{notebook.port}{notebook.base_url}{path}",
        params={"no_track_activity": "1"},
        headers={"Authorization": f"token {notebook.token}"},
        timeout=5,
    )
    response.raise_for_status()
    return response.json()


def check_activity(notebook: Notebook, now=None, files_changed_at=None) -> None:
    """Record the last activity; stop the instance when it has been idle too long.

    Activity is what a person does: code run in a kernel (its messages, or a cell still
    running), a terminal used, a file saved. Not Jupyter's own "last_activity": an open
    JupyterLab tab polls the server every few seconds, which would keep an unattended
    instance running (and billed) forever."""
    try:
        kernels = jupyter_get(notebook, "api/kernels")
        terminals = jupyter_get(notebook, "api/terminals") if notebook.terminals else []
    except (httpx.HTTPError, ValueError):
        return  # not answering now: the loop notices a dead server by itself
    now = now or timezone.now()
    times = [notebook.ready_at, files_changed_at]
    times += [_parse(item.get("last_activity")) for item in [*kernels, *terminals]]
    if any(k.get("execution_state") == "busy" for k in kernels):
        times.append(now)  # a cell is running: that is activity, however long it takes
    last = max(t for t in times if t is not None)
    Notebook.objects.filter(pk=notebook.pk).update(last_activity_at=last)
    limit = notebook.auto_stop_minutes
    if limit and now - last > timedelta(minutes=limit):
        Notebook.objects.filter(pk=notebook.pk, desired=Desired.RUNNING).update(
            desired=Desired.STOPPED,
            reason=f"stopped after {limit} minutes without activity",
        )


def _parse(value) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def synchronize(pk: int) -> None:
    """data/ <-> the storage path; an error is shown on the instance and retried later."""
    from apps.notebooks.sync import sync_folder

    notebook = Notebook.objects.filter(pk=pk).first()
    if notebook is None or not notebook.storage_path:
        return
    path = parse_bos_uri(notebook.storage_path)
    prefix = path.key if not path.key or path.key.endswith("/") else path.key + "/"
    try:
        report = sync_folder(
            workspace.work_dir(notebook) / "data",
            path.bucket,
            prefix,
            workspace.instance_dir(notebook) / "sync-state.json",
            owner=sandbox.run_uid(notebook.project_id) if sandbox.active() else None,
        )
    except Exception as exc:
        Notebook.objects.filter(pk=pk).update(sync_error=f"{type(exc).__name__}: {exc}"[:1000])
        return
    problems = "; ".join(report.skipped[:5])
    Notebook.objects.filter(pk=pk).update(synced_at=timezone.now(), sync_error=problems)
