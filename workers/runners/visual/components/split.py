"""Split a table's rows into a training and a test set by a ratio, for a seed, optionally
keeping each class's share (stratification). Rows only: no fitted step."""

from __future__ import annotations

from workers.runners.visual.base import Component, Param, Port, register


@register
class Split(Component):
    name = "split"
    label = "Split"
    group = "Preprocessing"
    description = "Training and test rows by a ratio; the same seed gives the same split."
    inputs = (Port("table", "table", "Table"),)
    outputs = (Port("train", "table", "Training set"), Port("test", "table", "Test set"))
    params = (
        Param("ratio", "Training share", "float", default=0.8, min=0.01, max=0.99),
        Param("seed", "Random seed", "int", default=0, min=0),
        Param(
            "stratify",
            "Stratify by",
            "column",
            help="Keep each value's share of rows in both sets (a class column).",
        ),
    )

    def check(self, params, inputs):
        return {"train": inputs["table"], "test": inputs["table"]}

    def run(self, params, inputs, context):
        table = inputs["table"]
        frame = table.frame
        train = split_rows(frame, params["ratio"], params["seed"], params.get("stratify"))
        picked = frame.index.isin(train)
        context.facts["rows"] = {"train": int(picked.sum()), "test": int((~picked).sum())}
        return {
            "train": table.derive(frame[picked].reset_index(drop=True)),
            "test": table.derive(frame[~picked].reset_index(drop=True)),
        }


def split_rows(frame, ratio: float, seed: int, stratify: str | None):
    """The index labels of the training rows (the rest are the test rows)."""
    import numpy as np

    from workers.runners.visual.pipeline import category_key

    rng = np.random.default_rng(seed)
    if not stratify:
        order = rng.permutation(len(frame))
        return frame.index[order[: _train_count(len(frame), ratio)]]
    if stratify not in frame.columns:
        raise ValueError(f"stratify: no column '{stratify}' in the input")
    keys = frame[stratify].map(lambda v: category_key(v) or "")
    train = []
    for _, group in sorted(frame.groupby(keys, sort=False).groups.items()):
        order = rng.permutation(len(group))
        count = _train_count(len(group), ratio)
        if len(group) >= 2:
            count = min(max(count, 1), len(group) - 1)  # each class on both sides
        train.extend(group[order[:count]])
    return train


def _train_count(rows: int, ratio: float) -> int:
    return min(rows, max(1 if rows else 0, int(round(rows * ratio))))
