"""Visual modeling console: the experiment list and the canvas (server-rendered pages; the
canvas's editing, runs and panels are static/bml/visual*.js against the REST API under
/api/v1/visual-experiments/)."""

from django.contrib.auth.decorators import login_required
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_safe

from apps.billing.models import ResourcePackage
from apps.datasets.selectors import datasets_for, public_datasets
from apps.projects.selectors import current_project, may_write
from apps.visual import selectors
from workers.runners.visual import registry

API_BASE = "/api/v1/"


@login_required
@require_safe
def experiment_list(request):
    project = current_project(request)
    experiments = list(selectors.experiments_for(request.user, project)) if project else []
    for experiment in experiments:
        experiment.last = selectors.last_run(experiment)
    return render(
        request,
        "visual/list.html",
        {
            "project": project,
            "experiments": experiments,
            "may_write": may_write(request.user, project),
            "config": {"api": API_BASE, "project": project.pk if project else None},
        },
    )


def _datasets(user, project) -> list[dict]:
    """The data set picker's choices: the project's own, then the public ones."""
    own = [{"id": d.pk, "name": d.name, "public": False} for d in datasets_for(user, project)]
    public = [{"id": d.pk, "name": d.name, "public": True} for d in public_datasets()]
    return own + public


def _canvas(request, pk, run=None):
    experiment = selectors.get_experiment(request.user, pk)
    project = experiment.project
    old = selectors.get_run(experiment, run) if run is not None else None
    last = selectors.last_run(experiment)
    writable = may_write(request.user, project) and old is None
    config = {
        "api": API_BASE,
        "experiment": experiment.pk,
        "project": project.pk,
        "name": experiment.name,
        "graph": old.graph if old else experiment.graph,
        # The read-only page of one version shows that run's node states; the editable
        # canvas follows the last run.
        "run": old.number if old else (last.number if last else None),
        "read_only": old is not None,
        "may_write": writable,
        "palette": registry.palette(),
        "datasets": _datasets(request.user, project),
        "packages": [
            {"id": p.pk, "name": p.name}
            for p in ResourcePackage.objects.filter(module="train", enabled=True).order_by("pk")
        ],
        "canvas_url": reverse("visual:canvas", args=[experiment.pk]),
        "run_url": reverse("visual:run", args=[experiment.pk, 0]).replace("/0/", "/{run}/"),
        "version_url": reverse("warehouse:version", args=[0, 0]).replace(
            "/0/versions/0/", "/{model}/versions/{version}/"
        ),
    }
    return render(
        request,
        "visual/canvas.html",
        {"experiment": experiment, "old_run": old, "may_write": writable, "config": config},
    )


@login_required
@require_safe
def canvas(request, pk):
    return _canvas(request, pk)


@login_required
@require_safe
def run_version(request, pk, run):
    return _canvas(request, pk, run)
