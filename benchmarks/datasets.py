"""Data set conversion: rows/s and peak memory of converting a large numeric CSV (the SUSY
shape: 19 columns, the first a 0/1 label) to parquet with statistics, beside pandas
(`read_csv` + `to_parquet`) and pyarrow (`csv.open_csv` streaming + `ParquetWriter`) on the
same file in the same run. Goal: at least pyarrow's rows/s within 20%, peak RSS under 1 GB.

    .venv/bin/python benchmarks/datasets.py [--quick | --smoke] [--rows N]

--smoke (tests/benchmarks/test_smoke.py): 20,000 rows; the goal is not judged.

"Ours" is the conversion step of a real upload through the running appliance (API call ->
conversion job under workers.supervise -> parquet and statistics in the store): its rows/s
over the runner's own conversion time (the same work as the peers: local CSV in, parquet
and, beyond the peers, per-column statistics out), and its peak RSS. The end-to-end time
(API call to "succeeded": queueing, staging the CSV in from the store, staging the parquet
out) is printed beside it.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bml_site.running import RunningAppliance  # noqa: E402

COLUMNS = ["label"] + [f"f{i}" for i in range(1, 19)]

GENERATE = """
import sys, numpy as np, pyarrow as pa, pyarrow.csv as csv
rows, path = int(sys.argv[1]), sys.argv[2]
rng = np.random.default_rng(7)
schema = pa.schema([(name, pa.float64()) for name in sys.argv[3].split(",")])
with csv.CSVWriter(path, schema, write_options=csv.WriteOptions(include_header=False)) as out:
    for start in range(0, rows, 500_000):
        n = min(500_000, rows - start)
        label = rng.integers(0, 2, n).astype(np.float64)
        features = [np.round(rng.normal(1.0, 0.7, n), 7) for _ in range(18)]
        out.write(pa.record_batch([label, *features], schema=schema))
"""

PANDAS = """
import sys, pandas as pd
frame = pd.read_csv(sys.argv[1], header=None, names=sys.argv[3].split(","))
frame.to_parquet(sys.argv[2])
print(len(frame))
"""

PYARROW = """
import sys, pyarrow.csv as csv, pyarrow.parquet as pq
names = sys.argv[3].split(",")
reader = csv.open_csv(sys.argv[1], read_options=csv.ReadOptions(column_names=names))
writer, rows = None, 0
for batch in reader:
    writer = writer or pq.ParquetWriter(sys.argv[2], batch.schema)
    writer.write_batch(batch)
    rows += batch.num_rows
writer.close()
print(rows)
"""


def run_measured(code: str, *args: str) -> tuple[float, float, str]:
    """(seconds, peak RSS in MB, stdout) of a fresh Python process running `code`."""
    started = time.monotonic()
    process = subprocess.Popen(
        [sys.executable, "-c", code, *args], stdout=subprocess.PIPE, text=True
    )
    out = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.monotonic() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"peer failed: {code[:60]}...")
    return seconds, usage.ru_maxrss / 1024, out.strip()


def ours(csv_path: Path, rows: int) -> dict:
    appliance = RunningAppliance.for_benchmark("bench-admin-pass-1")
    appliance.start()
    try:
        api = appliance.login()
        project = api.get("/api/v1/projects/").json()["results"][0]["id"]
        api.post("/api/v1/buckets/", json={"project": project, "name": "bench-data"})
        with csv_path.open("rb") as body:
            stored = api.put("/api/v1/buckets/bench-data/objects/susy.csv", content=body)
        assert stored.status_code == 201, stored.text
        created = api.post("/api/v1/datasets/", json={"project": project, "name": "susy"})
        assert created.status_code == 201, created.text
        dataset = created.json()["id"]
        started = time.monotonic()
        response = api.post(
            f"/api/v1/datasets/{dataset}/versions/",
            json={
                "source": "bos://bench-data/susy.csv",
                "mode": "replace",
                "columns": [{"name": name, "type": "float"} for name in COLUMNS],
            },
        )
        assert response.status_code == 202, response.text
        while True:
            version = api.get(f"/api/v1/datasets/{dataset}/versions/").json()[0]
            if version["status"] != "processing":
                break
            time.sleep(0.2)
        end_to_end = time.monotonic() - started
        assert version["status"] == "succeeded", version["reason"]
        assert version["rows"] == rows, version["rows"]
    finally:
        appliance.stop()
    measured = version["measurements"]
    return {
        "convert_s": measured["seconds"]["convert"],
        "end_to_end_s": end_to_end,
        "peak_rss_mb": measured["peak_rss_mb"],
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="500,000 rows instead of 5,000,000")
    parser.add_argument("--smoke", action="store_true", help="20,000 rows: runs, no figure")
    parser.add_argument("--rows", type=int, default=5_000_000)
    args = parser.parse_args()
    rows = 20_000 if args.smoke else 500_000 if args.quick else args.rows

    work = Path(tempfile.mkdtemp(prefix="bml-bench-data-"))
    csv_path = work / "susy.csv"
    names = ",".join(COLUMNS)
    subprocess.run([sys.executable, "-c", GENERATE, str(rows), str(csv_path), names], check=True)
    size_mb = csv_path.stat().st_size / 1e6
    print(f"{rows:,} rows x {len(COLUMNS)} columns, {size_mb:.0f} MB of CSV", flush=True)

    peers = {}
    for name, code in (("pyarrow", PYARROW), ("pandas", PANDAS)):
        seconds, rss, out = run_measured(code, str(csv_path), str(work / f"{name}.parquet"), names)
        assert int(out) == rows, (name, out)
        peers[name] = {"rows_per_s": rows / seconds, "peak_rss_mb": rss, "seconds": seconds}
        print(f"{name}: {seconds:.2f} s, {rows / seconds:,.0f} rows/s, peak RSS {rss:.0f} MB")

    mine = ours(csv_path, rows)
    mine["rows_per_s"] = rows / mine["convert_s"]
    print(
        f"appliance: conversion {mine['convert_s']:.2f} s, {mine['rows_per_s']:,.0f} rows/s, "
        f"peak RSS {mine['peak_rss_mb']:.0f} MB; API call to succeeded "
        f"{mine['end_to_end_s']:.2f} s ({rows / mine['end_to_end_s']:,.0f} rows/s)"
    )
    for path in work.iterdir():
        path.unlink()
    work.rmdir()

    peer = peers["pyarrow"]["rows_per_s"]
    ratio = mine["rows_per_s"] / peer
    result = {
        "figure": "rows/s converting a SUSY-shaped CSV to parquet (with statistics), vs pyarrow",
        "ours": round(mine["rows_per_s"]),
        "peer": round(peer),
        "ratio": round(ratio, 3),
        "goal": ">= 0.8 and peak RSS < 1024 MB",
        "meets": None if args.smoke else ratio >= 0.8 and mine["peak_rss_mb"] < 1024,
        "rows": rows,
        "peak_rss_mb": {
            "ours": round(mine["peak_rss_mb"]),
            **{name: round(p["peak_rss_mb"]) for name, p in peers.items()},
        },
        "pandas_rows_per_s": round(peers["pandas"]["rows_per_s"]),
        "end_to_end_rows_per_s": round(rows / mine["end_to_end_s"]),
        "smoke": args.smoke,
    }
    print("RESULT " + json.dumps(result))


if __name__ == "__main__":
    main()
