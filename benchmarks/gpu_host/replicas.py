"""Step 5 of the GPU host check: a TorchScript ResNet-18 served by model_serve replicas,
confined and keyed as the appliance starts them, loaded by benchmarks/serving.py."""

import http.client
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

import serving  # benchmarks/serving.py (on sys.path through the package): its read_line

from workers import cgroups, sandbox

from . import ROOT
from .check import Check, median, pinned, progress

BATCH_SIZE, BATCH_WAIT_MS = 16, 5.0


# ---- 5. prediction replicas ----------------------------------------------------------------


def build_model(check: Check, size: int) -> tuple[Path, Path]:
    """A TorchScript ResNet-18 (random weights) and a request body of one base64 JPEG, built
    as benchmarks/serving.py builds them."""
    folder = check.var / "models" / "resnet18"
    folder.mkdir(parents=True)
    serving.scripted_resnet18(folder / "resnet18.pt")
    body = check.tmp / "resnet.json"
    body.write_text(serving.resnet_body(size))
    return folder, body


class Replica:
    """One model_serve process started as apps.serving.replicas.start_process does: confined
    as the project's user, shown its model read-only, keyed, with its lease's environment."""

    def __init__(self, check: Check, name: str, model: Path, size: int, batch: int):
        self.check, self.key = check, secrets.token_urlsafe(32)
        home = check.var / "serving" / name / "home"
        home.mkdir(parents=True)
        gpus = [check.gpus[0]["index"]] if check.gpu else []
        self.rules = sandbox.Confinement(
            workdir=home,
            readable=[model, *(Path(d) for d in check.extra_dirs)],
            hidden=[check.var],
            uid=sandbox.run_uid(1),
            devices=bool(gpus),
            cpus=check.lease_cpus,
            memory_mb=65536 if check.gpu else 8192,
            group=f"gpu-check-{os.getpid()}-{name}",
        )
        sandbox.give_to_run(home, self.rules.uid)
        env = {
            "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin",
            "HOME": str(home),
            "TMPDIR": str(home),
            "LANG": "C.UTF-8",
            "PYTHONUNBUFFERED": "1",
            "PYTHONPATH": check.pythonpath(),
            "BML_REPLICA_KEY": self.key,
            **check.lease_env(gpus),
        }
        fields = {"input_shape": [3, size, size], "task": "classification"}
        command = [sys.executable, "-m", "workers.runners.model_serve", f"--name=gpu-check-{name}"]
        command += ["--type", "pytorch", "--path", str(model), "--fields", json.dumps(fields)]
        command += ["--port", "0", "--max-batch-size", str(batch)]
        command += ["--max-wait-ms", str(BATCH_WAIT_MS)]
        self.stderr_path = home.parent / "stderr.log"
        self.groups = sandbox.control_groups(self.rules)
        with open(self.stderr_path, "wb") as stderr:
            self.process = subprocess.Popen(
                sandbox.command(command, self.rules),
                cwd=ROOT,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=stderr,
                text=True,
                start_new_session=True,
                preexec_fn=sandbox.limits(self.rules, self.groups),
            )
        self.port = None

    def wait_ready(self, timeout: float) -> int:
        line = serving.read_line(self.process, timeout)
        if not line.startswith("ready "):
            tail = self.stderr_path.read_text(errors="replace")[-1500:]
            raise RuntimeError(f"the replica did not start ({line!r}): {tail}")
        self.port = int(line.split()[1])
        return self.port

    def call(self, method: str, path: str, body: bytes | None = None, key: bool = True):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
        headers = {"Content-Type": "application/json"}
        if key:
            headers["X-BML-Replica-Key"] = self.key
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        status, data = response.status, response.read()
        conn.close()
        return status, json.loads(data) if data else None

    def stop(self) -> None:
        for signum, wait in ((signal.SIGTERM, 20), (signal.SIGKILL, 10)):
            if self.process.poll() is not None:
                break
            try:
                os.killpg(self.process.pid, signum)
            except ProcessLookupError:
                break
            try:
                self.process.wait(wait)
            except subprocess.TimeoutExpired:
                continue
        deadline = time.monotonic() + 5  # the model's process dies just after bwrap
        while self.groups and time.monotonic() < deadline:
            cgroups.remove(self.groups)
            if not any(group.exists() for group in self.groups):
                break
            time.sleep(0.1)


