from django.contrib import admin

from workers.models import Device, Host, Lease


@admin.register(Host)
class HostAdmin(admin.ModelAdmin):
    list_display = ["name", "cpu_cores", "memory_mb", "updated_at"]


@admin.register(Device)
class DeviceAdmin(admin.ModelAdmin):
    list_display = ["host", "kind", "index", "name", "memory_mb", "declared", "present"]
    list_filter = ["kind", "present"]


@admin.register(Lease)
class LeaseAdmin(admin.ModelAdmin):
    list_display = [
        "holder_type",
        "holder_id",
        "host",
        "package",
        "cpu_cores",
        "created_at",
        "released_at",
    ]
    list_filter = ["holder_type"]
