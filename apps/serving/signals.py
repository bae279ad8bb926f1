from django.db.models import Count, Q
from django.db.models.signals import post_delete
from django.dispatch import receiver

from apps.projects import counters
from apps.projects.services import project_purging
from apps.serving import replicas
from apps.serving.models import Desired, Service
from apps.warehouse.models import ModelVersion


@receiver(project_purging)
def stop_the_projects_services(sender, project, **kwargs):
    """A deleted project's replicas are killed before its rows go."""
    for replica in replicas.Replica.objects.filter(version__service__project=project):
        replicas.kill_replica(replica)


@receiver(post_delete, sender=ModelVersion)
def forget_cached_model_files(sender, instance, **kwargs):
    replicas.forget_model_files(instance)


def service_counts(project_ids):
    rows = (
        Service.objects.filter(project_id__in=project_ids)
        .values("project_id")
        .annotate(total=Count("id"), running=Count("id", filter=Q(desired=Desired.RUNNING)))
    )
    return {row["project_id"]: (row["running"], row["total"]) for row in rows}


counters.register("services", service_counts)
