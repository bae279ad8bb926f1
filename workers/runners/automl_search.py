"""The AutoML jobs' search: one Optuna study whose trials run in parallel over the job's
instances (2-4 processes, each in its own sandboxed workspace). No Django import.

The instances share no file and no database, only the job's process group (ml_dist), so
the study is kept the same on every instance and moves in rounds:
  1. instance 0 asks the study for one trial per instance (TPE, multivariate, with the
     constant liar so that the trials asked together differ) and sends their parameters;
     the other instances enqueue those parameters and ask for them, so their studies hold
     the same trials in the same order;
  2. each instance runs its own trial, reporting its per-epoch score to its study, which
     may prune it against the finished trials every study holds alike;
  3. the instances gather every trial's record (parameters, per-epoch scores, score,
     state, seconds) and each tells its study all of them in rank order.
  (Pruning: a trial whose score has stopped rising and is in the bottom quarter of the
  finished trials' scores at that epoch, after a warm-up, stops there.)
So each study sees the same history and no instance waits on a database lock. Instance 0
appends each round's records to a journal (`log/trials.jsonl`); a resumed job replays a
journal into the study before the first round, so it goes on from the finished trials.

TPE's random start-up is sized to the budget (Optuna's default of 10 would make a 10-trial
job a plain random search): a fifth of the trials, 3 to 10, and at least one round.
"""

from __future__ import annotations

import json
import math
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import optuna

from workers.runners import ml_dist

optuna.logging.set_verbosity(optuna.logging.WARNING)

COMPLETE, PRUNED, FAILED = "COMPLETE", "PRUNED", "FAIL"
PRUNE_BELOW_PERCENTILE = 25.0
_STATES = {
    COMPLETE: optuna.trial.TrialState.COMPLETE,
    PRUNED: optuna.trial.TrialState.PRUNED,
    FAILED: optuna.trial.TrialState.FAIL,
}


@dataclass
class TrialRecord:
    """One trial as the trial table shows it and the journal keeps it."""

    number: int
    params: dict
    state: str = COMPLETE
    value: float | None = None
    intermediate: dict[int, float] = field(default_factory=dict)
    seconds: float = 0.0
    instance: int = 0
    error: str = ""

    @classmethod
    def from_json(cls, raw: dict) -> TrialRecord:
        record = cls(**raw)
        record.intermediate = {int(k): float(v) for k, v in record.intermediate.items()}
        return record


class Trial:
    """What a trial's training sees: its parameters, and a way to report a per-epoch score
    (raises optuna.TrialPruned when the study judges the trial hopeless)."""

    def __init__(self, optuna_trial: optuna.trial.Trial, record: TrialRecord):
        self._trial, self.record = optuna_trial, record
        self.params = record.params

    def report(self, step: int, value: float) -> None:
        if not math.isfinite(value):
            return
        self.record.intermediate[int(step)] = float(value)
        self._trial.report(float(value), int(step))
        if self._trial.should_prune():
            raise optuna.TrialPruned(
                f"score {value:.5f} at epoch {step}, no longer rising, is in the bottom "
                "quarter of the finished trials'"
            )


