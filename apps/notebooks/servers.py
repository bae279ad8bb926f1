"""Supervision of notebook instances' Jupyter servers, run by the scheduler loop 4 times a
second (like prediction replicas, see apps.serving.replicas).

A running instance is one `python -P -m jupyterlab` process in its own session, on a
loopback port, with a token only the appliance's proxy sends, a lease from its resource
package (its kernels see only the leased GPUs/XPUs), its own HOME and Python environment
and none of the appliance's secrets. It is "running" once Jupyter has written its server
file (it listens then). A server that dies is started again at once (the files stay; the
kernels' memory is lost); one that never comes up is retried a few times, then failed.

Servers are forked from a warm process that has imported JupyterLab already (see
workers.notebook_zygote), which halves their start; they outlive a restart of the
appliance (like job runs): the next loop adopts a live one by its pid and process name, so
a long computation in a notebook is not lost. Work that may take long (disk usage, the
storage sync, the idle check) runs in a thread pool, never in the loop itself.
"""

import json
import logging
import os
import resource
import signal
import socket
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import psutil
from django.conf import settings
from django.utils import timezone

from apps.notebooks import housekeeping, workspace
from apps.notebooks.models import Desired, Notebook, NotebookStatus
from apps.projects.models import ROLE_RANK, Role
from apps.storage.embedded import die_with_parent
from workers import confinement, devices, processes, sandbox

logger = logging.getLogger(__name__)

START_TIMEOUT = timedelta(seconds=120)
STOP_GRACE = timedelta(seconds=10)  # after SIGTERM, before SIGKILL
MAX_FAILED_STARTS = 3
BACKOFF_BASE_S = 2
LOG_TAIL_BYTES = 4000
# A start waits this long at most for the warm start to finish its imports.
WARM_UP_WAIT_S = 20


def marker(notebook: Notebook) -> str:
    """The argument that tells this instance's server from any other process."""
    return f"--ServerApp.base_url={notebook.base_url}"


def process_name(notebook: Notebook) -> str:
    """The name (/proc/<pid>/comm) of a server forked by the warm start."""
    return f"bml-nb-{notebook.pk}"[:15]


def process_of(notebook: Notebook) -> psutil.Process | None:
    def is_ours(process: psutil.Process) -> bool:
        return process.name() == process_name(notebook) or marker(notebook) in process.cmdline()

    return processes.live_process(notebook.pid, is_ours)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def terminals_allowed(notebook: Notebook) -> bool:
    return bool(notebook.project.notebook_terminal)


def terminal_permitted(terminal_setting: str, role: str) -> bool:
    """Whether a member with `role` may open terminals, given the project's setting."""
    if not terminal_setting:
        return False
    return ROLE_RANK[Role(role)] >= ROLE_RANK[Role(terminal_setting)]


def server_env(notebook: Notebook) -> dict:
    home = workspace.home_dir(notebook)
    env_bin = workspace.env_dir(notebook) / "bin"
    data = home / ".local" / "share" / "jupyter"
    return {
        "PATH": f"{env_bin}:{Path(sys.executable).parent}:/usr/local/bin:/usr/bin:/bin",
        "VIRTUAL_ENV": str(workspace.env_dir(notebook)),
        "HOME": str(home),
        "TMPDIR": str(home / "tmp"),
        "XDG_CACHE_HOME": str(home / ".cache"),
        "JUPYTER_CONFIG_DIR": str(home / ".jupyter"),
        "JUPYTER_DATA_DIR": str(data),
        "JUPYTER_RUNTIME_DIR": str(workspace.runtime_dir(notebook)),
        # The instance's kernel spec (its own Python) before the appliance venv's one.
        "JUPYTER_PREFER_ENV_PATH": "0",
        "JUPYTERLAB_SETTINGS_DIR": str(home / ".jupyter" / "lab" / "user-settings"),
        "JUPYTERLAB_WORKSPACES_DIR": str(home / ".jupyter" / "lab" / "workspaces"),
        "IPYTHONDIR": str(home / ".ipython"),
        "MPLCONFIGDIR": str(home / ".config" / "matplotlib"),
        "LANG": "C.UTF-8",
        "SHELL": "/bin/bash",
        "TERM": "xterm-256color",
        "PYTHONUNBUFFERED": "1",
        "KERAS_BACKEND": "torch",
        "BML_API_URL": settings.NOTEBOOK_API_URL,
        "BML_STORAGE_PATH": notebook.storage_path,
        "BML_METRICS_FILE": str(workspace.work_dir(notebook) / "metrics.jsonl"),
        "BML_NOTEBOOK": notebook.name,
        "BML_DISK_USAGE_FILE": str(workspace.instance_dir(notebook) / "disk.json"),
        **devices.visible_devices_env(notebook.lease),
    }


