from apps.projects.selectors import current_project, projects_for


def project_switcher(request):
    if not getattr(request, "user", None) or not request.user.is_authenticated:
        return {}
    return {
        "current_project": current_project(request),
        "switchable_projects": projects_for(request.user),
    }
