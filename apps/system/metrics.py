"""/metrics in the Prometheus text format: health of the parts and counts of what exists."""

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily

from apps.system import health


class ApplianceCollector:
    def collect(self):
        from apps.projects.models import Project
        from apps.storage.models import Bucket
        from workers.models import Device, Lease

        up = GaugeMetricFamily("bml_component_up", "1 when the part answers", labels=["component"])
        up.add_metric(["database"], float(health.check_database()["ok"]))
        up.add_metric(["queue"], float(health.check_queue()["ok"]))
        up.add_metric(["object_store"], float(health.check_object_store()["ok"]))
        yield up
        yield GaugeMetricFamily("bml_projects", "Projects", value=Project.objects.count())
        yield GaugeMetricFamily("bml_buckets", "Buckets", value=Bucket.objects.count())
        devices = GaugeMetricFamily("bml_devices", "Present devices", labels=["kind"])
        leased = GaugeMetricFamily("bml_devices_leased", "Devices held by a lease", labels=["kind"])
        for kind in ("cuda", "xpu"):
            devices.add_metric([kind], Device.objects.filter(kind=kind, present=True).count())
            leased.add_metric(
                [kind],
                Device.objects.filter(kind=kind, leases__released_at__isnull=True)
                .distinct()
                .count(),
            )
        yield devices
        yield leased
        yield GaugeMetricFamily(
            "bml_leases_active",
            "Active leases",
            value=Lease.objects.filter(released_at=None).count(),
        )


def render() -> bytes:
    registry = CollectorRegistry()
    registry.register(ApplianceCollector())
    return generate_latest(registry)
