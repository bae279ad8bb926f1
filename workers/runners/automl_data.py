"""An AutoML job's three data sets (tuning-train, tuning-test, model-training), raw sample
files as the machine learning jobs read them, standardized inside the job once, before the
first trial, with one dictionary: a feature or label has the same id in all three. No
Django import.

Each set goes through the data standardization job's own code (ml_standardize) on this
instance alone (every instance holds all three sets whole: the trials run in parallel, not
the data), then the three are put on one feature map (the union of their features, in
ml_data's order) and one label map. The spec's rule: each set must hold exactly two labels,
the same two; a multi-class file fails here, before the first trial, with the labels found.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from workers.runners import ml_data, ml_lr, ml_standardize

ROLES = {
    "tune_train": "tuning-train",
    "tune_test": "tuning-test",
    "model_train": "model-training",
}


class DataProblem(Exception):
    """The data cannot be searched on; the message names the set and the rule."""


@dataclass
class Prepared:
    """The three sets on one feature and label map: X (dense array or CSR), y as 0/1."""

    sets: dict[str, tuple[object, np.ndarray]]
    feature_names: list[str]
    label_names: list[str]  # [negative, positive]
    format: str

    @property
    def feature_num(self) -> int:
        return len(self.feature_names)


@contextlib.contextmanager
def this_instance_alone():
    """ml_standardize shares its work over the job's instances (ml_dist reads WORLD_SIZE
    and RANK); here each instance converts whole sets by itself."""
    saved = {key: os.environ.get(key) for key in ("WORLD_SIZE", "RANK")}
    os.environ.update({"WORLD_SIZE": "1", "RANK": "0"})
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def standardize(data_format: str, inputs: dict[str, Path], work: Path) -> dict:
    """Each role's input standardized under work/<role>/ and loaded."""
    loaded = {}
    with this_instance_alone():
        for role, path in inputs.items():
            params = ml_standardize.Params(data_format, "classification", path, work / role)
            try:
                ml_standardize.standardize(params)
            except ml_standardize.StandardizeFailed as failure:
                raise DataProblem(f"{ROLES[role]} data: {failure}") from None
            loaded[role] = ml_data.load(work / role)
    return loaded


def check_labels(loaded: dict) -> list[str]:
    """The two labels every set holds (sorted as ml_data sorts them: the second is the
    positive class), or the rule broken with the labels found."""
    found = {role: sorted(set(data.label_names)) for role, data in loaded.items()}
    every = sorted(set().union(*found.values()), key=ml_data.feature_sort_key)
    listed = "; ".join(
        f"{ROLES[role]}: {', '.join(map(repr, labels))}" for role, labels in found.items()
    )
    if len(every) != 2:
        raise DataProblem(
            "AutoML (logistic regression, GBDT) supports binary classification only: the data "
            f"holds {len(every)} labels ({listed})"
        )
    for role, labels in found.items():
        if len(labels) != 2:
            raise DataProblem(
                f"{ROLES[role]} data holds {len(labels)} label(s), every set needs both "
                f"labels ({listed})"
            )
    return every


def _shared_labels(data: ml_data.Standardized, label_names: list[str]) -> np.ndarray:
    position = {name: index for index, name in enumerate(label_names)}
    lookup = np.array([position[name] for name in data.label_names], dtype=np.float64)
    return lookup[data.y.astype(np.int64)]


def prepare(data_format: str, inputs: dict[str, Path], work: Path) -> Prepared:
    loaded = standardize(data_format, inputs, work)
    label_names = check_labels(loaded)
    if data_format == "DENSE":
        widths = {role: data.X.shape[1] for role, data in loaded.items()}
        if len(set(widths.values())) > 1:
            shown = ", ".join(f"{ROLES[role]} {width}" for role, width in widths.items())
            raise DataProblem(
                f"DENSE rows must have the same number of weights in all three sets: {shown}"
            )
    names = sorted(
        set().union(*(data.feature_names for data in loaded.values())), key=ml_data.feature_sort_key
    )
    sets = {
        role: (ml_lr.align_features(data, names, len(names)), _shared_labels(data, label_names))
        for role, data in loaded.items()
    }
    return Prepared(sets=sets, feature_names=names, label_names=label_names, format=data_format)
