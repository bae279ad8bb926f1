from django.contrib import admin

from apps.jobs.models import Job, JobInstance


class JobInstanceInline(admin.TabularInline):
    model = JobInstance
    extra = 0
    readonly_fields = [
        "index",
        "status",
        "reason",
        "exit_code",
        "host",
        "run_dir",
        "lease",
        "started_at",
        "ended_at",
    ]


@admin.register(Job)
class JobAdmin(admin.ModelAdmin):
    list_display = ["job_id", "name", "project", "kind", "algorithm", "status", "created_at"]
    list_filter = ["status", "kind"]
    search_fields = ["job_id", "name"]
    inlines = [JobInstanceInline]


@admin.register(JobInstance)
class JobInstanceAdmin(admin.ModelAdmin):
    list_display = ["job", "index", "status", "host", "started_at", "ended_at"]
    list_filter = ["status"]
