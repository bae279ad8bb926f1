from django.http import JsonResponse
from django.shortcuts import render

from apps.storage.client import StorageUnavailable


class StorageUnavailableMiddleware:
    """A store that is down gives a plain 503 with a message, never a 500."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        if not isinstance(exception, StorageUnavailable):
            return None
        if request.path.startswith("/api/"):
            return JsonResponse({"detail": str(exception)}, status=503)
        return render(request, "unavailable.html", {"message": str(exception)}, status=503)
