from django.dispatch import receiver

from apps.jobs.signals import job_finished


@receiver(job_finished)
def node_finished(sender, job, **kwargs):
    """A visual modeling node's job ended: record its outputs and start what it unblocks."""
    from apps.visual import execution, node_jobs

    if job.kind == node_jobs.KIND:
        execution.node_job_finished(job)
