from django.dispatch import receiver

from apps.projects.services import project_purging
from apps.storage.services import purge_project_storage


@receiver(project_purging)
def remove_project_objects(sender, project, **kwargs):
    purge_project_storage(project)
