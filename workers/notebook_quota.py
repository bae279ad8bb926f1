"""The contents manager of notebook instances' Jupyter servers (no Django: it runs inside
Jupyter). A save is refused with 507 once the instance's startup disk is full, so the
user sees why in JupyterLab instead of a half-written notebook.

The usage is measured by the appliance every half minute (BML_DISK_USAGE_FILE); a file
cannot outgrow the disk on its own either (RLIMIT_FSIZE on the server and its kernels).
"""

import json
import os

from jupyter_server.services.contents.largefilemanager import AsyncLargeFileManager
from tornado import web


def disk_full_message() -> str | None:
    try:
        with open(os.environ["BML_DISK_USAGE_FILE"]) as fh:
            usage = json.load(fh)
    except (KeyError, OSError, ValueError):
        return None
    used, quota = int(usage.get("used", 0)), int(usage.get("quota", 0))
    if quota and used >= quota:
        return (
            f"The instance's startup disk is full ({used / 1024**3:.2f} GB of "
            f"{quota / 1024**3:g} GB): delete files (or pip packages) to save again."
        )
    return None


class QuotaContentsManager(AsyncLargeFileManager):
    async def save(self, model, path=""):
        message = disk_full_message()
        if message:
            raise web.HTTPError(507, message)
        return await super().save(model, path)
