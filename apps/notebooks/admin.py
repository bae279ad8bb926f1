from django.contrib import admin

from apps.notebooks.models import Notebook


@admin.register(Notebook)
class NotebookAdmin(admin.ModelAdmin):
    list_display = ["name", "project", "package", "desired", "status", "pid", "port", "created_at"]
    list_filter = ["status", "desired"]
    search_fields = ["name"]
    exclude = ["token"]  # the proxy's secret to the server: never shown
    readonly_fields = ["pid", "port", "host", "lease", "restarts", "billed_seconds"]
