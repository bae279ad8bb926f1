"""Waking the scheduler's loop (workers.management.commands.run_scheduler) before its next
quarter-second tick: a datagram on its socket, `var/scheduler.sock`. Sent when a job is
submitted (apps.jobs.services) and when a run's result is written (workers.supervise, told
the path in run.json), so a short job's start and end show at once. Nothing waits on the
sender's side: with the loop stopped or busy, its next tick finds the same work."""

import os
import select
import socket
import time
from pathlib import Path


def path() -> Path:
    from django.conf import settings  # only here: supervise sends without Django

    return Path(settings.VAR_DIR) / "scheduler.sock"


def wake() -> None:
    """Ask the loop for a tick now; nothing happens when it is not listening."""
    send(path(), b"tick")


def send(where: Path | str, message: bytes) -> None:
    """One datagram to the loop's socket at `where`; nothing when it is not listening
    (stopped, or busy: its next tick finds the same work)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.setblocking(False)
        try:
            sock.sendto(message, str(where))
        except OSError:
            pass


class Waker:
    """The loop's side: sleeps until the next tick or a datagram, whichever comes first.
    Without its socket (a path too long for one), a plain sleep."""

    def __init__(self):
        self.sock = None
        where = path()
        if len(str(where)) > 100:  # a unix socket's path is at most 107 bytes
            return
        where.unlink(missing_ok=True)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(where))
        os.chmod(where, 0o600)
        self.sock.setblocking(False)

    def sleep(self, seconds: float) -> bool:
        """True when woken by a datagram (all that came meanwhile are taken: one tick
        answers them), False when the time ran out."""
        if self.sock is None:
            time.sleep(seconds)
            return False
        if not select.select([self.sock], [], [], seconds)[0]:
            return False
        while True:
            try:
                self.sock.recv(64)
            except BlockingIOError:
                return True

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None
            path().unlink(missing_ok=True)
