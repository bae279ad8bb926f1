import shutil
from pathlib import Path

from django.db.models.signals import post_delete, pre_delete
from django.dispatch import Signal, receiver

from apps.jobs.models import ACTIVE, Job
from apps.projects.services import project_purging

# Sent once when a job ends (sender=Job, job=<the Job, status and reason set>), from
# whichever process noticed the end (the scheduler loop, or a request terminating a queued
# job). Modules whose work runs as jobs (data set conversions) finish their records here.
job_finished = Signal()


@receiver(pre_delete, sender=Job)
def note_run_directories(sender, instance, **kwargs):
    """Where the job's runs lived, before they are deleted with it (a run that took a warm
    start lives in the warm start's folder, workers.warm_starts)."""
    instance.run_dirs_to_remove = [d for d in instance.runs.values_list("run_dir", flat=True) if d]


@receiver(post_delete, sender=Job)
def remove_run_directories(sender, instance, **kwargs):
    """A deleted job's workspaces go too (its output and logs stay in storage)."""
    from workers.scheduler import runs_root

    shutil.rmtree(runs_root() / instance.job_id, ignore_errors=True)
    root = runs_root().resolve()
    for run_dir in getattr(instance, "run_dirs_to_remove", ()):
        if root in Path(run_dir).resolve().parents:
            shutil.rmtree(run_dir, ignore_errors=True)


@receiver(project_purging)
def stop_the_projects_runs(sender, project, **kwargs):
    """A deleted project's live runs are killed before its rows go."""
    from workers import scheduler

    for job in Job.objects.filter(project=project, status__in=ACTIVE):
        scheduler.kill_runs(job)
