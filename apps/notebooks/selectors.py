"""Reads of notebook instances, scoped to the requesting user (another project's instance
is a 404, never a 403)."""

from django.http import Http404

from apps.notebooks.models import Notebook


def notebooks_for(user, project=None):
    notebooks = Notebook.objects.filter(project__memberships__user=user).select_related(
        "project", "package"
    )
    if project is not None:
        notebooks = notebooks.filter(project=project)
    return notebooks


def get_notebook(user, pk) -> Notebook:
    try:
        return notebooks_for(user).get(pk=int(pk))
    except (Notebook.DoesNotExist, TypeError, ValueError):
        raise Http404("No such notebook instance.") from None
