"""The public data sets every install has (the spec: iris and Boston Housing), converted
from the files under fixtures/datasets/ by the same runner as users' uploads and kept in a
bucket of the appliance's own (no project owns it, so no one can write or delete there)."""

import json
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from apps.datasets.models import Dataset, DatasetStatus, DatasetVersion, UploadMode
from apps.storage.client import ObjectNotFound, get_client, translate_errors

PUBLIC_BUCKET = "bml-public-datasets"
FIXTURES = Path(settings.BASE_DIR) / "fixtures" / "datasets"


@dataclass(frozen=True)
class PublicDataset:
    name: str
    file: str
    header: bool
    columns: tuple[tuple[str, str], ...]
    description: str


FLOAT = "float"
PUBLIC = (
    PublicDataset(
        "iris",
        "iris.csv",
        header=False,
        columns=(
            ("sepal_length", FLOAT),
            ("sepal_width", FLOAT),
            ("petal_length", FLOAT),
            ("petal_width", FLOAT),
            ("species", "string"),
        ),
        description="Fisher's iris flowers: 150 rows, 4 measurements in cm and the species "
        "(Iris-setosa, Iris-versicolor, Iris-virginica). Classification, clustering.",
    ),
    PublicDataset(
        "boston_housing",
        "boston_housing.csv",
        header=True,
        columns=(
            ("crim", FLOAT),
            ("zn", FLOAT),
            ("indus", FLOAT),
            ("chas", "int"),
            ("nox", FLOAT),
            ("rm", FLOAT),
            ("age", FLOAT),
            ("dis", FLOAT),
            ("rad", "int"),
            ("tax", "int"),
            ("ptratio", FLOAT),
            ("b", FLOAT),
            ("lstat", FLOAT),
            ("medv", FLOAT),
        ),
        description="Boston housing: 506 census tracts, 13 features and medv, the median "
        "home value in $1000s. Regression.",
    ),
)


def _stored(dataset: Dataset | None) -> bool:
    version = dataset.current_version if dataset else None
    if version is None or not version.parts:
        return False
    key = version.parts[0].split(f"bos://{PUBLIC_BUCKET}/", 1)[-1]
    try:
        with translate_errors():
            get_client().stat_object(PUBLIC_BUCKET, key)
        return True
    except ObjectNotFound:
        return False


def _convert(spec: PublicDataset, workdir: Path) -> dict:
    params = {
        "inputs": [str(FIXTURES / spec.file)],
        "separator": ",",
        "header": spec.header,
        "encoding": "utf-8",
        "abnormal": "fail",
        "columns": [{"name": n, "type": t} for n, t in spec.columns],
        "output_dir": "output",
    }
    (workdir / "params.json").write_text(json.dumps(params))
    done = subprocess.run(
        [sys.executable, "-m", "workers.runners.table_import", "--params", "params.json"],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if done.returncode != 0:
        raise RuntimeError(f"converting {spec.file} failed: {done.stderr[-2000:]}")
    return json.loads((workdir / "output" / "summary.json").read_text())


def seed_public_datasets() -> list[str]:
    """Make sure every public data set exists and its files are in the store; returns the
    names converted now (nothing on a second run)."""
    client = get_client()
    with translate_errors():
        if not client.bucket_exists(PUBLIC_BUCKET):
            client.make_bucket(PUBLIC_BUCKET)
    seeded = []
    for spec in PUBLIC:
        dataset = Dataset.objects.filter(is_public=True, name=spec.name).first()
        if _stored(dataset):
            continue
        with tempfile.TemporaryDirectory() as tmp:
            summary = _convert(spec, Path(tmp))
            prefix = f"datasets/{spec.name}/v1/"
            with translate_errors():
                for name in [*summary["parts"], "summary.json"]:
                    client.fput_object(PUBLIC_BUCKET, prefix + name, f"{tmp}/output/{name}")
        with transaction.atomic():
            dataset, _ = Dataset.objects.update_or_create(
                is_public=True,
                name=spec.name,
                defaults={
                    "project": None,
                    "description": spec.description,
                    "storage_path": f"bos://{PUBLIC_BUCKET}/datasets/{spec.name}/",
                },
            )
            version, _ = DatasetVersion.objects.update_or_create(
                dataset=dataset,
                number=1,
                defaults={
                    "mode": UploadMode.REPLACE,
                    "source": f"fixtures/datasets/{spec.file}",
                    "options": {"separator": ",", "header": spec.header, "encoding": "utf-8"},
                    "columns": summary["columns"],
                    "status": DatasetStatus.SUCCEEDED,
                    "rows": summary["rows"],
                    "parts": [f"bos://{PUBLIC_BUCKET}/{prefix}{n}" for n in summary["parts"]],
                    "stats": summary["stats"],
                    "abnormal": summary.get("abnormal") or {},
                    "finished_at": timezone.now(),
                },
            )
            Dataset.objects.filter(pk=dataset.pk).update(current_version=version)
        seeded.append(spec.name)
    return seeded
