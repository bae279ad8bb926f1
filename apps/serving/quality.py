"""The spec's "service quality": PV, total and average traffic, total and average handling
time, and the proportions of 2xx/3xx/4xx/5xx, per time point over a chosen range, from the
minute buckets the gateway writes."""

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.core.exceptions import ValidationError
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from apps.serving.models import QualityBucket, Service
from bml_site.numbers import as_id

RANGES = {"1h": timedelta(hours=1), "6h": timedelta(hours=6), "24h": timedelta(days=1),
          "7d": timedelta(days=7), "30d": timedelta(days=30)}  # fmt: skip
MAX_POINTS = 60  # a chart of at most 60 points, each of whole minutes
COUNTS = ("requests", "bytes_in", "bytes_out", "handle_ms")
STATUSES = ("status_2xx", "status_3xx", "status_4xx", "status_5xx")


@dataclass
class Window:
    start: datetime
    end: datetime
    step: timedelta


def window(range_name: str = "1h", start: str = "", end: str = "") -> Window:
    """A range by name (1h, 6h, 24h, 7d, 30d, ending now) or by ISO start/end times."""
    if start or end:
        try:  # well-formed but impossible ("2024-13-45", "+99:00") raises, not None
            begin, finish = parse_datetime(start or ""), parse_datetime(end or "")
        except ValueError:
            begin = finish = None
        if begin is None or finish is None:
            raise ValidationError({"start": "start and end must both be ISO 8601 date-times."})
        if timezone.is_naive(begin):
            begin = timezone.make_aware(begin)
        if timezone.is_naive(finish):
            finish = timezone.make_aware(finish)
        if finish <= begin:
            raise ValidationError({"end": "end must be after start."})
    else:
        if range_name not in RANGES:
            raise ValidationError({"range": f"range must be one of {', '.join(RANGES)}."})
        finish = timezone.now()
        begin = finish - RANGES[range_name]
    minutes = max(1, math.ceil((finish - begin).total_seconds() / 60 / MAX_POINTS))
    step = timedelta(minutes=minutes)
    begin = begin.replace(second=0, microsecond=0)
    return Window(begin, finish, step)


def version_filter(raw: str | None) -> int | None:
    """?version= of the quality figures: None for all versions, else a version number (0:
    requests refused before a version was chosen)."""
    if not raw:
        return None
    version = as_id(raw)
    if version is None:
        raise ValidationError({"version": "version must be a version number."})
    return version


def series(service: Service, win: Window, version: int | None = None) -> dict:
    """{"points": [{"time", "pv", "sumTraffic", "avgTraffic", "sumHandleTime",
    "avgHandleTime", "status2xx".."status5xx"}, ...], "totals": {...}} with the spec's names
    (handling times in ms, traffic in bytes)."""
    rows = QualityBucket.objects.filter(service=service, start__gte=win.start, start__lt=win.end)
    if version is not None:
        rows = rows.filter(version_number=version)
    slots: dict[int, dict] = {}
    count = int((win.end - win.start) / win.step) + 1
    for row in rows.values("start", *COUNTS, *STATUSES):
        slot = int((row["start"] - win.start) / win.step)
        acc = slots.setdefault(slot, dict.fromkeys(COUNTS + STATUSES, 0))
        for name in COUNTS + STATUSES:
            acc[name] += row[name]
    points = []
    totals = dict.fromkeys(COUNTS + STATUSES, 0)
    for slot in range(count):
        acc = slots.get(slot, dict.fromkeys(COUNTS + STATUSES, 0))
        for name in totals:
            totals[name] += acc[name]
        points.append({"time": (win.start + slot * win.step).isoformat(), **figures(acc)})
    return {
        "start": win.start.isoformat(),
        "end": win.end.isoformat(),
        "step_seconds": int(win.step.total_seconds()),
        "points": points,
        "totals": figures(totals),
    }


def figures(acc: dict) -> dict:
    pv = acc["requests"]
    traffic = acc["bytes_in"] + acc["bytes_out"]
    answered = sum(acc[name] for name in STATUSES)
    return {
        "pv": pv,
        "sumTraffic": traffic,
        "avgTraffic": round(traffic / pv, 1) if pv else 0,
        "sumHandleTime": round(acc["handle_ms"], 3),
        "avgHandleTime": round(acc["handle_ms"] / pv, 3) if pv else 0,
        "successRatio": round(acc["status_2xx"] / answered, 4) if answered else None,
        **{
            f"status{name[-3:]}Proportion": round(acc[name] / answered, 4) if answered else 0
            for name in STATUSES
        },
    }
