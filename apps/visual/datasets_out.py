"""The "Write data set" component's result becomes a data set of the project: a new data
set (or a new version of the project's data set of that name) whose parquet part is the
node's output as stored, with the statistics the runner computed. Nothing is copied."""

from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from apps.datasets import services as datasets
from apps.datasets.models import Dataset, DatasetStatus, DatasetVersion, UploadMode
from apps.visual.models import NodeRun
from apps.visual.results import stored_files


def register(node: NodeRun) -> DatasetVersion:
    run = node.run
    experiment = run.experiment
    user = run.created_by
    summary = node.facts.get("dataset_summary") or {}
    name = datasets.validate_dataset_name(node.params.get("name"))
    parts = stored_files(node.outputs["table"]["uris"], ".parquet")
    dataset = Dataset.objects.filter(project=experiment.project, name=name).first()
    if dataset is None:
        dataset = datasets.create_dataset(
            user,
            experiment.project,
            name,
            description=f"Written by visual modeling experiment {experiment.name}, "
            f"run {run.number}, node {node.node_id}.",
        )
    with transaction.atomic():
        number = (dataset.versions.aggregate(n=Max("number"))["n"] or 0) + 1
        version = DatasetVersion.objects.create(
            dataset=dataset,
            number=number,
            mode=UploadMode.REPLACE,
            source=node.outputs["table"]["uris"][0],
            options={"written_by": f"visual experiment {experiment.pk} run {run.number}"},
            columns=summary.get("columns") or node.outputs["table"]["schema"]["columns"],
            status=DatasetStatus.SUCCEEDED,
            rows=summary.get("rows") or node.outputs["table"].get("rows") or 0,
            parts=parts,
            stats=summary.get("stats") or [],
            created_by=user,
            finished_at=timezone.now(),
        )
        Dataset.objects.filter(pk=dataset.pk).update(
            current_version=version, updated_at=timezone.now()
        )
    return version
