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


def prometheus_metrics(request):
    return HttpResponse(metrics.render(), content_type="text/plain; version=0.0.4; charset=utf-8")


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
