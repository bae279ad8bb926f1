"""Part "enas" of benchmarks/autodl.py: does ENAS's search find a better architecture than
picking one at random from the same space? (Li & Talwalkar 2019 found random search a
strong baseline for ENAS; the issue's goal: the final model beats the median of 5 random
architectures of its space trained with the same compute.)

One run of the job's own runner (workers/runners/autodl_enas.py, a subprocess in a fresh
workspace, as the job engine starts it) with random_baselines = 5: after its search it
trains the architecture found from scratch and then 5 architectures drawn uniformly from the
same space (each operation equally likely, each skip with probability 1/2), each with the
same from-scratch budget - the same photos, epochs, batch, optimiser, schedule, augmentation
and seed - and scores all six on the same validation photos, which the search never saw
(it trains its shared weights on part of the other photos and rewards the controller on the
rest). Figure: the found architecture's validation accuracy (ours) against the median of
the 5 random ones (peer); ratio ours / peer; goal: ours > peer. The search's own cost is
on top of the found model's budget, and is printed beside it (seconds of search).

Data: photos.generate_large - the same 5 classes of shapes as the transfer part, drawn bold
(photos.render_bold: filled or thick shapes, thin lines across, grain) as PNGs of 224 px
(the spec's ENAS rules want each photo >= 100 KB, >= 50 a class). Not the transfer part's
photos: their outlines, dots and gradients shrink to a pixel at ENAS's 32 px, where even a
fixed all-convolution child stayed near chance for 70 steps and the shared network (a
different child each batch) did not leave chance in 700; on these it learns.
Full: 5 x 200 photos; the network at 32 px (CIFAR's size, the spec's own ENAS example),
6 layers of 24 channels, 60 search rounds (each a pass over the search photos, about 20
shared-weight steps, and 30 controller steps), 20 epochs from scratch. --quick: 5 x 60
photos, 5 layers of 16 channels, 20 rounds of 20 controller steps, 10 epochs.
Why so many rounds: every operation of every layer has weights of its own, trained only in
the batches whose child uses it (a sixth of them); at 15 rounds the shared network had not
left chance (loss ln 5) and its rewards were noise. A round costs about 1.5 s here, a tenth
of one from-scratch epoch.
--smoke: 5 x 50 photos at 16 px, 3 layers of 8 channels, 1 round, 1 epoch, 1 random.

Measured on 2 cores (full, 6 minutes: 85 s of search, 35-53 s per from-scratch training):
the controller's reward rose from 0.22 (chance is 0.2) to 0.51 over the 60 rounds and its
entropy fell from 17.4 to 13.1; it settled on convolutions with skips
(conv3x3 | conv3x3 | max3x3 | max3x3 <- 1 | conv3x3 <- 0,2 | conv3x3 <- 0,2), which reached
1.000 from scratch against the random architectures' 0.99, 0.79, 0.925, 0.995, 0.995
(median 0.99): ratio 1.01, meets. The margin is thin because these shapes are easy for any
child with a few convolutions; what the search buys is not drawing one of the pooling-heavy
children (0.79).
"""

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from autodl_parts.photos import SHAPES, generate_large

ROOT = Path(__file__).resolve().parents[2]
RANDOM = 5
SIZES = {
    "full": {
        "per_class": 200,
        "settings": {
            "image_size": 32,
            "layers": 6,
            "channels": 24,
            "search_rounds": 60,
            "controller_steps": 30,
            "derive_samples": 10,
            "final_epochs": 20,
            "random_baselines": RANDOM,
            "batch_size": 32,
        },
    },
    "quick": {
        "per_class": 60,
        "settings": {
            "image_size": 32,
            "layers": 5,
            "channels": 16,
            "search_rounds": 20,
            "controller_steps": 20,
            "derive_samples": 8,
            "final_epochs": 10,
            "random_baselines": RANDOM,
            "batch_size": 32,
        },
    },
    "smoke": {
        "per_class": 50,
        "settings": {
            "image_size": 16,
            "layers": 3,
            "channels": 8,
            "search_rounds": 1,
            "controller_steps": 2,
            "derive_samples": 2,
            "final_epochs": 1,
            "random_baselines": 1,
            "batch_size": 32,
        },
    },
}


def run_job(workspace: Path, params: dict) -> float:
    (workspace / "params.json").write_text(json.dumps(params))
    env = {**os.environ, "PYTHONPATH": f"{ROOT}:{ROOT / 'sdk'}"}
    env["BML_METRICS_FILE"] = str(workspace / "metrics.jsonl")
    started = time.monotonic()
    with (workspace / "job.log").open("w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "workers.runners.autodl_enas", "--params", "params.json"],
            cwd=workspace,
            env=env,
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
        )
        for line in process.stdout:
            if line.startswith(("round ", "the controller", "fairness", "random ")):
                print(f"  {time.monotonic() - started:6.1f} s  {line.strip()}", flush=True)
        process.wait()
    if process.returncode != 0:
        tail = (workspace / "job.log").read_text()[-3000:]
        raise RuntimeError(f"the ENAS job failed ({process.returncode}):\n{tail}")
    return time.monotonic() - started


def enas(mode: str) -> dict:
    size, smoke = SIZES[mode], mode == "smoke"
    with tempfile.TemporaryDirectory(prefix="bml-bench-enas-") as tmp:
        workspace = Path(tmp)
        started = time.monotonic()
        generate_large(workspace / "shapes.zip", size["per_class"])
        print(
            f"{len(SHAPES)} x {size['per_class']} PNG photos of 224 px "
            f"({time.monotonic() - started:.1f} s to make)",
            flush=True,
        )
        params = {"input": "shapes.zip", "seed": 0, **size["settings"]}
        job_s = run_job(workspace, params)
        journal = json.loads((workspace / "log" / "enas.json").read_text())
    fairness, final = journal["fairness"], journal["final"]
    ours, peer = fairness["enas_val_acc"], fairness["random_median_val_acc"]
    search_s = sum(r["seconds"] for r in journal["rounds"])
    return {
        "figure": "autodl enas: validation accuracy of the architecture found vs the median "
        f"of {len(fairness['random_val_accs'])} random architectures (same from-scratch budget)",
        "ours": round(ours, 4),
        "peer": round(peer, 4),
        "ratio": round(ours / peer, 3) if peer else None,
        "goal": "> 1.0 (ours beats the median)",
        "meets": None if smoke else ours > peer,
        "random_val_accs": [round(v, 4) for v in fairness["random_val_accs"]],
        "found": final[0]["describe"],
        "found_parameters": final[0]["parameters"],
        "from_scratch_s": [row["seconds"] for row in final],
        "search_s": round(search_s, 1),
        "job_s": round(job_s, 1),
        "controller_reward_by_round": [round(r["reward"], 3) for r in journal["rounds"]],
        "photos": len(SHAPES) * size["per_class"],
        "settings": size["settings"],
        "smoke": smoke,
    }
