"""Notebook instances: seconds from "create" to a JupyterLab that answers through the
appliance's proxy, beside a bare `jupyter lab` start on the same machine, in the same run.
Goal: < 5 s.

    .venv/bin/python benchmarks/notebooks.py [--quick | --smoke] [--rounds N]

Ours: a real appliance (launcher: embedded store, Q cluster, scheduler loop, uvicorn) is
started; signed in through the login form, the client POSTs /api/v1/notebooks/ (the
workarea CPU package, a 10 GB disk) and then polls /notebooks/<id>/api/status through the
proxy with its session cookie until it answers 200, then fetches /notebooks/<id>/lab (200,
JupyterLab's page). The instance is then deleted and its Jupyter process waited for.

Peer: `python -m jupyterlab --no-browser` with a token and a temporary root, HOME and
Jupyter directories (a fresh user, as an instance's are), timed from spawn to /api/status
(with the token) and /lab both answering 200 on its own port; then killed.

Both are polled every POLL_S seconds; rounds alternate which one goes first. --quick: 3
rounds, --smoke (tests/benchmarks/test_smoke.py): 1 round and the goal not judged, otherwise
7. Where the time goes in ours is read from the notebook row (created_at, started_at,
ready_at), the mtime of Jupyter's server file (jpserver-<pid>.json, written once it
listens) and the client's own clock.
"""

import argparse
import json
import os
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bml_site.running import RunningAppliance  # noqa: E402

POLL_S = 0.02
READY_TIMEOUT_S = 120
STARTED = time.monotonic()


def progress(message: str) -> None:
    print(f"[{time.monotonic() - STARTED:6.1f} s] {message}", file=sys.stderr, flush=True)


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def looks_like_lab(response: httpx.Response) -> bool:
    return response.status_code == 200 and "jupyter-config-data" in response.text


def wait_ready(client: httpx.Client, status_url: str, lab_url: str, deadline: float) -> dict:
    """Poll status_url until 200, then lab_url until JupyterLab's page; wall-clock times."""
    marks = {}
    while True:
        try:
            if client.get(status_url).status_code == 200:
                marks["status"] = time.time()
                break
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{status_url} did not answer 200 in time")
        time.sleep(POLL_S)
    while True:
        response = client.get(lab_url)
        if looks_like_lab(response):
            marks["lab"] = time.time()
            return marks
        if time.monotonic() > deadline:
            raise RuntimeError(f"{lab_url}: {response.status_code} {response.text[:200]}")
        time.sleep(POLL_S)


def process_gone(pid: int | None, timeout: float = 30) -> bool:
    deadline = time.monotonic() + timeout
    while pid and time.monotonic() < deadline:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        time.sleep(0.05)
    return not pid


def mtime(path: Path | None) -> float | None:
    """When Jupyter wrote its server file (it listens from then on)."""
    return path.stat().st_mtime if path and path.exists() else None


def db_time(value: str | None) -> float | None:
    if not value:
        return None
    return datetime.fromisoformat(value).replace(tzinfo=UTC).timestamp()


# ---- ours ------------------------------------------------------------------------------


