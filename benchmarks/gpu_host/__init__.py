"""The GPU host check's pieces (benchmarks/gpu_check.py is the driver): check.py, the
check's state and its imports and devices steps; runs.py, the runs under workers.supervise;
replicas.py, the model_serve replicas; vendor.py, what the GPU host may lack.

Importing the package puts sdk/, the repo root and benchmarks/ on sys.path, so that its
modules import workers and benchmarks/serving.py on a bare host."""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
SDK = ROOT / "sdk"
for _path in (str(SDK), str(ROOT), str(ROOT / "benchmarks")):
    if _path not in sys.path:
        sys.path.insert(0, _path)
