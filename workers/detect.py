"""Find this machine's accelerators. Run as `python -m workers.detect`: it prints JSON.

Importing torch and paddle takes seconds and memory, so the web process never does it;
the launcher runs this once per start in a child process. No Django import here.
"""

import json
import os
import sys


def parse_declared(spec: str) -> list[dict]:
    """'cuda:2,xpu:1' -> two CUDA GPUs and one Kunlun XPU (declared, not probed)."""
    devices = []
    for part in filter(None, (p.strip() for p in spec.split(","))):
        kind, _, count = part.partition(":")
        kind = kind.strip().lower()
        if kind not in ("cuda", "xpu"):
            raise ValueError(f"BML_DEVICES: unknown device kind {kind!r} (use cuda or xpu)")
        if not count.strip().isdigit():
            raise ValueError(f"BML_DEVICES: {part!r} needs a count, e.g. {kind}:2")
        for index in range(int(count)):
            name = "Declared GPU" if kind == "cuda" else "Declared Kunlun XPU"
            devices.append({"kind": kind, "index": index, "name": name, "memory_mb": 0})
    return devices


def probe_cuda() -> list[dict]:
    try:
        import torch
    except ImportError:
        return []
    if not torch.cuda.is_available():
        return []
    found = []
    for index in range(torch.cuda.device_count()):
        props = torch.cuda.get_device_properties(index)
        found.append(
            {
                "kind": "cuda",
                "index": index,
                "name": props.name,
                "memory_mb": props.total_memory // (1024 * 1024),
            }
        )
    return found


def probe_xpu() -> list[dict]:
    try:
        import paddle
    except ImportError:
        return []
    try:
        if not paddle.is_compiled_with_xpu():
            return []
        count = paddle.device.xpu.device_count()
    except Exception:  # a broken driver must not stop the appliance from starting
        return []
    return [{"kind": "xpu", "index": i, "name": "Kunlun XPU", "memory_mb": 0} for i in range(count)]


def host_capacity() -> dict:
    import psutil

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {"cpu_cores": cores or 1, "memory_mb": psutil.virtual_memory().total // (1024 * 1024)}


def detect(declared: str = "") -> dict:
    devices = parse_declared(declared) if declared.strip() else probe_cuda() + probe_xpu()
    return {"host": host_capacity(), "devices": devices, "declared": bool(declared.strip())}


if __name__ == "__main__":
    json.dump(detect(os.environ.get("BML_DEVICES", "")), sys.stdout)
