"""Static files through whitenoise, answered with their bytes.

Whitenoise answers with a file iterator, which Django under ASGI reads in a thread per chunk
and warns about on every request ("StreamingHttpResponse must consume synchronous
iterators"): one warning per stylesheet and script in the web log. The console's assets are
small, so they are read at once; anything large still streams.
"""

from django.http import HttpResponse
from whitenoise.middleware import WhiteNoiseFileResponse, WhiteNoiseMiddleware

READ_WHOLE_BELOW = 4 * 1024 * 1024


class StaticFilesMiddleware(WhiteNoiseMiddleware):
    @staticmethod
    def serve(static_file, request):
        response = static_file.get_response(request.method, request.META)
        length = int(dict(response.headers).get("Content-Length") or 0)
        if response.file is not None and length >= READ_WHOLE_BELOW:
            answer = WhiteNoiseFileResponse(response.file, status=int(response.status))
        else:
            body = b""
            if response.file is not None:
                with response.file:
                    body = response.file.read()
            answer = HttpResponse(body, status=int(response.status))
        del answer["Content-Type"]  # whitenoise's headers say it
        for key, value in response.headers:
            answer[key] = value
        return answer
