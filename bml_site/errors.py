"""Error pages: the console's HTML, but JSON under /api/ (a script reading the API should
never have to parse an HTML page to learn that a URL does not exist)."""

from django.http import JsonResponse
from django.views import defaults


def _api(request) -> bool:
    return request.path.startswith("/api/")


def not_found(request, exception):
    if _api(request):
        return JsonResponse(
            {"detail": "Not found: no API route or object at this URL."}, status=404
        )
    return defaults.page_not_found(request, exception)


def server_error(request):
    if _api(request):
        return JsonResponse(
            {"detail": "The server failed on this request; the appliance's web log says why."},
            status=500,
        )
    return defaults.server_error(request)
