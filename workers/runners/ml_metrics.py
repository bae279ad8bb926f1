"""Evaluation of binary classifiers, shared by logistic regression and GBDT: accuracy, AUC,
precision, recall, F1 and log loss, merged across instances (each evaluates its share of
the evaluation data; counts and a 10,000-bin score histogram are summed, so the AUC is
exact to the bin width). No Django import."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from workers.runners import ml_dist

AUC_BINS = 10_000
EPS = 1e-15


def _auc_from_histograms(positive: np.ndarray, negative: np.ndarray) -> float | None:
    """Probability that a random positive scores above a random negative (ties: half)."""
    pos_total, neg_total = positive.sum(), negative.sum()
    if pos_total == 0 or neg_total == 0:
        return None
    negatives_below = np.concatenate([[0.0], np.cumsum(negative)[:-1]])
    wins = (positive * (negatives_below + 0.5 * negative)).sum()
    return float(wins / (pos_total * neg_total))


def binary_metrics(y_true, probability, threshold: float = 0.5) -> dict:
    """Metrics of this instance's predictions combined with every other instance's."""
    y = np.asarray(y_true, dtype=np.float64) > 0.5
    p = np.clip(np.asarray(probability, dtype=np.float64), EPS, 1 - EPS)
    predicted = p >= threshold
    bins = np.minimum((p * AUC_BINS).astype(np.int64), AUC_BINS - 1)
    counts = np.array(
        [
            len(y),
            np.sum(predicted & y),  # true positives
            np.sum(predicted & ~y),  # false positives
            np.sum(~predicted & y),  # false negatives
            np.sum(~predicted & ~y),  # true negatives
            -np.sum(np.where(y, np.log(p), np.log(1 - p))),  # summed log loss
        ],
        dtype=np.float64,
    )
    hist = np.concatenate(
        [
            np.bincount(bins[y], minlength=AUC_BINS),
            np.bincount(bins[~y], minlength=AUC_BINS),
        ]
    ).astype(np.float64)
    merged = ml_dist.allreduce_sum(np.concatenate([counts, hist]))
    n, tp, fp, fn, tn, loss = merged[:6]
    positive, negative = merged[6 : 6 + AUC_BINS], merged[6 + AUC_BINS :]
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "samples": int(n),
        "accuracy": float((tp + tn) / n) if n else None,
        "auc": _auc_from_histograms(positive, negative),
        "precision": float(precision),
        "recall": float(recall),
        "f1": float(f1),
        "log_loss": float(loss / n) if n else None,
        "confusion": {"tp": int(tp), "fp": int(fp), "fn": int(fn), "tn": int(tn)},
    }


def write_metrics(folder: Path, metrics: dict) -> None:
    """evaluate/metrics.json, plus a "name value" text file people can read in the browser."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "metrics.json").write_text(json.dumps(metrics, indent=2))
    lines = [f"{k} {v}" for k, v in metrics.items() if not isinstance(v, dict)]
    (folder / "metrics.txt").write_text("\n".join(lines) + "\n")