def server_command(notebook: Notebook, port: int) -> list[str]:
    lab_dir = workspace.home_dir(notebook) / ".jupyter" / "lab"
    # -P: the working directory is the user's, and a file there named like a module the
    # server imports (tornado.py) must not replace it. Everything that keeps the server
    # behind the proxy is on the command line, which outranks the user's config files.
    return [
        sys.executable,
        "-P",
        "-m",
        "jupyterlab",
        "--no-browser",
        marker(notebook),
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        f"--ServerApp.root_dir={workspace.work_dir(notebook)}",
        f"--IdentityProvider.token={notebook.token}",
        # The proxy forwards the browser's Host, so Jupyter's own origin check still works.
        "--ServerApp.allow_remote_access=True",
        "--ServerApp.trust_xheaders=True",
        f"--ServerApp.terminals_enabled={terminals_allowed(notebook)}",
        "--ServerApp.quit_button=False",
        "--ServerApp.contents_manager_class=workers.notebook_quota.QuotaContentsManager",
        "--KernelSpecManager.ensure_native_kernel=False",
        "--LabApp.news_url=None",
        # Given here, not left to the environment: the warm start imported JupyterLab with
        # its own HOME, and these two defaults are fixed at import.
        f"--LabApp.user_settings_dir={lab_dir / 'user-settings'}",
        f"--LabApp.workspaces_dir={lab_dir / 'workspaces'}",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        # Containers (and CI) run the appliance as root; Jupyter refuses that unless told.
        *(["--ServerApp.allow_root=True"] if os.geteuid() == 0 else []),
    ]


def start_process(notebook: Notebook) -> None:
    workspace.create(notebook)  # an instance made by an older version may miss a part
    (workspace.home_dir(notebook) / "tmp").mkdir(exist_ok=True)
    port = free_port()
    cpus = sorted(set(notebook.lease.cpus) & os.sched_getaffinity(0))
    # No single file can outgrow the startup disk (the whole-disk quota is checked on save
    # by the contents manager and shown in the console).
    quota = notebook.disk_quota_bytes
    log_path = workspace.instance_dir(notebook) / "server.log"
    with open(log_path, "ab") as log:
        log.write(
            f"[{timezone.now().isoformat()}] [bml] starting Jupyter for {notebook.name} "
            f"(start {notebook.restarts + 1}) on {notebook.lease.package.name}\n".encode()
        )
    command = server_command(notebook, port)
    _forget_earlier_servers(notebook)
    if sandbox.active():
        # Confined: a fresh interpreter under bwrap (a fork of the warm start could not be
        # put in namespaces of its own), seeing only this instance's folder.
        notebook.pid = _spawn_confined(notebook, command, log_path, quota)
        notebook.port = port
        _mark_started(notebook)
        return
    request = {
        "name": process_name(notebook),
        "args": command[command.index("jupyterlab") + 1 :],
        "env": server_env(notebook),
        "cwd": str(workspace.work_dir(notebook)),
        "log": str(log_path),
        "cpus": cpus,
        "fsize": quota,
    }
    pid = zygote.spawn(request)
    if pid is None:  # no warm start (yet): a fresh interpreter does the same
        pid = _spawn_fresh(command, request)
    notebook.pid, notebook.port = pid, port
    _mark_started(notebook)


def _mark_started(notebook: Notebook) -> None:
    notebook.host = settings.HOST_NAME
    notebook.terminals = terminals_allowed(notebook)
    notebook.started_at, notebook.ready_at, notebook.retry_at = timezone.now(), None, None


def _spawn_confined(notebook: Notebook, command: list[str], log_path: Path, quota) -> int:
    """The server and its kernels in the sandbox: the project's own user, this instance's
    folder read-write (work, home, env, runtime), none of var/ besides."""
    rules = confinement.for_run(
        notebook.project_id,
        workspace.work_dir(notebook),
        notebook.lease,
        writable=[workspace.instance_dir(notebook)],
        file_size=quota,
        group=f"notebook-{notebook.pk}",
    )
    sandbox.give_to_run(workspace.instance_dir(notebook), rules.uid)
    with open(log_path, "ab") as log:
        process = subprocess.Popen(
            sandbox.command(command, rules),
            cwd=workspace.work_dir(notebook),
            env=server_env(notebook),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=sandbox.limits(rules, sandbox.control_groups(rules)),
        )
    _LAUNCHED[process.pid] = process  # kept so that its exit is reaped (no zombies)
    return process.pid


def _spawn_fresh(command: list[str], request: dict) -> int:
    def limits():  # in the child, before Jupyter starts
        if request["cpus"]:
            os.sched_setaffinity(0, request["cpus"])
        resource.setrlimit(resource.RLIMIT_FSIZE, (request["fsize"], request["fsize"]))

    with open(request["log"], "ab") as log:
        process = subprocess.Popen(
            command,
            cwd=request["cwd"],
            env=request["env"],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=limits,
        )
    _LAUNCHED[process.pid] = process  # kept so that its exit is reaped (no zombies)
    return process.pid


