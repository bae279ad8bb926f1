"""Console pages to create the spec's machine learning jobs (data standardization,
logistic regression, KMeans, GBDT, RAPIDS-cuML code) and AutoML jobs: one form per
algorithm, from the kind's field lists; the list, details and operations are the job
engine's pages."""

from collections.abc import Callable
from dataclasses import dataclass

from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render

from apps.billing.models import Module, ResourcePackage
from apps.jobs import algorithms, autodl, automl, machine_learning, selectors, services
from apps.jobs.templates_code import available_templates
from apps.jobs.views import require_writable_project, submit_from_form
from apps.projects.selectors import current_project
from apps.projects.web import report_errors

COMMON_FIELDS = ("name", "package", "instances", "time_limit_s", "output_path")
COMMON_FIELDS += ("notify_email", "notify_webhook", "train_data_path", "test_data_path")


@dataclass(frozen=True)
class KindForm:
    """What the create page of one job kind asks for, and in which words."""

    kind: str
    forms: dict  # algorithm -> {"fields": [Field], "paths": {name: label}, "code"?: True}
    params_from_form: Callable
    form_from_params: Callable[[dict], dict]  # a cloned job's params as the form's fields
    default: str
    heading: str
    output_help: str
    instances: tuple[int, int]
    instances_help: str


MACHINE_LEARNING = KindForm(
    kind=machine_learning.KIND,
    forms=machine_learning.FORMS,
    params_from_form=machine_learning.params_from_form,
    form_from_params=dict,
    default="standardize",
    heading="Create a machine learning job",
    output_help="results go to <output path>/<job_id>/data, model, evaluate, predict, "
    "cluster; logs to /log",
    instances=(1, 4),
    instances_help="2-4 train data-parallel",
)
AUTOML = KindForm(
    kind=automl.KIND,
    forms=automl.FORMS,
    params_from_form=automl.params_from_form,
    form_from_params=automl.form_from_params,
    default="logistic_regression",
    heading="Create an AutoML job",
    output_help="the model goes to <output path>/<job_id>/model, the trial table and logs to /log",
    instances=automl.INSTANCES,
    instances_help="2-4: the trials run in parallel over them",
)


AUTODL = KindForm(
    kind=autodl.KIND,
    forms=autodl.FORMS,
    params_from_form=autodl.params_from_form,
    form_from_params=dict,
    default="transfer_learning",
    heading="Create an AutoDL job",
    output_help="the model goes to <output path>/<job_id>/model, the data report, "
    "preprocessing, confusion matrix (and ENAS's search) to /log",
    instances=(1, 1),
    instances_help="1, as the spec says",
)


def _create(request, spec_of: KindForm):
    project = current_project(request)
    require_writable_project(request, project)
    choices = {a.name: a.title for a in algorithms.all_algorithms() if a.kind == spec_of.kind}
    algorithm = request.POST.get("algorithm") or request.GET.get("algorithm") or spec_of.default
    if algorithm not in spec_of.forms:
        algorithm = spec_of.default
    spec = spec_of.forms[algorithm]
    form = {"instances": spec_of.instances[0], "time_limit_s": 3600}
    form.update({f.name: f.default for f in spec["fields"]})
    if spec.get("code"):
        form["code"] = available_templates()["rapids_xgboost"].code
    clone = request.GET.get("clone") if request.method == "GET" else None
    if clone:
        source = selectors.get_job(request.user, clone)
        if source.kind == spec_of.kind and source.algorithm in spec_of.forms:
            algorithm, spec = source.algorithm, spec_of.forms[source.algorithm]
            form.update(services.clone_settings(source))
            form.update(spec_of.form_from_params(source.params))
    if request.method == "POST" and request.POST.get("submit"):
        form = {k: request.POST.get(k, "") for k in request.POST}
        for field in spec["fields"]:
            if field.kind == "bool":
                form[field.name] = request.POST.get(field.name) == "on"
        with report_errors(request):
            params = spec_of.params_from_form(algorithm, request.POST)
            job = submit_from_form(request, project, spec_of.kind, algorithm, form, params)
            return redirect("jobs:detail", job_id=job.job_id)
    return render(
        request,
        "jobs/ml_create.html",
        {
            "project": project,
            "kind_form": spec_of,
            "algorithm": algorithm,
            "choices": choices,
            "spec": spec,
            "form": form,
            "fields": [(f, form.get(f.name, "")) for f in spec["fields"]],
            "paths": [(name, label, form.get(name, "")) for name, label in spec["paths"].items()],
            "packages": ResourcePackage.objects.filter(module=Module.TRAIN, enabled=True),
        },
    )


@login_required
def ml_job_create(request):
    return _create(request, MACHINE_LEARNING)


@login_required
def automl_job_create(request):
    return _create(request, AUTOML)


@login_required
def autodl_job_create(request):
    return _create(request, AUTODL)
