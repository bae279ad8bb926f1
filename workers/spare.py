"""A warm start: a run's code started ahead, confined, that waits for the job it is given.

    python -m workers.supervise --config <spare dir>/run.json --spare

Why: a visual modeling segment (workers.runners.visual.run) spends ~1.3 s warm, ~2 s on
cold memory, starting the interpreter and importing pandas, pyarrow and scikit-learn before
it does anything; a rerun after changing one setting has about as much real work. The
control plane (workers.warm_starts) keeps one such process ready for a project that is
doing visual modeling, and the next node job of that project takes it instead of starting
a fresh one. No Django import, like workers.supervise.

<spare dir> (runs/warm/<project>-<token>/, made by workers.warm_starts):
    spare.json     {"project_id", "command", "sandbox"}: what to start now, confined as
                   the project's runs are (its user, its own control group, no lease yet);
                   renamed claimed.json by the job that takes it (a rename: one taker)
    run.json       that job's config (workers.supervise), written when it is taken; the
                   folder is then the job's run dir, with this process its supervisor
    inputs/        the job's staged-in inputs: shown read-only at workspace/inputs/
    workspace/     the run's working folder, bound read-write when the code started;
                   .bml/go (a FIFO the code blocks on), .bml/ready (its imports are done)

What the job gets is what a fresh start gives, decided when it is taken: its inputs (a
sandbox's binds are fixed when it starts, so they are hard links, or copies, in inputs/,
which the code sees through a read-only bind: nothing it can change), its cores (every
thread re-pinned), its memory (written into the control group the code is in), its file
size limit, its environment (sent with the order), its time limit and its log. A warm
start that is gone, or does not fit the job (another program, another user, devices), is
put aside and the job starts fresh, in the same folder.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import stat
import time
from dataclasses import replace
from pathlib import Path

from workers import cgroups, sandbox
from workers.supervise import WORKSPACE_DIRS, Supervisor, user_environment

SPARE_FILE = "spare.json"
CLAIMED_FILE = "claimed.json"
INPUTS = "inputs"
GO = ".bml/go"
READY = ".bml/ready"
IDLE_CHECK_S = 1.0  # while waiting to be taken: how often the code's end is looked at
HANDOVER_POLL_S = 0.005  # while the code finishes its imports, taken already


class SpareSupervisor(Supervisor):
    def __init__(self, config_path: Path):
        self.config_path = config_path
        self.spare = json.loads((config_path.parent / SPARE_FILE).read_text())
        workspace = config_path.parent / "workspace"
        # How the code was started: a job that needs otherwise starts fresh (`unfit`).
        self.ahead = sandbox.Confinement.from_json(self.spare["sandbox"], workspace)
        super().__init__(
            config_path,
            config={
                "run_id": "warm-start",
                "workspace": str(workspace),
                "command": self.spare["command"],
                "sandbox": self.spare["sandbox"],
            },
        )

    # -- before a job takes it ------------------------------------------------------------

    def serve(self) -> int:
        """Start the code, wait to be taken (SIGUSR1 after run.json is written, or a look
        every second), then supervise the job like a fresh run. 0 when stopped unused."""
        signal.signal(signal.SIGTERM, self.request_terminate)
        signal.signal(signal.SIGINT, self.request_terminate)
        signal.signal(signal.SIGUSR1, lambda *_: None)  # never the default (exit)
        (self.run_dir / "supervisor.pid").write_text(str(os.getpid()))
        for name in (*WORKSPACE_DIRS, INPUTS):
            (self.workspace / name).mkdir(parents=True, exist_ok=True)
        (self.run_dir / INPUTS).mkdir(exist_ok=True)
        go = self.workspace / GO
        if not go.exists():
            os.mkfifo(go, 0o600)
        self.log(
            f"a warm start for project {self.spare['project_id']}: its code starts now, "
            "imports ahead and waits for a job"
        )
        try:
            Supervisor.start_child(self, self.confinement())
        except Exception as exc:  # noqa: BLE001 - said in its log; the job starts fresh
            self.log(f"the warm start could not start: {type(exc).__name__}: {exc}")
            return 1
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR1})  # after the code's start
        # The uploads' imports now, not when the job's outputs are staged out (~0.2 s).
        self.storage()
        import httpx  # noqa: F401

        while not self.taken():
            if self.terminate_requested:
                self.kill_tree()
                cgroups.remove(self.groups)
                self.log("the warm start was stopped unused")
                return 0
            if self.child.poll() is not None:
                cgroups.remove(self.groups)
                self.log(f"the warm start ended unused (exit code {self.child.returncode})")
                return 1
            signal.sigtimedwait({signal.SIGUSR1}, IDLE_CHECK_S)
        self.config = json.loads(self.config_path.read_text())
        self.log(f"taken by run {self.config['run_id']}")
        result = self.run()
        return 0 if result["status"] == "succeeded" else 1

    def taken(self) -> bool:
        return (self.run_dir / CLAIMED_FILE).exists() and self.config_path.exists()

    # -- staging in: links under inputs/, shown read-only ---------------------------------

    def confinement(self) -> sandbox.Confinement:
        rules = super().confinement()
        rules.shown.append(((self.run_dir / INPUTS).resolve(), self.workspace / INPUTS))
        return rules

    def inside_workspace(self, relative: str) -> Path:
        """Stage-in targets under workspace/inputs/ land in the run dir's inputs/, which the
        code sees there read-only (a target already there is taken as it is)."""
        inputs = (self.run_dir / INPUTS).resolve()
        target = (self.workspace / relative).resolve()
        if inputs in (target, *target.parents):
            return target
        target = super().inside_workspace(relative)
        shown = (self.workspace / INPUTS).resolve()
        if shown in (target, *target.parents):
            return inputs / target.relative_to(shown)
        return target

    def place_local(self, source: Path, target: Path) -> None:
        """A hard link (no copy, nothing written), else a copy: under inputs/ either way,
        read-only to the code."""
        target.unlink(missing_ok=True)
        try:
            os.link(source, target)
        except OSError:  # another file system, or links refused
            shutil.copyfile(source, target)

    def local_how(self) -> str:
        return "linked read-only"

    # -- handing the job to the code ------------------------------------------------------

    def start_child(self, confinement: sandbox.Confinement) -> None:
        reason = self.unfit(confinement)
        if reason:
            self.start_fresh(reason)
            return
        sandbox.give_to_run(self.workspace, confinement.uid)  # what the job wrote there
        self.groups = self.take_limits(confinement)
        self.hand_over()

    def unfit(self, confinement: sandbox.Confinement) -> str:
        ahead, command, started = self.ahead, self.config["command"], self.spare["command"]
        if self.child is None or self.child.poll() is not None:
            return "its code has ended"
        if command[:-2] != started[:-2] or command[-2] != "--params":
            return "the job runs another program"
        if confinement.uid != ahead.uid or confinement.devices != ahead.devices:
            return "the job runs as another user or with devices"
        if confinement.file_size != ahead.file_size:  # raising it takes CAP_SYS_RESOURCE
            return "the job has another file size limit"
        return ""

    def take_limits(self, confinement: sandbox.Confinement) -> list[Path]:
        """The job's limits on the code started without them: its memory and process limits
        written into the control group the code is in, its cores set on every thread of
        every process of it (the file size limit is the one it started with: `unfit`)."""
        groups = sandbox.control_groups(replace(confinement, group=self.ahead.group))
        cpus = set(confinement.cpus) & os.sched_getaffinity(0)
        if not cpus:
            return groups
        import psutil

        try:
            top = psutil.Process(self.child.pid)
            processes = [top, *top.children(recursive=True)]
        except psutil.Error:
            return groups  # it ended meanwhile: the watch sees it
        for process in processes:
            try:
                for thread in process.threads():
                    os.sched_setaffinity(thread.id, cpus)
            except (psutil.Error, ProcessLookupError):
                continue
        return groups

    def hand_over(self) -> None:
        """Send the order once the code waits on its FIFO (its imports done): the segment's
        params and the job's environment. A FIFO that is not one any more, or code that
        ended, means a fresh start instead."""
        params = self.config["command"][-1]
        order = {"params": params, "env": user_environment(self.config, self.workspace)}
        go = self.workspace / GO
        while True:
            if self.terminate_requested:
                return  # run_user_code ends it
            try:
                fd = os.open(go, os.O_WRONLY | os.O_NONBLOCK | os.O_NOFOLLOW)
            except OSError as exc:
                if exc.errno != errno.ENXIO:  # not waiting there: not the FIFO we made
                    return self.start_fresh(f"its FIFO is gone ({exc.strerror})")
                if self.child.poll() is not None:
                    return self.start_fresh("its code ended before it was given the job")
                time.sleep(HANDOVER_POLL_S)
                continue
            break
        with os.fdopen(fd, "wb") as fifo:
            if not stat.S_ISFIFO(os.fstat(fifo.fileno()).st_mode):
                return self.start_fresh("its FIFO was replaced")
            os.set_blocking(fd, True)
            fifo.write(json.dumps(order).encode() + b"\n")
        self.log("the run was handed to its warm start")

    def start_fresh(self, reason: str) -> None:
        self.log(f"the warm start is put aside ({reason}): the run starts fresh")
        self.kill_tree()
        cgroups.remove(self.groups)
        super().start_child(self.confinement())
