"""What the console's service forms post, turned into the services' VersionConfig; the
services' errors turned into errors next to the fields."""

from django.core.exceptions import ValidationError
from django.http import Http404

from apps.billing.models import Module, ResourcePackage
from apps.serving.services import VersionConfig
from apps.warehouse import selectors as warehouse
from apps.warehouse.models import ModelVersion

# A version as the create and edit forms post it ("number" is the service version).
VERSION_FIELDS = (
    "number",
    "model",
    "model_version",
    "proportion",
    "replicas",
    "package",
    "max_batch_size",
    "max_wait_ms",
)
EDIT_FIELDS = tuple(f for f in VERSION_FIELDS if f != "number")
# The services name some fields differently from the forms.
FIELD_OF_ERROR = {"version": "number", "versions": "number", "model_version": "model"}


def errors_by_field(exc: ValidationError, fields) -> dict[str, list[str]]:
    """{form field: [messages]}; errors of no field of the form go to "general"."""
    found: dict[str, list[str]] = {}
    items = exc.message_dict.items() if hasattr(exc, "error_dict") else [("", exc.messages)]
    for key, messages in items:
        field = FIELD_OF_ERROR.get(key, key)
        found.setdefault(field if field in fields else "general", []).extend(messages)
    return found


def prediction_packages():
    return ResourcePackage.objects.filter(module=Module.PREDICTION, enabled=True)


def model_choices(user, project) -> list:
    """The project's models and the common models, each with its versions (newest first)."""
    models = [
        *warehouse.models_for(user, project).order_by("name"),
        *warehouse.common_models().order_by("name"),
    ]
    versions: dict[int, list] = {}
    for version in ModelVersion.objects.filter(model__in=[m.pk for m in models]).order_by(
        "model", "-version"
    ):
        versions.setdefault(version.model_id, []).append(version)
    for model in models:
        model.version_list = versions.get(model.pk, [])
    return models


def resolve_model_version(user, model, number) -> ModelVersion:
    try:
        return warehouse.get_version(warehouse.get_model(user, model), number)
    except Http404:
        raise ValidationError({"model": "Choose a model and one of its versions."}) from None


def resolve_package(value) -> ResourcePackage | None:
    if value in ("", None):
        return None  # the services choose the smallest CPU package
    try:
        package = prediction_packages().filter(pk=int(value)).first()
    except (TypeError, ValueError):
        package = None
    if package is None:
        raise ValidationError({"package": "Choose a resource package of the prediction module."})
    return package


def version_config(user, form: dict) -> VersionConfig:
    """The services check the numbers (and say which is wrong); here only the references."""
    return VersionConfig(
        number=form["number"],
        model_version=resolve_model_version(user, form["model"], form["model_version"]),
        proportion=form["proportion"],
        replicas=form["replicas"],
        package=resolve_package(form["package"]),
        max_batch_size=form["max_batch_size"],
        max_wait_ms=form["max_wait_ms"],
    )
