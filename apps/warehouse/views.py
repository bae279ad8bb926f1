from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from apps.projects.models import Role
from apps.projects.selectors import current_project, may_write
from apps.projects.services import require_role
from apps.projects.web import report_errors
from apps.serving import selectors as serving_selectors
from apps.warehouse import releases, selectors, services
from apps.warehouse.models import ModelType

PAGE_SIZE = 50
# What each type expects in "fields" (shown on the import form).
FIELD_HINTS = {
    "pytorch": '{} for TorchScript, or {"architecture": "resnet18", "num_classes": 3}',
    "image_classification": '{"image_size": 224}',
    "keras": '{}, or {"output": "logits"} for an image classifier\'s class scores',
    "custom": "{} (a folder with predictor.py: class Predictor with load() and predict())",
}


@login_required
@require_safe
def model_list(request):
    project = current_project(request)
    tab = "common" if request.GET.get("tab") == "common" else "user"
    models = (
        selectors.common_models()
        if tab == "common"
        else selectors.models_for(request.user, project)
    )
    page = Paginator(models, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(
        request,
        "warehouse/list.html",
        {
            "project": project,
            "page": page,
            "tab": tab,
            "may_write": may_write(request.user, project),
        },
    )


@login_required
def model_import(request):
    project = current_project(request)
    if project is not None:  # a viewer is refused the form, not only its submission
        require_role(request.user, project, Role.DEVELOPER)
    existing = selectors.models_for(request.user, project).order_by("name")
    form = {"method": "new", "model_type": "sklearn", "fields": "{}"}
    form.update({k: v for k, v in request.GET.items() if k in ("method", "model")})
    if request.method == "POST":
        form = {k: request.POST.get(k, "") for k in request.POST}
        upload = request.FILES.get("file")
        upload = (upload, upload.name, upload.size) if upload else None
        common = {
            "model_type": form.get("model_type", ""),
            "path": form.get("path", ""),
            "upload": upload,
            "fields": form.get("fields") or "{}",
            "description": form.get("description", ""),
        }
        with report_errors(request):
            if form.get("method") == "version":
                model = selectors.get_model(request.user, form.get("model") or 0)
                version = services.add_version(request.user, model, **common)
            else:
                version = services.import_model(
                    request.user, project, name=form.get("name", ""), tags=form.get("tags"),
                    **common,
                )  # fmt: skip
            messages.success(
                request, f"Imported {version.model.name} version {version.version}: it loads."
            )
            return redirect("warehouse:version", model_id=version.model_id, version=version.version)
    return render(
        request,
        "warehouse/import.html",
        {
            "project": project,
            "form": form,
            "existing": existing,
            "types": ModelType.choices,
            "hints": FIELD_HINTS,
        },
    )


@login_required
@require_safe
def model_detail(request, model_id):
    model = selectors.get_model(request.user, model_id)
    versions = Paginator(model.versions.select_related("source_job"), PAGE_SIZE)
    return render(
        request,
        "warehouse/detail.html",
        {
            "model": model,
            "page": versions.get_page(request.GET.get("page")),
            "may_write": selectors.user_may_write(request.user, model),
        },
    )


@login_required
@require_POST
def model_edit(request, model_id):
    model = selectors.get_model(request.user, model_id)
    with report_errors(request):
        services.update_model(
            request.user,
            model,
            tags=request.POST.get("tags", ""),
            description=request.POST.get("description", ""),
        )
        messages.success(request, "Saved.")
    return redirect("warehouse:detail", model_id=model.pk)


@login_required
@require_POST
def model_delete(request, model_id):
    model = selectors.get_model(request.user, model_id)
    with report_errors(request):
        services.delete_model(request.user, model)
        messages.success(request, f"Model {model.name} and all its versions deleted.")
        return redirect("warehouse:list")
    return redirect("warehouse:detail", model_id=model.pk)


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def version_detail(request, model_id, version):
    model = selectors.get_model(request.user, model_id)
    found = selectors.get_version(model, version)
    if request.method == "POST":
        with report_errors(request):
            services.update_version(
                request.user, found, description=request.POST.get("description")
            )
            messages.success(request, "Saved.")
        return redirect("warehouse:version", model_id=model.pk, version=found.version)
    bucket, _, key = found.path.removeprefix("bos://").partition("/")
    project = current_project(request)
    return render(
        request,
        "warehouse/version.html",
        {
            "model": model,
            "version": found,
            "bucket": bucket,
            "key": key,
            "may_write": selectors.user_may_write(request.user, model),
            # "Create online prediction" creates the service in the current project (from
            # this project's model or a common one): the current project's role decides.
            "may_create_service": may_write(request.user, project),
            "services": serving_selectors.services_using(request.user, found),
        },
    )


@login_required
@require_POST
def version_delete(request, model_id, version):
    model = selectors.get_model(request.user, model_id)
    found = selectors.get_version(model, version)
    with report_errors(request):
        services.delete_version(request.user, found)
        messages.success(request, f"Version {found.version} of {model.name} deleted.")
    return redirect("warehouse:detail", model_id=model.pk)


@login_required
@require_POST
def release_job(request, job_id):
    """Release a succeeded job's output from its details page."""
    from apps.jobs.selectors import get_job

    job = get_job(request.user, job_id)
    target = request.POST.get("model") or ""
    with report_errors(request):
        model = selectors.get_model(request.user, int(target)) if target.isdigit() else None
        version = releases.release_from_job(
            request.user,
            job,
            model_type=request.POST.get("model_type", ""),
            name=request.POST.get("name", ""),
            model=model,
            subpath=request.POST.get("subpath", ""),
            fields=request.POST.get("fields") or "{}",
            description=request.POST.get("description", ""),
        )
        messages.success(request, f"Released as {version.model.name} version {version.version}.")
        return redirect("warehouse:version", model_id=version.model_id, version=version.version)
    return redirect(f"{reverse('jobs:detail', args=[job.job_id])}#release")
