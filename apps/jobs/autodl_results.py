"""What an AutoDL job's page shows of its run: the data report (classes, refused files
with their rule, warnings, duplicates), the preprocessing result (counts per split, a few
augmented samples), the confusion matrix and, for ENAS, the search (`log/enas.json`: rounds,
the best architecture as a graph, the candidates and the from-scratch results beside the
random architectures of the fairness check).

The runner writes them under its workspace's `log/` as it goes; they are read from there
while the run's folder exists (so a job that failed on its data still shows why, though a
failed run's outputs are not staged out), else from the stored `<output>/<job_id>/log/`.
"""

from apps.jobs import selectors
from apps.jobs.models import Job

FILES = {
    "report": "log/data_report.json",
    "preprocess": "log/preprocess.json",
    "confusion": "log/confusion.json",
    "enas": "log/enas.json",
}


def confusion_rows(confusion: dict | None) -> list[dict]:
    """The matrix as rows for the page: each cell with its share of the row (the shade)."""
    if not isinstance(confusion, dict):
        return []
    classes, matrix = confusion.get("classes") or [], confusion.get("matrix") or []
    rows = []
    for name, counts in zip(classes, matrix, strict=False):
        total = sum(counts) or 1
        cells = [
            {"count": count, "share": round(count / total, 3), "correct": i == len(rows)}
            for i, count in enumerate(counts)
        ]
        rows.append({"name": name, "cells": cells, "total": sum(counts)})
    return rows


def class_rows(report: dict | None, preprocess: dict | None) -> list[dict]:
    """Per class: the photos kept, and how many went to training and to validation."""
    splits = (preprocess or {}).get("classes") or {}
    rows = []
    for name, photos in ((report or {}).get("classes") or {}).items():
        split = splits.get(name) if isinstance(splits.get(name), dict) else {}
        rows.append(
            {
                "name": name,
                "photos": photos,
                "train": split.get("train"),
                "validation": split.get("validation"),
            }
        )
    return rows


def enas_search(job: Job) -> dict:
    """The ENAS search so far (the API's answer and the page's live drawing); empty for a
    job of another kind or before the first round."""
    if job.kind != "autodl" or job.algorithm != "enas":
        return {}
    found = selectors.run_json(job, FILES["enas"])
    return found if isinstance(found, dict) else {}


def results(job: Job) -> dict:
    found = {key: selectors.run_json(job, relative) for key, relative in FILES.items()}
    report = found["report"] if isinstance(found["report"], dict) else None
    return {
        "enas": found["enas"] if isinstance(found["enas"], dict) else None,
        "data_report": report,
        "refused_shown": (report or {}).get("refused", [])[:50],
        "preprocess": found["preprocess"] if isinstance(found["preprocess"], dict) else None,
        "confusion": found["confusion"] if isinstance(found["confusion"], dict) else None,
        "confusion_rows": confusion_rows(found["confusion"]),
        "class_rows": class_rows(report, found["preprocess"]),
    }
