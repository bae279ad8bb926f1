from django.db import models


class Module(models.TextChoices):
    """Where a package may be used, as the spec's price table groups them."""

    WORKAREA = "workarea", "Workarea (notebooks)"
    TRAIN = "train", "Training (jobs)"
    PREDICTION = "prediction", "Prediction (services)"


class DeviceKind(models.TextChoices):
    """What accelerator a package leases (workers.models.DeviceKind has no "cpu")."""

    CPU = "cpu", "CPU only"
    CUDA = "cuda", "CUDA GPU"
    XPU = "xpu", "Kunlun XPU"


class ResourcePackage(models.Model):
    """A row of the spec's price table, mapped onto this machine's cores, memory and devices.

    Cores and memory are what the package names; a lease takes at most what the host has, so
    a "48 core" package still runs on a smaller appliance.
    """

    name = models.CharField(max_length=128)
    module = models.CharField(max_length=16, choices=Module.choices)
    cpu_cores = models.PositiveIntegerField()
    memory_gb = models.PositiveIntegerField()
    device_kind = models.CharField(
        max_length=8,
        choices=DeviceKind.choices,
        default=DeviceKind.CPU,
    )
    device_count = models.PositiveIntegerField(default=0)
    card_model = models.CharField(max_length=64, blank=True, help_text="e.g. V100, P4, K40")
    price_per_minute = models.DecimalField(max_digits=8, decimal_places=3)
    free_hours_per_month = models.PositiveIntegerField(default=0)
    enabled = models.BooleanField(default=True)

    class Meta:
        ordering = ["module", "device_kind", "device_count", "cpu_cores"]
        constraints = [
            models.UniqueConstraint(fields=["module", "name"], name="package_unique_per_module")
        ]

    def __str__(self):
        return f"{self.name} ({self.module})"

    @property
    def price_per_hour(self):
        return self.price_per_minute * 60
