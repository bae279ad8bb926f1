"""Reads of prediction services, scoped to the requesting user (another project's service
is a 404, never a 403)."""

from django.http import Http404

from apps.projects.selectors import may_write
from apps.serving.models import Replica, Revision, Service, ServiceVersion


def services_for(user, project=None):
    services = Service.objects.filter(project__memberships__user=user).select_related("project")
    if project is not None:
        services = services.filter(project=project)
    return services


def get_service(user, pk) -> Service:
    try:
        return services_for(user).get(pk=int(pk))
    except (Service.DoesNotExist, TypeError, ValueError):
        raise Http404("No such prediction service.") from None


def versions_of(service: Service):
    return service.versions.select_related("model_version__model", "package").prefetch_related(
        "runs"
    )


def get_version(service: Service, number) -> ServiceVersion:
    try:
        return versions_of(service).get(number=int(number))
    except (ServiceVersion.DoesNotExist, TypeError, ValueError):
        raise Http404("No such version.") from None


def get_replica(version: ServiceVersion, index) -> Replica:
    try:
        return version.runs.select_related("lease__package").get(index=int(index))
    except (Replica.DoesNotExist, TypeError, ValueError):
        raise Http404("No such replica.") from None


def get_revision(service: Service, number) -> Revision:
    try:
        return service.revisions.get(number=int(number))
    except (Revision.DoesNotExist, TypeError, ValueError):
        raise Http404("No such revision.") from None


def user_may_write(user, service: Service) -> bool:
    return may_write(user, service.project_id)


def services_using(user, model_version):
    """The user's services a warehouse version is deployed in (its details page lists them;
    a common model's version is used by other projects' services too)."""
    return (
        services_for(user).filter(versions__model_version=model_version).distinct().order_by("name")
    )
