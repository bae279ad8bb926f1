import json

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST, require_safe

from apps.billing.models import Module, ResourcePackage
from apps.jobs import algorithms, frameworks, selectors, services
from apps.jobs.models import JobStatus
from apps.jobs.templates_code import available_templates, default_template
from apps.projects.models import Role
from apps.projects.selectors import current_project, may_write
from apps.projects.services import require_role
from apps.projects.web import report_errors

FORM_FIELDS = [
    "name",
    "output_path",
    "train_data_path",
    "test_data_path",
    "notify_email",
    "notify_webhook",
    "instances",
    "time_limit_s",
    "package",
    "framework",
    "code_source",
    "code",
    "code_path",
    "start_command",
]
CODE_PARAMS = ("framework", "code", "code_path", "start_command")


def code_params(form: dict) -> dict:
    """The algorithm's parameters from the form: edited code, or a bos:// code file/folder
    with its start command (the spec's two ways to submit code)."""
    if form.get("code_source") == "file":
        keys = ("framework", "code_path", "start_command")
    else:
        keys = ("framework", "code")
    return {k: form[k] for k in keys if form.get(k)}


# The create form of each job kind ("Create job" and "Clone" go there).
CREATE_VIEWS = {
    "machine_learning": "jobs:create-ml",
    "automl": "jobs:create-automl",
    "autodl": "jobs:create-autodl",
}
KIND_TITLES = {
    "machine_learning": "Machine learning jobs",
    "automl": "AutoML jobs",
    "autodl": "AutoDL jobs",
}


def create_url(kind: str) -> str:
    from django.urls import reverse

    return reverse(CREATE_VIEWS.get(kind, "jobs:create"))


@login_required
@require_safe
def job_list(request):
    project = current_project(request)
    status = request.GET.get("status", "")
    kind = request.GET.get("kind", "")
    jobs = selectors.jobs_for(request.user, project, status or None).prefetch_related("runs")
    if kind:
        jobs = jobs.filter(kind=kind)
    titles = {(a.kind, a.name): a.title for a in algorithms.all_algorithms()}
    for job in jobs:
        job.algorithm_title = titles.get((job.kind, job.algorithm), job.algorithm)
        job.clone_url = create_url(job.kind)
    return render(
        request,
        "jobs/list.html",
        {
            "project": project,
            "jobs": jobs,
            "status": status,
            "kind": kind,
            "heading": KIND_TITLES.get(kind, "Job modeling"),
            "create_url": create_url(kind),
            "statuses": JobStatus.choices,
            "may_write": may_write(request.user, project),
        },
    )


def submit_from_form(request, project, kind: str, algorithm: str, form: dict, params=None):
    """Create a job from a console form's fields (the code's, unless `params` are given)."""
    try:
        job = services.create_job(
            request.user,
            project,
            name=form.get("name", ""),
            kind=kind,
            algorithm=algorithm,
            params=code_params(form) if params is None else params,
            package_id=form.get("package") or 0,
            instances=int(form.get("instances") or 0),
            time_limit_s=int(form.get("time_limit_s") or 0),
            output_path=form.get("output_path", ""),
            train_data_path=form.get("train_data_path", ""),
            test_data_path=form.get("test_data_path", ""),
            notify_email=form.get("notify_email", ""),
            notify_webhook=form.get("notify_webhook", ""),
        )
    except ValueError:
        raise ValidationError("Instances and maximum running time are numbers.") from None
    messages.success(request, f"Job {job.name} submitted ({job.job_id}).")
    return job


def require_writable_project(request, project):
    """A create form is refused (403) at once to a viewer of the current project, with the
    message its submission would get, rather than shown and then refused on submit."""
    if project is not None:
        require_role(request.user, project, Role.DEVELOPER)


