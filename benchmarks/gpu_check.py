"""GPU host check (issue 17): one prepared command that proves every accelerator path of the
data plane on a real GPU, for the few minutes such a host is lent:

1. imports: the data plane (workers.detect, supervise, sandbox, cgroups, runners.model_serve
   and its loaders) imports with no Django, and what it needs at run time is there;
2. devices: `python -m workers.detect` finds the GPUs nvidia-smi lists, same names and memory;
3. a run under `workers.supervise` (confined as the appliance does it) with a 1-GPU lease's
   environment trains a small ResNet on the leased GPU, seeing exactly that one, at >= 0.97
   of the steps/s of the same script started bare with the same environment and cores;
4. a run leased no GPU (CUDA_VISIBLE_DEVICES="", no device nodes) sees none, even here;
5. two `model_serve` replicas of a TorchScript ResNet-18 on the GPU, confined and keyed as
   the appliance starts them, loaded over loopback by benchmarks/serving.py's load generator:
   req/s at 1 and 32 clients, adaptive batching (16, 5 ms) >= 2x no batching at 32 clients,
   with a p99 <= 2x.

It prints one `RESULT {...}` line per figure (DESIGN.md's format; a figure a CPU cannot
give says "skipped", never a made-up meets), then a summary, then one last RESULT line for
the whole check. Exit status 0 when every figure measured meets its goal.

    python3 benchmarks/gpu_check.py [--quick] [--cpu] [--bwrap-from DIR]   (make gpu-check)
    .venv/bin/python benchmarks/gpu_check.py --vendor     (here, with a package registry)

No Django, no object store, no network: only the repo, the host's Python with its own torch,
numpy, pillow and uvloop. What the data plane needs beyond those (uvicorn, h11, click,
httptools, psutil) comes from `--vendor`'s folder benchmarks/.gpu_vendor/ (wheels for the
GPU host's Python, unpacked, and this host's bubblewrap with its libraries), used only for
what the host lacks; it is ignored by git, so carry it to the GPU host with the tree.
`--cpu`: the same steps at tiny sizes on the CPU (under a minute on 2 cores), GPU figures
skipped; it is what tests/workers/test_gpu_check.py runs.

The sandbox follows BML_SANDBOX as the appliance does ("auto" when unset: confined where
bubblewrap works, plainly said in the summary when it does not). With --bwrap-from DIR
(`--vendor`'s bin/ folder) and no bubblewrap on the host, a wrapper /usr/local/bin/bwrap
runs DIR's binary with DIR's libraries for the duration of the check (root only; glibc >=
2.34), and is removed at the end.
"""

import argparse
import http.client
import importlib.util
import json
import os
import secrets
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SDK = ROOT / "sdk"
VENDOR = ROOT / "benchmarks" / ".gpu_vendor"
VENDORED = ("uvicorn", "h11", "click", "httptools", "psutil")
# Packages the runs and replicas import, which must be visible inside the sandbox.
RUNTIME_PACKAGES = ("torch", "numpy", "PIL", "uvloop", *VENDORED)
for _path in (str(SDK), str(ROOT), str(ROOT / "benchmarks")):
    if _path not in sys.path:
        sys.path.insert(0, _path)

import serving  # noqa: E402  (benchmarks/serving.py: its load generator and read_line)

from workers import cgroups, sandbox  # noqa: E402

STARTED = time.monotonic()
BATCH_SIZE, BATCH_WAIT_MS = 16, 5.0


def progress(message: str) -> None:
    print(f"[{time.monotonic() - STARTED:6.1f} s] {message}", file=sys.stderr, flush=True)


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


# ---- the user code of the runs ------------------------------------------------------------

