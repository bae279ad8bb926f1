"""A data set upload runs as a job of its own kind on the job engine: leased cores, its own
process under workers.supervise, a time limit, a log, adoption after a restart. Its code is
`workers.runners.table_import`; the source is staged in as the job's training data, the
previous version's parquet parts (supplement mode) as extra inputs, and the new parts and
summary.json are staged out to `<data set path>/<job_id>/output/`.
"""

import json
import sys
from pathlib import Path

from django.core.exceptions import ValidationError

from apps.jobs import algorithms

KIND = "dataset"
ALGORITHM = "table_import"
PARAMS_FILE = "table_import.json"
PREVIOUS_DIR = "previous"
# Conversions are meant to be quick; a day covers a very large file on a small host.
TIME_LIMIT_S = 24 * 3600


def _validate(params: dict) -> dict:
    required = ("separator", "header", "encoding", "abnormal", "columns")
    missing = [key for key in required if key not in params]
    if missing:
        raise ValidationError({"params": f"Missing conversion settings: {', '.join(missing)}."})
    return {**params, "previous_parts": list(params.get("previous_parts") or [])}


def _prepare(params: dict, workspace: Path):
    stage = []
    previous = []
    for index, uri in enumerate(params["previous_parts"]):
        dest = f"{PREVIOUS_DIR}/{index}"
        stage.append({"uri": uri, "dest": dest})
        previous.append(f"{dest}/{uri.rsplit('/', 1)[-1]}")
    runner_params = {
        "inputs": ["train_data"],  # the source file or folder, staged in by supervise
        "previous_parts": previous,
        "separator": params["separator"],
        "header": params["header"],
        "encoding": params["encoding"],
        "abnormal": params["abnormal"],
        "columns": params["columns"],
        "output_dir": "output",
    }
    (workspace / PARAMS_FILE).write_text(json.dumps(runner_params, ensure_ascii=False))
    return [sys.executable, "-m", "workers.runners.table_import", "--params", PARAMS_FILE], stage


TABLE_IMPORT = algorithms.register(
    algorithms.Algorithm(
        kind=KIND,
        name=ALGORITHM,
        title="Data set: convert csv/tsv/txt to parquet with statistics",
        validate=_validate,
        prepare=_prepare,
        internal=True,
    )
)
