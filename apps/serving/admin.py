from django.contrib import admin

from apps.serving.models import QualityBucket, Replica, Revision, Service, ServiceVersion


class ServiceVersionInline(admin.TabularInline):
    model = ServiceVersion
    extra = 0
    fields = ["number", "model_version", "proportion", "replicas", "package", "status"]
    readonly_fields = fields


@admin.register(Service)
class ServiceAdmin(admin.ModelAdmin):
    list_display = ["name", "project", "endpoint", "desired", "status", "created_at"]
    list_filter = ["status", "desired"]
    search_fields = ["name", "endpoint"]
    readonly_fields = ["access_key"]
    inlines = [ServiceVersionInline]


@admin.register(ServiceVersion)
class ServiceVersionAdmin(admin.ModelAdmin):
    list_display = ["service", "number", "model_version", "proportion", "replicas", "status"]
    list_filter = ["status"]


@admin.register(Replica)
class ReplicaAdmin(admin.ModelAdmin):
    list_display = ["version", "index", "status", "pid", "port", "restarts", "started_at"]
    list_filter = ["status"]


@admin.register(Revision)
class RevisionAdmin(admin.ModelAdmin):
    list_display = ["service", "number", "note", "created_by", "created_at"]


@admin.register(QualityBucket)
class QualityBucketAdmin(admin.ModelAdmin):
    list_display = ["service", "version_number", "start", "requests", "status_2xx"]
    list_filter = ["version_number"]
