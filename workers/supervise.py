"""The wrapper every run lives in: stage in, run with limits, stage out, write the result.

    python -m workers.supervise --config <run_dir>/run.json

No Django import: a run must not depend on (or see) the appliance's settings. The control
plane writes run.json, starts this detached in its own process group, and later reads
`<run_dir>/result.json` (the reconcile loop); everything a user needs ends in storage.

run.json:
    run_id          name of this run (also the log file name in storage)
    workspace       the user's working directory; train_data/, test_data/, output/ are made
    command         argv list (the user code; e.g. ["python", "train.py"])
    env             extra environment (devices, RANK/WORLD_SIZE, ...): all the user gets
                    beyond a minimal base, so no appliance secret can leak in
    time_limit_s    maximum running time; then the run ends "timed_out"
    cpu_affinity    cores the user code is pinned to (its lease's), or [] for no pinning
    sandbox         how the user code is confined (workers.sandbox.Confinement as JSON: its
                    user, what it may see); the workspace is the only folder it may write
    grant           {prefix, url, fields}: an S3 POST policy to write under the job's own
                    output folder, and nowhere else (apps.storage.grants); the run holds
                    no store keys, and its user code gets the grant as BML_STORAGE_GRANT
    stage_in        [{dest, source, files: [{path, url, size, range?}], share?, rows?,
                    input_files?, input_bytes?, error?}]: presigned GETs of the files (this
                    instance's share: share [index, count]) to fetch into workspace/dest
                    before start; `error` (e.g. an empty data path) fails the run, logged.
                    A file with a `range` [start, end) is a row split of a line-oriented
                    input (apps.storage.grants.input_files): only the whole lines that begin
                    in that byte range are fetched (HTTP Range requests), the rest of the
                    file belongs to the other instances. An instance whose share holds no
                    data (fewer files or lines than instances) says so in its log and runs.
    stage_out       [{src, uri}]: workspace/src -> bos:// folder, on success only
    log_uri         bos:// folder the log goes to, whatever the outcome
    wake            (optional) the scheduler loop's socket: a datagram there once
                    result.json is written (workers.wakeup)

result.json: {status, exit_code, reason, started_at, ended_at}, status one of
succeeded, failed, timed_out, terminated, or staging (below).

Outputs that could not be stored. The store may be away when a run ends (down, restarting,
moved to another port with the appliance) or the grant may have expired. Then nothing is
thrown away: the outputs stay in the workspace, the log in the run dir, and result.json says
status "staging" with `outcome` (what the user code did), `pending` (the bos:// folders not
written), `staging_error`, `staging_since` and `attempted_at`. Such errors are the transient
ones (no answer, 403 of an expired or foreign grant, 5xx); any other refusal of an output
(a file over the 5 GB a POST may carry) fails the run as before. The control plane
(workers.scheduler) retries by running this module again in the same run dir:

    python -m workers.supervise --config <run_dir>/run.json --stage-out

which stages out only the pending outputs (idempotent: same keys) and the log again (it
now says when they were stored), and rewrites result.json,
either with the final status (the outcome) or still "staging" with the new error. One
stage-out at a time per run dir (a lock); it writes supervisor.pid like a run does.

Fresh grants. Before staging out (at the end of a run, and on every retry) the supervisor
reads `<run_dir>/grant.json` when there is one: the scheduler writes it there when the
grant in run.json no longer points at the store (an adopted run after a restart) or is
about to expire, and before every retry. While the user code runs, a fresh grant is also
copied to the workspace's grant file (BML_STORAGE_GRANT), so the code's own uploads work.
"""

import argparse
import fcntl
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from workers import cgroups, sandbox, wakeup

GRACE_SECONDS = 5
POLL_SECONDS = 0.2
WORKSPACE_DIRS = ("train_data", "test_data", "output", "tmp", ".bml/packages")
METRICS_FILE = ".bml/metrics.jsonl"
GRANT_FILE = ".bml/grant.json"
PACKAGES_DIR = ".bml/packages"
# In the run dir (not the workspace): a grant the scheduler issued after start.
FRESH_GRANT_FILE = "grant.json"
STAGE_LOCK_FILE = "stage.lock"
LOG_PENDING = "log"  # how the log stands in `pending` next to the outputs' bos:// folders


