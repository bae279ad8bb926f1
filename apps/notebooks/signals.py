from django.db.models import Count, Q
from django.db.models.signals import post_delete
from django.dispatch import receiver

from apps.notebooks import servers, workspace
from apps.notebooks.models import Desired, Notebook
from apps.projects import counters
from apps.projects.services import project_purging


@receiver(project_purging)
def stop_the_projects_notebooks(sender, project, **kwargs):
    """A deleted project's Jupyter servers are killed before its rows go."""
    for notebook in Notebook.objects.filter(project=project).select_related("lease"):
        servers.kill(notebook)


@receiver(post_delete, sender=Notebook)
def remove_instance_directory(sender, instance, **kwargs):
    servers.kill(instance)
    workspace.remove(instance)


def notebook_counts(project_ids):
    rows = (
        Notebook.objects.filter(project_id__in=project_ids)
        .values("project_id")
        .annotate(total=Count("id"), running=Count("id", filter=Q(desired=Desired.RUNNING)))
    )
    return {row["project_id"]: (row["running"], row["total"]) for row in rows}


counters.register("notebooks", notebook_counts)
