"""Writes and rules of prediction services: create, add a version, edit (model, proportions,
package, replicas, batching), recover a past configuration, stop, restart, delete.

Every change that alters what runs is recorded as a Revision holding the whole version
list, so "recover" is applying an old revision as a new change. The processes themselves
follow the records: `apps.serving.replicas.reconcile` (the scheduler loop) starts, replaces
and stops replicas to match, within a quarter of a second.
"""

import re
from dataclasses import asdict, dataclass

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Max

from apps.billing.models import Module, ResourcePackage
from apps.projects.models import Role
from apps.projects.services import require_role
from apps.serving import replicas as replica_control
from apps.serving.models import (
    Desired,
    Revision,
    Service,
    ServiceStatus,
    ServiceVersion,
    new_access_key,
)
from apps.warehouse.models import ModelVersion
from workers import devices

SERVICE_NAME_RULE = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,38}$")
SERVICE_NAME_HELP = (
    "Service names are letters, digits, '-' and '_', start with a letter, "
    "and are shorter than 40 characters."
)
MAX_VERSION_NUMBER = 9999  # the spec: "a new four-bit version number"
MAX_REPLICAS = 8
MAX_PROPORTION = 100
MAX_BATCH_SIZE = 256
MAX_WAIT_MS = 1000


@dataclass
class VersionConfig:
    """One version as a user configures it (the spec's create / add version form)."""

    number: int
    model_version: ModelVersion
    proportion: int = 1
    replicas: int = 1
    package: ResourcePackage | None = None
    max_batch_size: int = 1
    max_wait_ms: float = 5.0

    def as_record(self) -> dict:
        data = asdict(self)
        data["model_version"] = self.model_version.pk
        data["package"] = self.package.pk
        return data


# -- validation --------------------------------------------------------------------------


def default_package() -> ResourcePackage | None:
    return (
        ResourcePackage.objects.filter(module=Module.PREDICTION, enabled=True, device_count=0)
        .order_by("cpu_cores")
        .first()
    )


def _int_in(value, field: str, low: int, high: int, label: str = "") -> int:
    label = label or field
    try:
        number = int(value)
        if isinstance(value, bool) or number != float(value):
            raise ValueError
    except (TypeError, ValueError):
        raise ValidationError({field: f"{label} must be a whole number."}) from None
    if not low <= number <= high:
        raise ValidationError({field: f"{label} must be between {low} and {high}."})
    return number


def _validate_version(config: VersionConfig, project) -> VersionConfig:
    config.number = _int_in(config.number, "number", 1, MAX_VERSION_NUMBER, "The version number")
    config.proportion = _int_in(config.proportion, "proportion", 0, MAX_PROPORTION)
    config.replicas = _int_in(config.replicas, "replicas", 1, MAX_REPLICAS)
    config.max_batch_size = _int_in(config.max_batch_size, "max_batch_size", 1, MAX_BATCH_SIZE)
    try:
        config.max_wait_ms = float(config.max_wait_ms)
    except (TypeError, ValueError):
        raise ValidationError({"max_wait_ms": "max_wait_ms must be a number."}) from None
    if not 0 <= config.max_wait_ms <= MAX_WAIT_MS:
        raise ValidationError({"max_wait_ms": f"max_wait_ms must be between 0 and {MAX_WAIT_MS}."})
    model = config.model_version.model
    if not model.is_common and model.project_id != project.pk:
        raise ValidationError({"model": "No such model in this project."})
    config.package = config.package or default_package()
    package = config.package
    if package is None or package.module != Module.PREDICTION or not package.enabled:
        raise ValidationError({"package": "Choose a resource package of the prediction module."})
    never = devices.fits_host(package, devices.this_host(), 1)
    if never:
        raise ValidationError({"package": never})
    return config


def _check_versions(configs: list[VersionConfig]) -> None:
    if not configs:
        raise ValidationError({"versions": "A service needs at least one version."})
    numbers = [c.number for c in configs]
    if len(set(numbers)) != len(numbers):
        raise ValidationError({"number": "Version numbers must differ."})
    if not any(c.proportion for c in configs):
        raise ValidationError({"proportion": "At least one version needs a proportion above 0."})


def _endpoint_for(name: str, project) -> str:
    """The access address: the name if no other service on this appliance has it."""
    for candidate in (name, f"{name}-p{project.pk}"):
        if not Service.objects.filter(endpoint=candidate).exists():
            return candidate
    return f"{name}-{new_access_key()[:6].lower()}"


# -- writes ------------------------------------------------------------------------------


def current_configs(service: Service) -> list[VersionConfig]:
    return [
        VersionConfig(
            number=v.number,
            model_version=v.model_version,
            proportion=v.proportion,
            replicas=v.replicas,
            package=v.package,
            max_batch_size=v.max_batch_size,
            max_wait_ms=v.max_wait_ms,
        )
        for v in service.versions.select_related("model_version__model", "package")
    ]


def _record(user, service: Service, note: str) -> Revision:
    config = {"versions": [c.as_record() for c in current_configs(service)]}
    number = (service.revisions.aggregate(n=Max("number"))["n"] or 0) + 1
    return Revision.objects.create(
        service=service, number=number, note=note[:255], config=config, created_by=user
    )


