"""Visual modeling: an experiment is a graph of components (apps.visual.graph); each run of
it is a version in its history, and each node of a run is one job-engine run (or reuses a
cached output, or a data set's parquet parts as they are)."""

from django.conf import settings
from django.db import models

from apps.projects.models import Project


def empty_graph() -> dict:
    return {"nodes": [], "edges": []}


class Experiment(models.Model):
    project = models.ForeignKey(
        Project, on_delete=models.CASCADE, related_name="visual_experiments"
    )
    name = models.CharField(max_length=50)
    description = models.TextField(blank=True)
    graph = models.JSONField(default=empty_graph)
    # bos:// folder of the node runs' outputs (a folder of the project's first bucket).
    storage_path = models.CharField(max_length=1100)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-updated_at"]
        constraints = [
            models.UniqueConstraint(fields=["project", "name"], name="experiment_name_per_project")
        ]

    def __str__(self):
        return self.name


class RunStatus(models.TextChoices):
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


class RunMode(models.TextChoices):
    ALL = "all", "Run the whole graph"
    FROM_HERE = "from_here", "Start execution here (this node and all downstream)"
    TO_HERE = "to_here", "Execute here (all upstream and this node)"
    NODE = "node", "Execute this node"
    SAMPLE = "sample", "Test run on a small sample"


class ExperimentRun(models.Model):
    """One run of the graph as it was saved then (a version of the history)."""

    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="runs")
    number = models.PositiveIntegerField()
    graph = models.JSONField()
    mode = models.CharField(max_length=16, choices=RunMode.choices, default=RunMode.ALL)
    target = models.CharField(
        max_length=32, blank=True, help_text="The node a partial run starts at"
    )
    sample_rows = models.PositiveIntegerField(null=True, blank=True)
    status = models.CharField(max_length=16, choices=RunStatus.choices, default=RunStatus.RUNNING)
    reason = models.TextField(blank=True)
    # Clear data removed its intermediate results and logs: it stays in the history.
    cleared = models.BooleanField(default=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True
    )
    started_at = models.DateTimeField(auto_now_add=True)
    ended_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["experiment", "-number"]
        constraints = [
            models.UniqueConstraint(fields=["experiment", "number"], name="one_run_per_number")
        ]

    def __str__(self):
        return f"{self.experiment} #{self.number}"


class NodeStatus(models.TextChoices):
    PENDING = "pending", "Waiting for its inputs"
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    CACHED = "cached", "Cached (inputs and settings unchanged)"
    FAILED = "failed", "Failed"
    SKIPPED = "skipped", "Skipped (an input failed)"
    CANCELLED = "cancelled", "Cancelled"


NODE_DONE = (NodeStatus.SUCCEEDED, NodeStatus.CACHED)
NODE_FAILED = (NodeStatus.FAILED, NodeStatus.SKIPPED, NodeStatus.CANCELLED)
NODE_ENDED = (*NODE_DONE, *NODE_FAILED)


class NodeRun(models.Model):
    run = models.ForeignKey(ExperimentRun, on_delete=models.CASCADE, related_name="nodes")
    node_id = models.CharField(max_length=32)
    component = models.CharField(max_length=48)
    status = models.CharField(max_length=16, choices=NodeStatus.choices, default=NodeStatus.PENDING)
    # Forced nodes run even when a cached output matches ("execute this node").
    forced = models.BooleanField(default=False)
    params = models.JSONField(default=dict, help_text="The settings as checked")
    cache_key = models.CharField(max_length=64, blank=True, db_index=True)
    cached_from = models.ForeignKey(
        "self", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    job = models.ForeignKey(
        "jobs.Job", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    # {port: {kind, uris: [bos://...], content_id, schema, rows?, stats?, view?, base?}}
    # (base: {node_run, port}, the stored table a view output is made of)
    outputs = models.JSONField(default=dict)
    facts = models.JSONField(default=dict)
    error = models.TextField(blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["run", "pk"]
        constraints = [
            models.UniqueConstraint(fields=["run", "node_id"], name="one_node_run_per_run")
        ]

    def __str__(self):
        return f"{self.run} {self.node_id}"

    def bases_cleared(self) -> bool:
        """Whether a table one of its view outputs is made of lived in a run since cleared
        (a data set's parts are the data set's, never cleared)."""
        bases = [o["base"]["node_run"] for o in self.outputs.values() if o.get("base")]
        return bool(bases) and (
            NodeRun.objects.filter(
                pk__in=bases, run__cleared=True, outputs__table__dataset__isnull=True
            ).exists()
        )