def transient(exc: Exception) -> bool:
    """Whether a failed upload may work later, with the store back or a fresh grant: no
    answer at all, or a refusal of the grant (403), a busy or failing store (408, 429, 5xx).
    Any other refusal (400: a file larger than one POST may carry) is final."""
    import httpx

    if isinstance(exc, httpx.TransportError | ConnectionError | TimeoutError):
        return True
    refused = re.search(r"refused \((\d{3})\)", str(exc))
    return bool(refused) and (int(refused[1]) in (403, 408, 429) or int(refused[1]) >= 500)


def now() -> str:
    return datetime.now(UTC).isoformat()


def write_json_atomically(path: Path, data: dict) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2))
    os.replace(tmp, path)


def user_environment(config: dict, workspace: Path) -> dict:
    """A minimal base plus what the control plane chose: never the appliance's environment."""
    venv_bin = str(Path(sys.executable).parent)
    env = {
        "PATH": f"{venv_bin}:/usr/local/bin:/usr/bin:/bin",
        "HOME": str(workspace),
        "TMPDIR": str(workspace / "tmp"),
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "PYTHONUNBUFFERED": "1",
        "BML_RUN_ID": config["run_id"],
        "BML_WORKSPACE": str(workspace),
        "BML_METRICS_FILE": str(workspace / METRICS_FILE),
        # `pip install` in a job goes to a layer of its own, never into the appliance's venv.
        "PIP_TARGET": str(workspace / PACKAGES_DIR),
        "PYTHONPATH": str(workspace / PACKAGES_DIR),
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
    }
    if config.get("grant"):
        env["BML_STORAGE_GRANT"] = str(workspace / GRANT_FILE)
    env.update({k: str(v) for k, v in (config.get("env") or {}).items()})
    return env


