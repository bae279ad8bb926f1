"""Running/total job counts for the project list."""

from django.db.models import Count, Q

from apps.jobs import algorithms
from apps.jobs.models import Job, JobStatus
from apps.projects import counters


def job_counts(project_ids):
    rows = (
        Job.objects.filter(project_id__in=project_ids)
        .exclude(kind__in=algorithms.internal_kinds())
        .values("project_id")
        .annotate(total=Count("id"), running=Count("id", filter=Q(status=JobStatus.RUNNING)))
    )
    return {row["project_id"]: (row["running"], row["total"]) for row in rows}


counters.register("jobs", job_counts)
