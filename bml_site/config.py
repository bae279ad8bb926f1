"""Where the appliance keeps its state, and the secrets it generates on first run.

Kept free of Django imports: the launcher, settings and workers all read it.
"""

import json
import os
import secrets
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent


def var_dir() -> Path:
    path = Path(os.environ.get("BML_VAR_DIR", BASE_DIR / "var")).resolve()
    path.mkdir(parents=True, exist_ok=True)
    return path


def _private_file(path: Path, make) -> str:
    """Read a generated secret, creating it (mode 0600) the first time."""
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(make())
    return path.read_text().strip()


def secret_key() -> str:
    return os.environ.get("BML_SECRET_KEY") or _private_file(
        var_dir() / "secret_key", lambda: secrets.token_urlsafe(50)
    )


def embedded_s3_credentials() -> dict:
    """Access keys of the embedded object store, generated once and kept in var/."""
    raw = _private_file(
        var_dir() / "objectstore-credentials.json",
        lambda: json.dumps(
            {
                "access_key": "BML" + secrets.token_hex(8).upper(),
                "secret_key": secrets.token_urlsafe(30),
            }
        ),
    )
    return json.loads(raw)


def embedded_s3_endpoint_file() -> Path:
    """Written by the launcher once the embedded store listens: host:port of its S3 API."""
    return var_dir() / "objectstore-endpoint"


def s3_settings() -> dict:
    """The S3 endpoint every part of the appliance talks to.

    An external endpoint (MinIO, Baidu BOS, AWS S3) replaces the embedded store when
    BML_S3_ENDPOINT is set; otherwise the embedded store's address is read from var/.
    """
    if os.environ.get("BML_S3_ENDPOINT"):
        return {
            "endpoint": os.environ["BML_S3_ENDPOINT"],
            "access_key": os.environ.get("BML_S3_ACCESS_KEY", ""),
            "secret_key": os.environ.get("BML_S3_SECRET_KEY", ""),
            "secure": os.environ.get("BML_S3_SECURE", "0") in ("1", "true", "yes"),
            "region": os.environ.get("BML_S3_REGION") or None,
            "embedded": False,
        }
    creds = embedded_s3_credentials()
    endpoint_file = embedded_s3_endpoint_file()
    endpoint = endpoint_file.read_text().strip() if endpoint_file.exists() else ""
    return {
        "endpoint": endpoint,
        "access_key": creds["access_key"],
        "secret_key": creds["secret_key"],
        "secure": False,
        "region": None,
        "embedded": True,
    }
