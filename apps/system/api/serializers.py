from rest_framework import serializers

from apps.billing.models import ResourcePackage
from workers.models import Device


class ResourcePackageSerializer(serializers.ModelSerializer):
    class Meta:
        model = ResourcePackage
        fields = [
            "id",
            "name",
            "module",
            "cpu_cores",
            "memory_gb",
            "device_kind",
            "device_count",
            "card_model",
            "price_per_minute",
            "free_hours_per_month",
        ]


class DeviceSerializer(serializers.ModelSerializer):
    host = serializers.CharField(source="host.name")
    held_by = serializers.SerializerMethodField()

    class Meta:
        model = Device
        fields = [
            "id",
            "host",
            "kind",
            "index",
            "name",
            "memory_mb",
            "declared",
            "present",
            "held_by",
        ]

    def get_held_by(self, device) -> str | None:
        lease = device.leases.filter(released_at__isnull=True).first()
        return f"{lease.holder_type}:{lease.holder_id}" if lease else None
