"""`make up`: start the appliance as one supervised group, stop it all on Ctrl-C.

Order: object store (embedded unless BML_S3_ENDPOINT is set) -> migrate and first
administrator -> Q cluster and web. A child that dies is restarted (a crash loop gives up
and stops everything, so a broken install does not spin forever). SIGINT/SIGTERM stop the
web first, then the Q cluster, then the store, each given a few seconds before SIGKILL.
"""

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from apps.storage.embedded import EmbeddedStore, die_with_parent
from bml_site import config

PY = sys.executable
GRACE_SECONDS = 4


class Child:
    def __init__(self, name: str, command: list[str], log: Path, env: dict):
        self.name, self.command, self.log_path, self.env = name, command, log, env
        self.process: subprocess.Popen | None = None
        self.restarts: list[float] = []

    def start(self):
        log = open(self.log_path, "ab")  # noqa: SIM115 - the child keeps it open
        self.process = subprocess.Popen(
            self.command,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=self.env,
            cwd=config.BASE_DIR,
            start_new_session=True,
            preexec_fn=die_with_parent,  # no orphans if the launcher is killed with -9
        )

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def signal(self, signum) -> None:
        """TERM goes to the main process only, so it can stop its own workers in order
        (Django-Q hangs when its workers are signalled behind its back); KILL takes the group."""
        if self.alive() or signum == signal.SIGKILL:
            try:
                if signum == signal.SIGKILL:
                    os.killpg(self.process.pid, signum)
                else:
                    os.kill(self.process.pid, signum)
            except ProcessLookupError:
                pass


def stop_all(children: list[Child]) -> None:
    """SIGTERM every child at once, then SIGKILL whatever is left after the grace period."""
    for child in children:
        child.signal(signal.SIGTERM)
    deadline = time.monotonic() + GRACE_SECONDS
    while any(c.alive() for c in children) and time.monotonic() < deadline:
        time.sleep(0.1)
    for child in children:
        child.signal(signal.SIGKILL)
        if child.process:
            child.process.wait(5)


def manage(*args, env) -> None:
    subprocess.run([PY, "manage.py", *args], cwd=config.BASE_DIR, env=env, check=True)


def wait_for_web(url: str, child: Child, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not child.alive():
            raise SystemExit(f"web server exited; see {child.log_path}")
        try:
            urllib.request.urlopen(url + "/healthz", timeout=2)
            return
        except urllib.error.HTTPError:
            return  # answered (503 while the Q cluster warms up is fine)
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"web server not answering at {url} after {timeout}s")


def port_is_free(host: str, port: int) -> bool:
    """Whether the web server could listen there. With SO_REUSEADDR, as uvicorn binds: the
    connections of a server stopped a moment ago linger in TIME_WAIT for a minute and must
    not stop `make up` from starting again."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def say_what_goes_on(var: Path) -> None:
    """Job runs and notebook servers outlive a stop by design (a long training is not lost):
    say so, and how to end them."""
    from workers.processes import runs_left

    left = {kind: len(found) for kind, found in runs_left(var).items() if found}
    if left:
        counts = " and ".join(f"{n} {kind}" for kind, n in left.items())
        print(
            f"{counts} keep running; the next `make up` adopts them (`make down` ends them).",
            flush=True,
        )


def down() -> int:
    """`make down`: end the runs a stopped appliance left running."""
    from workers.processes import end_runs

    ended = end_runs(config.var_dir())
    print(f"Ended {ended} run(s)." if ended else "No runs were left running.", flush=True)
    return 0


def main() -> int:
    if sys.argv[1:] == ["down"]:
        return down()
    var = config.var_dir()
    logs = var / "log"
    logs.mkdir(exist_ok=True)
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "bml_site.settings", "BML_VAR_DIR": str(var)}
    host = os.environ.get("BML_BIND", "127.0.0.1")
    port = int(os.environ.get("BML_PORT", "8000"))
    # How notebooks' kernels reach the API (the SDK's default address).
    internal = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    env.setdefault("BML_INTERNAL_URL", f"http://{internal}:{port}")
    if not port_is_free(host, port):
        print(f"Port {port} on {host} is in use: stop what holds it, or set BML_PORT.")
        return 1
    stopping = False

    def request_stop(signum, frame):
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)

    try:  # which protections user code runs under, said before anything starts
        from workers import sandbox

        print(sandbox.describe(), flush=True)
        sandbox.active()
    except sandbox.SandboxUnavailable as exc:
        print(f"{exc}. Install bubblewrap, or set BML_SANDBOX=auto.", flush=True)
        return 1

    store = None
    if not os.environ.get("BML_S3_ENDPOINT"):
        creds = config.embedded_s3_credentials()
        store = EmbeddedStore(
            var / "objectstore", creds["access_key"], creds["secret_key"], logs / "objectstore.log"
        )
        print(f"Starting the object store ({store.kind})...", flush=True)
        store.start()
        config.embedded_s3_endpoint_file().write_text(store.endpoint)

    children = []
    try:
        manage("migrate", "--noinput", "-v", "0", env=env)
        manage("createcachetable", "-v", "0", env=env)  # quiet when it exists
        manage("sync_devices", env=env)
        manage("ensure_admin", env=env)
        manage("seed_public_datasets", env=env)
        manage("seed_common_models", env=env)
        children = [
            Child("qcluster", [PY, "manage.py", "qcluster"], logs / "qcluster.log", env),
            Child("scheduler", [PY, "manage.py", "run_scheduler"], logs / "scheduler.log", env),
            Child(
                "web",
                [
                    PY,
                    "-m",
                    "uvicorn",
                    "bml_site.asgi:application",
                    "--host",
                    host,
                    "--port",
                    str(port),
                    "--lifespan",
                    "off",
                    "--loop",
                    "uvloop",
                    "--http",  # httptools, plus zero copy downloads (splice)
                    "bml_site.zero_copy_http:ZeroCopyHttpToolsProtocol",
                    "--no-access-log",
                    "--timeout-graceful-shutdown",
                    "3",
                ],
                logs / "web.log",
                env,
            ),
        ]
        for child in children:
            child.start()
        shown = "localhost" if host in ("0.0.0.0", "127.0.0.1") else host
        url = f"http://{shown}:{port}"
        web = next(c for c in children if c.name == "web")
        wait_for_web(f"http://127.0.0.1:{port}" if host == "0.0.0.0" else url, web)
        print(f"\nBML console: {url}/   (API: {url}/api/v1/docs/)", flush=True)
        print(f"Logs in {logs}. Press Ctrl-C to stop.\n", flush=True)
        while not stopping:
            time.sleep(0.5)
            for child in children:
                if stopping or child.alive():
                    continue
                now = time.monotonic()
                child.restarts = [t for t in child.restarts if now - t < 60] + [now]
                if len(child.restarts) > 5:
                    print(f"{child.name} keeps dying; see {child.log_path}. Stopping.", flush=True)
                    stopping = True
                    break
                print(f"{child.name} exited ({child.process.returncode}); restarting.", flush=True)
                child.start()
    except subprocess.CalledProcessError as exc:
        print(f"Start-up step failed: {' '.join(exc.cmd[2:])}", flush=True)
        return 1
    finally:
        print("Stopping...", flush=True)
        stop_all(children)
        if store:
            store.stop(grace=3)
        print("Stopped.", flush=True)
        say_what_goes_on(var)
    return 0


if __name__ == "__main__":
    sys.exit(main())