TRAIN_SCRIPT = r'''
"""gpu_check's user code: what it sees, then a small ResNet trained on one random batch."""
import json, os, socket, sys, time
from pathlib import Path

cfg = json.loads(sys.argv[1])
seen = {
    "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
    "uid": os.getuid(),
    "pid": os.getpid(),
    "hostname": socket.gethostname(),
    "device_nodes": sorted(p.name for p in Path("/dev").glob("nvidia*")),
}
seen["var_secret_visible"] = os.path.exists(os.path.join(cfg["var_dir"], "db.sqlite3"))
started = time.perf_counter()
import torch
import torch.nn.functional as F
from torch import nn

seen.update(torch=torch.__version__, import_s=round(time.perf_counter() - started, 2))
seen["device_count"] = torch.cuda.device_count()
use_cuda = cfg["device"] == "cuda" and torch.cuda.is_available()
device = torch.device("cuda" if use_cuda else "cpu")
if use_cuda:
    props = torch.cuda.get_device_properties(0)
    seen.update(gpu_name=props.name, gpu_memory_mb=props.total_memory // 2**20,
                gpu_uuid=str(getattr(props, "uuid", "")))
    torch.backends.cudnn.benchmark = True
    # Full FP32 convolutions: each step is GPU work, not the Python that launches it.
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False


class Block(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.skip = nn.Sequential()
        if stride != 1 or cin != cout:
            self.skip = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False),
                                      nn.BatchNorm2d(cout))

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(y)) + self.skip(x))


def resnet(width, classes=10):  # ResNet-18's shape at width 64
    layers = [nn.Conv2d(3, width, 7, 2, 3, bias=False), nn.BatchNorm2d(width), nn.ReLU(),
              nn.MaxPool2d(3, 2, 1)]
    cin = width
    for i, cout in enumerate((width, width * 2, width * 4, width * 8)):
        layers += [Block(cin, cout, 1 if i == 0 else 2), Block(cout, cout, 1)]
        cin = cout
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(cin, classes))


torch.manual_seed(0)
model = resnet(cfg["width"]).to(device)
optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
x = torch.randn(cfg["batch"], 3, cfg["image"], cfg["image"], device=device)
y = torch.randint(0, 10, (cfg["batch"],), device=device)


def step():
    optimizer.zero_grad(set_to_none=True)
    loss = F.cross_entropy(model(x), y)
    loss.backward()
    optimizer.step()
    return loss


def sync():
    if use_cuda:
        torch.cuda.synchronize()


first = float(step())
for _ in range(cfg["warmup"]):
    step()
sync()
t0 = time.perf_counter()
for _ in range(cfg["steps"]):
    loss = step()
sync()
seconds = time.perf_counter() - t0
seen.update(device=str(device), steps=cfg["steps"], seconds=round(seconds, 4),
            steps_per_s=cfg["steps"] / seconds, first_loss=first, final_loss=float(loss))
out = Path("output")
out.mkdir(exist_ok=True)
(out / "figures.tmp").write_text(json.dumps(seen))
os.replace(out / "figures.tmp", out / "figures.json")
'''

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
        shown = [*sandbox._python_paths(), *(Path(p) for p in sandbox.SYSTEM_DIRS)]
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


# ---- 3 and 4. runs under workers.supervise ------------------------------------------------


def run_config(check: Check, name: str, workspace: Path, cfg: dict, gpus: list[int]) -> dict:
    """A run.json as workers.scheduler.start_run writes it, without storage (no stage_in,
    stage_out, log_uri or grant): the project's own user, var/ hidden, the lease's devices,
    cores and memory."""
    rules = sandbox.Confinement(
        workdir=workspace,
        readable=[Path(d) for d in check.extra_dirs],
        hidden=[check.var],
        uid=sandbox.run_uid(1),
        devices=bool(gpus),
        memory_mb=65536 if check.gpu else 8192,
        group=f"gpu-check-{os.getpid()}-{name}",
    )
    packages = workspace / ".bml" / "packages"
    env = {**check.lease_env(gpus), "PYTHONPATH": ":".join([str(packages), *check.extra_dirs])}
    return {
        "run_id": f"gpu-check-{name}",
        "workspace": str(workspace),
        "command": [sys.executable, "train.py", json.dumps(cfg)],
        "env": env,
        "time_limit_s": 300 if check.gpu else 120,
        "cpu_affinity": check.lease_cpus,
        "sandbox": rules.to_json(),
    }


def prepare(check: Check, name: str, cfg: dict, gpus: list[int]) -> tuple[Path, dict]:
    run_dir = check.var / "runs" / name
    workspace = run_dir / "workspace"
    workspace.mkdir(parents=True)
    os.chmod(run_dir, 0o700)
    (workspace / "train.py").write_text(TRAIN_SCRIPT)
    config = run_config(check, name, workspace, {**cfg, "var_dir": str(check.var)}, gpus)
    (run_dir / "run.json").write_text(json.dumps(config))
    return run_dir, config


