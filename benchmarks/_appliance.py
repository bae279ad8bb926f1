"""Start the real appliance (as `make up` does) in a throw-away var/ for a benchmark."""

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "bench-admin-pass-1"


class RunningAppliance:
    def __init__(self):
        self.var = Path(tempfile.mkdtemp(prefix="bml-bench-"))
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"

    def __enter__(self):
        env = {k: v for k, v in os.environ.items() if not k.startswith("BML_")}
        env.update(BML_VAR_DIR=str(self.var), BML_PORT=str(self.port), BML_ADMIN_PASSWORD=PASSWORD)
        self.log = open(self.var / "launcher.log", "wb")  # noqa: SIM115
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bml_site.launcher"],
            cwd=ROOT,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 120
        while True:
            try:
                urllib.request.urlopen(self.url + "/login/", timeout=2)
                return self
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit((self.var / "launcher.log").read_text()) from None
                time.sleep(0.3)

    def __exit__(self, *exc):
        self.process.send_signal(signal.SIGINT)
        self.process.wait(30)
        self.log.close()

    def session(self) -> httpx.Client:
        client = httpx.Client(base_url=self.url, timeout=600)
        client.get("/login/")
        client.post(
            "/login/",
            data={
                "username": "admin",
                "password": PASSWORD,
                "csrfmiddlewaretoken": client.cookies["csrftoken"],
            },
        )
        client.headers["X-CSRFToken"] = client.cookies["csrftoken"]
        return client

    def raw_s3(self) -> dict:
        import json

        creds = json.loads((self.var / "objectstore-credentials.json").read_text())
        return {"endpoint": (self.var / "objectstore-endpoint").read_text().strip(), **creds}