def _apply(service: Service, configs: list[VersionConfig]) -> None:
    """Make the service's versions exactly `configs`; the loop then replaces the replicas
    whose launch spec changed, scales the others and stops the removed ones."""
    wanted = {c.number: c for c in configs}
    for version in service.versions.all():
        if version.number not in wanted:
            replica_control.stop_all_of_version(version)
            version.delete()
    for config in configs:
        values = {
            "model_version": config.model_version,
            "proportion": config.proportion,
            "replicas": config.replicas,
            "package": config.package,
            "max_batch_size": config.max_batch_size,
            "max_wait_ms": config.max_wait_ms,
        }
        version, created = ServiceVersion.objects.get_or_create(
            service=service, number=config.number, defaults=values
        )
        if not created:
            for field, value in values.items():
                setattr(version, field, value)
            version.save()


def create_service(
    user, project, *, name: str, version: VersionConfig, description: str = ""
) -> Service:
    require_role(user, project, Role.DEVELOPER)
    name = (name or "").strip()
    if not SERVICE_NAME_RULE.match(name):
        raise ValidationError({"name": SERVICE_NAME_HELP})
    config = _validate_version(version, project)
    try:
        with transaction.atomic():
            service = Service.objects.create(
                project=project,
                name=name,
                endpoint=_endpoint_for(name, project),
                description=str(description or "")[:2000],
                created_by=user,
            )
            _apply(service, [config])
            _record(user, service, f"created with version {config.number}")
    except IntegrityError:
        raise ValidationError(
            {"name": f"A service named '{name}' already exists in this project."}
        ) from None
    return service


def add_version(user, service: Service, version: VersionConfig) -> ServiceVersion:
    require_role(user, service.project, Role.DEVELOPER)
    config = _validate_version(version, service.project)
    if service.versions.filter(number=config.number).exists():
        raise ValidationError({"number": f"Version {config.number} exists in this service."})
    with transaction.atomic():
        _apply(service, [*current_configs(service), config])
        _record(user, service, f"added version {config.number}")
    return service.versions.get(number=config.number)


def edit_service(user, service: Service, configs: list[VersionConfig], note="edited") -> Service:
    """Replace the whole version list (the spec's "Edit": models, proportions of all
    versions, package, replicas); versions left out are removed."""
    require_role(user, service.project, Role.DEVELOPER)
    configs = [_validate_version(c, service.project) for c in configs]
    _check_versions(configs)
    with transaction.atomic():
        _apply(service, configs)
        _record(user, service, note)
    service.refresh_from_db()
    return service


def recover(user, service: Service, revision: Revision) -> Service:
    """Roll back to a configuration of the history (itself recorded as a new revision)."""
    if revision.service_id != service.pk:
        raise ValidationError({"revision": "No such revision of this service."})
    configs = []
    for item in revision.config["versions"]:
        model_version = ModelVersion.objects.filter(pk=item["model_version"]).first()
        package = ResourcePackage.objects.filter(pk=item["package"]).first()
        if model_version is None:
            raise ValidationError(
                {"revision": f"Version {item['number']}'s model version no longer exists."}
            )
        configs.append(
            VersionConfig(**{**item, "model_version": model_version, "package": package})
        )
    return edit_service(user, service, configs, note=f"recovered revision {revision.number}")


def stop_service(user, service: Service) -> Service:
    require_role(user, service.project, Role.DEVELOPER)
    with transaction.atomic():
        Service.objects.filter(pk=service.pk).update(desired=Desired.STOPPED)
        replica_control.stop_all([service])
        service.versions.update(status=ServiceStatus.STOPPED, reason="")
        Service.objects.filter(pk=service.pk).update(status=ServiceStatus.STOPPED, reason="")
    service.refresh_from_db()
    return service


def restart_service(user, service: Service) -> Service:
    """Start a stopped or failed service again (replicas that failed get fresh tries)."""
    require_role(user, service.project, Role.DEVELOPER)
    with transaction.atomic():
        replica_control.stop_all([service])
        service.versions.update(status=ServiceStatus.DEPLOYING, reason="")
        Service.objects.filter(pk=service.pk).update(
            desired=Desired.RUNNING, status=ServiceStatus.DEPLOYING, reason=""
        )
    service.refresh_from_db()
    return service


def delete_service(user, service: Service) -> None:
    require_role(user, service.project, Role.DEVELOPER)
    if service.desired != Desired.STOPPED and service.status != ServiceStatus.FAILED:
        raise ValidationError(
            {"service": "Stop the service first: only stopped or failed services are deleted."}
        )
    with transaction.atomic():
        replica_control.stop_all([service])
        service.delete()


def update_description(user, service: Service, description: str) -> Service:
    require_role(user, service.project, Role.DEVELOPER)
    service.description = str(description or "")[:2000]
    service.save(update_fields=["description", "updated_at"])
    return service


def new_key(user, service: Service) -> Service:
    """A new access key; the old one stops working within a second (the gateway's refresh)."""
    require_role(user, service.project, Role.DEVELOPER)
    service.access_key = new_access_key()
    service.save(update_fields=["access_key", "updated_at"])
    return service