def measure(check: Check, replica: Replica, body: Path, concurrency: int) -> dict:
    """One closed-loop window of benchmarks/serving.py's load generator (its own process,
    on the cores the replica's lease leaves)."""
    sizes = check.sizes()
    spec = {
        "port": replica.port,
        "path": "/predict",
        "body": str(body),
        "concurrency": concurrency,
        "seconds": sizes["seconds"],
        "warmup": sizes["serve_warmup"],
        "headers": {"X-BML-Replica-Key": replica.key},
    }
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "serving.py"), "--loadgen", json.dumps(spec)],
        cwd=ROOT,
        env=check.child_env(),
        capture_output=True,
        text=True,
        timeout=sizes["seconds"] + sizes["serve_warmup"] + 300,
        preexec_fn=pinned(check.other_cpus if check.other_cpus != check.lease_cpus else []),
    )
    if done.returncode:
        raise RuntimeError(f"load generator failed: {done.stderr[-1500:]}")
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    if figures["error_count"] or not figures["requests"]:
        raise RuntimeError(f"{figures['error_count']} errors, e.g. {figures['errors']}")
    return figures


def step_serving(check: Check) -> None:
    size = check.sizes()["serve_image"]
    progress(f"building a TorchScript ResNet-18 ({size} px)")
    model, body = build_model(check, size)
    replicas = {}
    try:
        for name, batch in (("unbatched", 1), ("batched", BATCH_SIZE)):
            replicas[name] = Replica(check, name, model, size, batch)
        for replica in replicas.values():
            replica.wait_ready(300 if check.gpu else 120)
        progress("replicas ready")
        replica = replicas["unbatched"]
        status, answer = replica.call("POST", "/predict", body.read_bytes())
        refused, _ = replica.call("POST", "/predict", body.read_bytes(), key=False)
        _, health = replica.call("GET", "/healthz")
        result = (answer or {}).get("result")
        device = (health or {}).get("info", {}).get("device")
        want = "cuda" if check.gpu else "cpu"
        check.result(
            "model_serve replica answers",
            ours=status,
            peer=200,
            goal="200 with one top-5 answer with the key, 403 without; on the " + want,
            meets=status == 200
            and isinstance(result, list)
            and len(result) == 1
            and len(result[0].get("top_k", [])) == 5
            and refused == 403
            and device == want,
            status_without_key=refused,
            device=device,
            optimized=(health or {}).get("info", {}).get("optimized"),
        )
        runs = {(name, c): [] for name in replicas for c in (1, 32)}
        for i in range(check.sizes()["serve_rounds"]):
            if i and check.left() < 60:
                check.notes.append(f"serving: {i} round(s) only (time budget)")
                break
            for (name, clients), found in runs.items():
                progress(f"serving round {i + 1}: {name}, {clients} client(s)")
                found.append(measure(check, replicas[name], body, clients))
        calls = {name: r.call("GET", "/healthz")[1] for name, r in replicas.items()}
    finally:
        for replica in replicas.values():
            replica.stop()
    fig = {
        key: {
            "rps": round(median([f["rps"] for f in found]), 1),
            "p50_ms": round(median([f["p50_ms"] for f in found]), 2),
            "p99_ms": round(median([f["p99_ms"] for f in found]), 2),
        }
        for key, found in runs.items()
    }
    per_call = calls["batched"]["instances"] / max(1, calls["batched"]["predict_calls"])
    check.result(
        "replica req/s, 1 client",
        ours=fig[("unbatched", 1)]["rps"],
        unit="req/s",
        goal="reported (no goal)",
        meets=None,
        unbatched=fig[("unbatched", 1)],
        batched=fig[("batched", 1)],
        image_size=size,
        device="cuda" if check.gpu else "cpu",
    )
    speedup = fig[("batched", 32)]["rps"] / fig[("unbatched", 32)]["rps"]
    p99_ratio = fig[("batched", 32)]["p99_ms"] / fig[("unbatched", 32)]["p99_ms"]
    line = {
        "ours": fig[("batched", 32)]["rps"],
        "peer": fig[("unbatched", 32)]["rps"],
        "ratio": round(speedup, 2),
        "unit": "req/s",
        "p99_ms": fig[("batched", 32)]["p99_ms"],
        "peer_p99_ms": fig[("unbatched", 32)]["p99_ms"],
        "p99_ratio": round(p99_ratio, 2),
        "mean_batch": round(per_call, 1),
        "batching": f"max_batch_size {BATCH_SIZE}, max_wait_ms {BATCH_WAIT_MS:g}",
        "rounds": len(runs[("batched", 32)]),
        "image_size": size,
    }
    figure = "replica req/s at 32 clients, batching vs none"
    if not check.gpu:
        check.result(figure, **line, skipped=check.skip_reason())
        return
    check.result(
        figure,
        **line,
        goal=">= 2 with p99 ratio <= 2",
        meets=speedup >= 2 and p99_ratio <= 2,
    )
