"""/metrics in the Prometheus text format: health of the parts and counts of what exists."""

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

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
        yield from serving_metrics()
        yield GaugeMetricFamily(
            "bml_leases_active",
            "Active leases",
            value=Lease.objects.filter(released_at=None).count(),
        )


def serving_metrics():
    """The gateway's quality figures of every service, as counters since it was created."""
    from django.db.models import Count, Sum

    from apps.serving.models import QualityBucket, Replica

    labels = ["service", "version"]
    requests = CounterMetricFamily(
        "bml_serving_requests", "Prediction requests", labels=[*labels, "code"]
    )
    traffic = CounterMetricFamily(
        "bml_serving_traffic_bytes", "Request and response bytes", labels=[*labels, "direction"]
    )
    handling = CounterMetricFamily(
        "bml_serving_handle_seconds", "Time spent answering requests", labels=labels
    )
    sums = ("status_2xx", "status_3xx", "status_4xx", "status_5xx", "bytes_in", "bytes_out")
    rows = QualityBucket.objects.values("service__endpoint", "version_number").annotate(
        handle_ms=Sum("handle_ms"), **{name: Sum(name) for name in sums}
    )
    for row in rows:
        key = [row["service__endpoint"], str(row["version_number"])]
        for code in ("2xx", "3xx", "4xx", "5xx"):
            requests.add_metric([*key, code], row[f"status_{code}"])
        traffic.add_metric([*key, "in"], row["bytes_in"])
        traffic.add_metric([*key, "out"], row["bytes_out"])
        handling.add_metric(key, row["handle_ms"] / 1000)
    replicas = GaugeMetricFamily(
        "bml_serving_replicas", "Replicas of a service version", labels=[*labels, "status"]
    )
    for row in Replica.objects.values(
        "version__service__endpoint", "version__number", "status"
    ).annotate(n=Count("id")):
        replicas.add_metric(
            [row["version__service__endpoint"], str(row["version__number"]), row["status"]],
            row["n"],
        )
    yield from (requests, traffic, handling, replicas)


def render() -> bytes:
    registry = CollectorRegistry()
    registry.register(ApplianceCollector())
    return generate_latest(registry)
