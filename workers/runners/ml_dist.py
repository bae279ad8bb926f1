"""Data-parallel helpers of the machine learning runners: with 2-4 instances every process
works on its share of the data and they combine partial results over torch.distributed
(gloo, CPU), set up from the variables the job engine gives each instance (RANK,
WORLD_SIZE, MASTER_ADDR, MASTER_PORT, as torchrun does). With one instance every call is a
no-op, so a runner is written once for both cases. No Django import."""

from __future__ import annotations

import os
import sys
from datetime import timedelta

import numpy as np

_group = None


def rank() -> int:
    return int(os.environ.get("RANK", "0"))


def world() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def init(timeout_s: float = 600) -> None:
    """Join the job's process group (once); nothing to do for a single instance."""
    global _group
    if world() > 1 and _group is None:
        import torch.distributed as dist

        dist.init_process_group("gloo", timeout=timedelta(seconds=timeout_s))
        _group = dist.group.WORLD


def allreduce_sum(array):
    """The element-wise sum of `array` over all instances (a new float64 array)."""
    values = np.ascontiguousarray(array, dtype=np.float64)
    if world() == 1:
        return values.copy()
    import torch
    import torch.distributed as dist

    tensor = torch.from_numpy(values.copy())
    dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor.numpy()


def allgather(obj) -> list:
    """Every instance's `obj` (picklable), in rank order."""
    if world() == 1:
        return [obj]
    import torch.distributed as dist

    gathered = [None] * world()
    dist.all_gather_object(gathered, obj)
    return gathered


def broadcast(obj):
    """Rank 0's `obj`, on every instance."""
    if world() == 1:
        return obj
    import torch.distributed as dist

    holder = [obj]
    dist.broadcast_object_list(holder, src=0)
    return holder[0]


def finish() -> None:
    """Leave together: a peer that quits early breaks the others' connections."""
    global _group
    if _group is not None:
        import torch.distributed as dist

        dist.barrier()
        # No destroy_process_group(): with torch 2.14's gloo it now and then aborts the
        # process at exit ("terminate called without an active exception"); the group
        # goes with the process.
        _group = None


def exit(code: int) -> None:
    """End the runner's process with `code`. With several instances the process leaves
    without the interpreter's teardown: torch 2.14's gloo threads, torn down while a peer is
    still connected, now and then abort the exit ("terminate called without an active
    exception"), turning a finished run into a failed one. Everything is written and
    flushed by then."""
    if world() == 1:
        sys.exit(code)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
