"""Text extraction of uploaded documents in a child process with a time and memory limit,
confined like user code (parsers of PDF and Word files meet hostile input; the web process
must not, and a parser taken over must find nothing of the appliance's to read)."""

import base64
import json
import resource
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from django.conf import settings

from apps.annotation.documents import DocumentError
from workers import confinement, sandbox

TIME_LIMIT_S = 60
MEMORY_LIMIT_BYTES = 2 * 1024**3


def _limits(rules: sandbox.Confinement):
    confined = sandbox.limits(rules)

    def apply() -> None:
        confined()
        resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT_BYTES, MEMORY_LIMIT_BYTES))

    return apply


def extract_texts(files: list[tuple[str, bytes]]) -> list[str]:
    """The text of each (name, bytes), or DocumentError naming the file and the problem."""
    payload = json.dumps({"files": [[n, base64.b64encode(d).decode()] for n, d in files]})
    env = {"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin", "LANG": "C.UTF-8",
           "PYTHONIOENCODING": "utf-8"}  # fmt: skip
    # No project's user: the parser runs as the sandbox's base user (as root), in an empty
    # folder of its own; the documents come on stdin and the texts go to stdout.
    workdir = Path(tempfile.mkdtemp(prefix="bml-documents-"))
    rules = confinement.for_run(0, workdir, file_size=MEMORY_LIMIT_BYTES)
    sandbox.give_to_run(workdir, rules.uid)
    command = [sys.executable, "-m", "apps.annotation.documents"]
    try:
        done = subprocess.run(
            sandbox.command(command, rules),
            input=payload.encode(),
            capture_output=True,
            timeout=TIME_LIMIT_S,
            cwd=settings.BASE_DIR,
            env=env,
            preexec_fn=_limits(rules),
        )
    except subprocess.TimeoutExpired:
        raise DocumentError(f"reading the documents took over {TIME_LIMIT_S} s") from None
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    try:
        answer = json.loads(done.stdout.decode("utf-8"))
    except ValueError:
        answer = {}
    if "texts" in answer:
        return answer["texts"]
    if "error" in answer:
        raise DocumentError(answer["error"])
    last = (done.stderr.decode(errors="replace").strip().splitlines() or ["no output"])[-1]
    raise DocumentError(f"the documents could not be read ({last[:200]})")
