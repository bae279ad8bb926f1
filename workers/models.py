from django.db import models


class DeviceKind(models.TextChoices):
    CUDA = "cuda", "CUDA GPU"
    XPU = "xpu", "Kunlun XPU"


class Host(models.Model):
    """A machine that runs work. One today; the field is there so scale-out is the same design."""

    name = models.CharField(max_length=255, unique=True)
    cpu_cores = models.PositiveIntegerField()
    memory_mb = models.PositiveBigIntegerField()
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self):
        return self.name


class Device(models.Model):
    host = models.ForeignKey(Host, on_delete=models.CASCADE, related_name="devices")
    kind = models.CharField(max_length=8, choices=DeviceKind.choices)
    index = models.PositiveIntegerField(help_text="Index the runtime uses (CUDA_VISIBLE_DEVICES).")
    name = models.CharField(max_length=128)
    memory_mb = models.PositiveBigIntegerField(default=0)
    declared = models.BooleanField(default=False, help_text="From BML_DEVICES, not probed.")
    present = models.BooleanField(default=True)

    class Meta:
        ordering = ["host", "kind", "index"]
        constraints = [
            models.UniqueConstraint(fields=["host", "kind", "index"], name="device_unique_index")
        ]

    def __str__(self):
        return f"{self.kind}:{self.index} ({self.name}) on {self.host}"


class Lease(models.Model):
    """Devices, cores and memory held by one run (job instance, notebook, replica)."""

    host = models.ForeignKey(Host, on_delete=models.CASCADE, related_name="leases")
    holder_type = models.CharField(max_length=32)
    holder_id = models.CharField(max_length=64)
    holder_label = models.CharField(max_length=255, blank=True)
    package = models.ForeignKey(
        "billing.ResourcePackage", on_delete=models.PROTECT, related_name="leases"
    )
    cpu_cores = models.PositiveIntegerField()
    memory_mb = models.PositiveBigIntegerField()
    cpu_set = models.CharField(
        max_length=1024, blank=True, help_text="Cores the holder is pinned to, e.g. '0,1'."
    )
    devices = models.ManyToManyField(Device, blank=True, related_name="leases")
    shared_cpu = models.BooleanField(
        default=False,
        help_text="Cores shared with other holders (a prediction replica): not reserved.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    released_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["holder_type", "holder_id"])]

    def __str__(self):
        return f"{self.holder_type}:{self.holder_id} on {self.host}"

    @property
    def active(self) -> bool:
        return self.released_at is None

    @property
    def cpus(self) -> list[int]:
        return [int(c) for c in self.cpu_set.split(",") if c]