class Supervisor:
    def __init__(self, config_path: Path, config: dict | None = None):
        self.run_dir = config_path.parent
        self.config = config if config is not None else json.loads(config_path.read_text())
        self.workspace = Path(self.config["workspace"])
        self.log_path = self.run_dir / "log.txt"
        self.child: subprocess.Popen | None = None
        self.groups: list[Path] = []
        self.terminate_requested = False
        self.shown: list[tuple[Path, Path]] = []  # (this host's file, where the run sees it)
        self._show_local: bool | None = None

    def log(self, message: str) -> None:
        with self.log_path.open("a") as fh:
            fh.write(f"[{now()}] [bml] {message}\n")

    def storage(self):
        from bml import storage

        storage.use_grant(self.config.get("grant"))
        return storage

    def inside_workspace(self, relative: str) -> Path:
        target = (self.workspace / relative).resolve()
        if self.workspace.resolve() not in (target, *target.parents):
            raise ValueError(f"stage_in destination escapes the workspace: {relative}")
        return target

    def stage_in(self) -> None:
        for item in self.config.get("stage_in") or []:
            dest = self.inside_workspace(item["dest"])
            if item.get("error"):
                raise FileNotFoundError(item["error"])
            dest.mkdir(parents=True, exist_ok=True)
            fetched = local = 0
            for entry in item["files"]:
                target = self.inside_workspace(f"{dest}/{entry['path']}")
                if self.take_local(item, entry, target):
                    local += 1
                    fetched += entry["size"]
                elif entry.get("range"):
                    start, end = entry["range"]
                    size = entry["size"]
                    fetched += self.storage().fetch_rows(entry["url"], target, start, end, size)
                else:
                    fetched += self.storage().fetch(entry["url"], target).stat().st_size
            if local:
                self.log(f"{local} file(s) of {item['source']} {self.local_how()} from this host")
            self.log_staged_in(item, fetched)
            for extra in item.get("host_files") or []:
                self.take_host_file(extra, dest)

    def take_host_file(self, extra: dict, dest: Path) -> None:
        """An optional file of this host next to an item (`{path, name}`: an earlier run's
        table in a faster form than the store's): shown (or copied) as dest/name while it
        is there; the item's own files do without it."""
        source, target = Path(extra["path"]), self.inside_workspace(f"{dest}/{extra['name']}")
        try:
            if source.is_symlink() or not source.is_file():
                raise FileNotFoundError(source)
            self.place_local(source, target)
        except OSError:
            self.log(f"{extra['name']} of {extra['path']} is no longer on this host")
            return
        self.log(f"{extra['name']} of an earlier run {self.local_how()} from this host")

    def place_local(self, source: Path, target: Path) -> None:
        """This host's `source` at `target`: a read-only bind when the run is confined
        (an empty file where it lands), else a copy."""
        if self.show_local():
            target.touch()
            self.shown.append((source.resolve(), target))
        else:
            shutil.copyfile(source, target)

    def local_how(self) -> str:
        return "shown read-only" if self.show_local() else "copied"

    def show_local(self) -> bool:
        """Whether this host's copies of inputs are shown to the run (a read-only bind in
        its sandbox: nothing copied, nothing it can change) rather than copied."""
        if self._show_local is None:
            self._show_local = sandbox.active()
        return self._show_local

    def take_local(self, item: dict, entry: dict, target: Path) -> bool:
        """Use a staged file from the item's local folder (the control plane's note of
        where an earlier run of this host left the same output) when it is there with the
        size the store has: no round trip through the store for data it just took. Shown
        at `target` read-only when the run is confined (bwrap binds it), else copied."""
        root = item.get("local")
        if not root or entry.get("range"):
            return False
        source = Path(root) / entry["path"]
        try:
            if Path(root).resolve() not in source.resolve().parents:
                return False
            if source.is_symlink() or source.stat().st_size != entry["size"]:
                return False
            target.parent.mkdir(parents=True, exist_ok=True)
            self.place_local(source, target)
            return True
        except OSError:  # unreadable or gone: the store has it
            return False

    def log_staged_in(self, item: dict, fetched: int) -> None:
        source, share = item["source"], item.get("share")
        if not share:
            self.log(f"staged in {len(item['files'])} file(s) from {source}")
            return
        index, count = share
        whose = f"instance {index + 1} of {count}"
        if item.get("rows"):
            self.log(
                f"staged in {fetched} byte(s) of whole lines from {len(item['files'])} file(s) "
                f"of {source} (share {index + 1} of {count}: the lines that begin in its "
                f"1/{count} of the bytes)"
            )
            if not fetched:
                self.log(
                    f"warning: {whose} has no data: no line of {source} "
                    f"({item.get('input_bytes')} byte(s) in {item.get('input_files')} file(s)) "
                    f"begins in its 1/{count} of the bytes (fewer lines than instances, or "
                    "very long ones); it runs on an empty share"
                )
            return
        self.log(
            f"staged in {len(item['files'])} file(s) from {source} (share {index + 1} of {count})"
        )
        if not fetched:
            held = (
                f"its {len(item['files'])} file(s) are empty"
                if item["files"]
                else f"{source} holds {item.get('input_files')} file(s), fewer than the "
                f"{count} instances (each instance gets whole files)"
            )
            self.log(f"warning: {whose} has no data: {held}; it runs on an empty share")

    def stage_out(self, items: list[dict]) -> tuple[list[str], str]:
        """Store the outputs `items` (workspace/src -> uri). Returns the folders that must
        wait for the store (and the last error): transient failures; others raise."""
        pending, error = [], ""
        for item in items:
            src = self.workspace / item["src"]
            if not (src.exists() and any(src.rglob("*"))):
                continue
            try:
                uploaded = self.storage().upload(src, item["uri"])
            except Exception as exc:
                if not transient(exc):
                    raise
                pending.append(item["uri"])
                error = f"{type(exc).__name__}: {exc}"
                continue
            self.log(f"staged out {len(uploaded)} file(s) to {item['uri']}")
        return pending, error

    def upload_log(self) -> None:
        uri = self.config.get("log_uri")
        if not uri:
            return
        target = uri if uri.endswith("/") else uri + "/"
        named = self.run_dir / f"{self.config['run_id']}.log"
        named.write_bytes(self.log_path.read_bytes())
        self.storage().upload(named, target)
        metrics = self.workspace / METRICS_FILE
        if metrics.is_file() and not metrics.is_symlink():
            kept = self.run_dir / f"{self.config['run_id']}.metrics.jsonl"
            with open(os.open(metrics, os.O_RDONLY | os.O_NOFOLLOW), "rb") as fh:
                kept.write_bytes(fh.read())
            self.storage().upload(kept, target)

    def use_fresh_grant(self) -> None:
        """A grant the scheduler wrote into the run dir since start replaces run.json's."""
        try:
            self.config["grant"] = json.loads((self.run_dir / FRESH_GRANT_FILE).read_text())
        except (OSError, ValueError):
            pass

    def share_fresh_grant(self) -> None:
        """Give the running user code a grant the scheduler refreshed (its own uploads):
        written into the workspace's .bml/ without following a link the code put there."""
        try:
            mtime = (self.run_dir / FRESH_GRANT_FILE).stat().st_mtime_ns
        except OSError:
            return
        if mtime == getattr(self, "_shared_grant_mtime", None):
            return
        self._shared_grant_mtime = mtime
        self.use_fresh_grant()
        folder, name = os.path.split(self.workspace / GRANT_FILE)
        try:
            dir_fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
        except OSError:
            return  # the code removed or replaced .bml/: it gets no grant
        try:
            flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW
            fd = os.open(name + ".tmp", flags, 0o644, dir_fd=dir_fd)
            with os.fdopen(fd, "w") as fh:
                json.dump(self.config["grant"], fh)
            os.replace(name + ".tmp", name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
        except OSError:
            pass
        finally:
            os.close(dir_fd)

    def store_results(self, result: dict, outputs: list[dict], with_log: bool) -> dict:
        """Stage out `outputs` (when the run succeeded) and upload the log, then settle
        result.json: the outcome, or "staging" with what still waits for the store."""
        self.use_fresh_grant()
        outcome = result.get("outcome") or result["status"]
        pending, error = [], ""
        if outcome == "succeeded" and outputs:
            try:
                pending, error = self.stage_out(outputs)
            except Exception as exc:  # refused for good: the run fails, as it always did
                outcome, result["reason"] = "failed", f"{type(exc).__name__}: {exc}"
        if not result.get("outcome"):  # the first time: say how the run ended
            reason = result["reason"]
            self.log(f"run {outcome}" + (f": {reason}" if reason else ""))
        if pending:
            self.log(
                f"outputs not stored ({error}): {', '.join(pending)} wait in the workspace "
                "and are staged out again when the object store answers"
            )
        if with_log:
            try:
                self.upload_log()
            except Exception as exc:  # the log waits in the run dir, like outputs do
                pending.append(LOG_PENDING)
                error = error or f"log upload failed: {type(exc).__name__}: {exc}"
        result.update(ended_at=result.get("ended_at") or now(), attempted_at=now())
        if pending:
            result.update(
                status="staging",
                outcome=outcome,
                pending=pending,
                staging_error=error,
                staging_since=result.get("staging_since") or now(),
            )
        else:
            for key in ("outcome", "pending", "staging_error"):
                result.pop(key, None)
            result["status"] = outcome
        write_json_atomically(self.run_dir / "result.json", result)
        self.wake_scheduler()
        return result

    def wake_scheduler(self) -> None:
        """Tell the scheduler's loop the run has a result now (a datagram on its socket,
        `wake` in run.json), so the run's end shows at once, not at its next tick."""
        if self.config.get("wake"):
            wakeup.send(self.config["wake"], b"ended")

    def stage_out_again(self) -> dict:
        """Retry what a run could not store (`--stage-out`), once, with the freshest grant."""
        lock = open(self.run_dir / STAGE_LOCK_FILE, "w")  # noqa: SIM115 - held until exit
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return {"status": "staging"}  # another stage-out of this run is under way
        result = json.loads((self.run_dir / "result.json").read_text())
        if result.get("status") != "staging":
            return result
        (self.run_dir / "supervisor.pid").write_text(str(os.getpid()))
        pending = set(result.get("pending") or [])
        self.log(f"staging out again: {', '.join(sorted(pending))}")
        self.drop_links()
        outputs = [i for i in self.config.get("stage_out") or [] if i["uri"] in pending]
        # The log goes again either way: it now tells when the outputs were stored.
        return self.store_results(result, outputs, with_log=True)

    def drop_links(self) -> None:
        """Remove the symbolic links the user code left in its workspace: staging out and
        the log upload run with the appliance's rights, and must not follow a link to a file
        the code itself was not shown (the run's processes are all gone by now)."""
        dropped = 0
        for root, dirs, files in os.walk(self.workspace):
            for name in dirs + files:
                path = os.path.join(root, name)
                if os.path.islink(path):
                    os.unlink(path)
                    dropped += 1
        if dropped:
            self.log(f"removed {dropped} symbolic link(s) from the workspace before staging out")

    def request_terminate(self, signum, frame) -> None:
        self.terminate_requested = True

    def kill_tree(self) -> None:
        """TERM the user's process group, then KILL what is left after the grace period."""
        if self.child is None or self.child.poll() is not None:
            return
        try:
            os.killpg(self.child.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + GRACE_SECONDS
        while self.child.poll() is None and time.monotonic() < deadline:
            time.sleep(POLL_SECONDS)
        try:
            os.killpg(self.child.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.child.wait()

    def confinement(self) -> sandbox.Confinement:
        rules = self.config.get("sandbox") or {}
        confinement = sandbox.Confinement.from_json(rules, self.workspace)
        confinement.cpus = list(self.config.get("cpu_affinity") or [])
        confinement.shown = list(self.shown)
        return confinement

    def start_child(self, confinement: sandbox.Confinement) -> None:
        """The user code, confined, in its own process group (workers.spare hands the run
        to a process started ahead instead)."""
        # Staged in by us: the run's own user must own (and may change) what is there.
        sandbox.give_to_run(self.workspace, confinement.uid)
        self.groups = sandbox.control_groups(confinement)
        with self.log_path.open("ab") as log:
            self.child = subprocess.Popen(
                sandbox.command(self.config["command"], confinement),
                cwd=self.workspace,
                env=user_environment(self.config, self.workspace),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own group: terminate takes the whole tree
                # limits and pinning before the user code starts, so all it makes inherits them
                preexec_fn=sandbox.limits(confinement, self.groups),
            )
        (self.run_dir / "child.pid").write_text(str(self.child.pid))

    def run_user_code(self) -> tuple[str, int | None, str]:
        limit = float(self.config.get("time_limit_s") or 0)
        confinement = self.confinement()
        started = time.monotonic()
        self.start_child(confinement)
        if self.terminate_requested:  # asked while a warm start was being handed the run
            self.kill_tree()
            return "terminated", None, "terminated by request"
        while self.child.poll() is None:
            self.share_fresh_grant()
            if self.terminate_requested:
                self.kill_tree()
                return "terminated", None, "terminated by request"
            if limit and time.monotonic() - started > limit:
                self.kill_tree()
                return "timed_out", None, f"maximum running time of {limit:g} s exceeded"
            try:  # back at once when it ends (a short job's end is not a poll late)
                self.child.wait(POLL_SECONDS)
            except subprocess.TimeoutExpired:
                pass
        code = self.child.returncode
        if code == 0:
            return "succeeded", 0, ""
        if cgroups.out_of_memory(self.groups):
            return (
                "failed",
                code,
                (
                    f"out of memory: the run needed more than its {confinement.memory_mb} MB "
                    "(the resource package's share); choose a larger package"
                ),
            )
        if code < 0:
            return "failed", code, f"killed by signal {signal.Signals(-code).name}"
        return "failed", code, f"user code exited with code {code}"

    def run(self) -> dict:
        signal.signal(signal.SIGTERM, self.request_terminate)
        signal.signal(signal.SIGINT, self.request_terminate)
        (self.run_dir / "supervisor.pid").write_text(str(os.getpid()))
        for name in WORKSPACE_DIRS:
            (self.workspace / name).mkdir(parents=True, exist_ok=True)
        if self.config.get("grant"):
            write_json_atomically(self.workspace / GRANT_FILE, self.config["grant"])
        result = {"started_at": now(), "exit_code": None, "reason": ""}
        try:
            self.stage_in()
            if self.terminate_requested:
                status, code, reason = "terminated", None, "terminated by request"
            else:
                status, code, reason = self.run_user_code()
                cgroups.remove(self.groups)
                self.drop_links()
        except Exception as exc:  # staging or start failures are the run's outcome, not a crash
            status, code, reason = "failed", None, f"{type(exc).__name__}: {exc}"
        result.update(status=status, exit_code=code, reason=reason)
        return self.store_results(result, self.config.get("stage_out") or [], with_log=True)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True, type=Path)
    parser.add_argument(
        "--stage-out", action="store_true", help="retry storing what a finished run left"
    )
    parser.add_argument(
        "--spare",
        action="store_true",
        help="a warm start: start the code now, run the job given it later (workers.spare)",
    )
    args = parser.parse_args(argv)
    if args.spare:
        from workers import spare

        return spare.SpareSupervisor(args.config.resolve()).serve()
    supervisor = Supervisor(args.config.resolve())
    result = supervisor.stage_out_again() if args.stage_out else supervisor.run()
    return 0 if result["status"] == "succeeded" else 1


if __name__ == "__main__":
    sys.exit(main())
