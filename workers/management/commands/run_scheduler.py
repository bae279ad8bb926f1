import signal
import time

from django.core.management.base import BaseCommand
from django.db import close_old_connections

from apps.notebooks import servers as notebook_servers
from apps.serving import replicas
from apps.storage import services as storage
from workers import cgroups, scheduler, wakeup, warm_starts

# Unfinished uploads older than a day (and the empty control groups of runs that ended) are
# dropped hourly, the first time a minute after start.
HOUSEKEEPING_DELAY_S, HOUSEKEEPING_EVERY_S = 60, 3600


class Command(BaseCommand):
    help = "The scheduler's clock: reconcile runs and admit queued jobs 4 times a second."

    def add_arguments(self, parser):
        parser.add_argument("--interval", type=float, default=0.25)
        parser.add_argument("--once", action="store_true")

    def handle(self, *args, interval, once, **options):
        # A loop rather than a Django-Q schedule: Q schedules tick per minute, and a job's
        # end should show within a second. Each tick is short and holds no transaction open.
        stopping = []
        housekeeping_due = time.monotonic() + HOUSEKEEPING_DELAY_S
        signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
        signal.signal(signal.SIGINT, lambda *_: stopping.append(True))
        # Woken early by a datagram (a job submitted, a run's result written): a job's
        # start and end show at once instead of up to a quarter second later.
        waker = wakeup.Waker()
        while not stopping:
            close_old_connections()
            try:
                scheduler.tick()
            except Exception as exc:  # one bad tick must not stop the clock
                self.stderr.write(f"scheduler tick failed: {type(exc).__name__}: {exc}")
            # Only this loop supervises prediction replicas and notebook servers (not the Q
            # cluster's ticks): two supervisors could both restart a dead one, and the
            # processes, their reaping and the notebooks' background checks live here.
            for name, reconcile in (
                ("serving", replicas.reconcile),
                ("notebook", notebook_servers.reconcile),
                ("warm start", warm_starts.ensure),
            ):
                try:
                    reconcile()
                except Exception as exc:
                    self.stderr.write(f"{name} reconcile failed: {type(exc).__name__}: {exc}")
            if time.monotonic() >= housekeeping_due:
                housekeeping_due = time.monotonic() + HOUSEKEEPING_EVERY_S
                try:
                    storage.abort_stale_uploads()
                except Exception as exc:  # the store may be down: next time
                    self.stderr.write(f"storage housekeeping failed: {type(exc).__name__}: {exc}")
                cgroups.prune()  # the empty groups of runs killed with their supervisor
            if once:
                waker.close()
                return
            waker.sleep(interval)
        waker.close()
        # Job runs and notebook servers go on and are adopted at the next start; prediction
        # replicas are useless without the gateway, so they stop with the appliance and
        # start again with it.
        replicas.shutdown()
        notebook_servers.zygote.stop()
        warm_starts.stop_all()
