"""Text annotation at size, through the running appliance:

1. segmentation of a 2 MB document (mixed Chinese and English, numbers like 3.5): the
   sentence splitter alone, and the whole upload (extraction, splitting, rows) through the
   API; goal: segmentation under 1 s;
2. server time of the annotation page of that document (median of 9 requests on loopback);
   goal: under 100 ms;
3. export of a task with 100,000 annotations (spans and triples) through the API, with the
   web process's memory growth; goal: under 10 s, streamed with bounded memory.

The peer of the export is the straightforward way (what Label Studio's JSON export does:
every annotation of the task read into one in-memory structure, then dumped at once), run on
the same database in this process with sqlite3, its time and memory growth measured the
same way: it shows what streaming saves.

    .venv/bin/python benchmarks/annotation.py [--quick | --smoke] [--annotations N]

--smoke (tests/benchmarks/test_smoke.py): a 64 kB document, 300 annotations, 3 requests per
page; the goals are not judged.

The annotations are rows written straight into the database (100,000 clicks through the
API would measure the API, not the export); the document and its sentences are made by a
real upload.
"""

import argparse
import json
import random
import resource
import sqlite3
import statistics
import sys
import time
import tracemalloc
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bml_site.running import RunningAppliance  # noqa: E402

ROUNDS = 9  # requests per page timing (3 with --smoke)
ZH = "北京是中国的首都，人口约2154.2万。张三和李四在上海的公司工作了3.5年！他们会去杭州吗？"
EN = 'Dr. Wang moved to Shenzhen in 2019. "Is 3.5 GHz enough?" she asked. It was!'


def mixed_text(size_bytes: int = 2 * 1024 * 1024, seed: int = 7) -> str:
    rng = random.Random(seed)
    parts, size = [], 0
    while size < size_bytes - 400:
        piece = rng.choice((ZH, EN)) + (" " if rng.random() < 0.8 else "\n")
        parts.append(piece)
        size += len(piece.encode())
    return "".join(parts)


def timed_ms(call, rounds: int = ROUNDS) -> float:
    samples = []
    for _ in range(rounds):
        started = time.perf_counter()
        call()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples) * 1000


