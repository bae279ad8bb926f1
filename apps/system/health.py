"""Health of the three real parts: database, queue, object store."""

import time

from django.db import connection
from django_q.conf import Conf
from django_q.status import Stat

from apps.storage.client import StorageUnavailable, get_client, translate_errors


def check_database() -> dict:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return {"ok": True}
    except Exception as exc:  # any failure here is the answer, not a crash
        return {"ok": False, "error": str(exc)}


def check_queue() -> dict:
    """The Q cluster is healthy when at least one cluster reported in recently."""
    try:
        clusters = [s for s in Stat.get_all() if s.status != Conf.STOPPED]
    except Exception as exc:
        return {"ok": False, "error": str(exc)}
    if not clusters:
        return {"ok": False, "error": "no Q cluster is running"}
    return {"ok": True, "clusters": len(clusters), "workers": sum(len(s.workers) for s in clusters)}


def check_object_store() -> dict:
    started = time.monotonic()
    try:
        with translate_errors():
            get_client().list_buckets()
    except StorageUnavailable as exc:
        return {"ok": False, "error": str(exc)}
    except Exception as exc:
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
    return {"ok": True, "latency_ms": round((time.monotonic() - started) * 1000, 1)}


def report() -> dict:
    checks = {
        "database": check_database(),
        "queue": check_queue(),
        "object_store": check_object_store(),
    }
    return {"ok": all(c["ok"] for c in checks.values()), **checks}
