"""The GPU host check's state (Check), its progress and median helpers, and its first two
steps: the data plane's imports and the devices workers.detect finds."""

import importlib.util
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from workers import sandbox

from . import ROOT, SDK
from .vendor import VENDOR, VENDORED

# Packages the runs and replicas import, which must be visible inside the sandbox.
RUNTIME_PACKAGES = ("torch", "numpy", "PIL", "uvloop", *VENDORED)
STARTED = time.monotonic()


def progress(message: str) -> None:
    print(f"[{time.monotonic() - STARTED:6.1f} s] {message}", file=sys.stderr, flush=True)


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


IMPORT_SCRIPT = r"""
import importlib, json, sys
missing = {}
for name in json.loads(sys.argv[1]):
    try:
        importlib.import_module(name)
    except Exception as exc:
        missing[name] = f"{type(exc).__name__}: {exc}"
ours = {"workers", "bml", "__main__"}
tops = {m.split(".")[0] for m in sys.modules} - set(sys.stdlib_module_names) - ours
print(json.dumps({
    "missing": missing,
    "django": sorted(m for m in sys.modules if m.split(".")[0] in ("django", "apps", "bml_site")),
    "sdk_imported": "bml" in sys.modules,
    "third_party": {t: getattr(sys.modules[t], "__file__", None) or ""
                    for t in sorted(tops)
                    if not t.startswith("_") and getattr(sys.modules[t], "__file__", None)},
}))
"""
DATA_PLANE = (
    "workers.detect",
    "workers.cgroups",
    "workers.sandbox",
    "workers.supervise",
    "workers.runners.model_loaders",
    "workers.runners.model_loaders_torch",
    "workers.runners.model_serve",
)
# What model_serve.serve() and detect's host_capacity() import when they run.
RUN_TIME = ("numpy", "PIL.Image", "uvloop", "uvicorn", "httptools", "psutil")


# Training: a ResNet-18-shaped net; serving: ResNet-18 fed JPEGs of serve_image px.
SIZES = {
    "full": dict(batch=64, image=224, width=64, steps=300, warmup=30, rounds=3,
                 serve_image=224, seconds=5.0, serve_warmup=1.0, serve_rounds=3),
    "quick": dict(batch=64, image=224, width=64, steps=100, warmup=20, rounds=1,
                  serve_image=224, seconds=2.0, serve_warmup=0.5, serve_rounds=1),
    "cpu": dict(batch=8, image=16, width=8, steps=10, warmup=2, rounds=1,
                serve_image=32, seconds=1.0, serve_warmup=0.3, serve_rounds=1),
}  # fmt: skip


# ---- the check's state ---------------------------------------------------------------------


