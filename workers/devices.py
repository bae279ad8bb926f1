"""Inventory of this host's devices and the leases that hold them.

Leases are taken inside one IMMEDIATE transaction, so two admissions racing for the last
GPU cannot both win; every exit path of a run calls `release`.
"""

import json
import os
import subprocess
import sys
from collections import Counter

from django.conf import settings
from django.db import transaction
from django.db.models import Sum
from django.utils import timezone

from workers.detect import detect
from workers.models import Device, Host, Lease


class NoCapacity(Exception):
    """What the package asks for is not free now (or never exists on this host)."""


def this_host() -> Host:
    host = Host.objects.filter(name=settings.HOST_NAME).first()
    return host or sync_inventory()


def sync_inventory(probe: bool = False) -> Host:
    """Record this host's capacity and devices.

    With `probe`, torch/paddle are imported in a child process (they are slow and heavy);
    without it, only declared devices (BML_DEVICES) and CPU capacity are recorded.
    """
    if probe and not settings.DECLARED_DEVICES:
        out = subprocess.run(
            [sys.executable, "-m", "workers.detect"],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        found = json.loads(out.stdout) if out.returncode == 0 else detect("")
    else:
        found = detect(settings.DECLARED_DEVICES)
    with transaction.atomic():
        host, _ = Host.objects.update_or_create(
            name=settings.HOST_NAME,
            defaults={
                "cpu_cores": found["host"]["cpu_cores"],
                "memory_mb": found["host"]["memory_mb"],
            },
        )
        seen = set()
        for dev in found["devices"]:
            device, _ = Device.objects.update_or_create(
                host=host,
                kind=dev["kind"],
                index=dev["index"],
                defaults={
                    "name": dev["name"],
                    "memory_mb": dev["memory_mb"],
                    "declared": found["declared"],
                    "present": True,
                },
            )
            seen.add(device.pk)
        host.devices.exclude(pk__in=seen).update(present=False)
    return host


def active_leases(host: Host):
    return Lease.objects.filter(host=host, released_at__isnull=True)


def free_capacity(host: Host) -> dict:
    reserved = active_leases(host).filter(shared_cpu=False)
    held = reserved.aggregate(cores=Sum("cpu_cores"), mem=Sum("memory_mb"))
    busy = Device.objects.filter(leases__in=active_leases(host)).values_list("pk", flat=True)
    free_devices = host.devices.filter(present=True).exclude(pk__in=list(busy))
    return {
        "cpu_cores": host.cpu_cores - (held["cores"] or 0),
        "memory_mb": host.memory_mb - (held["mem"] or 0),
        "cuda": free_devices.filter(kind="cuda").count(),
        "xpu": free_devices.filter(kind="xpu").count(),
    }


def fits_host(package, host: Host, instances: int = 1) -> str | None:
    """Why `instances` leases of this package can never be held here together, or None."""
    if package.device_count:
        have = host.devices.filter(present=True, kind=package.device_kind).count()
        need = package.device_count * instances
        if have < need:
            return (
                f"'{package.name}' needs {need} {package.device_kind} device(s); "
                f"this host has {have}."
            )
    if instances > host.cpu_cores:
        return f"{instances} instances need a core each; this host has {host.cpu_cores}."
    return None


def lease_size(package, host: Host, share: int = 1) -> tuple[int, int]:
    """(cores, memory MB) a lease of `package` takes on `host`.

    The package names cloud-sized figures; here a CPU package takes at most the whole host,
    and a device package takes the CPU and memory share of the devices it holds (of all the
    host's accelerators), so one-device jobs fill every device whatever the core count.
    """
    cores, memory_mb = package.cpu_cores, package.memory_gb * 1024
    if package.device_count:
        total = host.devices.filter(present=True).count() or 1
        cores = min(cores, host.cpu_cores * package.device_count // total)
        memory_mb = min(memory_mb, host.memory_mb * package.device_count // total)
    cap_cores, cap_memory = host.cpu_cores // share, host.memory_mb // share
    return max(1, min(cores, cap_cores)), max(1, min(memory_mb, cap_memory))


def acquire(
    package, holder_type: str, holder_id, label: str = "", share: int = 1, shared_cpu=False
) -> Lease:
    """Lease what `package` asks for on this host, or raise NoCapacity. `share`: how many
    leases of this package one job takes together (its instances).

    `shared_cpu`: devices are taken exclusively but cores and memory are not reserved. A
    prediction replica idles between requests; reserving cores per replica would cap a
    small appliance at a few replicas and starve training of the cores they never use.
    """
    host = this_host()
    reason = fits_host(package, host, 1 if shared_cpu else share)
    if reason:
        raise NoCapacity(reason)
    cores, memory_mb = lease_size(package, host, share)
    with transaction.atomic():
        devices = []
        if package.device_count:
            busy = Device.objects.filter(leases__in=active_leases(host)).values_list(
                "pk", flat=True
            )
            devices = list(
                host.devices.filter(present=True, kind=package.device_kind)
                .exclude(pk__in=list(busy))
                .order_by("index")[: package.device_count]
            )
            if len(devices) < package.device_count:
                raise NoCapacity(
                    f"{package.device_count} {package.device_kind} device(s) needed, "
                    f"{len(devices)} free."
                )
        free = free_capacity(host)
        if not shared_cpu and free["cpu_cores"] < cores:
            raise NoCapacity(f"{cores} CPU cores needed, {free['cpu_cores']} free.")
        lease = Lease.objects.create(
            host=host,
            cpu_set=",".join(map(str, pick_cpus(host, cores))),
            holder_type=holder_type,
            holder_id=str(holder_id),
            holder_label=label,
            package=package,
            cpu_cores=cores,
            memory_mb=memory_mb,
            shared_cpu=shared_cpu,
        )
        lease.devices.set(devices)
    return lease


def pick_cpus(host: Host, count: int) -> list[int]:
    """The `count` cores of this machine least used by active leases, so runs sharing the
    host are pinned apart (CPU affinity) as long as there are cores enough."""
    usable = sorted(os.sched_getaffinity(0))
    usage = Counter()
    for lease in active_leases(host):
        usage.update(lease.cpus)
    return sorted(sorted(usable, key=lambda cpu: (usage[cpu], cpu))[:count])


def release(lease: Lease) -> None:
    Lease.objects.filter(pk=lease.pk, released_at__isnull=True).update(released_at=timezone.now())


def visible_devices_env(lease: Lease) -> dict:
    """Environment that makes a run see only its leased devices and cores."""
    env = {
        "OMP_NUM_THREADS": str(lease.cpu_cores),
        "MKL_NUM_THREADS": str(lease.cpu_cores),
        "OPENBLAS_NUM_THREADS": str(lease.cpu_cores),
    }
    cuda = [str(d.index) for d in lease.devices.all() if d.kind == "cuda"]
    xpu = [str(d.index) for d in lease.devices.all() if d.kind == "xpu"]
    env["CUDA_VISIBLE_DEVICES"] = ",".join(cuda)  # empty hides every GPU from a CPU run
    if xpu:
        env["XPU_VISIBLE_DEVICES"] = ",".join(xpu)
        env["FLAGS_selected_xpus"] = ",".join(xpu)
    return env
