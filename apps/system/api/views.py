from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import viewsets

from apps.billing.models import ResourcePackage
from apps.system.api.serializers import DeviceSerializer, ResourcePackageSerializer
from workers.models import Device


class ResourcePackageViewSet(viewsets.ReadOnlyModelViewSet):
    """The resource packages jobs, notebooks and services can ask for (the spec's price table)."""

    serializer_class = ResourcePackageSerializer
    queryset = ResourcePackage.objects.filter(enabled=True)

    @extend_schema(
        parameters=[OpenApiParameter("module", str, enum=["workarea", "train", "prediction"])]
    )
    def list(self, request, *args, **kwargs):
        return super().list(request, *args, **kwargs)

    def get_queryset(self):
        module = self.request.query_params.get("module")
        return self.queryset.filter(module=module) if module else self.queryset


class DeviceViewSet(viewsets.ReadOnlyModelViewSet):
    """The machine's accelerators and what holds each."""

    serializer_class = DeviceSerializer
    queryset = Device.objects.select_related("host").filter(present=True)
