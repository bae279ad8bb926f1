"""Writes and rules of data sets: create, delete, preview a source, start an upload (a
conversion job), and finish a version when its job ends."""

import json
import re
from pathlib import Path

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from apps.billing.models import Module, ResourcePackage
from apps.datasets import conversion
from apps.datasets.models import (
    AbnormalRule,
    Dataset,
    DatasetStatus,
    DatasetVersion,
    UploadMode,
)
from apps.datasets.storage_io import read_object_bytes, source_files
from apps.jobs import services as jobs
from apps.jobs.models import Job, JobStatus
from apps.projects.models import Role
from apps.projects.services import require_role
from apps.storage import ownership
from apps.storage import services as storage
from apps.storage.client import ObjectNotFound
from apps.storage.paths import parse_bos_uri
from apps.storage.selectors import data_buckets_for

# Letters of any script, digits, '_' and '-', starting with a letter, at most 50 characters.
DATASET_NAME_RULE = re.compile(r"^[^\W\d_][\w-]{0,49}$")
DATASET_NAME_HELP = (
    "1-50 characters: letters, digits, '_' and '-', starting with a letter "
    "(Chinese names are fine)."
)
ACCEPTED_EXTENSIONS = (".csv", ".tsv", ".txt")
ENCODINGS = {"utf-8": "UTF-8", "gbk": "GBK", "gb18030": "GB18030", "latin-1": "Latin-1"}
SEPARATORS = {",": "comma", "\t": "tab", ";": "semicolon", "|": "vertical bar", " ": "space"}
PREVIEW_BYTES = 64 * 1024
DATASETS_FOLDER = "datasets"


def _table_import():
    """The conversion runner's preview and column rules (imported when first needed: it
    brings pyarrow and numpy, which the web process otherwise does without)."""
    from workers.runners import table_import

    return table_import


# -- data sets ---------------------------------------------------------------------------


def validate_dataset_name(name: str) -> str:
    name = (name or "").strip()
    if not DATASET_NAME_RULE.match(name):
        raise ValidationError({"name": f"Invalid data set name '{name}'. {DATASET_NAME_HELP}"})
    return name


def default_storage_path(user, project, name: str) -> str:
    """The spec's default: a folder of the project's storage. The project's first bucket is
    used; a project without one gets a bucket for its data sets."""
    bucket = data_buckets_for(user, project).order_by("created_at").first()
    if bucket is None:
        bucket = storage.create_bucket(user, project, f"bml-datasets-p{project.pk}")
    return f"bos://{bucket.name}/{DATASETS_FOLDER}/{name}/"


def create_dataset(user, project, name: str, storage_path: str = "", description="") -> Dataset:
    require_role(user, project, Role.DEVELOPER)
    name = validate_dataset_name(name)
    if Dataset.objects.filter(project=project, name=name).exists():
        raise ValidationError({"name": f"This project already has a data set named '{name}'."})
    if storage_path:
        path = ownership.owned_path(user, project, storage_path, "storage_path", required=True)
        storage_path = path if path.endswith("/") else path + "/"
    else:
        storage_path = default_storage_path(user, project, name)
    return Dataset.objects.create(
        project=project,
        name=name,
        storage_path=storage_path,
        description=(description or "")[:2000],
        created_by=user,
    )


def delete_dataset(user, dataset: Dataset) -> None:
    """Delete a data set and the parquet files of its versions (the uploaded source files
    are the user's and stay). A conversion under way is terminated first."""
    _require_own(user, dataset)
    path = parse_bos_uri(dataset.storage_path)
    versions = list(dataset.versions.exclude(job=None).select_related("job"))
    for version in versions:
        jobs.delete_job(user, version.job)
    for version in versions:
        storage.delete_prefix(path.bucket, f"{path.key}{version.job.job_id}/")
    dataset.delete()


def _require_own(user, dataset: Dataset, needed=Role.DEVELOPER) -> None:
    if dataset.is_public:
        raise PermissionDenied("Public data sets are read-only.")
    require_role(user, dataset.project, needed)


# -- uploads -----------------------------------------------------------------------------


def _check_choice(value, choices, field: str, what: str):
    if value not in choices:
        shown = ", ".join(repr(c) for c in choices)
        raise ValidationError({field: f"{what} must be one of {shown}."})
    return value


