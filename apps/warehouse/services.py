"""Writes and rules of the model warehouse: import a model (or a new version) from a
bos:// path, an upload or a finished job's output; every version is validated by loading
it in a separate process (workers.runners.model_check) and refused with the loader's error
if it does not load. Its files are copied into the project's warehouse bucket, so a version
owns them: deleting it deletes them, and deleting the source loses nothing."""

import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Max
from minio.commonconfig import CopySource

from apps.projects.models import Role
from apps.projects.services import require_role
from apps.storage import ownership
from apps.storage import services as storage
from apps.storage.client import ObjectNotFound, get_client, translate_errors
from apps.storage.models import Bucket
from apps.storage.paths import BosPath, parse_bos_uri
from apps.storage.selectors import INTERNAL_BUCKET_PREFIXES
from apps.warehouse.models import Model, ModelType, ModelVersion, Source
from workers import confinement, sandbox

MODEL_NAME_RULE = re.compile(r"^[^\W\d_][\w-]{0,49}$")
MODEL_NAME_HELP = "1-50 letters, digits, '_' and '-', starting with a letter"
MAX_TAGS, MAX_TAG_LENGTH = 20, 32
CHECK_TIMEOUT_S = int(os.environ.get("BML_MODEL_CHECK_TIMEOUT", "300"))


# -- names, tags, types ------------------------------------------------------------------


def validate_name(name: str) -> str:
    name = (name or "").strip()
    if not MODEL_NAME_RULE.match(name):
        raise ValidationError({"name": f"Invalid model name '{name}': {MODEL_NAME_HELP}."})
    return name


def clean_tags(tags) -> list[str]:
    if tags in (None, ""):
        return []
    if isinstance(tags, str):
        tags = [t for t in re.split(r"[,\s]+", tags) if t]
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        raise ValidationError({"tags": "Tags are a list of words."})
    cleaned = list(dict.fromkeys(t.strip() for t in tags if t.strip()))
    if len(cleaned) > MAX_TAGS or any(len(t) > MAX_TAG_LENGTH for t in cleaned):
        raise ValidationError(
            {"tags": f"At most {MAX_TAGS} tags of at most {MAX_TAG_LENGTH} characters."}
        )
    return cleaned


def validate_type(model_type: str, fields) -> tuple[str, dict]:
    if model_type not in ModelType.values:
        known = ", ".join(ModelType.values)
        raise ValidationError({"model_type": f"Model type must be one of {known}."})
    if fields in (None, ""):
        fields = {}
    if isinstance(fields, str):
        try:
            fields = json.loads(fields)
        except ValueError:
            raise ValidationError({"fields": "Fields must be a JSON object."}) from None
    if not isinstance(fields, dict):
        raise ValidationError({"fields": "Fields must be a JSON object."})
    return model_type, fields


# -- where a version's files live --------------------------------------------------------


def warehouse_bucket(user, project) -> str:
    """The project's warehouse bucket (made on first use, owned by the project)."""
    name = f"{INTERNAL_BUCKET_PREFIXES[0]}{project.pk}"
    if not Bucket.objects.filter(name=name, project=project).exists():
        storage.create_bucket(user, project, name)
    return name


def _copy_into(source: BosPath, bucket: str, prefix: str) -> int:
    """Server-side copy of a file or a folder's files under bucket/prefix; returns bytes."""
    client = get_client()
    total = 0
    with translate_errors():
        if source.key and not source.key.endswith("/"):
            names = [(source.key, source.key.rsplit("/", 1)[-1])]
        else:
            objects = client.list_objects(source.bucket, prefix=source.key or None, recursive=True)
            names = [
                (o.object_name, o.object_name[len(source.key) :])
                for o in objects
                if not o.object_name.endswith("/")
            ]
        if not names:
            raise ValidationError({"path": f"{source} holds no files."})
    missing = ValidationError({"path": f"{source} does not exist."})
    for key, relative in names:
        try:
            with translate_errors():
                result = client.copy_object(
                    bucket, prefix + relative, CopySource(source.bucket, key)
                )
                total += client.stat_object(bucket, result.object_name).size
        except ObjectNotFound:
            raise missing from None
    return total


def download_files(bucket: str, prefix: str, into: Path) -> Path:
    """A version's files on local disk (for the load check, and for the replicas of a
    prediction service); a single file is returned as that file, several as their folder."""
    client = get_client()
    with translate_errors():
        keys = [
            o.object_name
            for o in client.list_objects(bucket, prefix=prefix, recursive=True)
            if not o.object_name.endswith("/")
        ]
        for key in keys:
            client.fget_object(bucket, key, str(into / key[len(prefix) :]))
    files = [p for p in into.rglob("*") if p.is_file()]
    return files[0] if len(files) == 1 and files[0].parent == into else into


