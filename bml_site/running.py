"""Run the whole appliance as `make up` does, in a child process: for the browser tests and
the benchmarks, which must measure and drive the real thing."""

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import httpx

from apps.storage.embedded import free_port
from bml_site.config import BASE_DIR


class RunningAppliance:
    """`python -m bml_site.launcher` with its own var/ and port; Ctrl-C to stop."""

    def __init__(self, var: Path, admin_password: str, port: int | None = None):
        self.var, self.admin_password = Path(var), admin_password
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None
        self.owns_var = False

    @classmethod
    def throwaway(cls, admin_password: str) -> "RunningAppliance":
        """An appliance in a temporary var/ that is removed when it stops (a benchmark's
        store holds hundreds of megabytes per run)."""
        appliance = cls(tempfile.mkdtemp(prefix="bml-bench-"), admin_password)
        appliance.owns_var = True
        return appliance

    @classmethod
    def for_benchmark(cls, admin_password: str, var: Path | None = None) -> "RunningAppliance":
        """What a benchmark measures on: the appliance named by BML_BENCH_APPLIANCE when it
        is set (the smoke test of the benchmarks starts one for all of them: a start takes
        about a minute on 2 cores), otherwise its own, in `var` or a throw-away var/."""
        shared = os.environ.get(SHARED_ENV)
        if shared:
            return SharedAppliance(**json.loads(shared))
        if var is not None:
            return cls(var, admin_password)
        return cls.throwaway(admin_password)

    def shared_env(self) -> dict:
        """The environment that makes benchmarks (for_benchmark) use this running appliance."""
        described = {
            "var": str(self.var),
            "admin_password": self.admin_password,
            "port": self.port,
            "pid": self.process.pid,
        }
        return {SHARED_ENV: json.dumps(described)}

    @property
    def log_path(self) -> Path:
        return self.var / "launcher.log"

    def start(self, timeout: float = 300) -> "RunningAppliance":
        # A clean environment: none of the caller's BML_* or Django settings leak in.
        env = {k: v for k, v in os.environ.items() if not k.startswith(("BML_", "DJANGO_"))}
        if os.environ.get("BML_COMMON_MODELS_CACHE"):  # the suite trains them once
            env["BML_COMMON_MODELS_CACHE"] = os.environ["BML_COMMON_MODELS_CACHE"]
        env.update(
            BML_VAR_DIR=str(self.var),
            BML_PORT=str(self.port),
            BML_ADMIN_PASSWORD=self.admin_password,
        )
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bml_site.launcher"],
            cwd=BASE_DIR,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while True:
            try:
                urllib.request.urlopen(self.url + "/login/", timeout=2)
                return self
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    # Read before stop(): a throw-away var/ (and the log in it) goes with it.
                    log = self.log_path.read_text(errors="replace")
                    self.stop()
                    raise RuntimeError(
                        f"appliance did not start within {timeout}s:\n{log}"
                    ) from None
                time.sleep(0.3)

    def stop(self, timeout: float = 20) -> float:
        """Ctrl-C, as a user would; returns the seconds the stop took."""
        started = time.monotonic()
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                raise RuntimeError(f"appliance did not stop within {timeout}s of Ctrl-C") from None
        if self.process:
            self._log.close()
        self.kill_notebook_servers()
        if self.owns_var:
            shutil.rmtree(self.var, ignore_errors=True)
        return time.monotonic() - started

    def kill_notebook_servers(self) -> None:
        """Notebook servers outlive the appliance by design (adopted at the next start); a
        throw-away appliance takes its own with it."""
        from workers.processes import kill_processes_under

        kill_processes_under(self.var / "notebooks")

    def login(self, client: httpx.Client | None = None, username: str = "admin") -> httpx.Client:
        """An httpx client signed in through the login form, with the CSRF header set."""
        client = client or httpx.Client(base_url=self.url, timeout=600)
        client.get("/login/")
        response = client.post(
            "/login/",
            data={
                "username": username,
                "password": self.admin_password,
                "csrfmiddlewaretoken": client.cookies["csrftoken"],
            },
        )
        if response.status_code != 302:
            raise RuntimeError(f"login failed: {response.status_code} {response.text[:200]}")
        client.headers["X-CSRFToken"] = client.cookies["csrftoken"]
        return client


SHARED_ENV = "BML_BENCH_APPLIANCE"


class SharedAppliance(RunningAppliance):
    """An appliance someone else started and stops (RunningAppliance.shared_env): start()
    only waits until it answers, stop() leaves it running."""

    def __init__(self, var: str, admin_password: str, port: int, pid: int):
        import psutil

        super().__init__(Path(var), admin_password, port)
        self.process = psutil.Process(pid)  # .pid, for the benchmarks that look under it

    def start(self, timeout: float = 300) -> "RunningAppliance":
        deadline = time.monotonic() + timeout
        while True:
            try:
                urllib.request.urlopen(self.url + "/login/", timeout=2)
                return self
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"the shared appliance at {self.url} does not answer"
                    ) from None
                time.sleep(0.3)

    def stop(self, timeout: float = 20) -> float:
        return 0.0
