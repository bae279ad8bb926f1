"""Text extraction of uploaded documents in a child process with a time and memory limit
(parsers of PDF and Word files meet hostile input; the web process must not)."""

import base64
import json
import resource
import subprocess
import sys
from pathlib import Path

from django.conf import settings

from apps.annotation.documents import DocumentError

TIME_LIMIT_S = 60
MEMORY_LIMIT_BYTES = 2 * 1024**3


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT_BYTES, MEMORY_LIMIT_BYTES))


def extract_texts(files: list[tuple[str, bytes]]) -> list[str]:
    """The text of each (name, bytes), or DocumentError naming the file and the problem."""
    payload = json.dumps({"files": [[n, base64.b64encode(d).decode()] for n, d in files]})
    env = {"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin", "LANG": "C.UTF-8",
           "PYTHONIOENCODING": "utf-8"}  # fmt: skip
    try:
        done = subprocess.run(
            [sys.executable, "-m", "apps.annotation.documents"],
            input=payload.encode(),
            capture_output=True,
            timeout=TIME_LIMIT_S,
            cwd=settings.BASE_DIR,
            env=env,
            preexec_fn=_limit_memory,
        )
    except subprocess.TimeoutExpired:
        raise DocumentError(f"reading the documents took over {TIME_LIMIT_S} s") from None
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