_LAUNCHED: dict[int, subprocess.Popen] = {}


class Zygote:
    """The warm start (workers.notebook_zygote): started with the scheduler loop, asked to
    fork each server. Until it is ready, or if it is gone, servers start fresh."""

    def __init__(self):
        self.process: subprocess.Popen | None = None
        self.ready = False
        self.log = self.socket_path().with_suffix(".log")
        self.started = 0.0

    @staticmethod
    def socket_path() -> Path:
        return workspace.notebooks_root() / "zygote.sock"

    def ensure(self) -> None:
        if self.process is not None and self.process.poll() is None:
            if not self.ready:
                self.ready = self.socket_path().exists() and _first_line(self.log) == "ready"
            return
        path = self.socket_path()
        if len(str(path)) > 100:  # a unix socket path is at most 107 bytes
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        path.unlink(missing_ok=True)
        self.ready, self.started = False, time.monotonic()
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-P", "-m", "workers.notebook_zygote", str(path)],
                cwd=settings.BASE_DIR,
                # What its forks could read of its memory: nothing of the appliance's.
                env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": str(path.parent)},
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=die_with_parent,
            )

    def warming(self) -> bool:
        """Started and still importing: worth waiting for (a fresh start takes longer)."""
        self.ensure()
        alive = self.process is not None and self.process.poll() is None
        return alive and not self.ready and time.monotonic() - self.started < WARM_UP_WAIT_S

    def spawn(self, request: dict) -> int | None:
        self.ensure()
        if not self.ready:
            return None
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as connection:
                connection.settimeout(5)
                connection.connect(str(self.socket_path()))
                connection.sendall(json.dumps(request).encode() + b"\n")
                return int(json.loads(connection.makefile("rb").readline())["pid"])
        except (OSError, ValueError, KeyError) as exc:
            logger.warning("notebook warm start failed, starting fresh: %s", exc)
            return None

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
        self.process, self.ready = None, False


def _first_line(path: Path) -> str:
    try:
        with open(path, "rb") as fh:
            return fh.readline(100).decode(errors="replace").strip()
    except OSError:
        return ""


zygote = Zygote()


def server_ready(notebook: Notebook) -> bool:
    """Jupyter writes jpserver-<pid>.json once it listens (the pid inside its sandbox, not
    the one we know: any such file counts, those of earlier starts are removed at start)."""
    return any(workspace.runtime_dir(notebook).glob("jpserver-*.json"))


def _forget_earlier_servers(notebook: Notebook) -> None:
    for stale in workspace.runtime_dir(notebook).glob("jpserver-*"):
        stale.unlink(missing_ok=True)


def log_tail(notebook: Notebook, size: int = LOG_TAIL_BYTES) -> str:
    return processes.tail_text(workspace.instance_dir(notebook) / "server.log", size)


def last_error(notebook: Notebook) -> str:
    lines = [line for line in log_tail(notebook).splitlines() if line.strip()]
    errors = [line for line in lines if "Error" in line or "error" in line]
    return (errors[-1] if errors else (lines[-1] if lines else ""))[:500]


def signal_process(notebook: Notebook, signum=signal.SIGTERM) -> None:
    processes.signal_group(process_of(notebook), signum)


# -- the loop ----------------------------------------------------------------------------

FIELDS = (
    "status",
    "reason",
    "pid",
    "port",
    "host",
    "lease_id",
    "terminals",
    "started_at",
    "ready_at",
    "stopped_at",
    "restarts",
    "failures_in_a_row",
    "retry_at",
    "billed_seconds",
)


def reconcile() -> None:
    now = timezone.now()
    zygote.ensure()
    live = Notebook.objects.filter(host__in=("", settings.HOST_NAME)).exclude(
        desired=Desired.STOPPED, status__in=(NotebookStatus.STOPPED, NotebookStatus.FAILED)
    )
    for notebook in live.select_related("project", "package", "lease__package"):
        before = [getattr(notebook, f) for f in FIELDS]
        try:
            if notebook.desired == Desired.RUNNING:
                _keep_running(notebook, now)
            else:
                _keep_stopped(notebook, now)
        except Exception as exc:  # one broken instance must not stop the others
            logger.exception("notebook reconcile of %s failed", notebook.pk)
            notebook.status, notebook.reason = NotebookStatus.FAILED, f"{type(exc).__name__}: {exc}"
        if [getattr(notebook, f) for f in FIELDS] != before:
            Notebook.objects.filter(pk=notebook.pk).update(
                **{f: getattr(notebook, f) for f in FIELDS}
            )
    housekeeping.collect_finished()
    for pid, process in list(_LAUNCHED.items()):
        if process.poll() is not None:
            del _LAUNCHED[pid]


