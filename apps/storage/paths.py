"""bos:// paths, bucket names and object keys: parsing and the rules they must follow."""

import ipaddress
import re
from dataclasses import dataclass

from django.core.exceptions import ValidationError

BUCKET_RULE = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
BUCKET_HELP = (
    "3-63 characters of lowercase letters, digits, '.' and '-', starting and ending with a "
    "letter or digit, no '..', not an IP address"
)
MAX_KEY_BYTES = 1024


@dataclass(frozen=True)
class BosPath:
    bucket: str
    key: str  # "" for the bucket root; a folder ends with "/"

    def __str__(self):
        return f"bos://{self.bucket}/{self.key}"


def looks_like_bos_uri(value) -> bool:
    """Whether a value is meant as a bos:// path (bos://, bos:/, any case, spaces around),
    whether or not it parses: a malformed one must be refused, not taken for plain text."""
    return isinstance(value, str) and value.strip().lower().startswith("bos:/")


def parse_bos_uri(uri: str, field: str = "path") -> BosPath:
    """Parse `bos://bucket/key`; the spec also writes `bos:/bucket/key`, so accept both."""
    if uri is not None and not isinstance(uri, str):
        raise ValidationError({field: "A bos:// path must be text (bos://bucket/key)."})
    uri = (uri or "").strip()
    match = re.match(r"^bos:/{1,2}([^/]+)(?:/(.*))?$", uri)
    if not match:
        raise ValidationError({field: f"'{uri}' is not a bos:// path (bos://bucket/key)."})
    bucket, key = match.group(1), match.group(2) or ""
    validate_bucket_name(bucket, field)
    if key:
        validate_key(key, field, allow_folder=True)
    return BosPath(bucket, key)


def validate_bucket_name(name: str, field: str = "name") -> str:
    problem = None
    if not BUCKET_RULE.match(name or ""):
        problem = "bad characters or length"
    elif ".." in name or ".-" in name or "-." in name:
        problem = "adjacent '.'/'-' characters"
    else:
        try:
            ipaddress.ip_address(name)
            problem = "looks like an IP address"
        except ValueError:
            pass
    if problem:
        raise ValidationError({field: f"Invalid bucket name '{name}' ({problem}): {BUCKET_HELP}."})
    return name


def validate_key(key: str, field: str = "key", allow_folder: bool = False) -> str:
    """Refuse keys that could escape a prefix or confuse tools: '..', absolute, control chars."""
    if not key:
        raise ValidationError({field: "An object key cannot be empty."})
    if key.startswith("/"):
        raise ValidationError({field: f"Object key '{key}' must not start with '/'."})
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in key):
        raise ValidationError({field: "Object keys cannot contain control characters."})
    if "\\" in key:
        raise ValidationError({field: "Object keys cannot contain '\\'; use '/' for folders."})
    parts = key.split("/")
    if allow_folder and key.endswith("/"):
        parts = parts[:-1]
    if any(part in ("", ".", "..") for part in parts):
        raise ValidationError(
            {field: f"Object key '{key}' has an empty, '.' or '..' path segment."}
        )
    if len(key.encode()) > MAX_KEY_BYTES:
        raise ValidationError({field: f"Object keys are at most {MAX_KEY_BYTES} bytes."})
    return key


def validate_prefix(prefix: str, field: str = "prefix") -> str:
    """A folder to browse: '' (the root) or a key ending with '/'."""
    if not prefix:
        return ""
    if not prefix.endswith("/"):
        prefix += "/"
    return validate_key(prefix, field, allow_folder=True)


def paths_overlap(a: str, b: str) -> bool:
    """Whether two bos:// paths are the same folder or one lies inside the other (the spec's
    rule between a notebook's storage path and the paths jobs use)."""
    first, second = parse_bos_uri(a), parse_bos_uri(b)
    if first.bucket != second.bucket:
        return False
    x, y = (k if not k or k.endswith("/") else k + "/" for k in (first.key, second.key))
    return x.startswith(y) or y.startswith(x)
