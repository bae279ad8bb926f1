"""Upload and download MB/s through the appliance's API beside the raw `minio` client
against the same object store, in the same run. Goal: ratio >= 0.9 in both directions.

    .venv/bin/python benchmarks/storage.py [--quick | --smoke] [--size-mb N] [--rounds N]

--smoke (tests/benchmarks/test_smoke.py): 2 MB, one round; the goal is not judged.
"""

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import urllib3  # noqa: E402
from minio import Minio  # noqa: E402

from apps.storage.client import PART_SIZE  # noqa: E402
from bml_site.running import RunningAppliance  # noqa: E402

CHUNK = 1024 * 1024


def timed(fn) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="64 MB, 2 rounds")
    parser.add_argument("--smoke", action="store_true", help="2 MB, 1 round: runs, no figure")
    parser.add_argument("--size-mb", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    size_mb, rounds = (64, 2) if args.quick else (args.size_mb, args.rounds)
    if args.smoke:
        size_mb, rounds = 2, 1

    source = Path(tempfile.mkdtemp()) / "payload.bin"
    with source.open("wb") as fh:
        for _ in range(size_mb):
            fh.write(os.urandom(CHUNK))
    size = source.stat().st_size

    appliance = RunningAppliance.for_benchmark("bench-admin-pass-1")
    appliance.start()
    try:
        api = appliance.login()
        project = api.get("/api/v1/projects/").json()["results"][0]["id"]
        api.post("/api/v1/buckets/", json={"project": project, "name": "bench-api"})
        # The raw client talks to the very store the appliance uses, with its keys.
        raw_cfg = {
            "endpoint": (appliance.var / "objectstore-endpoint").read_text().strip(),
            **json.loads((appliance.var / "objectstore-credentials.json").read_text()),
        }
        raw = Minio(
            raw_cfg["endpoint"],
            access_key=raw_cfg["access_key"],
            secret_key=raw_cfg["secret_key"],
            secure=False,
        )
        raw.make_bucket("bench-raw")

        # The API is driven with urllib3, the HTTP library inside the minio client, so the
        # two sides differ only in the path the bytes take, not in the client's own speed.
        http = urllib3.PoolManager()
        session = {
            "Cookie": "; ".join(f"{k}={v}" for k, v in api.cookies.items()),
            "X-CSRFToken": api.cookies["csrftoken"],
        }
        object_url = appliance.url + "/api/v1/buckets/bench-api/objects/payload.bin"

        def api_upload():
            with source.open("rb") as fh:
                response = http.request(
                    "PUT",
                    object_url,
                    body=fh,
                    headers={**session, "Content-Length": str(size)},
                    preload_content=True,
                )
            assert response.status == 201, response.data

        def raw_upload():
            raw.fput_object("bench-raw", "payload.bin", str(source), part_size=PART_SIZE)

        def api_download():
            got = 0
            response = http.request("GET", object_url, headers=session, preload_content=False)
            for chunk in response.stream(CHUNK):
                got += len(chunk)
            response.release_conn()
            assert got == size

        def raw_download():
            got = 0
            response = raw.get_object("bench-raw", "payload.bin")
            for chunk in response.stream(CHUNK):
                got += len(chunk)
            response.close()
            response.release_conn()
            assert got == size

        times = {"api_up": [], "raw_up": [], "api_down": [], "raw_down": []}
        for _ in range(rounds):  # interleaved, so drift in the machine hits both sides
            times["api_up"].append(timed(api_upload))
            times["raw_up"].append(timed(raw_upload))
            times["api_down"].append(timed(api_download))
            times["raw_down"].append(timed(raw_download))

    finally:
        appliance.stop()
        shutil.rmtree(source.parent, ignore_errors=True)

    mbps = {k: round(size_mb / statistics.median(v), 1) for k, v in times.items()}
    up_ratio = round(mbps["api_up"] / mbps["raw_up"], 3)
    down_ratio = round(mbps["api_down"] / mbps["raw_down"], 3)
    print(f"size {size_mb} MB, {rounds} rounds, medians in MB/s: {json.dumps(mbps)}")
    print(f"upload ratio {up_ratio}, download ratio {down_ratio}")
    worse = "upload" if up_ratio <= down_ratio else "download"
    key = "up" if worse == "upload" else "down"
    ratio = min(up_ratio, down_ratio)
    result = {
        "figure": f"storage MB/s, API vs raw minio client ({worse}, the worse direction)",
        "ours": mbps[f"api_{key}"],
        "peer": mbps[f"raw_{key}"],
        "ratio": ratio,
        "goal": ">= 0.9",
        "meets": None if args.smoke else ratio >= 0.9,
        "upload": {"ours": mbps["api_up"], "peer": mbps["raw_up"], "ratio": up_ratio},
        "download": {"ours": mbps["api_down"], "peer": mbps["raw_down"], "ratio": down_ratio},
        "smoke": args.smoke,
    }
    print("RESULT " + json.dumps(result))


if __name__ == "__main__":
    main()
