from django.dispatch import receiver

from apps.jobs.signals import job_finished


@receiver(job_finished)
def finish_conversion(sender, job, **kwargs):
    """A data set upload's conversion job ended: record the new version (or its failure)."""
    from apps.datasets import conversion, services

    if job.kind == conversion.KIND:
        services.finish_version(job)
