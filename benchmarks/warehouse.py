"""Model warehouse at scale: server time of the model list and of a model's version list
(first and last page) with 10,000 versions, through the running appliance's API, beside
the bare SQL reads of the same pages on the same database (the floor: no ORM, no HTTP).
Goal: <= 200 ms each.

    .venv/bin/python benchmarks/warehouse.py [--quick | --smoke] [--versions N]

--smoke (tests/benchmarks/test_smoke.py): 250 versions (three pages), 3 requests per page;
the goal is not judged.

One model is imported for real (so its version is a loaded, checked model); the other
versions are rows written straight into the database (an import each would take hours of
model checks, and the list pages only read rows). Server time: the median of 9 requests,
measured by the client on loopback.
"""

import argparse
import json
import sqlite3
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bml_site.running import RunningAppliance  # noqa: E402

ROUNDS = 9  # requests per page timing (3 with --smoke)


def timed(call, rounds: int = ROUNDS) -> float:
    samples = []
    for _ in range(rounds):
        started = time.perf_counter()
        call()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples) * 1000


def iris_joblib() -> bytes:
    import io

    import joblib
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    buffer = io.BytesIO()
    joblib.dump(LogisticRegression(max_iter=500).fit(*load_iris(return_X_y=True)), buffer)
    return buffer.getvalue()


def add_versions(db: Path, model_id: int, count: int) -> None:
    """Versions 2..count: copies of the imported version 1, every column but its id and
    number (so a column added to the table is copied too)."""
    with sqlite3.connect(db) as conn:
        columns = [
            row[1]
            for row in conn.execute("PRAGMA table_info(warehouse_modelversion)")
            if row[1] not in ("id", "version")
        ]
        names = ", ".join(f'"{name}"' for name in columns)
        conn.executemany(
            f"INSERT INTO warehouse_modelversion (version, {names}) SELECT ?, {names}"
            " FROM warehouse_modelversion WHERE model_id = ? AND version = 1",
            [(version, model_id) for version in range(2, count + 1)],
        )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="1,000 versions")
    parser.add_argument("--versions", type=int, default=10_000)
    parser.add_argument("--smoke", action="store_true", help="250 versions: runs, no figure")
    args = parser.parse_args()
    count = 1_000 if args.quick else args.versions
    rounds = ROUNDS
    if args.smoke:
        count, rounds = 250, 3

    appliance = RunningAppliance.for_benchmark("bench-admin-pass-1")
    appliance.start(timeout=300)
    try:
        api = appliance.login()
        project = api.get("/api/v1/projects/").json()["results"][0]["id"]
        api.post("/api/v1/buckets/", json={"project": project, "name": "bench-models"})
        api.put("/api/v1/buckets/bench-models/objects/iris.joblib", content=iris_joblib())
        created = api.post(
            "/api/v1/models/",
            json={
                "project": project,
                "name": "warehouse-iris",  # unique on an appliance shared with serving.py
                "model_type": "sklearn",
                "path": "bos://bench-models/iris.joblib",
            },
        )
        assert created.status_code == 201, created.text
        model_id = created.json()["model"]
        db = appliance.var / "db.sqlite3"
        add_versions(db, model_id, count)

        last = (count - 1) // 100 * 100
        urls = {
            "model_list": f"/api/v1/models/?project={project}",
            "versions_first_page": f"/api/v1/models/{model_id}/versions/",
            "versions_last_page": f"/api/v1/models/{model_id}/versions/?offset={last}",
        }
        listed = api.get(urls["versions_first_page"]).json()
        assert listed["count"] == count, listed["count"]
        ours = {
            name: timed(lambda url=url: api.get(url).raise_for_status(), rounds)
            for name, url in urls.items()
        }
    finally:
        appliance.stop()

    with sqlite3.connect(db) as conn:
        bare = {
            "model_list": timed(
                lambda: conn.execute(
                    "SELECT m.*, COUNT(v.id) FROM warehouse_model m LEFT JOIN"
                    " warehouse_modelversion v ON v.model_id = m.id WHERE m.project_id = ?"
                    " GROUP BY m.id ORDER BY m.updated_at DESC LIMIT 100",
                    (project,),
                ).fetchall(),
                rounds,
            ),
            "versions_first_page": timed(
                lambda: conn.execute(
                    "SELECT * FROM warehouse_modelversion WHERE model_id = ?"
                    " ORDER BY version DESC LIMIT 100",
                    (model_id,),
                ).fetchall(),
                rounds,
            ),
            "versions_last_page": timed(
                lambda: conn.execute(
                    "SELECT * FROM warehouse_modelversion WHERE model_id = ?"
                    " ORDER BY version DESC LIMIT 100 OFFSET ?",
                    (model_id, last),
                ).fetchall(),
                rounds,
            ),
        }
    for name in ours:
        print(f"{name}: appliance {ours[name]:.1f} ms, bare SQL {bare[name]:.2f} ms")
    worst = max(ours, key=ours.get)
    result = {
        "figure": f"server ms of the warehouse's list pages with {count} versions (worst)",
        "ours": round(ours[worst], 1),
        "peer": round(bare[worst], 2),
        "ratio": round(ours[worst] / bare[worst], 1) if bare[worst] else None,
        "goal": "<= 200 ms each",
        "meets": None if args.smoke else all(ms <= 200 for ms in ours.values()),
        "versions": count,
        "ms": {name: round(ms, 1) for name, ms in ours.items()},
        "smoke": args.smoke,
    }
    print("RESULT " + json.dumps(result))


if __name__ == "__main__":
    main()
