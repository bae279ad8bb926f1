"""Downloads streamed from the store to the client in chunks, never read whole into memory.

The body is an async generator so that, under ASGI, Django serves it chunk by chunk
(a sync iterator would be collected into a list first); each blocking read runs in a thread.
"""

import asyncio
from urllib.parse import quote

from django.http import StreamingHttpResponse

from apps.storage import services

CHUNK = 1024 * 1024


def object_response(bucket, key: str) -> StreamingHttpResponse:
    stat = services.stat_object(bucket, key)
    upstream = services.open_object(bucket, key)

    async def body():
        try:
            while True:
                chunk = await asyncio.to_thread(upstream.read, CHUNK)
                if not chunk:
                    break
                yield chunk
        finally:
            upstream.close()
            upstream.release_conn()

    response = StreamingHttpResponse(
        body(), content_type=stat.content_type or "application/octet-stream"
    )
    response["Content-Length"] = str(stat.size)
    response["ETag"] = f'"{stat.etag}"'
    response["Content-Disposition"] = (
        f"attachment; filename*=UTF-8''{quote(services.basename(key))}"
    )
    return response
