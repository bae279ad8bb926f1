"""Steps 3 and 4 of the GPU host check: the user code of the runs, runs under
workers.supervise and the same code bare, the training and no-GPU steps."""

import json
import os
import subprocess
import sys
from pathlib import Path

from workers import sandbox

from . import ROOT
from .check import Check, median, pinned, progress

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


def supervise_run(check: Check, run_dir: Path, config: dict) -> dict:
    """Start `workers.supervise` on the prepared run as the scheduler does; its result.json."""
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
    return json.loads((run_dir / "result.json").read_text())


def run_bare(check: Check, config: dict) -> subprocess.CompletedProcess:
    """The prepared run's command with its environment and the lease's cores, no supervisor."""
    from workers.supervise import user_environment

    workspace = Path(config["workspace"])
    (workspace / "tmp").mkdir()
    return subprocess.run(
        config["command"],
        cwd=workspace,
        env=user_environment(config, workspace),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        preexec_fn=pinned(check.lease_cpus),
        timeout=config["time_limit_s"],
    )


def supervised(check: Check, name: str, cfg: dict, gpus: list[int]) -> tuple[dict, dict]:
    """(result.json, the run's figures) of a run started as the scheduler starts one."""
    run_dir, config = prepare(check, name, cfg, gpus)
    result = supervise_run(check, run_dir, config)
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
    _, config = prepare(check, name, cfg, gpus)
    done = run_bare(check, config)
    if done.returncode:
        raise RuntimeError(f"the bare run failed: {done.stderr[-1500:]}")
    return json.loads((Path(config["workspace"]) / "output" / "figures.json").read_text())


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