def startup_trials(budget: int, instances: int) -> int:
    return max(instances, min(10, max(3, budget // 5)))


def read_journal(path: Path) -> list[TrialRecord]:
    """The records of a journal; a line cut short by a killed run is left out."""
    records = []
    if path.exists():
        for line in path.read_text().splitlines():
            try:
                records.append(TrialRecord.from_json(json.loads(line)))
            except (ValueError, TypeError):
                continue
    return records


class Search:
    """maximize `objective(trial) -> score` over `space` within `budget` trials."""

    def __init__(
        self,
        space: dict[str, optuna.distributions.BaseDistribution],
        budget: int,
        *,
        seed: int = 0,
        journal: Path | None = None,
        warmup_steps: int = 2,
    ):
        self.space, self.budget, self.journal = space, budget, journal
        instances = ml_dist.world()
        # PatientPruner is marked experimental (since Optuna 2.8); it is used as documented.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            self.study = optuna.create_study(
                direction="maximize",
                sampler=optuna.samplers.TPESampler(
                    n_startup_trials=startup_trials(budget, instances),
                    multivariate=True,
                    constant_liar=True,
                    seed=seed,
                ),
                # Hopeless, not merely below the middle: a trial is pruned when its score at an
                # epoch is in the bottom quarter of the finished trials' at that epoch (the
                # median rule cut trials that went on to win, on data where the AUCs are close).
                # and only once its score has stopped rising for two scored epochs.
                pruner=optuna.pruners.PatientPruner(
                    optuna.pruners.PercentilePruner(
                        PRUNE_BELOW_PERCENTILE,
                        n_startup_trials=startup_trials(budget, instances),
                        n_warmup_steps=warmup_steps,
                    ),
                    patience=2,
                ),
            )
        self.records: list[TrialRecord] = []

    # -- resume --------------------------------------------------------------------------

    def replay(self, records: list[TrialRecord]) -> None:
        """Trials of an earlier run of the job: finished ones join the study as they were;
        a trial the run was killed in the middle of is not counted and runs again."""
        for record in records:
            if record.state not in (COMPLETE, PRUNED):
                continue  # a failed trial is tried again
            params = {k: v for k, v in record.params.items() if k in self.space}
            if set(params) != set(self.space):
                continue
            try:
                frozen = optuna.trial.create_trial(
                    state=_STATES[record.state],
                    value=record.value if record.state == COMPLETE else None,
                    params=params,
                    distributions={k: self.space[k] for k in params},
                    intermediate_values=record.intermediate,
                )
                self.study.add_trial(frozen)
            except ValueError:
                continue  # a parameter outside today's ranges: the job's settings changed
            record.number = len(self.records)
            self.records.append(record)
        if ml_dist.rank() == 0 and self.journal:  # the journal goes on from what was kept
            self.journal.parent.mkdir(parents=True, exist_ok=True)
            self.journal.write_text("".join(json.dumps(asdict(r)) + "\n" for r in self.records))

    # -- the rounds ----------------------------------------------------------------------

    def run(
        self,
        objective: Callable[[Trial], float],
        on_round: Callable[[list[TrialRecord]], None] | None = None,
    ) -> list[TrialRecord]:
        rank, instances = ml_dist.rank(), ml_dist.world()
        while len(self.records) < self.budget:
            batch = min(instances, self.budget - len(self.records))
            asked = self._ask(batch)
            numbers = [len(self.records) + i for i in range(batch)]
            mine = None
            if rank < batch:
                mine = self._run_one(objective, asked[rank], numbers[rank], rank)
            gathered = ml_dist.allgather(asdict(mine) if mine else None)
            round_records = [TrialRecord.from_json(raw) for raw in gathered[:batch]]
            for index, (trial, record) in enumerate(zip(asked, round_records, strict=True)):
                self._tell(trial, record, reported=index == rank)
            self.records.extend(round_records)
            if rank == 0 and self.journal:
                self.journal.parent.mkdir(parents=True, exist_ok=True)
                with self.journal.open("a") as out:
                    for record in round_records:
                        out.write(json.dumps(asdict(record)) + "\n")
            if on_round:
                on_round(round_records)
        return self.records

    def _ask(self, batch: int) -> list[optuna.trial.Trial]:
        params = None
        if ml_dist.rank() == 0:
            asked = [self.study.ask(self.space) for _ in range(batch)]
            params = [trial.params for trial in asked]
        params = ml_dist.broadcast(params)
        if ml_dist.rank() == 0:
            return asked
        mirrored = []
        for values in params:
            self.study.enqueue_trial(values)
            mirrored.append(self.study.ask(self.space))
        return mirrored

    def _run_one(self, objective, optuna_trial, number: int, rank: int) -> TrialRecord:
        record = TrialRecord(number=number, params=dict(optuna_trial.params), instance=rank)
        started = time.monotonic()
        try:
            record.value = float(objective(Trial(optuna_trial, record)))
            if not math.isfinite(record.value):
                record.state, record.error, record.value = FAILED, "the score is not finite", None
        except optuna.TrialPruned as pruned:
            record.state, record.error = PRUNED, str(pruned)
            record.value = (
                record.intermediate[max(record.intermediate)] if record.intermediate else None
            )
        except Exception as error:  # noqa: BLE001 - one failed trial does not end the search
            record.state, record.error = FAILED, f"{type(error).__name__}: {error}"
        record.seconds = round(time.monotonic() - started, 3)
        return record

    def _tell(self, trial, record: TrialRecord, *, reported: bool) -> None:
        if not reported:  # the other instances' per-epoch scores, for the median rule
            for step, value in sorted(record.intermediate.items()):
                trial.report(value, step)
        if record.state == COMPLETE:
            self.study.tell(trial, record.value)
        else:
            self.study.tell(trial, state=_STATES[record.state])

    def best(self) -> TrialRecord | None:
        complete = [r for r in self.records if r.state == COMPLETE and r.value is not None]
        return max(complete, key=lambda r: r.value) if complete else None
