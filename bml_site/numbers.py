"""Numbers read from users: URLs, query strings, form fields, JSON."""

import re

# An id the database can hold, in ASCII digits ("²".isdigit() is True, int("²") fails, and
# 2**63 overflows SQLite's integers: both used to end in a server error).
_ID = re.compile(r"[0-9]{1,18}")


def as_id(value) -> int | None:
    """`value` as a database id, or None when it cannot be one."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if 0 <= value < 10**18 else None
    text = value.strip() if isinstance(value, str) else ""
    return int(text) if _ID.fullmatch(text) else None
