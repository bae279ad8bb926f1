import hmac

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.http import require_safe

from apps.billing.models import ResourcePackage
from apps.system import health, metrics
from workers import devices


def healthz(request):
    report = health.report()
    return JsonResponse(report, status=200 if report["ok"] else 503)


@require_safe
def prometheus_metrics(request):
    """The exposition names every project's services and traffic: it answers the bearer
    token of BML_METRICS_TOKEN (what Prometheus sends) or a staff user signed in to the
    console, and nobody else."""
    given = request.headers.get("Authorization", "")
    if given[:7].lower() == "bearer ":
        expected = settings.METRICS_TOKEN
        token = given[7:].strip()
        if not expected or not hmac.compare_digest(token.encode(), expected.encode()):
            return _metrics_refused(401, "wrong metrics token", 'error="invalid_token"')
    elif not request.user.is_authenticated:
        return _metrics_refused(401, "a metrics token is required (Authorization: Bearer)")
    elif not request.user.is_staff:
        return _metrics_refused(403, "only staff users or the metrics token may read /metrics")
    return HttpResponse(metrics.render(), content_type="text/plain; version=0.0.4; charset=utf-8")


def _metrics_refused(status: int, message: str, error: str = "") -> HttpResponse:
    response = HttpResponse(message + "\n", status=status, content_type="text/plain")
    if status == 401:
        challenge = ['Bearer realm="bml-metrics"', *([error] if error else [])]
        response["WWW-Authenticate"] = ", ".join(challenge)
    return response


@login_required
@require_safe
def resources(request):
    host = devices.this_host()
    free = devices.free_capacity(host)
    device_rows = [
        {"device": d, "lease": d.leases.filter(released_at__isnull=True).first()}
        for d in host.devices.all()
    ]
    return render(
        request,
        "system/resources.html",
        {
            "host": host,
            "free": free,
            "free_memory_bytes": free["memory_mb"] * 1024 * 1024,
            "total_memory_bytes": host.memory_mb * 1024 * 1024,
            "device_rows": device_rows,
            "leases": devices.active_leases(host).select_related("package"),
            "packages": ResourcePackage.objects.filter(enabled=True),
        },
    )