def supervised(check: Check, name: str, cfg: dict, gpus: list[int]) -> tuple[dict, dict]:
    """(result.json, the run's figures) of a run started as the scheduler starts one."""
    run_dir, config = prepare(check, name, cfg, gpus)
    env = check.child_env()
    env = {k: env[k] for k in ("PATH", "PYTHONPATH", "BML_SANDBOX", "BML_SANDBOX_UID_BASE")
           if k in env} | {"LANG": "C.UTF-8"}  # fmt: skip
    with open(run_dir / "supervise.err", "wb") as err:
        subprocess.run(
            [sys.executable, "-m", "workers.supervise", "--config", str(run_dir / "run.json")],
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=err,
            stderr=err,
            start_new_session=True,
            timeout=config["time_limit_s"] + 60,
        )
    if not (run_dir / "result.json").is_file():
        raise RuntimeError(f"supervise wrote no result: {(run_dir / 'supervise.err').read_text()}")
    result = json.loads((run_dir / "result.json").read_text())
    figures_file = Path(config["workspace"]) / "output" / "figures.json"
    figures = json.loads(figures_file.read_text()) if figures_file.is_file() else {}
    if result["status"] != "succeeded":
        log = (run_dir / "log.txt").read_text(errors="replace")[-1500:]
        progress(f"run {name} {result['status']}: {result['reason']}\n{log}")
    # Confined: bwrap's hostname; the run's own user when the appliance is root.
    check.confined[name] = figures.get("hostname") == "bml-run"
    return result, figures


def bare(check: Check, name: str, cfg: dict, gpus: list[int]) -> dict:
    """The same script with the same environment and cores, a plain subprocess."""
    from workers.supervise import user_environment

    run_dir, config = prepare(check, name, cfg, gpus)
    workspace = Path(config["workspace"])
    (workspace / "tmp").mkdir()
    done = subprocess.run(
        config["command"],
        cwd=workspace,
        env=user_environment(config, workspace),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        preexec_fn=pinned(check.lease_cpus),
        timeout=config["time_limit_s"],
    )
    if done.returncode:
        raise RuntimeError(f"the bare run failed: {done.stderr[-1500:]}")
    return json.loads((workspace / "output" / "figures.json").read_text())


def train_cfg(check: Check) -> dict:
    keys = ("batch", "image", "width", "steps", "warmup")
    return {"device": "cuda" if check.gpu else "cpu", **{k: check.sizes()[k] for k in keys}}


def step_training(check: Check) -> None:
    gpus = [check.gpus[0]["index"]] if check.gpu else []
    cfg = train_cfg(check)
    bare_rates, ours_rates, runs = [], [], []
    for i in range(check.sizes()["rounds"]):
        if i and check.left() < 120:
            check.notes.append(f"training: {i} round(s) only (time budget)")
            break
        progress(f"training round {i + 1}: bare")
        bare_rates.append(bare(check, f"bare-{i}", cfg, gpus)["steps_per_s"])
        progress(f"training round {i + 1}: under workers.supervise")
        result, figures = supervised(check, f"train-{i}", cfg, gpus)
        runs.append((result, figures))
        if result["status"] != "succeeded" or "steps_per_s" not in figures:
            break
        ours_rates.append(figures["steps_per_s"])
    result, figures = runs[-1]
    seen = figures.get("device_count")
    leased_name = check.gpus[0]["name"] if check.gpu else None
    ok = result["status"] == "succeeded" and seen == len(gpus)
    loss_fell = figures.get("final_loss", 1e9) < figures.get("first_loss", 0)
    if check.gpu:
        ok = ok and figures.get("gpu_name") == leased_name and figures["device"] == "cuda"
        ok = ok and loss_fell
    check.result(
        "run under workers.supervise sees its lease",
        ours=seen,
        peer=len(gpus),
        goal="succeeded; torch.cuda.device_count() == the GPUs leased; trains on the GPU",
        meets=ok,
        status=result["status"],
        reason=result["reason"],
        gpus_leased=len(gpus),
        gpus_seen=seen,
        gpu_name=figures.get("gpu_name"),
        device=figures.get("device"),
        loss=[figures.get("first_loss"), figures.get("final_loss")],
        loss_fell=loss_fell,
        confined=check.confined.get(f"train-{len(runs) - 1}", False),
        uid=figures.get("uid"),
        var_secret_visible=figures.get("var_secret_visible"),
    )
    speed = {
        "ours": round(median(ours_rates), 2) if ours_rates else None,
        "peer": round(median(bare_rates), 2),
        "unit": "steps/s",
        "rounds": len(ours_rates),
        "model": f"ResNet-18 shape, width {cfg['width']}, batch {cfg['batch']}, "
        f"{cfg['image']} px, {cfg['steps']} steps",
    }
    speed["ratio"] = round(speed["ours"] / speed["peer"], 3) if ours_rates else None
    if not check.gpu:
        check.result("training steps/s, supervised vs bare", **speed, skipped=check.skip_reason())
        return
    check.result(
        "training steps/s, supervised vs bare",
        **speed,
        goal=">= 0.97",
        meets=bool(ours_rates) and speed["ratio"] >= 0.97,
    )


