from decimal import Decimal

from apps.billing.catalog import PACKAGES
from apps.billing.models import ResourcePackage


def ensure_catalog() -> int:
    """Create the spec's packages that are missing; never overwrite an admin's edits."""
    created = 0
    for module, name, cores, mem, kind, count, card, price, free in PACKAGES:
        _, was_created = ResourcePackage.objects.get_or_create(
            module=module,
            name=name,
            defaults={
                "cpu_cores": cores,
                "memory_gb": mem,
                "device_kind": kind,
                "device_count": count,
                "card_model": card,
                "price_per_minute": Decimal(price),
                "free_hours_per_month": free,
            },
        )
        created += was_created
    return created
