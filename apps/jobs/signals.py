import shutil

from django.db.models.signals import post_delete
from django.dispatch import Signal, receiver

from apps.jobs.models import ACTIVE, Job
from apps.projects.services import project_purging

# Sent once when a job ends (sender=Job, job=<the Job, status and reason set>), from
# whichever process noticed the end (the scheduler loop, or a request terminating a queued
# job). Modules whose work runs as jobs (data set conversions) finish their records here.
job_finished = Signal()


@receiver(post_delete, sender=Job)
def remove_run_directories(sender, instance, **kwargs):
    """A deleted job's workspaces go too (its output and logs stay in storage)."""
    from workers.scheduler import runs_root

    shutil.rmtree(runs_root() / instance.job_id, ignore_errors=True)


@receiver(project_purging)
def stop_the_projects_runs(sender, project, **kwargs):
    """A deleted project's live runs are killed before its rows go."""
    from workers import scheduler

    for job in Job.objects.filter(project=project, status__in=ACTIVE):
        scheduler.kill_runs(job)
