"""Reads of the warehouse, scoped to the requesting user; common models are readable by all.
Lists are querysets the API pages through (a model list or a version list of thousands
reads one page)."""

from django.db.models import Count, Q
from django.http import Http404

from apps.projects.selectors import may_write
from apps.warehouse.models import Model, ModelVersion


def models_for(user, project=None):
    models = Model.objects.filter(project__memberships__user=user, is_common=False)
    if project is not None:
        models = models.filter(project=project)
    # Meta.ordering is dropped from GROUP BY queries: the pages need it said again.
    return models.annotate(version_count=Count("versions", distinct=True)).order_by(
        "-updated_at", "-pk"
    )


def common_models():
    return (
        Model.objects.filter(is_common=True)
        .annotate(version_count=Count("versions"))
        .order_by("-updated_at", "-pk")
    )


def get_model(user, pk) -> Model:
    try:
        pk = int(pk)
    except (TypeError, ValueError):
        raise Http404("No such model.") from None
    model = (
        Model.objects.select_related("project")
        .filter(Q(is_common=True) | Q(project__memberships__user=user), pk=pk)
        .first()
    )
    if model is None:
        raise Http404("No such model.")
    return model


def get_version(model: Model, version) -> ModelVersion:
    try:
        return model.versions.select_related("source_job").get(version=int(version))
    except (ModelVersion.DoesNotExist, TypeError, ValueError):
        raise Http404("No such version.") from None


def user_may_write(user, model: Model) -> bool:
    if model.is_common:
        return False
    return may_write(user, model.project_id)