class Ours:
    def __init__(self, appliance: RunningAppliance):
        self.appliance = appliance
        self.api = appliance.login()
        self.project = self.api.get("/api/v1/projects/").json()["results"][0]["id"]
        listed = self.api.get("/api/v1/resource-packages/", params={"module": "workarea"}).json()
        packages = listed["results"] if isinstance(listed, dict) else listed
        cpu = [p for p in packages if p["device_kind"] == "cpu"]
        self.package = (cpu or packages)[0]
        progress(f"workarea package: {self.package['name']} (id {self.package['id']})")
        self.db = appliance.var / "db.sqlite3"
        self.count = 0

    def row(self, pk: int) -> dict:
        with sqlite3.connect(self.db, timeout=30) as conn:
            conn.row_factory = sqlite3.Row
            row = conn.execute("SELECT * FROM notebooks_notebook WHERE id = ?", (pk,)).fetchone()
        return dict(row) if row else {}

    def instance_dir(self, pk: int) -> Path | None:
        found = sorted((self.appliance.var / "notebooks").glob(f"{pk}-*"))
        return found[0] if found else None

    def round(self) -> dict:
        self.count += 1
        t0 = time.time()
        created = self.api.post(
            "/api/v1/notebooks/",
            json={
                "project": self.project,
                "name": f"bench-{self.count}",
                "package": self.package["id"],
                "disk_gb": 10,
            },
        )
        t_created = time.time()
        if created.status_code != 201:
            raise RuntimeError(f"create: {created.status_code} {created.text[:300]}")
        pk = created.json()["id"]
        try:
            marks = wait_ready(
                self.api,
                f"/notebooks/{pk}/api/status",
                f"/notebooks/{pk}/lab",
                time.monotonic() + READY_TIMEOUT_S,
            )
            row = self.row(pk)
            folder = self.instance_dir(pk)
            server_file = (
                folder / "home/.local/share/jupyter/runtime" / f"jpserver-{row['pid']}.json"
                if folder and row.get("pid")
                else None
            )
            listening = mtime(server_file)
            log = (folder / "server.log").read_text(errors="replace") if folder else ""
        finally:
            pid = self.row(pk).get("pid")
            deleted = self.api.delete(f"/api/v1/notebooks/{pk}/")
            if deleted.status_code != 204:
                progress(f"delete {pk}: {deleted.status_code} {deleted.text[:200]}")
            if not process_gone(pid):
                progress(f"instance {pk}'s Jupyter (pid {pid}) still runs after its delete")
        started, ready = db_time(row.get("started_at")), db_time(row.get("ready_at"))
        return {
            "seconds": marks["lab"] - t0,
            "phases": {
                "api_create": t_created - t0,
                "to_spawn": (started - t_created) if started else None,
                "jupyter_start": (listening - started) if started and listening else None,
                "scheduler_notices": (ready - listening) if ready and listening else None,
                "proxy_opens": (marks["status"] - ready) if ready else None,
                "lab_page": marks["lab"] - marks["status"],
            },
            "log_lines": len(log.splitlines()),
        }


# ---- the peer: a bare `jupyter lab` ----------------------------------------------------


