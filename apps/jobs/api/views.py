from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, PolymorphicProxySerializer, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response

from apps.jobs import selectors, services
from apps.jobs.api.serializers import (
    JobLogSerializer,
    JobMetricColumnsSerializer,
    JobMetricsSerializer,
    JobSerializer,
    JobSettingsSerializer,
)
from apps.projects.selectors import get_project


class JobViewSet(
    mixins.ListModelMixin,
    mixins.CreateModelMixin,
    mixins.RetrieveModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    """Jobs of your projects: create, list (filter by `project`, `status`), get, logs,
    terminate, clone (the fields of a new job, filled in), resume (AutoML), delete
    (terminates first)."""

    serializer_class = JobSerializer
    lookup_field = "job_id"
    lookup_value_regex = r"job-[a-z0-9]+"

    def get_queryset(self):
        project_id = self.request.query_params.get("project")
        project = get_project(self.request.user, project_id) if project_id else None
        return selectors.jobs_for(
            self.request.user, project, self.request.query_params.get("status")
        ).prefetch_related("runs")

    def get_object(self):
        job = selectors.get_job(self.request.user, self.kwargs["job_id"])
        self.check_object_permissions(self.request, job)
        return job

    @extend_schema(
        parameters=[
            OpenApiParameter("project", int),
            OpenApiParameter("status", str, description="e.g. running or queued,running"),
        ]
    )
    def list(self, request, *args, **kwargs):
        return super().list(request, *args, **kwargs)

    def perform_create(self, serializer):
        data = serializer.validated_data
        project = get_project(self.request.user, data["project_id"])
        serializer.instance = services.create_job(
            self.request.user,
            project,
            package_id=data["package_id"],
            **{k: data[k] for k in services.SETTINGS_FIELDS if k in data},
        )

    @extend_schema(responses={204: None, 202: None})
    def destroy(self, request, *args, **kwargs):
        """204 when deleted; 202 for a live job: it is terminated, then deleted."""
        deleted = services.delete_job(request.user, self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT if deleted else status.HTTP_202_ACCEPTED)

    @extend_schema(request=None, responses=JobSerializer)
    @action(detail=True, methods=["post"])
    def terminate(self, request, job_id=None):
        job = services.terminate_job(request.user, self.get_object())
        return Response(JobSerializer(job).data)

    @extend_schema(responses=OpenApiTypes.OBJECT)
    @action(detail=True, methods=["get"], pagination_class=None)
    def trials(self, request, job_id=None):
        """AutoML: the search so far, from the journal stored after every round: `trials`
        (trial, parameters, auc, seconds, state, instance, error), `best`, `importances`
        (fANOVA over the finished trials), `params`, `budget`."""
        from apps.jobs import automl_results

        # Another kind of job has no search: an empty one (viewers read it like any job).
        return Response(automl_results.search_summary(self.get_object()))

    @extend_schema(responses=OpenApiTypes.OBJECT)
    @action(detail=True, methods=["get"], pagination_class=None)
    def architecture(self, request, job_id=None):
        """AutoDL ENAS: the search so far (log/enas.json): `stage`, `space`, `rounds` (shared
        loss and accuracy, reward, entropy per round), `best` (architecture, `graph` nodes and
        edges), `candidates`, `final` (from scratch, beside the random architectures) and
        `fairness`. An empty object for other jobs and before the first round."""
        from apps.jobs import autodl_results

        return Response(autodl_results.enas_search(self.get_object()))

    @extend_schema(request=None, responses={201: JobSerializer})
    @action(detail=True, methods=["post"])
    def resume(self, request, job_id=None):
        """AutoML: a failed, terminated or timed-out search goes on as a new job from its
        finished trials (400 when none finished or the job is not an AutoML job)."""
        job = services.resume_job(request.user, self.get_object())
        return Response(JobSerializer(job).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses=JobSettingsSerializer)
    @action(detail=True, methods=["post"])
    def clone(self, request, job_id=None):
        """The job's settings for a new job (name suffixed), not yet submitted."""
        return Response(services.clone_settings(self.get_object()))

    @extend_schema(responses=JobLogSerializer(many=True))
    @action(detail=True, methods=["get"], pagination_class=None)
    def logs(self, request, job_id=None):
        return Response(
            JobLogSerializer(selectors.instance_logs(self.get_object()), many=True).data
        )

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "shape",
                str,
                enum=[*selectors.METRIC_SHAPES],  # (`list` is the view here)
                description="points (default): one object per report; columns: one list per "
                "name, smaller and faster to parse for long runs",
            )
        ],
        responses=PolymorphicProxySerializer(
            component_name="JobMetricsAnswer",
            serializers=[JobMetricsSerializer, JobMetricColumnsSerializer],
            resource_type_field_name=None,
            many=True,
        ),
    )
    @action(detail=True, methods=["get"], pagination_class=None)
    def metrics(self, request, job_id=None):
        """Points reported with `bml.report(step=..., name=value)`, per instance."""
        shape = request.query_params.get("shape", "points")
        if shape not in selectors.METRIC_SHAPES:
            raise ValidationError(
                {"shape": f"shape is one of {', '.join(selectors.METRIC_SHAPES)}."}
            )
        return Response(selectors.instance_metrics(self.get_object(), shape))
