"""Reads of visual modeling experiments, scoped to the requesting user (another project's
experiment is a 404, never a 403)."""

from django.http import Http404

from apps.visual.models import Experiment, ExperimentRun


def experiments_for(user, project=None):
    experiments = Experiment.objects.filter(project__memberships__user=user).select_related(
        "project"
    )
    if project is not None:
        experiments = experiments.filter(project=project)
    return experiments


def get_experiment(user, pk) -> Experiment:
    try:
        return experiments_for(user).get(pk=int(pk))
    except (Experiment.DoesNotExist, TypeError, ValueError, OverflowError):
        raise Http404("No such experiment.") from None


def get_run(experiment: Experiment, number) -> ExperimentRun:
    try:
        return experiment.runs.get(number=int(number))
    except (ExperimentRun.DoesNotExist, TypeError, ValueError, OverflowError):
        raise Http404("No such run of this experiment.") from None


def last_run(experiment: Experiment) -> ExperimentRun | None:
    return experiment.runs.order_by("-number").first()


def get_node(run: ExperimentRun, node_id: str):
    node = run.nodes.select_related("job").filter(node_id=node_id).first()
    if node is None:
        raise Http404("No such node in this run.")
    return node
