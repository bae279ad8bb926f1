from django.http import Http404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.projects.selectors import get_project
from apps.serving.api.serializers import ProjectInputSerializer, validated
from apps.visual import execution, results, selectors, services
from apps.visual import graph as graphs
from apps.visual.api.serializers import (
    ComponentSerializer,
    CopySerializer,
    ExperimentCreateSerializer,
    ExperimentSerializer,
    ExperimentUpdateSerializer,
    GraphSerializer,
    ReleaseSerializer,
    RunCreateSerializer,
    RunSummarySerializer,
)
from apps.visual.results import NotReady
from workers.runners.visual import registry

RUN = r"(?P<run>[0-9]+)"
NODE = r"(?P<node>[A-Za-z0-9_-]{1,32})"


class ComponentsView(APIView):
    """The visual modeling components: ports (by kind: table, model, report), parameters
    and fields, by group (the canvas's palette)."""

    @extend_schema(responses=ComponentSerializer(many=True))
    def get(self, request):
        return Response(registry.palette())


class ExperimentViewSet(mixins.ListModelMixin, viewsets.GenericViewSet):
    """Visual modeling experiments of your projects (`?project=`): a graph of components
    over table data sets. PUT `graph/` saves it (refused unless a DAG with every required
    input connected, naming the node); `check/` reports each node's schemas and problems;
    `runs/` runs it (each run a version of the history, nodes run on the job engine with
    cached outputs reused); `compare/`, `clear/` and `release/` as on the canvas."""

    serializer_class = ExperimentSerializer
    lookup_value_regex = r"[0-9]+"
    http_method_names = ["get", "post", "put", "patch", "delete", "head", "options"]

    def get_queryset(self):
        project_id = self.request.query_params.get("project")
        project = get_project(self.request.user, project_id) if project_id else None
        return selectors.experiments_for(self.request.user, project)

    def get_object(self):
        experiment = selectors.get_experiment(self.request.user, self.kwargs["pk"])
        self.check_object_permissions(self.request, experiment)
        return experiment

    def answer(self, experiment, code=status.HTTP_200_OK):
        experiment.refresh_from_db()
        return Response(ExperimentSerializer(experiment).data, status=code)

    @extend_schema(parameters=[OpenApiParameter("project", int)])
    def list(self, request, *args, **kwargs):
        return super().list(request, *args, **kwargs)

    @extend_schema(request=ExperimentCreateSerializer, responses={201: ExperimentSerializer})
    def create(self, request):
        project = get_project(
            request.user, validated(ProjectInputSerializer, request.data)["project"]
        )
        self.check_object_permissions(request, project)
        values = validated(ExperimentCreateSerializer, request.data)
        experiment = services.create_experiment(
            request.user, project, name=values["name"], description=values["description"]
        )
        return self.answer(experiment, status.HTTP_201_CREATED)

    def retrieve(self, request, pk=None):
        return self.answer(self.get_object())

    @extend_schema(request=ExperimentUpdateSerializer, responses=ExperimentSerializer)
    def partial_update(self, request, pk=None):
        experiment = self.get_object()
        values = validated(ExperimentUpdateSerializer, request.data)
        return self.answer(services.update_experiment(request.user, experiment, **values))

    @extend_schema(responses={204: None})
    def destroy(self, request, pk=None):
        services.delete_experiment(request.user, self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(request=GraphSerializer, responses=ExperimentSerializer)
    @action(detail=True, methods=["put"])
    def graph(self, request, pk=None):
        experiment = self.get_object()
        values = validated(GraphSerializer, request.data)
        return self.answer(services.save_graph(request.user, experiment, values["graph"]))

    @extend_schema(request=GraphSerializer, responses=OpenApiTypes.OBJECT)
    @action(detail=True, methods=["post"])
    def check(self, request, pk=None):
        """Each node's input and output schemas and its problem, if any (nothing saved)."""
        experiment = selectors.get_experiment(request.user, pk)  # a viewer may check too
        graph = request.data.get("graph", experiment.graph)
        checked = graphs.check_settings(request.user, experiment.project, graph, strict=False)
        nodes = {
            node_id: {"inputs": c.inputs, "outputs": c.outputs, "error": c.error}
            for node_id, c in checked.nodes.items()
        }
        return Response({"nodes": nodes, "errors": checked.errors()})

    @extend_schema(request=CopySerializer, responses={201: ExperimentSerializer})
    @action(detail=True, methods=["post"])
    def copy(self, request, pk=None):
        experiment = selectors.get_experiment(request.user, pk)
        name = validated(CopySerializer, request.data)["name"]
        copied = services.copy_experiment(request.user, experiment, name)
        return self.answer(copied, status.HTTP_201_CREATED)

    @extend_schema(methods=["GET"], responses=RunSummarySerializer(many=True))
    @extend_schema(
        methods=["POST"], request=RunCreateSerializer, responses={201: OpenApiTypes.OBJECT}
    )
    @action(detail=True, methods=["get", "post"], pagination_class=None)
    def runs(self, request, pk=None):
        experiment = self.get_object()
        if request.method == "GET":
            return Response([results.run_summary(r) for r in experiment.runs.all()])
        values = validated(RunCreateSerializer, request.data)
        run = execution.start_run(
            request.user,
            experiment,
            mode=values["mode"],
            node=values["node"] or None,
            sample_rows=values["sample_rows"],
        )
        return Response(results.run_detail(run), status=status.HTTP_201_CREATED)

    @extend_schema(responses=OpenApiTypes.OBJECT)
    @action(detail=True, methods=["get"], url_path=f"runs/{RUN}")
    def run(self, request, pk=None, run=None):
        experiment = self.get_object()
        return Response(results.run_detail(selectors.get_run(experiment, run)))

    @extend_schema(request=None, responses=OpenApiTypes.OBJECT)
    @action(detail=True, methods=["post"], url_path=f"runs/{RUN}/cancel")
    def cancel(self, request, pk=None, run=None):
        experiment = self.get_object()
        cancelled = execution.cancel_run(request.user, selectors.get_run(experiment, run))
        return Response(results.run_detail(cancelled))

    def _node(self, pk, run, node):
        experiment = self.get_object()
        return selectors.get_node(selectors.get_run(experiment, run), node)

    @extend_schema(
        parameters=[
            OpenApiParameter("port", str),
            OpenApiParameter("offset", int),
            OpenApiParameter("limit", int),
        ],
        responses=OpenApiTypes.OBJECT,
    )
    @action(detail=True, methods=["get"], url_path=f"runs/{RUN}/nodes/{NODE}/data")
    def data(self, request, pk=None, run=None, node=None):
        query = request.query_params
        page = results.data_page(
            self._node(pk, run, node),
            query.get("port"),
            query.get("offset", 0),
            query.get("limit", 50),
        )
        return Response(page)

    @extend_schema(responses=OpenApiTypes.OBJECT)
    @action(detail=True, methods=["get"], url_path=f"runs/{RUN}/nodes/{NODE}/report")
    def report(self, request, pk=None, run=None, node=None):
        return Response(results.report(self._node(pk, run, node)))

    @extend_schema(responses=OpenApiTypes.OBJECT)
    @action(detail=True, methods=["get"], url_path=f"runs/{RUN}/nodes/{NODE}/log")
    def log(self, request, pk=None, run=None, node=None):
        return Response({"text": results.log_text(self._node(pk, run, node))})

    @extend_schema(
        description="Two runs side by side (default: the last two).",
        parameters=[OpenApiParameter("a", int), OpenApiParameter("b", int)],
        responses=OpenApiTypes.OBJECT,
    )
    @action(detail=True, methods=["get"])
    def compare(self, request, pk=None):
        experiment = self.get_object()
        runs = list(experiment.runs.order_by("-number")[:2])
        if not runs:
            raise NotReady("The experiment has not run yet: nothing to compare.")
        query = request.query_params
        a = selectors.get_run(experiment, query["a"]) if query.get("a") else runs[-1]
        b = selectors.get_run(experiment, query["b"]) if query.get("b") else runs[0]
        return Response(results.compare(a, b))

    @extend_schema(request=None, responses=OpenApiTypes.OBJECT)
    @action(detail=True, methods=["get", "post"])
    def clear(self, request, pk=None):
        """GET: what clear data would free; POST: clear it."""
        experiment = self.get_object()
        if request.method == "GET":
            return Response(services.clear_size(experiment))
        return Response(services.clear_data(request.user, experiment))

    @extend_schema(request=ReleaseSerializer, responses=OpenApiTypes.OBJECT)
    @action(detail=True, methods=["post"])
    def release(self, request, pk=None):
        from apps.warehouse.api.serializers import ModelVersionSerializer
        from apps.warehouse.models import Model

        experiment = self.get_object()
        values = validated(ReleaseSerializer, request.data)
        model = None
        if values["model"] is not None:
            model = Model.objects.filter(pk=values["model"], project=experiment.project).first()
            if model is None:
                raise Http404("No such model in this project.")
        version = services.release(
            request.user,
            experiment,
            node_id=values["node"],
            name=values["name"],
            model=model,
            description=values["description"],
        )
        answer = {
            "model_id": version.model_id,
            "model_name": version.model.name,
            **ModelVersionSerializer(version).data,
        }
        return Response(answer, status=status.HTTP_201_CREATED)
