from django.core.management.base import BaseCommand

from workers.devices import sync_inventory


class Command(BaseCommand):
    help = "Detect this host's CUDA GPUs and Kunlun XPUs (or read BML_DEVICES) and record them."

    def handle(self, *args, **options):
        host = sync_inventory(probe=True)
        devices = host.devices.filter(present=True)
        self.stdout.write(
            f"{host.name}: {host.cpu_cores} cores, {host.memory_mb} MB, "
            f"{devices.filter(kind='cuda').count()} CUDA GPU(s), "
            f"{devices.filter(kind='xpu').count()} Kunlun XPU(s)"
        )
