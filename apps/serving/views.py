"""Console pages of prediction services (the spec's "Prediction Service"): the list, the
create / add version form, a service's details (basic information, versions and their
replicas, edit, configuration history, the test console, service quality) and a replica's
details with its logs. The writes are the services of apps.serving.services."""

import json
from pathlib import Path
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db.models import Count
from django.http import JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from apps.projects.models import Role
from apps.projects.selectors import current_project, may_write
from apps.projects.services import require_role
from apps.projects.web import report_errors
from apps.serving import quality, replicas, selectors, services
from apps.serving.forms import (
    EDIT_FIELDS,
    VERSION_FIELDS,
    errors_by_field,
    model_choices,
    prediction_packages,
    version_config,
)
from apps.serving.model_io import model_io
from apps.serving.models import Desired, ReplicaStatus, ServiceStatus
from bml_site.numbers import as_id

PAGE_SIZE = 50
LOG_PAGE_BYTES = 64 * 1024
RANGES = list(quality.RANGES)
# A 1x1 PNG: the example body of an image model's test console (any image is resized).
TINY_PNG = (
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJ"
    "AAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)
CREATE_FIELDS = ("mode", "name", "service", *VERSION_FIELDS, "description")


def gateway_path(service) -> str:
    return f"/v1/endpoints/{service.endpoint}/invocations?interface=predict&action=predict"


def writable_service(request, pk):
    """The service, if the user may change it: 404 for strangers, 403 for viewers."""
    service = selectors.get_service(request.user, pk)
    require_role(request.user, service.project, Role.DEVELOPER)
    return service


def back_to(request, default: str) -> str:
    target = request.POST.get("next", "")
    if target and url_has_allowed_host_and_scheme(target, {request.get_host()}):
        return target
    return default


# -- the list ----------------------------------------------------------------------------


@login_required
@require_safe
def service_list(request):
    project = current_project(request)
    found = (
        selectors.services_for(request.user, project)
        .annotate(version_count=Count("versions", distinct=True))
        .order_by("-created_at", "-pk")
    )
    page = Paginator(found, PAGE_SIZE).get_page(request.GET.get("page"))
    writable: dict[int, bool] = {}
    for service in page:
        if service.project_id not in writable:
            writable[service.project_id] = selectors.user_may_write(request.user, service)
        service.may_write = writable[service.project_id]
        service.access_url = request.build_absolute_uri(gateway_path(service))
    return render(
        request,
        "serving/list.html",
        {
            "project": project,
            "page": page,
            "may_write": may_write(request.user, project),
        },
    )


# -- create a service or add a version -----------------------------------------------------


def _next_number(service) -> int:
    numbers = list(service.versions.values_list("number", flat=True))
    return min(max(numbers, default=0) + 1, services.MAX_VERSION_NUMBER)


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def service_create(request):
    project = current_project(request)
    if project is not None:  # a viewer is refused the form, not only its submission
        require_role(request.user, project, Role.DEVELOPER)
    existing = list(selectors.services_for(request.user, project).order_by("name"))
    for service in existing:
        service.next_number = _next_number(service)
    default = services.default_package()
    form = {
        "mode": "new",
        "number": 1,
        "proportion": 1,
        "replicas": 1,
        "package": default.pk if default else "",
        "max_batch_size": 1,
        "max_wait_ms": 5,
    }
    if request.method != "POST":
        chosen = next((s for s in existing if str(s.pk) == request.GET.get("service")), None)
        if chosen is not None:
            form.update(mode="version", service=chosen.pk, number=chosen.next_number)
        form.update(
            model=request.GET.get("model", ""), model_version=request.GET.get("version", "")
        )
    errors: dict[str, list[str]] = {}
    if request.method == "POST":
        form = {name: request.POST.get(name, "").strip() for name in CREATE_FIELDS}
        if project is None:
            errors = {"general": ["Create a project first: services belong to a project."]}
        else:
            try:
                service = _create(request, project, existing, form)
                return redirect("serving:detail", pk=service.pk)
            except ValidationError as exc:
                errors = errors_by_field(exc, CREATE_FIELDS)
    return render(
        request,
        "serving/create.html",
        {
            "project": project,
            "form": form,
            "errors": errors,
            "existing": existing,
            "models": model_choices(request.user, project),
            "packages": prediction_packages(),
            "limits": limits(),
        },
    )


def _create(request, project, existing, form):
    if form["mode"] == "version":
        service = next((s for s in existing if str(s.pk) == form["service"]), None)
        if service is None:
            raise ValidationError({"service": "Choose one of this project's services."})
        config = version_config(request.user, form)
        version = services.add_version(request.user, service, config)
        messages.success(request, f"Version {version.number} added to {service.name}: deploying.")
        return service
    config = version_config(request.user, form)
    service = services.create_service(
        request.user, project, name=form["name"], version=config, description=form["description"]
    )
    messages.success(request, f"Service {service.name} created: deploying.")
    return service


def limits() -> dict:
    return {
        "version": services.MAX_VERSION_NUMBER,
        "replicas": services.MAX_REPLICAS,
        "proportion": services.MAX_PROPORTION,
        "batch": services.MAX_BATCH_SIZE,
        "wait": services.MAX_WAIT_MS,
    }


# -- a service's details -------------------------------------------------------------------


def _versions(service) -> list:
    versions = list(selectors.versions_of(service))
    total = sum(v.proportion for v in versions) or 1
    for version in versions:
        version.replica_list = sorted(version.runs.all(), key=lambda r: r.index)
        version.running = sum(r.status == ReplicaStatus.RUNNING for r in version.replica_list)
        version.share = round(100 * version.proportion / total, 1)
    return versions


def _revisions(service) -> list:
    from apps.billing.models import ResourcePackage
    from apps.warehouse.models import ModelVersion

    revisions = list(service.revisions.select_related("created_by")[:50])
    items = [item for r in revisions for item in r.config.get("versions", [])]
    model_versions = {
        mv.pk: str(mv)
        for mv in ModelVersion.objects.filter(
            pk__in={i["model_version"] for i in items}
        ).select_related("model")
    }
    packages = dict(
        ResourcePackage.objects.filter(pk__in={i["package"] for i in items}).values_list(
            "pk", "name"
        )
    )
    for revision in revisions:
        revision.lines = [
            {
                **item,
                "model_name": model_versions.get(item["model_version"], "(deleted model version)"),
                "package_name": packages.get(item["package"], "(deleted package)"),
            }
            for item in revision.config.get("versions", [])
        ]
    return revisions


def is_image_model(model_version) -> bool:
    if model_version.model_type == "image_classification":
        return True
    if model_version.model_type == "keras":  # the loader found an image input [H, W, C]
        return bool(model_version.info.get("images"))
    shape = model_version.info.get("input_shape")
    return model_version.model_type == "pytorch" and bool(
        model_version.fields.get("architecture") or (shape and len(shape) == 3)
    )


def example_body(versions) -> str:
    """A request the first version's model takes, prefilled in the test console."""
    if not versions:
        return json.dumps({"instances": []})
    model_version = versions[0].model_version
    if is_image_model(model_version):
        return json.dumps({"instances": [{"data": TINY_PNG}]})
    if isinstance(model_version.info.get("example"), str):  # the loader's own example
        return json.dumps({"instances": [model_version.info["example"]]})
    shape = model_version.info.get("input_shape") or []
    width = model_version.info.get("n_features") or (shape[0] if len(shape) == 1 else 4)
    return json.dumps({"instances": [[1.0] * int(width)]})


@login_required
@require_safe
def service_detail(request, pk):
    service = selectors.get_service(request.user, pk)
    tab = "quality" if request.GET.get("tab") == "quality" else "info"
    versions = _versions(service)
    context = {
        "service": service,
        "tab": tab,
        "versions": versions,
        "may_write": selectors.user_may_write(request.user, service),
        "access_url": request.build_absolute_uri(gateway_path(service)),
        # What the spec's client takes as ENDPOINT_URL: it appends ?interface=... itself.
        "client_url": request.build_absolute_uri(
            f"/v1/endpoints/{service.endpoint}/invocations?access_key={service.access_key}"
        ),
        "log_dir": replicas.serving_root() / "replicas",
        "live": service.status in (ServiceStatus.DEPLOYING, ServiceStatus.ABNORMAL),
        "ranges": RANGES,
    }
    if tab == "info":
        context["revisions"] = _revisions(service)
        context["example"] = example_body(versions)
        context["image_model"] = bool(versions) and is_image_model(versions[0].model_version)
        context["model_io"] = versions and model_io(versions[0].model_version.model_type)
    return render(request, "serving/detail.html", context)


@login_required
@require_safe
def service_status(request, pk):
    """What the details page refreshes while the service deploys."""
    service = selectors.get_service(request.user, pk)
    return JsonResponse(
        {
            "status": service.status,
            "label": service.get_status_display(),
            "reason": service.reason,
            "versions": [
                {
                    "number": v.number,
                    "status": v.status,
                    "label": v.get_status_display(),
                    "reason": v.reason,
                    "expected": v.replicas,
                    "running": v.running,
                    "replicas": [
                        {
                            "index": r.index,
                            "status": r.status,
                            "label": r.get_status_display(),
                            "port": r.port,
                            "restarts": r.restarts,
                            "reason": r.reason,
                        }
                        for r in v.replica_list
                    ],
                }
                for v in _versions(service)
            ],
        }
    )


@login_required
@require_safe
def service_quality(request, pk):
    """The quality figures over a range: ?range=1h|6h|24h|7d|30d or ?start=&end= (ISO
    8601), optionally of one version (?version=n)."""
    service = selectors.get_service(request.user, pk)
    get = request.GET
    try:
        window = quality.window(get.get("range") or "1h", get.get("start", ""), get.get("end", ""))
        version = quality.version_filter(get.get("version"))
    except ValidationError as exc:
        return JsonResponse({"errors": errors_by_field(exc, ())}, status=400)
    return JsonResponse(quality.series(service, window, version))


# -- writes --------------------------------------------------------------------------------


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def service_edit(request, pk):
    """The spec's "Edit": every version's model, proportion, package, replicas and batching
    at once (a version can be removed too, as long as one stays)."""
    service = writable_service(request, pk)  # a viewer is refused the form too
    rows = [
        {
            "number": v.number,
            "model": v.model_version.model_id,
            "model_version": v.model_version.version,
            "proportion": v.proportion,
            "replicas": v.replicas,
            "package": v.package_id,
            "max_batch_size": v.max_batch_size,
            "max_wait_ms": v.max_wait_ms,
            "remove": False,
        }
        for v in selectors.versions_of(service)
    ]
    errors: dict[str, list[str]] = {}
    if request.method == "POST":
        numbers = [n for n in request.POST.getlist("versions") if as_id(n) is not None]
        rows = [
            {
                **{f: request.POST.get(f"v{n}-{f}", "").strip() for f in EDIT_FIELDS},
                "number": int(n),
                "remove": bool(request.POST.get(f"v{n}-remove")),
            }
            for n in numbers
        ]
        try:
            configs = []
            for row in rows:
                if not row["remove"]:
                    try:
                        configs.append(version_config(request.user, row))
                    except ValidationError as exc:
                        raise ValidationError({f"v{row['number']}": exc.messages}) from None
            note = request.POST.get("note", "").strip() or "edited"
            services.edit_service(request.user, service, configs, note=note)
            messages.success(request, f"Saved: {service.name} now runs the new configuration.")
            return redirect("serving:detail", pk=service.pk)
        except ValidationError as exc:
            errors = errors_by_field(exc, [f"v{row['number']}" for row in rows])
            for row in rows:
                row["errors"] = errors.pop(f"v{row['number']}", [])
    for row in rows:
        row["prefix"] = f"v{row['number']}-"
    return render(
        request,
        "serving/edit.html",
        {
            "service": service,
            "rows": rows,
            "errors": errors,
            "models": model_choices(request.user, service.project),
            "packages": prediction_packages(),
            "limits": limits(),
        },
    )


@login_required
@require_POST
def service_recover(request, pk, revision):
    service = writable_service(request, pk)
    found = selectors.get_revision(service, revision)
    with report_errors(request):
        services.recover(request.user, service, found)
        messages.success(request, f"Recovered the configuration of revision {found.number}.")
    return redirect(reverse("serving:detail", kwargs={"pk": service.pk}) + "#history")


def _lifecycle(request, pk, action, done: str):
    service = writable_service(request, pk)
    with report_errors(request):
        action(request.user, service)
        messages.success(request, f"Service {service.name} {done}.")
    return redirect(back_to(request, reverse("serving:detail", kwargs={"pk": service.pk})))


@login_required
@require_POST
def service_stop(request, pk):
    return _lifecycle(request, pk, services.stop_service, "stopped")


@login_required
@require_POST
def service_restart(request, pk):
    return _lifecycle(request, pk, services.restart_service, "restarting")


@login_required
@require_POST
def service_delete(request, pk):
    service = writable_service(request, pk)
    with report_errors(request):
        services.delete_service(request.user, service)
        messages.success(request, f"Service {service.name} deleted.")
        return redirect("serving:list")
    return redirect(back_to(request, reverse("serving:detail", kwargs={"pk": service.pk})))


@login_required
@require_POST
def service_new_key(request, pk):
    service = writable_service(request, pk)
    with report_errors(request):
        services.new_key(request.user, service)
        messages.success(request, "A new access key: the old one stops working within a second.")
    return redirect("serving:detail", pk=service.pk)


# -- a replica -------------------------------------------------------------------------------


def read_log(run_dir: str, stream: str, offset) -> dict:
    """One page of a replica's log: the last page unless an offset is asked for."""
    path = Path(run_dir) / f"{stream}.log" if run_dir else None
    size = path.stat().st_size if path is not None and path.is_file() else 0
    try:
        start = min(max(int(offset), 0), size)
    except (TypeError, ValueError):
        start = max(size - LOG_PAGE_BYTES, 0)
    data = b""
    if size:
        with open(path, "rb") as fh:
            fh.seek(start)
            data = fh.read(LOG_PAGE_BYTES)
    end = start + len(data)
    return {
        "stream": stream,
        "path": str(path) if path else "",
        "size": size,
        "start": start,
        "end": end,
        "text": data.decode(errors="replace"),
        "older": max(start - LOG_PAGE_BYTES, 0) if start > 0 else None,
        "newer": end if end < size else None,
    }


@login_required
@require_safe
def replica_detail(request, pk, number, index):
    service = selectors.get_service(request.user, pk)
    version = selectors.get_version(service, number)
    replica = selectors.get_replica(version, index)
    offsets = {s: request.GET.get(s) for s in ("stdout", "stderr")}
    logs = []
    for stream in ("stdout", "stderr"):
        log = read_log(replica.run_dir, stream, offsets[stream])
        for link in ("older", "newer"):
            if log[link] is not None:
                query = {**{k: v for k, v in offsets.items() if v is not None}, stream: log[link]}
                log[f"{link}_url"] = "?" + urlencode(query)
        latest = {k: v for k, v in offsets.items() if v is not None and k != stream}
        log["latest_url"] = "?" + urlencode(latest)
        logs.append(log)
    lease = replica.lease
    return render(
        request,
        "serving/replica.html",
        {
            "service": service,
            "version": version,
            "replica": replica,
            "lease": lease,
            "devices": list(lease.devices.all()) if lease else [],
            "logs": logs,
            "stopped": service.desired == Desired.STOPPED,
        },
    )
