import shutil

from django.db.models.signals import post_delete
from django.dispatch import receiver

from apps.jobs.models import ACTIVE, Job
from apps.projects.services import project_purging


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
