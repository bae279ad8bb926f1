"""Q cluster entry points of the projects app."""

from apps.projects import services


def purge_project(project_id: int) -> None:
    services.purge_project(project_id)