def _check_source(user, dataset: Dataset, source: str) -> tuple[str, list[tuple[str, int]]]:
    """The source path (a file, or a folder of files) and its files with their sizes."""
    uri = ownership.owned_path(user, dataset.project, source, "source", required=True)
    files = source_files(parse_bos_uri(uri))
    if not files:
        raise ValidationError({"source": f"{uri} does not exist or holds no files."})
    wrong = [key for key, _ in files if not key.lower().endswith(ACCEPTED_EXTENSIONS)]
    if wrong:
        raise ValidationError(
            {
                "source": f"Only csv, tsv and txt files can be uploaded; {uri} holds "
                + ", ".join(wrong[:3])
                + (f" and {len(wrong) - 3} more" if len(wrong) > 3 else "")
                + "."
            }
        )
    if all(size == 0 for _, size in files):
        raise ValidationError({"source": f"{uri} is empty: there are no rows to upload."})
    return uri, files


def _check_format(separator, encoding) -> None:
    if not isinstance(separator, str) or len(separator) != 1 or separator in '\r\n"':
        raise ValidationError(
            {"separator": "The column separator is one character (e.g. ',' or a tab)."}
        )
    _check_choice(encoding, ENCODINGS, "encoding", "Encoding")


def preview_source(
    user, dataset: Dataset, *, source, separator=",", header=False, encoding="utf-8"
):
    """Step 1 of an upload: the first rows of the source as the settings read them, with
    the column names and types guessed (the user confirms or changes them in step 2).
    `header_guess` says whether the first line looks like a header; `header=None` reads the
    file as it says (`header` in the answer is the setting used, `header_guessed` whether
    it came from the guess)."""
    _require_own(user, dataset)
    _check_format(separator, encoding)
    uri, files = _check_source(user, dataset, source)
    bucket = parse_bos_uri(uri).bucket
    first = next(key for key, size in files if size > 0)
    sample = read_object_bytes(bucket, first, PREVIEW_BYTES)
    try:
        result = _table_import().preview(
            sample,
            separator=separator,
            header=None if header is None else bool(header),
            encoding=encoding,
        )
    except ValueError as exc:
        raise ValidationError({"source": f"bos://{bucket}/{first}: {exc}"}) from None
    current = dataset.current_version
    return {
        "source": uri,
        "files": [{"key": key, "size": size} for key, size in files],
        "previewed": f"bos://{bucket}/{first}",
        "current_columns": current.columns if current else [],
        "header_guessed": header is None,
        **result,
    }


def _check_columns(columns) -> list[dict]:
    if not isinstance(columns, list) or not columns:
        raise ValidationError({"columns": "Give every column a name and a type."})
    cleaned = []
    for index, column in enumerate(columns, start=1):
        if not isinstance(column, dict):
            raise ValidationError({"columns": f"Column {index} must be {{name, type}}."})
        cleaned.append({"name": str(column.get("name", "")).strip(), "type": column.get("type")})
    try:
        _table_import().validate_columns(cleaned)
    except ValueError as exc:
        raise ValidationError({"columns": str(exc)}) from None
    return cleaned


def _conversion_package() -> ResourcePackage:
    # The largest CPU package: pyarrow's reader uses every core it is given, and a lease
    # never takes more than the host has (a 2-core host lends its 2 cores).
    package = (
        ResourcePackage.objects.filter(module=Module.TRAIN, device_kind="cpu", enabled=True)
        .order_by("-cpu_cores")
        .first()
    )
    if package is None:
        raise ValidationError({"package": "No CPU training package is enabled for conversions."})
    return package


