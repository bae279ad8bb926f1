"""Settings for the test suite: a throw-away var/ directory, so tests never touch the data of a
running appliance. The suite starts its own object store and Q cluster (tests/conftest.py)."""

import os
import tempfile

if "BML_VAR_DIR" not in os.environ:  # the suite's own processes inherit the suite's
    os.environ["BML_VAR_DIR"] = tempfile.mkdtemp(prefix="bml-test-")
# The common models are trained once per run of the suite (about 45 s for the digits model),
# not again by every appliance a test starts (bml_site/running.py passes this on).
os.environ.setdefault(
    "BML_COMMON_MODELS_CACHE", os.path.join(os.environ["BML_VAR_DIR"], "common-models")
)
os.environ.setdefault("BML_DEVICES", "cuda:2,xpu:1")  # pretend: two GPUs and one Kunlun XPU
os.environ.setdefault("BML_HOST_NAME", "test-host")
os.environ.setdefault("BML_WEBHOOK_ALLOW_LOCAL", "1")  # the tests' receivers are local
# Every run of the suite is confined (make test installs bubblewrap): a test of user code
# must never pass because the sandbox silently fell off.
os.environ.setdefault("BML_SANDBOX", "required")

from bml_site.settings import *  # noqa: E402, F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast user factories