def step_no_gpu(check: Check) -> None:
    cfg = {**train_cfg(check), "device": "cpu", "batch": 4, "image": 16, "width": 8}
    cfg.update(steps=2, warmup=1)
    result, figures = supervised(check, "no-gpu", cfg, [])
    seen = figures.get("device_count")
    check.result(
        "run leased no GPU sees none",
        ours=seen,
        peer=0,
        goal="torch.cuda.device_count() == 0",
        meets=result["status"] == "succeeded" and seen == 0,
        status=result["status"],
        reason=result["reason"],
        device_nodes_seen=figures.get("device_nodes"),
        var_secret_visible=figures.get("var_secret_visible"),
        cuda_visible_devices=figures.get("cuda_visible_devices"),
        confined=check.confined.get("no-gpu", False),
    )


# ---- 5. prediction replicas ----------------------------------------------------------------


def build_model(check: Check, size: int) -> tuple[Path, Path]:
    """A TorchScript ResNet-18 (random weights) and a request body of one base64 JPEG, as
    benchmarks/serving.py builds them."""
    import base64
    import io
    import warnings

    import numpy as np
    import torch
    import torchvision
    from PIL import Image

    folder = check.var / "models" / "resnet18"
    folder.mkdir(parents=True)
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "torch.jit.script is deprecated"
        scripted = torch.jit.script(torchvision.models.resnet18(weights=None).eval())
    scripted.save(str(folder / "resnet18.pt"))
    y, x = np.mgrid[0:size, 0:size] / size
    disc = ((x - 0.6) ** 2 + (y - 0.4) ** 2 < 0.08).astype(float)
    rgb = np.stack([x, y, 0.5 * (1 - x) + 0.5 * disc], axis=-1)
    jpeg = io.BytesIO()
    Image.fromarray((rgb * 255).astype("uint8")).save(jpeg, format="JPEG", quality=90)
    body = check.tmp / "resnet.json"
    body.write_text(
        json.dumps({"instances": [{"data": base64.b64encode(jpeg.getvalue()).decode()}]})
    )
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


# ---- the steps -----------------------------------------------------------------------------

# Each step runs in order and prints its RESULT lines through check.result(); one that
# raises is reported failed and the next one runs. LATER TRAINERS ADD THEIR STEP HERE
# (AutoDL, smart vision, GBDT): a run of their runner under workers.supervise with a 1-GPU
# lease (supervised() above writes its run.json), its figure against the same code bare.
STEPS = [
    ("data plane imports without Django", step_imports),
    ("devices found by workers.detect", step_devices),
    ("run under workers.supervise sees its lease", step_training),
    ("run leased no GPU sees none", step_no_gpu),
    ("model_serve replica answers", step_serving),
    # ("AutoDL training on the leased GPU", step_autodl),
    # ("smart vision training on the leased GPU", step_vision),
    # ("GBDT training on the leased GPU", step_gbdt),
]


# ---- tools the GPU host may lack --------------------------------------------------------------


def shared_libraries(binary: str) -> list[Path]:
    done = subprocess.run(["ldd", binary], capture_output=True, text=True, check=True)
    libs = []
    for line in done.stdout.splitlines():
        name, _, rest = line.strip().partition(" => ")
        path = rest.split(" (")[0].strip()
        if path.startswith("/") and not name.startswith(("libc.so", "ld-linux")):
            libs.append(Path(path))
    return libs


def prepare_vendor(python_version: str) -> None:
    """Here, with pip and a registry: wheels of VENDORED (the versions installed here) for
    the GPU host's Python, unpacked into VENDOR/python, and bubblewrap with its libraries
    into VENDOR/bin."""
    from importlib.metadata import version

    shutil.rmtree(VENDOR, ignore_errors=True)
    platforms = ["manylinux_2_28_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64"]
    platforms += ["manylinux_2_12_x86_64", "manylinux2010_x86_64", "manylinux_2_5_x86_64"]
    platforms += ["manylinux1_x86_64", "any"]
    with tempfile.TemporaryDirectory() as wheels:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:"]
            + ["--implementation", "cp", "--python-version", python_version, "-d", wheels]
            + [arg for p in platforms for arg in ("--platform", p)]
            + [f"{name}=={version(name)}" for name in VENDORED],
            check=True,
        )
        for wheel in sorted(Path(wheels).glob("*.whl")):
            with zipfile.ZipFile(wheel) as archive:
                archive.extractall(VENDOR / "python")
    (VENDOR / "bin").mkdir(parents=True)
    bwrap = sandbox.bwrap_binary()
    if bwrap:
        for path in (Path(bwrap), *shared_libraries(bwrap)):
            shutil.copy2(path, VENDOR / "bin" / path.name)
    size = sum(p.stat().st_size for p in VENDOR.rglob("*") if p.is_file())
    print(f"{VENDOR.relative_to(ROOT)}: {size / 2**20:.1f} MiB for Python {python_version}")


