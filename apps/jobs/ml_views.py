"""Console page to create the spec's machine learning jobs (data standardization,
logistic regression, KMeans, GBDT, RAPIDS-cuML code); the list, details and operations
are the job engine's pages."""

from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render

from apps.billing.models import Module, ResourcePackage
from apps.jobs import algorithms, machine_learning, selectors, services
from apps.jobs.templates_code import available_templates
from apps.jobs.views import require_writable_project, submit_from_form
from apps.projects.selectors import current_project
from apps.projects.web import report_errors

COMMON_FIELDS = ("name", "package", "instances", "time_limit_s", "output_path")
COMMON_FIELDS += ("notify_email", "notify_webhook", "train_data_path", "test_data_path")


@login_required
def ml_job_create(request):
    project = current_project(request)
    require_writable_project(request, project)
    choices = {a.name: a.title for a in algorithms.all_algorithms() if a.kind == "machine_learning"}
    algorithm = request.POST.get("algorithm") or request.GET.get("algorithm") or "standardize"
    if algorithm not in machine_learning.FORMS:
        algorithm = "standardize"
    spec = machine_learning.FORMS[algorithm]
    form = {"instances": 1, "time_limit_s": 3600}
    form.update({f.name: f.default for f in spec["fields"]})
    if spec.get("code"):
        form["code"] = available_templates()["rapids_xgboost"].code
    clone = request.GET.get("clone") if request.method == "GET" else None
    if clone:
        source = selectors.get_job(request.user, clone)
        if source.kind == machine_learning.KIND:
            algorithm, spec = source.algorithm, machine_learning.FORMS[source.algorithm]
            form.update(services.clone_settings(source))
            form.update(source.params)
    if request.method == "POST" and request.POST.get("submit"):
        form = {k: request.POST.get(k, "") for k in request.POST}
        for field in spec["fields"]:
            if field.kind == "bool":
                form[field.name] = request.POST.get(field.name) == "on"
        with report_errors(request):
            params = machine_learning.params_from_form(algorithm, request.POST)
            job = submit_from_form(request, project, machine_learning.KIND, algorithm, form, params)
            return redirect("jobs:detail", job_id=job.job_id)
    return render(
        request,
        "jobs/ml_create.html",
        {
            "project": project,
            "algorithm": algorithm,
            "choices": choices,
            "spec": spec,
            "form": form,
            "fields": [(f, form.get(f.name, "")) for f in spec["fields"]],
            "paths": [(name, label, form.get(name, "")) for name, label in spec["paths"].items()],
            "packages": ResourcePackage.objects.filter(module=Module.TRAIN, enabled=True),
        },
    )