def add_annotations(db: Path, task_id: int, document_id: int, count: int) -> tuple[int, int]:
    """`count` annotations as spans and triples (2 spans + 1 triple per 3), on sentences."""
    with sqlite3.connect(db) as conn:
        entity, relation = conn.execute(
            "SELECT MIN(id), MAX(id) FROM annotation_tag WHERE task_id = ?", (task_id,)
        ).fetchone()
        sentences = conn.execute(
            "SELECT id, start, end FROM annotation_sentence WHERE document_id = ?"
            " AND end - start >= 6 ORDER BY id",
            (document_id,),
        ).fetchall()
        now = "2026-11-25 00:00:00"
        groups = count // 3
        spans = []
        for i in range(groups):
            sid, start, _ = sentences[i % len(sentences)]
            shift = (i // len(sentences)) % 2  # a second layer of spans on the same sentence
            spans.append((document_id, sid, start + shift, start + shift + 2, entity, now))
            spans.append((document_id, sid, start + shift + 3, start + shift + 5, entity, now))
        conn.executemany(
            "INSERT INTO annotation_span (document_id, sentence_id, start, end, tag_id,"
            " created_at) VALUES (?, ?, ?, ?, ?, ?)",
            spans,
        )
        ids = [r[0] for r in conn.execute(
            "SELECT id FROM annotation_span WHERE document_id = ? ORDER BY id", (document_id,)
        )]  # fmt: skip
        triples = [
            (document_id, spans[2 * i][1], ids[2 * i], relation, ids[2 * i + 1], now)
            for i in range(groups)
        ]
        conn.executemany(
            "INSERT INTO annotation_triple (document_id, sentence_id, subject_id, predicate_id,"
            " object_id, created_at) VALUES (?, ?, ?, ?, ?, ?)",
            triples,
        )
    return len(spans), len(triples)


def peer_export(db: Path, document_id: int) -> tuple[float, float]:
    """Everything in memory, then one dump: seconds and peak MB of Python allocations."""
    tracemalloc.start()
    started = time.perf_counter()
    with sqlite3.connect(db) as conn:
        conn.row_factory = sqlite3.Row
        text = conn.execute(
            "SELECT text FROM annotation_document WHERE id = ?", (document_id,)
        ).fetchone()[0]
        spans = [dict(r) for r in conn.execute(
            "SELECT s.*, t.name AS label FROM annotation_span s JOIN annotation_tag t"
            " ON t.id = s.tag_id WHERE s.document_id = ?", (document_id,)
        )]  # fmt: skip
        triples = [dict(r) for r in conn.execute(
            "SELECT * FROM annotation_triple WHERE document_id = ?", (document_id,)
        )]  # fmt: skip
        for span in spans:
            span["text"] = text[span["start"] : span["end"]]
        payload = json.dumps({"text": text, "spans": spans, "triples": triples}, default=str)
    seconds = time.perf_counter() - started
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    assert payload
    return seconds, peak


def web_process(appliance) -> psutil.Process:
    launcher = psutil.Process(appliance.process.pid)
    return next(p for p in launcher.children(recursive=True) if "uvicorn" in " ".join(p.cmdline()))


def peak_rss_mb(process: psutil.Process) -> float:
    for line in Path(f"/proc/{process.pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="10,000 annotations")
    parser.add_argument("--smoke", action="store_true", help="64 kB, 300 annotations: runs only")
    parser.add_argument("--annotations", type=int, default=100_000)
    args = parser.parse_args()
    count = 10_000 if args.quick else args.annotations
    size, rounds = 2 * 1024 * 1024, ROUNDS
    if args.smoke:
        count, size, rounds = 300, 64 * 1024, 3

    from apps.annotation import sentences

    text = mixed_text(size)
    split_s = min(
        (lambda t0: (sentences.split(text), time.perf_counter() - t0)[1])(time.perf_counter())
        for _ in range(3)
    )
    appliance = RunningAppliance.for_benchmark("bench-admin-pass-1")
    appliance.start(timeout=300)
    try:
        api = appliance.login()
        project = api.get("/api/v1/projects/").json()["results"][0]["id"]
        api.post("/api/v1/buckets/", json={"project": project, "name": "bench-notes"})
        created = api.post(
            "/api/v1/annotation-tasks/",
            json={"project": project, "name": "bench_task", "scenario": "relation",
                  "storage_path": "bos://bench-notes/task/", "entity_types": ["thing"],
                  "relation_types": ["linked"]},
        )  # fmt: skip
        assert created.status_code == 201, created.text
        task = created.json()["id"]
        started = time.perf_counter()
        uploaded = api.post(
            f"/api/v1/annotation-tasks/{task}/uploads/",
            files=[("files", ("big.txt", text.encode(), "text/plain"))],
        )
        upload_s = time.perf_counter() - started
        assert uploaded.status_code == 201, uploaded.text
        documents = api.get(f"/api/v1/annotation-tasks/{task}/documents/").json()["results"]
        document = documents[0]["id"]
        sentence_count = documents[0]["sentence_count"]
        db = appliance.var / "db.sqlite3"
        spans, triples = add_annotations(db, task, document, count)

        page = f"/annotation/{task}/documents/{document}/"
        assert api.get(page).status_code == 200
        page_ms = timed_ms(lambda: api.get(page).raise_for_status(), rounds)
        sentence_ms = timed_ms(
            lambda: api.get(f"{page}sentences/{sentence_count // 2}/").raise_for_status(), rounds
        )

        web = web_process(appliance)
        rss_before = peak_rss_mb(web)
        started = time.perf_counter()
        exported = api.post(f"/api/v1/annotation-tasks/{task}/exports/")
        export_s = time.perf_counter() - started
        assert exported.status_code == 201, exported.text
        rss_growth = peak_rss_mb(web) - rss_before
        record = exported.json()
        jsonl = api.get(record["jsonl_url"])
        assert jsonl.status_code == 200
        line = json.loads(jsonl.text.splitlines()[0])
        for span in line["spans"]:  # the export's offsets slice the text to the words
            assert text[span["start"] : span["end"]] == span["text"]
        # The peer reads the same database, so it runs before the appliance (and a
        # throw-away var/ with the database in it) goes away.
        peer_s, peer_mb = peer_export(db, document)
    finally:
        appliance.stop()

    print(f"{len(text.encode()) / 2**20:.2f} MB document, {sentence_count} sentences:")
    print(f"  splitter {split_s * 1000:.0f} ms; upload through the API (extract, split, rows)"
          f" {upload_s * 1000:.0f} ms")  # fmt: skip
    print(f"  annotation page {page_ms:.1f} ms, one sentence's data {sentence_ms:.1f} ms")
    print(f"export of {spans} spans + {triples} triples = {spans + triples} annotations:")
    print(
        f"  appliance {export_s:.2f} s (files in storage: {record['jsonl_uri']}),"
        f" web process peak RSS growth {rss_growth:.0f} MB"
    )
    print(f"  in-memory peer {peer_s:.2f} s, {peer_mb:.0f} MB of Python allocations")
    meets = {
        "segmentation": split_s < 1 and upload_s < 1,
        "page": page_ms < 100,
        "export": export_s < 10,
    }
    result = {
        "figure": f"export seconds of {spans + triples} annotations (streamed)",
        "ours": round(export_s, 2),
        "peer": round(peer_s, 2),
        "ratio": round(export_s / peer_s, 2) if peer_s else None,
        "goal": "< 10 s; segmentation < 1 s; annotation page < 100 ms",
        "meets": None if args.smoke else all(meets.values()),
        "meets_each": None if args.smoke else meets,
        "segmentation_s": round(split_s, 3),
        "upload_s": round(upload_s, 3),
        "page_ms": round(page_ms, 1),
        "sentence_ms": round(sentence_ms, 1),
        "export_rss_growth_mb": round(rss_growth, 1),
        "peer_peak_mb": round(peer_mb, 1),
        "bench_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "smoke": args.smoke,
    }
    print("RESULT " + json.dumps(result))


if __name__ == "__main__":
    main()