def install_bwrap(folder: Path) -> Path | None:
    """A wrapper /usr/local/bin/bwrap running folder's bwrap with folder's libraries, where
    the host has no bubblewrap (removed at the end); None when not needed or not possible."""
    if sandbox.bwrap_binary() or not (folder / "bwrap").is_file() or os.geteuid() != 0:
        return None
    loader = Path("/lib64/ld-linux-x86-64.so.2")  # runs it with folder's libraries first
    if not loader.exists():
        return None
    folder = folder.resolve()
    wrapper = Path("/usr/local/bin/bwrap")
    wrapper.write_text(
        f"#!/bin/sh\nexec {loader} --library-path {shlex.quote(str(folder))} "
        f'{shlex.quote(str(folder / "bwrap"))} "$@"\n'
    )
    wrapper.chmod(0o755)
    return wrapper


# ---- the driver ------------------------------------------------------------------------------


def summary(check: Check) -> bool:
    measured = [r for r in check.results if r.get("meets") is not None]
    failed = [r["figure"] for r in measured if not r["meets"]]
    skipped = [r["figure"] for r in check.results if r.get("skipped")]
    problem = sandbox.probe()
    confined = [name for name, on in check.confined.items() if on]
    print("\n==== GPU host check: summary ====")
    mode = "GPU" if check.gpu else "CPU (--cpu)" if check.args.cpu else "CPU (no GPU found)"
    print(f"mode: {mode}; python {sys.version.split()[0]} at {sys.executable}")
    for gpu in check.gpus:
        print(f"GPU {gpu['index']}: {gpu['name']}, {gpu['memory_mb']} MiB")
    if problem:
        print(f"SANDBOX WAS OFF for every run and replica above: {problem}.")
    print(sandbox.describe())
    print(f"runs confined (bwrap's hostname seen): {', '.join(confined) or 'none'}")
    for note in check.notes:
        print(f"note: {note}")
    print(f"figures meeting their goal: {len(measured) - len(failed)} of {len(measured)}")
    if failed:
        print(f"FAILED: {'; '.join(failed)}")
    if skipped:
        print(f"skipped: {'; '.join(skipped)}")
    print(f"took {time.monotonic() - STARTED:.0f} s")
    ok = not failed and "django" not in sys.modules
    check.result(
        "gpu check",
        ours=len(measured) - len(failed),
        peer=len(measured),
        goal="every figure measured meets its goal",
        meets=ok,
        failed=failed,
        skipped=skipped,
        sandbox="off: " + problem if problem else "on",
        gpu=check.gpu,
    )
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one round, fewer steps")
    parser.add_argument("--cpu", action="store_true", help="tiny sizes on the CPU, GPU skipped")
    parser.add_argument("--budget-s", type=float, default=450, help="stop adding rounds after")
    parser.add_argument("--bwrap-from", type=Path, help="folder with bwrap and its libraries")
    parser.add_argument("--vendor", action="store_true", help="prepare benchmarks/.gpu_vendor")
    parser.add_argument("--vendor-python", default="3.12", help="the GPU host's Python")
    args = parser.parse_args()
    if args.vendor:
        prepare_vendor(args.vendor_python)
        return 0
    os.umask(0o022)  # the runs' own user reads the model and scripts written here
    if VENDOR.joinpath("python").is_dir():
        sys.path.append(str(VENDOR / "python"))  # after the host's own packages
    wrapper = install_bwrap(args.bwrap_from) if args.bwrap_from else None
    check = Check(args)
    if wrapper:
        check.notes.append(f"bubblewrap from {args.bwrap_from} through {wrapper} (removed)")
    progress(sandbox.describe())
    try:
        for name, step in STEPS:
            progress(f"step: {name}")
            try:
                step(check)
            except Exception as exc:  # reported; the next step still runs
                check.result(name, meets=False, error=f"{type(exc).__name__}: {exc}"[:2000])
        if "django" in sys.modules:
            print("WARNING: django was imported by gpu_check; the GPU host has no Django")
        return 0 if summary(check) else 1
    finally:
        if wrapper:
            wrapper.unlink(missing_ok=True)
        shutil.rmtree(check.tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