def _keep_running(notebook: Notebook, now) -> None:
    if notebook.status == NotebookStatus.FAILED:
        return  # until the user starts it again
    if notebook.pid:
        if process_of(notebook) is not None:
            _check_ready(notebook, now)
            return
        _record_exit(notebook, now)
        if notebook.status == NotebookStatus.FAILED:
            return
    if notebook.retry_at and now < notebook.retry_at:
        return
    if notebook.lease_id is None or not notebook.lease.active:
        try:
            notebook.lease = devices.acquire(
                notebook.package,
                "notebook",
                notebook.pk,
                label=f"notebook {notebook.name}",
                shared_cpu=True,  # an instance idles most of the time: devices only
            )
        except devices.NoCapacity as exc:
            never = devices.fits_host(notebook.package, devices.this_host())
            if never:  # waiting would be forever (as a job says at once): say why now
                notebook.status, notebook.reason = NotebookStatus.FAILED, never
                return
            notebook.status, notebook.reason = NotebookStatus.STARTING, f"waiting: {exc}"
            return
    if zygote.warming():
        return  # a quarter of a second later, and the start is a fork
    if notebook.status not in (NotebookStatus.RESTARTING,):
        notebook.status = NotebookStatus.STARTING
    notebook.reason = "" if notebook.status == NotebookStatus.STARTING else notebook.reason
    start_process(notebook)


def _check_ready(notebook: Notebook, now) -> None:
    if notebook.status == NotebookStatus.RUNNING:
        housekeeping.schedule(notebook, now)
        return
    if server_ready(notebook):
        # Say so after an unasked restart: the user's running kernels were lost.
        notebook.reason = (
            f"restarted at {now:%H:%M:%S} UTC: the Jupyter process had exited (kernels lost)"
            if notebook.status == NotebookStatus.RESTARTING
            else ""
        )
        notebook.status, notebook.ready_at = NotebookStatus.RUNNING, now
        notebook.failures_in_a_row = 0
        housekeeping.schedule(notebook, now, first=True)
    elif notebook.started_at and now - notebook.started_at > START_TIMEOUT:
        signal_process(notebook, signal.SIGKILL)
        notebook.reason = f"Jupyter was not ready within {START_TIMEOUT.seconds} s"


def _bill(notebook: Notebook, now) -> None:
    if notebook.started_at:
        notebook.billed_seconds += max(0, int((now - notebook.started_at).total_seconds()))
        notebook.started_at = None


def _record_exit(notebook: Notebook, now) -> None:
    """The server is gone without being asked to stop: start it again, or give up."""
    was_ready = notebook.ready_at is not None
    error = last_error(notebook)
    _bill(notebook, now)
    notebook.pid, notebook.port, notebook.ready_at = None, None, None
    notebook.restarts += 1
    if was_ready:
        notebook.failures_in_a_row = 0
        notebook.status = NotebookStatus.RESTARTING
        notebook.reason = "the Jupyter process exited; restarted (files are kept, kernels lost)"
        return
    notebook.failures_in_a_row += 1
    notebook.reason = error or "Jupyter exited before it was ready"
    if notebook.failures_in_a_row >= MAX_FAILED_STARTS:
        notebook.status = NotebookStatus.FAILED
        _release(notebook)
        return
    notebook.status = NotebookStatus.RESTARTING
    notebook.retry_at = now + timedelta(seconds=BACKOFF_BASE_S**notebook.failures_in_a_row)


def _keep_stopped(notebook: Notebook, now) -> None:
    process = process_of(notebook)
    if process is not None:
        if notebook.status != NotebookStatus.STOPPING or notebook.stopped_at is None:
            notebook.status, notebook.stopped_at = NotebookStatus.STOPPING, now
            signal_process(notebook, signal.SIGTERM)
        elif notebook.stopped_at and now - notebook.stopped_at > STOP_GRACE:
            signal_process(notebook, signal.SIGKILL)
        return
    if notebook.pid or notebook.lease_id:
        _bill(notebook, now)
        notebook.pid, notebook.port, notebook.ready_at = None, None, None
        _release(notebook)
        notebook.status = NotebookStatus.STOPPING
        housekeeping.final_sync(notebook)  # data/ to the bucket, then "stopped"
        return
    if housekeeping.final_sync_done(notebook):
        notebook.status, notebook.stopped_at = NotebookStatus.STOPPED, now
        notebook.retry_at = None


def _release(notebook: Notebook) -> None:
    if notebook.lease_id:
        devices.release(notebook.lease)
        notebook.lease = None


def kill(notebook: Notebook) -> None:
    """Delete or project purge: no sync, no grace."""
    signal_process(notebook, signal.SIGKILL)
    if notebook.lease_id:
        devices.release(notebook.lease)