def peer_round(scratch: Path) -> dict:
    root = Path(tempfile.mkdtemp(prefix="peer-", dir=scratch))
    home, work = root / "home", root / "work"
    work.mkdir(parents=True)
    home.mkdir()
    runtime = home / ".local/share/jupyter/runtime"
    env = {
        **os.environ,
        "HOME": str(home),
        "JUPYTER_CONFIG_DIR": str(home / ".jupyter"),
        "JUPYTER_DATA_DIR": str(home / ".local/share/jupyter"),
        "JUPYTER_RUNTIME_DIR": str(runtime),
    }
    port = free_port()
    command = [
        str(ROOT / ".venv/bin/python"),
        "-m",
        "jupyterlab",
        "--no-browser",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        "--IdentityProvider.token=x",
        f"--ServerApp.root_dir={work}",
        *(["--ServerApp.allow_root=True"] if os.geteuid() == 0 else []),
    ]
    log = open(root / "server.log", "wb")  # noqa: SIM115 - closed below
    t0 = time.time()
    process = subprocess.Popen(
        command,
        cwd=work,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        with httpx.Client(headers={"Authorization": "token x"}, timeout=30) as client:
            marks = wait_ready(
                client,
                f"{base}/api/status",
                f"{base}/lab",
                time.monotonic() + READY_TIMEOUT_S,
            )
        server_file = runtime / f"jpserver-{process.pid}.json"
        listening = mtime(server_file)
    finally:
        kill_group(process)
        log.close()
        shutil.rmtree(root, ignore_errors=True)
    return {
        "seconds": marks["lab"] - t0,
        "phases": {
            "jupyter_start": (listening - t0) if listening else None,
            "status_answers": (marks["status"] - listening) if listening else None,
            "lab_page": marks["lab"] - marks["status"],
        },
    }


def kill_group(process: subprocess.Popen) -> None:
    if process.poll() is None:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    process.wait(10)


def kill_leftovers(var: Path) -> None:
    """Jupyter servers outlive the appliance by design (adopted at its next start): any of
    this run's that is still there is killed."""
    for process in psutil.process_iter(["pid", "cmdline"]):
        cmdline = process.info["cmdline"] or []
        if "jupyterlab" in cmdline and any(str(var) in part for part in cmdline):
            progress(f"killing a leftover Jupyter (pid {process.pid})")
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass


# ---- the run ---------------------------------------------------------------------------


def summary(samples: list[float]) -> dict:
    ordered = sorted(samples)
    # Interpolated between samples (with 3 rounds, most of the way to the slowest).
    multiple = len(ordered) > 1
    p90 = statistics.quantiles(ordered, n=10, method="inclusive")[-1] if multiple else ordered[0]
    return {
        "median": round(statistics.median(ordered), 3),
        "p90": round(p90, 3),
        "min": round(ordered[0], 3),
        "max": round(ordered[-1], 3),
    }


def phase_medians(rounds: list[dict]) -> dict:
    names = rounds[0]["phases"].keys()
    medians = {}
    for name in names:
        values = [r["phases"][name] for r in rounds if r["phases"][name] is not None]
        medians[name] = round(statistics.median(values), 3) if values else None
    return medians


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="3 rounds")
    parser.add_argument("--smoke", action="store_true", help="1 round: runs, no figure")
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    rounds = 1 if args.smoke else 3 if args.quick else args.rounds

    scratch = Path(tempfile.mkdtemp(prefix="bml-bench-notebooks-"))
    var = scratch / "var"
    var.mkdir()
    appliance = RunningAppliance.for_benchmark("bench-admin-pass-1", var)
    ours_rounds, peer_rounds = [], []
    try:
        progress("starting the appliance")
        started = time.monotonic()
        appliance.start(timeout=300)
        appliance_start = time.monotonic() - started
        progress(f"appliance up in {appliance_start:.1f} s at {appliance.url}")
        ours = Ours(appliance)
        for i in range(rounds):
            order = ("ours", "peer") if i % 2 == 0 else ("peer", "ours")
            for side in order:
                if side == "ours":
                    result = ours.round()
                    ours_rounds.append(result)
                else:
                    result = peer_round(scratch)
                    peer_rounds.append(result)
                phases = ", ".join(
                    f"{k} {v:.2f}" for k, v in result["phases"].items() if v is not None
                )
                progress(f"round {i + 1}/{rounds} {side}: {result['seconds']:.2f} s ({phases})")
    finally:
        progress("stopping the appliance")
        try:
            appliance.stop()
        finally:
            kill_leftovers(var)
            shutil.rmtree(scratch, ignore_errors=True)

    ours_s = summary([r["seconds"] for r in ours_rounds])
    peer_s = summary([r["seconds"] for r in peer_rounds])
    print(f"ours (create -> lab through the proxy): {ours_s}")
    print(f"  phases (median s): {phase_medians(ours_rounds)}")
    print(f"peer (bare jupyter lab start): {peer_s}")
    print(f"  phases (median s): {phase_medians(peer_rounds)}")
    result = {
        "figure": "seconds from create to JupyterLab ready through the proxy",
        "ours": ours_s["median"],
        "peer": peer_s["median"],
        "ratio": round(ours_s["median"] / peer_s["median"], 2) if peer_s["median"] else None,
        "goal": "< 5 s",
        "meets": None if args.smoke else ours_s["median"] < 5,
        "rounds": rounds,
        "ours_p90": ours_s["p90"],
        "ours_min": ours_s["min"],
        "peer_p90": peer_s["p90"],
        "peer_min": peer_s["min"],
        "appliance_start_s": round(appliance_start, 1),
        "ours_phases_s": phase_medians(ours_rounds),
        "peer_phases_s": phase_medians(peer_rounds),
        "smoke": args.smoke,
    }
    print("RESULT " + json.dumps(result))


if __name__ == "__main__":
    main()
