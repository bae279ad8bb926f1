"""Django-Q2 entry points of the data plane. Short: they never wait for a run."""

from workers import scheduler


def tick() -> None:
    scheduler.tick()
