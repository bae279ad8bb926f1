"""The one public entry: Django for console, API and admin.

Object bytes (uploads, downloads) take the lean path in `apps.storage.transfer`, and
prediction requests (`/v1/endpoints/...`, `/v2/models/...`) the gateway of
`apps.serving.gateway`, and notebook instances (`/notebooks/<id>/...`, HTTP and websockets)
the proxy of `apps.notebooks.proxy`, all without Django's middleware. Bodies over the upload limit
are refused before anything reads them.
"""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bml_site.settings")

from django.conf import settings  # noqa: E402
from django.core.asgi import get_asgi_application  # noqa: E402

django_app = get_asgi_application()

from apps.notebooks.proxy import notebook_proxy  # noqa: E402
from apps.serving.gateway import gateway  # noqa: E402  (needs the app registry ready)
from apps.storage import transfer  # noqa: E402


async def application(scope, receive, send):
    if scope["type"] in ("http", "websocket") and notebook_proxy.matches(scope["path"]):
        await notebook_proxy(scope, receive, send)  # JupyterLab: HTTP and websockets
        return
    if scope["type"] == "http" and gateway.matches(scope["path"]):
        await gateway(scope, receive, send)  # its own body limit, its own figures
        return
    if scope["type"] == "http":
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length and length.isdigit() and int(length) > settings.MAX_UPLOAD_BYTES:
            limit_mb = settings.MAX_UPLOAD_BYTES // (1024 * 1024)
            body = f'{{"detail": "Upload too large: the limit is {limit_mb} MB."}}'.encode()
            await send(
                {
                    "type": "http.response.start",
                    "status": 413,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"content-length", str(len(body)).encode()),
                        (b"connection", b"close"),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": body})
            return
    if route := transfer.match(scope):
        await transfer.handle(*route, scope, receive, send)
        return
    await django_app(scope, receive, send)
