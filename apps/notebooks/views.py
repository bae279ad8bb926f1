"""Console pages of notebook instances (the spec's "Model training -> Notebook"): the list,
the create form, an instance's details (status, Open Jupyter, disk, sync, billing, its
notebooks with "Submit as job", the server log). Writes go through apps.notebooks.services."""

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from apps.billing.models import Module, ResourcePackage
from apps.notebooks import convert, selectors, servers, services, workspace
from apps.projects.models import Role
from apps.projects.selectors import current_project, may_write
from apps.projects.services import require_role
from apps.projects.web import report_errors
from apps.serving.forms import errors_by_field

CREATE_FIELDS = ("name", "package", "disk_gb", "storage_path", "auto_stop_minutes")
# The job form picks this draft up (apps.jobs.views.job_create, ?draft=notebook).
JOB_DRAFT_SESSION_KEY = "job_code_draft"


def writable_notebook(request, pk):
    """The instance, if the user may change it: 404 for strangers, 403 for viewers."""
    notebook = selectors.get_notebook(request.user, pk)
    require_role(request.user, notebook.project, Role.DEVELOPER)
    return notebook


@login_required
@require_safe
def notebook_list(request):
    project = current_project(request)
    notebooks = selectors.notebooks_for(request.user, project) if project else []
    return render(
        request,
        "notebooks/list.html",
        {
            "project": project,
            "notebooks": notebooks,
            "may_write": may_write(request.user, project),
        },
    )


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def notebook_create(request):
    project = current_project(request)
    if project is not None:  # a viewer is refused the form, not only its submission
        require_role(request.user, project, Role.DEVELOPER)
    packages = ResourcePackage.objects.filter(module=Module.WORKAREA, enabled=True)
    form = {
        "package": packages[0].pk if packages else "",
        "disk_gb": services.DISK_SIZES_GB[0],
        "auto_stop_minutes": settings.NOTEBOOK_AUTO_STOP_MINUTES,
    }
    errors: dict[str, list[str]] = {}
    if request.method == "POST":
        form = {name: request.POST.get(name, "").strip() for name in CREATE_FIELDS}
        if project is None:
            errors = {"general": ["Create a project first: instances belong to a project."]}
        else:
            try:
                notebook = services.create_notebook(
                    request.user,
                    project,
                    name=form["name"],
                    package_id=form["package"] or None,
                    disk_gb=form["disk_gb"],
                    storage_path=form["storage_path"],
                    auto_stop_minutes=form["auto_stop_minutes"],
                )
                messages.success(request, f"Instance {notebook.name} created: starting.")
                return redirect("notebooks:detail", pk=notebook.pk)
            except ValidationError as exc:
                errors = errors_by_field(exc, CREATE_FIELDS)
    return render(
        request,
        "notebooks/create.html",
        {
            "project": project,
            "form": form,
            "errors": errors,
            "packages": packages,
            "disk_sizes": services.DISK_SIZES_GB,
        },
    )


@login_required
@require_safe
def notebook_detail(request, pk):
    notebook = selectors.get_notebook(request.user, pk)
    return render(
        request,
        "notebooks/detail.html",
        {
            "notebook": notebook,
            "project": notebook.project,
            "may_write": may_write(request.user, notebook.project),
            "files": workspace.notebook_files(notebook),
            "log": servers.log_tail(notebook, 16 * 1024),
            "disk_percent": min(
                100, round(100 * notebook.disk_used_bytes / notebook.disk_quota_bytes, 1)
            ),
        },
    )


@login_required
@require_safe
def notebook_status(request, pk):
    """What the detail and list pages poll while an instance changes state."""
    notebook = selectors.get_notebook(request.user, pk)
    return JsonResponse(
        {
            "status": notebook.status,
            "label": notebook.get_status_display(),
            "reason": notebook.reason,
            "open": notebook.is_open,
            "lab_url": notebook.lab_url,
            "desired": notebook.desired,
        }
    )


def _back(request, notebook):
    target = request.POST.get("next")
    return redirect(target if target == reverse("notebooks:list") else notebook_url(notebook))


def notebook_url(notebook) -> str:
    return reverse("notebooks:detail", args=[notebook.pk])


@login_required
@require_POST
def notebook_start(request, pk):
    notebook = writable_notebook(request, pk)
    with report_errors(request):
        services.start_notebook(request.user, notebook)
        messages.success(request, f"Instance {notebook.name} is starting.")
    return _back(request, notebook)


@login_required
@require_POST
def notebook_stop(request, pk):
    notebook = writable_notebook(request, pk)
    with report_errors(request):
        services.stop_notebook(request.user, notebook)
        messages.success(
            request, f"Instance {notebook.name} is stopping: its files and packages are kept."
        )
    return _back(request, notebook)


@login_required
@require_POST
def notebook_delete(request, pk):
    notebook = writable_notebook(request, pk)
    name = notebook.name
    services.delete_notebook(request.user, notebook)
    messages.success(request, f"Instance {name} deleted.")
    return redirect("notebooks:list")


@login_required
@require_POST
def notebook_settings(request, pk):
    notebook = writable_notebook(request, pk)
    changes = {}
    if "auto_stop_minutes" in request.POST:
        changes["auto_stop_minutes"] = request.POST["auto_stop_minutes"].strip()
    if "storage_path" in request.POST:
        changes["storage_path"] = request.POST["storage_path"].strip()
    with report_errors(request):
        services.update_notebook(request.user, notebook, **changes)
        messages.success(request, "Settings saved.")
    return redirect(notebook_url(notebook))


@login_required
@require_POST
def notebook_submit_job(request, pk):
    """The spec's FAQ "convert the notebook into a .py file and submit a training job", in
    one click: the job form opens with the converted code."""
    notebook = writable_notebook(request, pk)
    path = request.POST.get("path", "")
    try:
        code = convert.to_job_code(notebook, path)
    except ValidationError as exc:
        for error in exc.messages:
            messages.error(request, error)
        return redirect(notebook_url(notebook))
    stem = path.rsplit("/", 1)[-1].removesuffix(".ipynb")
    request.session[JOB_DRAFT_SESSION_KEY] = {
        "code": code,
        "name": job_name_from(stem),
        "source": f"{notebook.name}:{path}",
    }
    return redirect(reverse("jobs:create") + "?draft=notebook")


def job_name_from(stem: str) -> str:
    """A job name (letters, digits, -, _, starting with a letter, < 40) from a file name."""
    cleaned = "".join(c if c.isalnum() and c.isascii() or c in "-_" else "-" for c in stem)
    cleaned = cleaned.lstrip("-_0123456789") or "notebook"
    return cleaned[:39]
