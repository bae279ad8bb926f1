from django.contrib import admin

from apps.billing.models import ResourcePackage


@admin.register(ResourcePackage)
class ResourcePackageAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "module",
        "cpu_cores",
        "memory_gb",
        "device_kind",
        "device_count",
        "price_per_minute",
        "enabled",
    ]
    list_filter = ["module", "device_kind", "enabled"]