def check_loads(
    path: Path, model_type: str, fields: dict, workdir: Path, project_id: int = 0
) -> dict:
    """Load the model in a separate process with a time limit and none of the appliance's
    environment, confined like user code (an imported pickle or a custom predictor.py is
    user code); the loader's error becomes a field error."""
    env = {
        "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin",
        "HOME": str(workdir),
        "TMPDIR": str(workdir),
        "LANG": "C.UTF-8",
        "KERAS_BACKEND": "torch",
        "OMP_NUM_THREADS": "1",
    }
    command = [sys.executable, "-m", "workers.runners.model_check", "--type", model_type]
    command += ["--path", str(path), "--fields", json.dumps(fields)]
    rules = confinement.for_run(project_id, workdir, readable=[Path(path)])
    sandbox.give_to_run(workdir, rules.uid)
    try:
        done = subprocess.run(
            sandbox.command(command, rules),
            preexec_fn=sandbox.limits(rules),
            cwd=settings.BASE_DIR,
            env=env,
            capture_output=True,
            text=True,
            timeout=CHECK_TIMEOUT_S,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired:
        raise ValidationError(
            {"path": f"The model did not load within {CHECK_TIMEOUT_S} s."}
        ) from None
    lines = done.stdout.strip().splitlines()
    try:
        outcome = json.loads(lines[-1]) if lines else {}
    except ValueError:
        outcome = {}
    if done.returncode != 0 or not outcome.get("ok"):
        error = outcome.get("error") or (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise ValidationError({"path": f"The model does not load as {model_type}: {error}"})
    return outcome.get("info") or {}


def _new_version(
    user,
    model: Model,
    *,
    model_type,
    fields,
    description,
    copy_from: BosPath | None = None,
    upload=None,
    source=Source.IMPORTED,
    source_detail="",
    source_job=None,
    lineage=None,
) -> ModelVersion:
    model_type, fields = validate_type(model_type, fields)
    number = (model.versions.aggregate(n=Max("version"))["n"] or 0) + 1
    bucket = warehouse_bucket(user, model.project)
    prefix = f"models/{model.pk}/{number}/"
    try:
        if upload is not None:
            stream, filename, size = upload
            filename = Path(filename or "model").name
            storage.upload_object(
                user, Bucket.objects.get(name=bucket), prefix + filename, stream, size
            )
            size_bytes, source_detail = size, source_detail or f"upload: {filename}"
        else:
            size_bytes = _copy_into(copy_from, bucket, prefix)
        with tempfile.TemporaryDirectory(prefix="bml-model-check-") as tmp:
            files = Path(tmp) / "model"
            files.mkdir()
            local = download_files(bucket, prefix, files)
            info = check_loads(local, model_type, fields, Path(tmp), model.project_id)
        with transaction.atomic():
            version = ModelVersion.objects.create(
                model=model,
                version=number,
                model_type=model_type,
                fields=fields,
                path=f"bos://{bucket}/{prefix}",
                source=source,
                source_detail=source_detail,
                source_job=source_job,
                lineage=lineage or {},
                description=(description or "")[:2000],
                info=info,
                size_bytes=size_bytes,
                created_by=user,
            )
            Model.objects.filter(pk=model.pk).update(updated_at=version.created_at)
    except BaseException:
        storage.delete_prefix(bucket, prefix)  # a refused import leaves nothing behind
        raise
    return version


def _source_path(user, project, path: str, field: str = "path") -> BosPath:
    uri = ownership.owned_path(user, project, path, field, required=True)
    return parse_bos_uri(uri, field)


# -- imports -----------------------------------------------------------------------------


def _create_model(user, project, name: str, **fields) -> Model:
    """A new model of the project (its first version comes next); names are unique."""
    taken = ValidationError({"name": f"This project already has a model named '{name}'."})
    if Model.objects.filter(project=project, name=name).exists():
        raise taken
    try:
        return Model.objects.create(project=project, name=name, created_by=user, **fields)
    except IntegrityError:
        raise taken from None


def import_model(
    user,
    project,
    *,
    name,
    model_type,
    path="",
    upload=None,
    fields=None,
    tags=None,
    description="",
) -> ModelVersion:
    """The spec's "Import New Model": a new model with its version 1."""
    require_role(user, project, Role.DEVELOPER)
    name, tags = validate_name(name), clean_tags(tags)
    model = _create_model(user, project, name, tags=tags, description=description)
    try:
        return add_version(
            user,
            model,
            model_type=model_type,
            path=path,
            upload=upload,
            fields=fields,
            description=description,
        )
    except BaseException:
        model.delete()  # no model without a version
        raise


def add_version(
    user, model: Model, *, model_type, path="", upload=None, fields=None, description=""
) -> ModelVersion:
    """The spec's "import as new version of existing model"."""
    _require_own(user, model)
    copy_from = None if upload is not None else _source_path(user, model.project, path)
    return _new_version(
        user,
        model,
        model_type=model_type,
        fields=fields,
        description=description,
        copy_from=copy_from,
        upload=upload,
        source_detail=str(copy_from or ""),
    )


# -- edits and deletes -------------------------------------------------------------------


def _require_own(user, model: Model) -> None:
    if model.is_common:
        from django.core.exceptions import PermissionDenied

        raise PermissionDenied("Common models are read-only.")
    require_role(user, model.project, Role.DEVELOPER)


def update_model(user, model: Model, *, tags=None, description=None) -> Model:
    _require_own(user, model)
    if tags is not None:
        model.tags = clean_tags(tags)
    if description is not None:
        model.description = str(description)[:2000]
    model.save(update_fields=["tags", "description", "updated_at"])
    return model


def update_version(user, version: ModelVersion, *, description) -> ModelVersion:
    _require_own(user, version.model)
    if description is None:
        return version
    version.description = str(description)[:2000]
    version.save(update_fields=["description", "updated_at"])
    return version


def delete_version(user, version: ModelVersion) -> None:
    """Delete a version and its stored files (no orphans); refused while a prediction
    service uses it."""
    _require_own(user, version.model)
    in_use = sorted({sv.service.name for sv in version.service_versions.select_related("service")})
    if in_use:
        raise ValidationError(
            {
                "version": f"Version {version.version} is used by the prediction service(s) "
                f"{', '.join(in_use)}; change or delete them first."
            }
        )
    path = parse_bos_uri(version.path)
    storage.delete_prefix(path.bucket, path.key)
    version.delete()


def delete_model(user, model: Model) -> None:
    """Delete all versions of a model (their files too), then the model."""
    _require_own(user, model)
    versions = list(model.versions.all())
    for version in versions:  # refuse before deleting anything
        if version.service_versions.exists():
            delete_version(user, version)
    for version in versions:
        delete_version(user, version)
    model.delete()
