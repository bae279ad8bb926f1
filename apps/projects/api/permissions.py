from rest_framework.permissions import SAFE_METHODS, BasePermission

from apps.projects.models import Project, Role
from apps.projects.services import require_role


def project_of(obj) -> Project:
    return obj if isinstance(obj, Project) else obj.project


class ProjectRolePermission(BasePermission):
    """Writes to anything a project owns need at least the developer role in it.

    Checked on the object before any input is validated, so a viewer is refused (403) the
    same way whatever body they send. Owner-only actions are checked again by the services.
    """

    def has_object_permission(self, request, view, obj):
        if request.method not in SAFE_METHODS:
            require_role(request.user, project_of(obj), Role.DEVELOPER)
        return True
