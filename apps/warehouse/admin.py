from django.contrib import admin

from apps.warehouse.models import Model, ModelVersion


class ModelVersionInline(admin.TabularInline):
    model = ModelVersion
    extra = 0
    fields = ["version", "model_type", "source", "path", "size_bytes", "created_at"]
    readonly_fields = fields


@admin.register(Model)
class ModelAdmin(admin.ModelAdmin):
    list_display = ["name", "project", "is_common", "updated_at"]
    list_filter = ["is_common"]
    search_fields = ["name"]
    inlines = [ModelVersionInline]


@admin.register(ModelVersion)
class ModelVersionAdmin(admin.ModelAdmin):
    list_display = ["model", "version", "model_type", "source", "created_at"]
    list_filter = ["model_type", "source"]
