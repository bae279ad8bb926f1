from django.contrib import admin

from apps.visual.models import Experiment, ExperimentRun, NodeRun


class ExperimentRunInline(admin.TabularInline):
    model = ExperimentRun
    extra = 0
    fields = ["number", "mode", "target", "status", "reason", "cleared", "started_at", "ended_at"]
    readonly_fields = fields


@admin.register(Experiment)
class ExperimentAdmin(admin.ModelAdmin):
    list_display = ["name", "project", "storage_path", "updated_at"]
    search_fields = ["name"]
    inlines = [ExperimentRunInline]


class NodeRunInline(admin.TabularInline):
    model = NodeRun
    extra = 0
    fields = ["node_id", "component", "status", "forced", "cached_from", "job", "error"]
    readonly_fields = fields


@admin.register(ExperimentRun)
class ExperimentRunAdmin(admin.ModelAdmin):
    list_display = ["experiment", "number", "mode", "status", "started_at", "ended_at"]
    list_filter = ["status", "mode"]
    inlines = [NodeRunInline]


@admin.register(NodeRun)
class NodeRunAdmin(admin.ModelAdmin):
    list_display = ["run", "node_id", "component", "status", "job", "ended_at"]
    list_filter = ["status", "component"]
    search_fields = ["node_id", "component"]
