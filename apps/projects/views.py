from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST, require_safe

from apps.projects import counters, selectors, services
from apps.projects.models import Membership, Project, Role
from apps.projects.web import choose_project, report_errors


@login_required
@require_safe
def project_list(request):
    projects = list(selectors.projects_for(request.user))
    roles = dict(Membership.objects.filter(user=request.user).values_list("project_id", "role"))
    counts = counters.counts_for(p.pk for p in projects)
    rows = [{"project": p, "role": roles.get(p.pk), "counts": counts[p.pk]} for p in projects]
    return render(request, "projects/list.html", {"rows": rows})


@login_required
@require_POST
def project_create(request):
    with report_errors(request):
        project = services.create_project(request.user, request.POST.get("name", ""))
        choose_project(request, project)
        messages.success(request, f"Project '{project.name}' created.")
    return redirect("projects:list")


@login_required
@require_POST
def project_switch(request, project_id):
    project = selectors.get_project(request.user, project_id)
    choose_project(request, project)
    messages.success(request, f"Switched to project '{project.name}'.")
    target = request.POST.get("next", "")
    # A path of this site only: never off to another site, and never a bare word, which
    # redirect() would try to reverse as a URL name.
    if not target.startswith("/") or not url_has_allowed_host_and_scheme(
        target, {request.get_host()}
    ):
        target = "projects:list"
    return redirect(target)


@login_required
@require_safe
def project_settings(request, project_id):
    membership = selectors.membership_for(request.user, project_id)
    project = membership.project
    members = Membership.objects.filter(project=project).select_related("user")
    return render(
        request,
        "projects/settings.html",
        {
            "project": project,
            "membership": membership,
            "members": members,
            "roles": Role.choices,
            "terminal_choices": Project._meta.get_field("notebook_terminal").choices,
        },
    )


@login_required
@require_POST
def project_notebook_terminal(request, project_id):
    project = selectors.get_project(request.user, project_id)
    with report_errors(request):
        services.set_notebook_terminal(request.user, project, request.POST.get("value", ""))
        messages.success(
            request, "Notebook terminal setting saved (applies at an instance's start)."
        )
    return redirect("projects:settings", project_id=project.pk)


@login_required
@require_POST
def project_rename(request, project_id):
    project = selectors.get_project(request.user, project_id)
    with report_errors(request):
        services.rename_project(request.user, project, request.POST.get("name", ""))
        messages.success(request, f"Project renamed to '{project.name}'.")
    return redirect("projects:settings", project_id=project.pk)


@login_required
@require_POST
def project_delete(request, project_id):
    project = selectors.get_project(request.user, project_id)
    with report_errors(request):
        name = project.name
        services.delete_project(request.user, project, request.POST.get("confirm_name", ""))
        if request.session.get("project_id") == project.pk:
            request.session.pop("project_id")
        messages.success(request, f"Project '{name}' is being deleted with everything it owns.")
        return redirect("projects:list")
    return redirect("projects:settings", project_id=project.pk)


@login_required
@require_POST
def member_add(request, project_id):
    project = selectors.get_project(request.user, project_id)
    services.require_role(request.user, project, Role.OWNER)
    username = request.POST.get("username", "").strip()
    user = get_user_model().objects.filter(username=username).first()
    if user is None:
        messages.error(request, f"No user named '{username}'.")
    else:
        with report_errors(request):
            services.add_member(request.user, project, user, request.POST.get("role", ""))
            messages.success(request, f"{username} added as {request.POST.get('role')}.")
    return redirect("projects:settings", project_id=project.pk)


def _membership(request, project_id, membership_id):
    project = selectors.get_project(request.user, project_id)
    return get_object_or_404(Membership, pk=membership_id, project=project)


@login_required
@require_POST
def member_role(request, project_id, membership_id):
    membership = _membership(request, project_id, membership_id)
    with report_errors(request):
        services.change_role(request.user, membership, request.POST.get("role", ""))
        messages.success(request, f"{membership.user.username} is now {membership.role}.")
    return redirect("projects:settings", project_id=project_id)


@login_required
@require_POST
def member_remove(request, project_id, membership_id):
    membership = _membership(request, project_id, membership_id)
    with report_errors(request):
        services.remove_member(request.user, membership)
        messages.success(request, f"{membership.user.username} removed.")
    return redirect("projects:settings", project_id=project_id)


@login_required
def api_token(request):
    """The user's API token for the SDK and scripts: shown, created or regenerated."""
    from rest_framework.authtoken.models import Token

    if request.method == "POST":
        Token.objects.filter(user=request.user).delete()
        Token.objects.create(user=request.user)
        messages.success(request, "A new API token was created; the old one no longer works.")
        return redirect("projects:api-token")
    token = Token.objects.filter(user=request.user).first()
    return render(request, "projects/api_token.html", {"token": token})
