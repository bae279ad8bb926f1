"""Standardized data: what the spec's "data standardization" job writes and every BML
machine learning algorithm (logistic regression, KMeans, GBDT) reads. No Django import.

A standardized folder (`<output>/<job_id>/data/`) holds:

    dataset.info                      "key value" lines: sample_num, feature_num, label_num,
                                      format, type, skipped_num
    preprocess_out/part-NNNNN         the ID-converted samples, one per line:
                                        DENSE:  No,label,w0,w1,...,wN-1
                                        sparse: No,label,fid weight,fid weight,...
                                      (No may be empty; label is a label id for
                                      classification, the number itself for regression)
    preprocess_dictionary/featureIDMap  first line feature_num, then "id original" lines
    preprocess_dictionary/labelIDMap    first line label_num, then "id original" lines
                                        (classification only; not in the spec, but without
                                        it predictions could not name the original labels)
    preprocess_summary/feature_summary  "flag id count weight_avg weight_max weight_min"
    preprocess_summary/label_summary    "flag id count"

Feature ids are 0-based. For DENSE data the features are the columns, id i named "i".
For sparse data ids follow the sorted original strings (numbers in numeric order first,
then the rest), so every instance of a distributed job assigns the same ids.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from workers.runners import ml_dist

INFO_FILE = "dataset.info"
OUT_DIR = "preprocess_out"
DICTIONARY_DIR = "preprocess_dictionary"
SUMMARY_DIR = "preprocess_summary"
FEATURE_MAP = "featureIDMap"
LABEL_MAP = "labelIDMap"
FORMATS = ("SPARSE_ID", "SPARSE_ID_WEIGHT", "DENSE")
TYPES = ("classification", "regression")


class StandardizedDataError(ValueError):
    """The folder is not standardized data (or is damaged); the message says what is wrong."""


@dataclass
class Standardized:
    info: dict
    X: object  # np.ndarray (DENSE) or scipy.sparse.csr_matrix
    y: np.ndarray  # float64; label ids for classification
    numbers: list[str]  # each sample's No (may be "")
    feature_names: list[str] = field(default_factory=list)
    label_names: list[str] = field(default_factory=list)

    @property
    def dense(self) -> bool:
        return self.info.get("format") == "DENSE"


def feature_sort_key(original: str):
    """Numbers in numeric order first, then other strings in code-point order."""
    try:
        return (0, float(original), original)
    except ValueError:
        return (1, 0.0, original)


def write_info(folder: Path, info: dict) -> None:
    lines = [f"{key} {value}" for key, value in info.items()]
    (folder / INFO_FILE).write_text("\n".join(lines) + "\n")


def read_info(folder: Path) -> dict:
    path = folder / INFO_FILE
    if not path.exists():
        raise StandardizedDataError(
            f"{folder.name}/ has no {INFO_FILE}: give the data output path of a data "
            "standardization job (<output path>/<job_id>/data/)"
        )
    info = {}
    for line in path.read_text().splitlines():
        key, _, value = line.partition(" ")
        if key:
            info[key] = int(value) if value.lstrip("-").isdigit() else value
    for key in ("sample_num", "feature_num", "format", "type"):
        if key not in info:
            raise StandardizedDataError(f"{INFO_FILE} lacks '{key}'")
    return info


def write_id_map(path: Path, originals: list[str]) -> None:
    """First line the count, then "id original" per line (the spec's featureIDMap)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as out:
        out.write(f"{len(originals)}\n")
        for index, original in enumerate(originals):
            out.write(f"{index} {original}\n")


def read_id_map(path: Path) -> list[str]:
    if not path.exists():
        return []
    lines = path.read_text().splitlines()
    names = [""] * int(lines[0]) if lines else []
    for line in lines[1:]:
        index, _, original = line.partition(" ")
        names[int(index)] = original
    return names


def part_files(folder: Path) -> list[Path]:
    out = folder / OUT_DIR
    return sorted(p for p in out.rglob("*") if p.is_file() and not p.name.startswith((".", "_")))


def _read_dense(files: list[Path], feature_num: int):
    import pyarrow as pa
    import pyarrow.csv as csv

    names = ["No", "label"] + [f"w{i}" for i in range(feature_num)]
    types = {"No": pa.string(), "label": pa.float64()}
    types.update({f"w{i}": pa.float64() for i in range(feature_num)})
    tables = [
        csv.read_csv(
            path,
            read_options=csv.ReadOptions(column_names=names),
            convert_options=csv.ConvertOptions(column_types=types, strings_can_be_null=False),
        )
        for path in files
        if path.stat().st_size
    ]
    if not tables:
        return np.zeros((0, feature_num)), np.zeros(0), []
    table = pa.concat_tables(tables)
    X = (
        np.column_stack(
            [table.column(f"w{i}").to_numpy(zero_copy_only=False) for i in range(feature_num)]
        )
        if feature_num
        else np.zeros((table.num_rows, 0))
    )
    y = table.column("label").to_numpy(zero_copy_only=False)
    return np.ascontiguousarray(X, dtype=np.float64), y, table.column("No").to_pylist()


def _read_sparse(files: list[Path], feature_num: int):
    from scipy.sparse import csr_matrix

    indptr, indices, weights, labels, numbers = [0], [], [], [], []
    for path in files:
        with path.open() as lines:
            for line in lines:
                fields = line.rstrip("\n").split(",")
                if len(fields) < 2:
                    continue
                numbers.append(fields[0])
                labels.append(float(fields[1]) if fields[1] else np.nan)
                for pair in fields[2:]:
                    fid, _, weight = pair.partition(" ")
                    indices.append(int(fid))
                    weights.append(float(weight) if weight else 1.0)
                indptr.append(len(indices))
    X = csr_matrix(
        (np.asarray(weights, dtype=np.float64), np.asarray(indices, dtype=np.int64), indptr),
        shape=(len(labels), feature_num),
    )
    return X, np.asarray(labels, dtype=np.float64), numbers


def load(folder: Path) -> Standardized:
    """Read a standardized folder (this instance's share of its parts, as staged in)."""
    folder = Path(folder)
    info = read_info(folder)
    # An instance's share may hold no part file (fewer parts than instances): it then has
    # no samples, and data-parallel algorithms simply add nothing from it.
    files = part_files(folder)
    if not files and ml_dist.world() == 1:
        raise StandardizedDataError(f"{folder.name}/{OUT_DIR}/ holds no data files")
    reader = _read_dense if info["format"] == "DENSE" else _read_sparse
    X, y, numbers = reader(files, int(info["feature_num"]))
    return Standardized(
        info=info,
        X=X,
        y=y,
        numbers=numbers,
        feature_names=read_id_map(folder / DICTIONARY_DIR / FEATURE_MAP),
        label_names=read_id_map(folder / DICTIONARY_DIR / LABEL_MAP),
    )