class Check:
    def __init__(self, args):
        self.args = args
        self.gpu = not args.cpu  # until detection finds none
        self.gpus: list[dict] = []
        self.results: list[dict] = []
        self.notes: list[str] = []
        self.tmp = Path(tempfile.mkdtemp(prefix="bml-gpu-check-"))
        # The appliance's var/ (database, store keys): hidden from every run, whose folders
        # lie inside it as they do in the appliance (var/runs/..., var/serving/...).
        self.var = self.tmp / "var"
        self.var.mkdir()
        (self.var / "db.sqlite3").write_text("the appliance's secrets")
        cores = sorted(os.sched_getaffinity(0))
        half = len(cores) // 2 if len(cores) >= 4 else len(cores)
        self.lease_cpus = cores[:half]  # a lease's cores; the load generator gets the rest
        self.other_cpus = cores[half:] or cores
        self.extra_dirs, self.vendored = self.package_dirs()
        self.confined: dict[str, bool] = {}
        if os.environ.get("LD_LIBRARY_PATH"):
            self.notes.append(
                "this host's LD_LIBRARY_PATH was given to the runs and replicas (the "
                "appliance's runs get no LD_LIBRARY_PATH): CUDA may need it here"
            )

    def left(self) -> float:
        return self.args.budget_s - (time.monotonic() - STARTED)

    def sizes(self) -> dict:
        return SIZES["cpu" if not self.gpu else "quick" if self.args.quick else "full"]

    def package_dirs(self) -> tuple[list[str], list[str]]:
        """Folders of the runtime packages the sandbox would not show (a user site, a
        folder outside the Python install), and which packages only the vendor folder has."""
        shown = sandbox.host_paths()
        dirs, vendored = [], []
        for name in RUNTIME_PACKAGES:
            spec = importlib.util.find_spec(name)
            if spec is None or not spec.origin:
                continue  # missing: the imports step says so
            origin = Path(spec.origin).resolve()
            folder = origin.parent.parent if spec.submodule_search_locations else origin.parent
            if VENDOR in folder.parents:
                vendored.append(name)
            elif not any(folder == p or p in folder.parents for p in shown):
                if str(folder) not in dirs:
                    dirs.append(str(folder))
        return dirs, vendored

    def pythonpath(self) -> str:
        paths = [str(ROOT), str(SDK), *self.extra_dirs]
        if self.vendored:  # only for what the host lacks
            paths.append(str(VENDOR / "python"))
        return ":".join(paths)

    def child_env(self) -> dict:
        """For the processes the appliance itself would start (detect, supervise): the host's
        environment without Django's or the test suite's settings."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "BML_"))}
        for name in ("BML_SANDBOX", "BML_SANDBOX_UID_BASE"):
            if name in os.environ:
                env[name] = os.environ[name]
        env["PYTHONPATH"] = self.pythonpath()
        return env

    def lease_env(self, gpus: list[int]) -> dict:
        """workers.devices.visible_devices_env of a lease of these GPUs and lease_cpus."""
        n = str(len(self.lease_cpus))
        env = {"OMP_NUM_THREADS": n, "MKL_NUM_THREADS": n, "OPENBLAS_NUM_THREADS": n}
        env["CUDA_VISIBLE_DEVICES"] = ",".join(str(g) for g in gpus)
        if os.environ.get("LD_LIBRARY_PATH"):  # where this host's CUDA driver may live
            env["LD_LIBRARY_PATH"] = os.environ["LD_LIBRARY_PATH"]
        return env

    def result(self, figure: str, **fields) -> dict:
        line = {"figure": figure, **fields}
        self.results.append(line)
        print("RESULT " + json.dumps(line), flush=True)
        return line

    def skip_reason(self) -> str:
        return "no GPU (--cpu)" if self.args.cpu else "no GPU found on this host"


def pinned(cpus: list[int]):
    return (lambda: os.sched_setaffinity(0, cpus)) if cpus else None


# ---- 1. imports ----------------------------------------------------------------------------


def step_imports(check: Check) -> None:
    done = subprocess.run(
        [sys.executable, "-c", IMPORT_SCRIPT, json.dumps([*DATA_PLANE, *RUN_TIME])],
        cwd=check.tmp,
        env=check.child_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    if done.returncode:
        raise RuntimeError(done.stderr[-1500:])
    found = json.loads(done.stdout.strip().splitlines()[-1])
    vendored = sorted(t for t, f in found["third_party"].items() if f.startswith(str(VENDOR)))
    if vendored:
        check.notes.append(
            f"from benchmarks/.gpu_vendor (not installed on this host): {', '.join(vendored)}"
        )
    check.result(
        "data plane imports without Django",
        ours=len(found["django"]),
        peer=0,
        goal="no django/apps/bml_site module; every module imports",
        meets=not found["django"] and not found["missing"],
        django_modules=found["django"],
        missing=found["missing"],
        sdk_imported=found["sdk_imported"],
        third_party=sorted(found["third_party"]),
        vendored=vendored,
        python=sys.version.split()[0],
    )


# ---- 2. devices ----------------------------------------------------------------------------


def nvidia_smi() -> list[dict] | None:
    tool = shutil.which("nvidia-smi")
    if not tool:
        return None
    done = subprocess.run(
        [tool, "--query-gpu=name,memory.total", "--format=csv,noheader,nounits"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    if done.returncode:
        return None
    found = []
    for line in filter(None, (x.strip() for x in done.stdout.splitlines())):
        name, memory = (part.strip() for part in line.rsplit(",", 1))
        found.append({"name": name, "memory_mb": int(float(memory))})
    return found


def step_devices(check: Check) -> None:
    env = check.child_env()
    env.pop("BML_DEVICES", None)  # probe, never declare
    done = subprocess.run(
        [sys.executable, "-m", "workers.detect"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    if done.returncode:
        # The GPU steps still need the GPUs: probe them without the host's capacity (psutil).
        probe = (
            "import json; from workers.detect import probe_cuda; print(json.dumps(probe_cuda()))"
        )
        found = subprocess.run(
            [sys.executable, "-c", probe], cwd=ROOT, env=env, capture_output=True, timeout=180
        )
        check.gpus = json.loads(found.stdout or b"[]") if not found.returncode else []
        check.gpu = check.gpu and bool(check.gpus)
        raise RuntimeError(f"workers.detect failed: {done.stderr[-1500:]}")
    detected = json.loads(done.stdout)
    check.gpus = [d for d in detected["devices"] if d["kind"] == "cuda"]
    if not check.args.cpu and not check.gpus:
        check.gpu = False
        check.notes.append("workers.detect found no GPU: every GPU figure was skipped")
    ours = [{"name": d["name"], "memory_mb": d["memory_mb"]} for d in check.gpus]
    smi = nvidia_smi() if check.gpu else None
    fields = {"ours": len(ours), "detected": ours, "host": detected["host"]}
    if not check.gpu:
        check.result("devices found by workers.detect", **fields, skipped=check.skip_reason())
        return
    if smi is None:
        check.result("devices found by workers.detect", **fields, skipped="no nvidia-smi")
        return
    agree = len(smi) == len(ours) and all(
        a["name"].strip() == b["name"].strip()
        and abs(a["memory_mb"] - b["memory_mb"]) <= max(256, 0.01 * b["memory_mb"])
        for a, b in zip(ours, smi, strict=False)
    )
    check.result(
        "devices found by workers.detect",
        **fields,
        peer=len(smi),
        ratio=round(len(ours) / len(smi), 2) if smi else None,
        goal="same GPUs, names and memory (within 1%) as nvidia-smi",
        meets=agree,
        nvidia_smi=smi,
        host_cuda_visible_devices=os.environ.get("CUDA_VISIBLE_DEVICES"),
    )