@login_required
def job_create(request):
    project = current_project(request)
    require_writable_project(request, project)
    packages = ResourcePackage.objects.filter(module=Module.TRAIN, enabled=True)
    template = default_template()
    form = {
        "instances": 1,
        "time_limit_s": 3600,
        "code_source": "editor",
        "code": template.code,
        "framework": template.framework,
    }
    if request.method == "GET" and request.GET.get("clone"):
        source = selectors.get_job(request.user, request.GET["clone"])
        settings = services.clone_settings(source)
        form.update({k: settings[k] for k in FORM_FIELDS if k in settings})
        form.update({k: source.params.get(k, "") for k in CODE_PARAMS})
        form["code_source"] = "file" if source.params.get("code_path") else "editor"
    if request.method == "GET" and request.GET.get("draft") == "notebook":
        # "Submit as job" of a notebook instance: its converted code (apps.notebooks.views).
        draft = request.session.pop("job_code_draft", None)
        if draft:
            form.update(code_source="editor", code=draft["code"], name=draft["name"])
            form["framework"] = "python"
            messages.info(request, f"Code converted from the notebook {draft['source']}.")
    if request.method == "POST":
        form = {k: request.POST.get(k, "") for k in FORM_FIELDS}
        with report_errors(request):
            job = submit_from_form(request, project, "deep_learning", "custom_code", form)
            return redirect("jobs:detail", job_id=job.job_id)
    return render(
        request,
        "jobs/create.html",
        {
            "project": project,
            "form": form,
            "packages": packages,
            "templates": available_templates(),
            "frameworks": frameworks.choices(),
        },
    )


@login_required
@require_safe
def job_detail(request, job_id):
    job = selectors.get_job(request.user, job_id)
    # A step of another module (a data set conversion): no code to show or clone.
    internal = job.kind in algorithms.internal_kinds()
    project = current_project(request)
    context = {
        "job": job,
        "runs": job.runs.all(),
        "internal": internal,
        "may_write": may_write(request.user, job.project),
        # "Clone" opens the create form of the current project (the clone is made there).
        "may_clone": may_write(request.user, project),
        "clone_url": create_url(job.kind),
    }
    if not internal:
        context.update(_release_context(request.user, job))
    context.update(selectors.output_location(job))
    try:
        context["algorithm"] = algorithms.get(job.kind, job.algorithm)
    except ValidationError:  # an algorithm of an older version: the page still opens
        context["algorithm"] = None
    if job.kind == "machine_learning":
        context.update(selectors.ml_results(job))
    if job.kind == "autodl":
        from apps.jobs import autodl_results

        context.update(selectors.ml_results(job))
        context.update(autodl_results.results(job))
    if job.kind == "automl":
        context.update(selectors.ml_results(job))
        context["resumable"] = job.status in ("failed", "terminated", "timed_out")
    return render(request, "jobs/detail.html", context)


def _release_context(user, job) -> dict:
    """The job page's "Release to model warehouse" form (filled in from the algorithm's
    defaults) and the versions the job released."""
    from apps.warehouse import releases
    from apps.warehouse.models import ModelType
    from apps.warehouse.selectors import models_for

    context = {"released": releases.released_by(job)}
    defaults = releases.release_defaults(job)
    # No form where the results hold no model (data standardization writes data).
    if job.status == "succeeded" and defaults is not None:
        context["model_types"] = ModelType.choices
        context["release"] = {
            "model_type": defaults.model_type,
            "subpath": defaults.subpath,
            "fields": json.dumps(defaults.fields),
        }
        context["release_models"] = models_for(user, job.project).order_by("name")
    return context


@login_required
@require_POST
def job_terminate(request, job_id):
    job = selectors.get_job(request.user, job_id)
    with report_errors(request):
        services.terminate_job(request.user, job)
        messages.success(request, f"Job {job.name} is being terminated.")
    return redirect("jobs:detail", job_id=job.job_id)


@login_required
@require_POST
def job_resume(request, job_id):
    job = selectors.get_job(request.user, job_id)
    with report_errors(request):
        resumed = services.resume_job(request.user, job)
        messages.success(request, f"Job {resumed.name} goes on with the search of {job.name}.")
        return redirect("jobs:detail", job_id=resumed.job_id)
    return redirect("jobs:detail", job_id=job.job_id)


@login_required
@require_POST
def job_delete(request, job_id):
    job = selectors.get_job(request.user, job_id)
    with report_errors(request):
        if services.delete_job(request.user, job):
            messages.success(request, f"Job {job.name} deleted.")
        else:
            messages.success(request, f"Job {job.name} is being terminated, then deleted.")
        return redirect("jobs:list")
    return redirect("jobs:detail", job_id=job.job_id)