def start_upload(
    user,
    dataset: Dataset,
    *,
    source,
    mode=UploadMode.SUPPLEMENT,
    separator=",",
    header=False,
    encoding="utf-8",
    abnormal=AbnormalRule.SKIP,
    columns,
) -> DatasetVersion:
    """Step 2: convert the source to a new version of parquet files, as a job. Until it
    succeeds the current version stays what it was (and stays so if it fails)."""
    _require_own(user, dataset)
    _check_choice(mode, UploadMode.values, "mode", "Upload mode")
    _check_choice(abnormal, AbnormalRule.values, "abnormal", "Abnormal row handling")
    _check_format(separator, encoding)
    if dataset.versions.filter(status=DatasetStatus.PROCESSING).exists():
        raise ValidationError({"source": "An upload is still processing; wait for it to end."})
    uri, _ = _check_source(user, dataset, source)
    columns = _check_columns(columns)
    current = dataset.current_version
    previous_parts = []
    if mode == UploadMode.SUPPLEMENT and current:
        if columns != current.columns:
            expected = ", ".join(f"{c['name']} ({c['type']})" for c in current.columns)
            raise ValidationError(
                {
                    "columns": "Supplement appends rows of the same columns: expected "
                    f"{expected}. Use replace to change the columns."
                }
            )
        previous_parts = current.parts
    number = (dataset.versions.aggregate(n=Max("number"))["n"] or 0) + 1
    with transaction.atomic():
        job = jobs.create_job(
            user,
            dataset.project,
            name=f"dataset{dataset.pk}-v{number}"[:39],
            kind=conversion.KIND,
            algorithm=conversion.ALGORITHM,
            params={
                "separator": separator,
                "header": bool(header),
                "encoding": encoding,
                "abnormal": abnormal,
                "columns": columns,
                "previous_parts": previous_parts,
            },
            package_id=_conversion_package().pk,
            time_limit_s=conversion.TIME_LIMIT_S,
            output_path=dataset.storage_path,
            train_data_path=uri,
        )
        version = DatasetVersion.objects.create(
            dataset=dataset,
            number=number,
            mode=mode,
            source=uri,
            options={
                "separator": separator,
                "header": bool(header),
                "encoding": encoding,
                "abnormal": abnormal,
            },
            columns=columns,
            job=job,
            created_by=user,
        )
        Dataset.objects.filter(pk=dataset.pk).update(updated_at=timezone.now())
    return version


# -- the end of a conversion -------------------------------------------------------------


def _job_output(job: Job) -> str:
    return job.output_path.rstrip("/") + f"/{job.job_id}/output/"


def _read_result_file(job: Job, name: str) -> dict | None:
    """A file the runner wrote to output/: from the run's workspace on this host, else
    (success only: output/ is staged out then) from the store."""
    run = job.runs.filter(index=0).first()
    if run and run.run_dir:
        local = Path(run.run_dir) / "workspace" / "output" / name
        if local.exists():
            return json.loads(local.read_text())
    if job.status == JobStatus.SUCCEEDED:
        path = parse_bos_uri(_job_output(job) + name)
        try:
            return json.loads(read_object_bytes(path.bucket, path.key))
        except ObjectNotFound:
            return None
    return None


def finish_version(job: Job) -> DatasetVersion | None:
    """Record the outcome of a conversion job on its version (once)."""
    version = DatasetVersion.objects.filter(job=job, status=DatasetStatus.PROCESSING).first()
    if version is None:
        return None
    summary = _read_result_file(job, "summary.json") if job.status == JobStatus.SUCCEEDED else None
    if summary is not None:
        new_parts = [_job_output(job) + name for name in summary["parts"]]
        previous = version.dataset.current_version
        kept = previous.parts if version.mode == UploadMode.SUPPLEMENT and previous else []
        version.parts = kept + new_parts
        version.rows = summary["rows"]
        version.columns = summary["columns"]
        version.stats = summary["stats"]
        version.abnormal = summary.get("abnormal") or {}
        version.bad_lines = version.abnormal.get("lines", [])
        version.measurements = {
            "seconds": summary.get("seconds") or {},
            "peak_rss_mb": summary.get("peak_rss_mb"),
        }
        version.status = DatasetStatus.SUCCEEDED
    else:
        error = _read_result_file(job, "error.json") or {}
        version.status = DatasetStatus.FAILED
        version.reason = error.get("error") or job.reason or "the conversion did not finish"
        version.bad_lines = error.get("lines") or []
    version.finished_at = timezone.now()
    with transaction.atomic():
        version.save()
        if version.status == DatasetStatus.SUCCEEDED:
            Dataset.objects.filter(pk=version.dataset_id).update(
                current_version=version, updated_at=timezone.now()
            )
    return version
