"""Report training metrics from a job: `bml.report(step=10, loss=0.3, acc=0.9)`.

Each call appends one JSON line to the file the run is given (BML_METRICS_FILE); the
appliance reads it while the job runs and draws the curves. Outside a run it only prints.
"""

import json
import math
import os
import time


def report(step: int | None = None, **values: float) -> dict:
    if not values:
        raise ValueError("report at least one metric, e.g. bml.report(step=1, loss=0.5)")
    record = {"time": round(time.time(), 3)}
    if step is not None:
        record["step"] = int(step)
    for name, value in values.items():
        value = float(value)
        if not math.isfinite(value):
            raise ValueError(f"metric {name!r} is {value}; report finite numbers")
        record[name] = value
    path = os.environ.get("BML_METRICS_FILE")
    if path:
        with open(path, "a") as fh:
            fh.write(json.dumps(record) + "\n")
    else:
        print("[bml.report]", json.dumps(record))
    return record
