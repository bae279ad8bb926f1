"""The control plane's side of the sandbox: what each kind of run is shown (Django side;
workers.sandbox applies it and knows nothing of settings)."""

from pathlib import Path

from django.conf import settings

from workers import sandbox
from workers.models import Lease


def for_run(
    project_id: int, workdir: Path, lease: Lease | None = None, **extra
) -> sandbox.Confinement:
    """A run of `project_id`: its own user (as root), its working folder and `extra`
    folders, the devices of its lease, and none of var/ (database, store keys and data, the
    Django secret, other runs and notebooks) except what it is explicitly given; the lease's
    memory as its control group's limit when `extra` names the group."""
    return sandbox.Confinement(
        workdir=Path(workdir),
        hidden=[Path(settings.VAR_DIR)],
        uid=sandbox.run_uid(project_id),
        devices=bool(lease is not None and lease.devices.exists()),
        cpus=sorted(lease.cpus) if lease is not None else [],
        memory_mb=lease.memory_mb if lease is not None else None,
        **extra,
    )
