"""Model warehouse at scale: server time of the model list and of a model's version list
(first and last page) with 10,000 versions, through the running appliance's API, beside
the bare SQL reads of the same pages on the same database (the floor: no ORM, no HTTP).
Goal: <= 200 ms each.

    .venv/bin/python benchmarks/warehouse.py [--quick] [--versions N]

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

ROUNDS = 9


def timed(call) -> float:
    samples = []
    for _ in range(ROUNDS):
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
    with sqlite3.connect(db) as conn:
        row = conn.execute(
            "SELECT model_type, fields, path, info, size_bytes, created_at, updated_at"
            " FROM warehouse_modelversion WHERE model_id = ? AND version = 1",
            (model_id,),
        ).fetchone()
        conn.executemany(
            "INSERT INTO warehouse_modelversion (model_id, version, model_type, fields, path,"
            " source, source_detail, description, info, size_bytes, created_at, updated_at)"
            " VALUES (?, ?, ?, ?, ?, 'imported', '', '', ?, ?, ?, ?)",
            [(model_id, v, *row[:3], *row[3:]) for v in range(2, count + 1)],
        )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="1,000 versions")
    parser.add_argument("--versions", type=int, default=10_000)
    args = parser.parse_args()
    count = 1_000 if args.quick else args.versions

    appliance = RunningAppliance.throwaway("bench-admin-pass-1")
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
                "name": "iris",
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
            name: timed(lambda url=url: api.get(url).raise_for_status())
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
                ).fetchall()
            ),
            "versions_first_page": timed(
                lambda: conn.execute(
                    "SELECT * FROM warehouse_modelversion WHERE model_id = ?"
                    " ORDER BY version DESC LIMIT 100",
                    (model_id,),
                ).fetchall()
            ),
            "versions_last_page": timed(
                lambda: conn.execute(
                    "SELECT * FROM warehouse_modelversion WHERE model_id = ?"
                    " ORDER BY version DESC LIMIT 100 OFFSET ?",
                    (model_id, last),
                ).fetchall()
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
        "meets": all(ms <= 200 for ms in ours.values()),
        "versions": count,
        "ms": {name: round(ms, 1) for name, ms in ours.items()},
    }
    print("RESULT " + json.dumps(result))


if __name__ == "__main__":
    main()
