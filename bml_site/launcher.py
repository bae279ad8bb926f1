"""`make up`: start the appliance as one supervised group, stop it all on Ctrl-C.

Order: object store (embedded unless BML_S3_ENDPOINT is set) -> migrate and first
administrator -> Q cluster and web. Every part runs in a process group of its own and is
supervised: one that dies is restarted, after what is left of its group (a Q cluster's
sentinel and workers outlive a killed main process) is killed, so a replaced part leaves
nothing behind. The store comes back on its kept ports (apps/storage/embedded.py), so the
web process and the Q cluster keep their endpoint; only if a port was taken meanwhile do
they restart to read the new one. A crash loop gives up and stops everything, so a broken
install does not spin forever. SIGINT/SIGTERM stop the web, the Q cluster and the
scheduler, then the store, each given a few seconds before its group gets SIGKILL.
"""

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from apps.storage.embedded import EmbeddedStore, die_with_parent, exited, kill_group
from bml_site import config

PY = sys.executable
GRACE_SECONDS = 4
CRASH_LOOP = 5  # restarts within a minute that make the launcher give up


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
        return self.process is not None and not exited(self.process)

    def terminate(self) -> None:
        """SIGTERM to the main process only, so it can stop its own workers in order
        (Django-Q hangs when its workers are signalled behind its back)."""
        if self.alive():
            try:
                os.kill(self.process.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass

    def end(self) -> int:
        """SIGKILL the whole group and reap: returns how many processes besides the main
        one were still in it."""
        return kill_group(self.process) if self.process else 0

    def crash_looping(self) -> bool:
        now = time.monotonic()
        self.restarts = [t for t in self.restarts if now - t < 60] + [now]
        return len(self.restarts) > CRASH_LOOP


def stop_all(children: list[Child]) -> None:
    """SIGTERM every child at once, then SIGKILL each group (what is left of it) after the
    grace period."""
    for child in children:
        child.terminate()
    deadline = time.monotonic() + GRACE_SECONDS
    while any(c.alive() for c in children) and time.monotonic() < deadline:
        time.sleep(0.1)
    for child in children:
        child.end()


def restart_dead_children(children: list[Child]) -> bool:
    """Start again every child that died, after killing what is left of its group; False
    when one keeps dying."""
    for child in children:
        if child.alive():
            continue
        left = child.end()  # reaps it: now its exit status is known
        code = child.process.returncode
        if child.crash_looping():
            print(f"{child.name} keeps dying; see {child.log_path}. Stopping.", flush=True)
            return False
        also = f"; {left} process(es) left of it killed" if left else ""
        print(f"{child.name} exited ({code}){also}; restarting.", flush=True)
        child.start()
    return True


class StoreWatch:
    """Restarts the embedded store when it dies: same data dir, keys, certificates and ports."""

    def __init__(self, store: EmbeddedStore):
        self.store, self.restarts, self.next_try = store, [], 0.0

    def check(self, children: list[Child]) -> bool:
        """False when the store keeps dying."""
        store = self.store
        if store.alive() or time.monotonic() < self.next_try:
            return True
        store.stop(grace=0)  # reaps it and kills what is left of its group
        code = store.process.returncode if store.process else None
        now = time.monotonic()
        self.restarts = [t for t in self.restarts if now - t < 60] + [now]
        if len(self.restarts) > CRASH_LOOP:
            print(f"The object store keeps dying; see {store.log_path}. Stopping.", flush=True)
            return False
        endpoint = store.endpoint
        print(f"The object store exited ({code}); restarting it.", flush=True)
        try:
            store.start()
        except RuntimeError as exc:
            print(f"The object store did not start again: {exc}", flush=True)
            self.next_try = time.monotonic() + 2
            return True
        if store.moved:
            print(store.moved, flush=True)
        if store.endpoint != endpoint:
            # Django reads the endpoint at start-up: the parts that speak S3 start again.
            config.embedded_s3_endpoint_file().write_text(store.endpoint)
            stop_all(children)
            for child in children:
                child.start()
        print(f"The object store is back on {store.endpoint}.", flush=True)
        return True


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
        if store.moved:
            print(store.moved, flush=True)
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
        store_watch = StoreWatch(store) if store else None
        while not stopping:
            time.sleep(0.5)
            if stopping:
                break
            if store_watch and not store_watch.check(children):
                break
            if not restart_dead_children(children):
                break
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
