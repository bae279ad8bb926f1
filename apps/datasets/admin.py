from django.contrib import admin

from apps.datasets.models import Dataset, DatasetVersion


class DatasetVersionInline(admin.TabularInline):
    model = DatasetVersion
    extra = 0
    fields = ["number", "mode", "source", "status", "rows", "reason", "job", "created_at"]
    readonly_fields = fields


@admin.register(Dataset)
class DatasetAdmin(admin.ModelAdmin):
    list_display = ["name", "project", "is_public", "storage_path", "updated_at"]
    list_filter = ["is_public", "data_type"]
    search_fields = ["name"]
    inlines = [DatasetVersionInline]


@admin.register(DatasetVersion)
class DatasetVersionAdmin(admin.ModelAdmin):
    list_display = ["dataset", "number", "mode", "status", "rows", "created_at"]
    list_filter = ["status", "mode"]
