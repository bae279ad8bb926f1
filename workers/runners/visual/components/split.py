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
        import numpy as np

        table = inputs["table"]
        frame = table.frame
        train = split_rows(frame, params["ratio"], params["seed"], params.get("stratify"))
        picked = np.zeros(len(frame), dtype=bool)
        picked[train] = True
        kept = int(picked.sum())
        context.facts["rows"] = {"train": kept, "test": len(frame) - kept}
        # both keep the input's row order: stored as views (a bit per row), not copies
        return {"train": table.take_rows(picked), "test": table.take_rows(~picked)}


def split_rows(frame, ratio: float, seed: int, stratify: str | None):
    """The positions (0..n-1) of the training rows, in no particular order; the other rows
    are the test rows, and both sets keep the input's row order. The rule (the benchmark's
    peer script repeats it): rng = numpy.random.default_rng(seed); without stratification
    the first round(n * ratio) entries of rng.permutation(n); with it, per class in the
    order of the classes' texts (pipeline.category_key, missing as ""), the first
    round(rows * ratio) (at least one and at most rows - 1 for a class of two rows or more)
    entries of rng.permutation(rows) taken over that class's positions in row order."""
    import numpy as np
    import pandas as pd

    from workers.runners.visual.pipeline import category_key

    rng = np.random.default_rng(seed)
    if not stratify:
        order = rng.permutation(len(frame))
        return order[: _train_count(len(frame), ratio)]
    if stratify not in frame.columns:
        raise ValueError(f"stratify: no column '{stratify}' in the input")
    # the class text of each distinct value (not of each row): values that read the same
    # (1 and 1.0, None and NaN) are one class
    codes, uniques = pd.factorize(frame[stratify], use_na_sentinel=False)
    texts = [category_key(v) or "" for v in uniques]
    names = sorted(set(texts))
    number = {name: k for k, name in enumerate(names)}
    key_of = np.asarray([number[t] for t in texts] or [0], dtype="int64")
    keys = key_of[codes]
    ordered = np.argsort(keys, kind="stable")  # row order within each class
    bounds = np.searchsorted(keys[ordered], np.arange(len(names) + 1))
    train = []
    for k in range(len(names)):
        group = ordered[bounds[k] : bounds[k + 1]]
        order = rng.permutation(len(group))
        count = _train_count(len(group), ratio)
        if len(group) >= 2:
            count = min(max(count, 1), len(group) - 1)  # each class on both sides
        train.append(group[order[:count]])
    return np.concatenate(train) if train else np.zeros(0, dtype="int64")


def _train_count(rows: int, ratio: float) -> int:
    return min(rows, max(1 if rows else 0, int(round(rows * ratio))))
