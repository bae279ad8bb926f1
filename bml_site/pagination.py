"""The API's paging: limit/offset, bounded so that no query string can ask the database for
more rows than a page should hold or for an offset beyond what it can count."""

from rest_framework.pagination import LimitOffsetPagination

MAX_OFFSET = 2**62  # SQLite's OFFSET is a signed 64-bit integer


class BoundedLimitOffsetPagination(LimitOffsetPagination):
    max_limit = 1000

    def get_offset(self, request):
        return min(super().get_offset(request), MAX_OFFSET)
