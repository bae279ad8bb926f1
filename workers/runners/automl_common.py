"""What every AutoML runner (automl_lr, automl_gbdt) does alike around its own trials: the
settings they share, the data step, resuming from a journal, the per-round log and curves,
the trial table and the search summary. No Django import.

A runner brings its search space, its trial objective and its final model; the table's
columns are "trial", the runner's parameters (and whatever else its trials record in
their params, e.g. GBDT's boosting rounds), then RESULT_FIELDS.
"""

from __future__ import annotations

import csv
import json
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from workers.runners import automl_data, automl_search, ml_dist, ml_lr
from workers.runners.ml_lr import RunnerError, say

JOURNAL = Path("log/trials.jsonl")
SUMMARY = Path("log/search.json")
RESULT_FIELDS = ("auc", "seconds", "state", "instance", "error")

# -- settings ------------------------------------------------------------------------------


def parse_range(
    raw: dict,
    name: str,
    low: float,
    high: float,
    *,
    integer: bool = False,
    default: Sequence[float] | None = None,
) -> tuple:
    """raw[name] as (low, high) within [low, high]; `default` when the setting is absent.
    A float range must have room to search in; an integer range may be one value."""
    value = raw.get(name)
    if value is None and default is not None:
        value = list(default)
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        raise RunnerError(f"{name} must be [low, high]")
    pair = [ml_lr.number({name: v}, name, low, high, integer=integer) for v in value]
    if pair[0] > pair[1] or (not integer and pair[0] == pair[1]):
        raise RunnerError(f"{name}: low must be below high, got {value}")
    return tuple(pair)


def parse_shared(raw: dict) -> dict:
    """The settings of every AutoML job: format, trials, seed, resume and the three data."""
    data_format = raw.get("format")
    if data_format not in automl_data.ml_data.FORMATS:
        raise RunnerError(f"format must be one of {', '.join(automl_data.ml_data.FORMATS)}")
    return {
        "trials": ml_lr.number(raw, "trials", 10, 100, integer=True),
        "format": data_format,
        "seed": int(raw.get("seed") or 0),
        "resume": ml_lr.folder_param(raw, "resume"),
        **{role: ml_lr.folder_param(raw, role, required=True) for role in automl_data.ROLES},
    }


# -- data and resume -----------------------------------------------------------------------


def prepare_data(params: dict) -> automl_data.Prepared:
    """The three sets on one map; a data problem fails every instance alike, before the
    first trial (ml_lr.agree), so no instance waits for a round the others never start."""
    started = time.monotonic()
    problem, data = None, None
    try:
        inputs = {role: Path(params[role]) for role in automl_data.ROLES}
        data = automl_data.prepare(params["format"], inputs, Path(".automl-data"))
    except automl_data.DataProblem as error:
        problem = str(error)
    ml_lr.agree(problem)
    shapes = ", ".join(
        f"{automl_data.ROLES[role]} {X.shape[0]:,}" for role, (X, _) in data.sets.items()
    )
    say(
        f"standardized with one dictionary in {time.monotonic() - started:.1f} s: {shapes} "
        f"samples, {data.feature_num:,} features, labels {data.label_names} (positive "
        f"{data.label_names[1]!r})"
    )
    return data


def resume(search: automl_search.Search, staged: str | None) -> None:
    """Replays the journal of the run this job resumes (a file, or the folder holding it)."""
    if not staged:
        return
    journal = Path(staged)
    journal = journal / JOURNAL.name if journal.is_dir() else journal
    search.replay(automl_search.read_journal(journal))
    say(f"resumed: {len(search.records)} finished trials kept from the earlier run")


# -- the trial table -----------------------------------------------------------------------


def table_fields(parameters: Sequence[str]) -> tuple[str, ...]:
    return ("trial", *parameters, *RESULT_FIELDS)


def table_rows(
    records: list[automl_search.TrialRecord],
    parameters: Sequence[str],
    constants: dict | None = None,
) -> list[dict]:
    """One row per trial; `constants` fills the columns of settings that were not searched
    (e.g. a fixed class weight), so every row shows what the trial trained with."""
    constants = constants or {}
    return [
        {
            "trial": r.number,
            **{name: r.params.get(name, constants.get(name)) for name in parameters},
            "auc": r.value,
            "seconds": r.seconds,
            "state": r.state,
            "instance": r.instance,
            "error": r.error,
        }
        for r in records
    ]


def write_table(
    folder: Path,
    records: list[automl_search.TrialRecord],
    parameters: Sequence[str],
    constants: dict | None = None,
) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    rows = table_rows(records, parameters, constants)
    (folder / "trials.json").write_text(json.dumps(rows, indent=1))
    with (folder / "trials.csv").open("w", newline="") as out:
        writer = csv.DictWriter(out, fieldnames=table_fields(parameters))
        writer.writeheader()
        writer.writerows(rows)


def publish_journal() -> None:
    """The journal to <output>/<job_id>/log/trials.jsonl after every round, through the
    run's upload grant: a run killed later leaves its finished trials where "Resume" finds
    them (a failed run's outputs are not staged out). Never fails the search."""
    if not os.environ.get("BML_STORAGE_GRANT"):
        return  # not run by the job engine (tests of the runner alone)
    try:
        from bml import storage

        grant = json.loads(Path(os.environ["BML_STORAGE_GRANT"]).read_text())
        storage.upload(JOURNAL, grant["prefix"].rstrip("/") + "/" + JOURNAL.as_posix())
    except Exception as error:  # noqa: BLE001 - resuming is a help, not the job
        say(f"could not store the trial journal for a resume: {error}")


# -- rounds and the end of the search ------------------------------------------------------


def round_reporter(
    search: automl_search.Search,
    describe: Callable[[dict], str],
    write_log: Callable[[list[automl_search.TrialRecord]], None],
) -> Callable[[list[automl_search.TrialRecord]], None]:
    """Search.run's on_round: a line per trial (its parameters as `describe` words them),
    the curves (auc and best_auc per finished trial), then on instance 0 the trial table
    (`write_log`) and the journal for a resume."""

    def on_round(records: list[automl_search.TrialRecord]) -> None:
        best = search.best()
        for record in records:
            shown = f"AUC {record.value:.5f}" if record.value is not None else record.error
            say(
                f"trial {record.number + 1}/{search.budget} on instance {record.instance}: "
                f"{record.state} {shown} ({describe(record.params)}, {record.seconds:.1f} s)"
            )
            if record.state == automl_search.COMPLETE:
                ml_lr.report(record.number, auc=record.value, best_auc=best.value if best else 0)
        if ml_dist.rank() == 0:
            write_log(search.records)
            publish_journal()

    return on_round


def best_trial(search: automl_search.Search) -> automl_search.TrialRecord:
    best = search.best()
    if best is None:
        raise RunnerError("no trial finished: see the trial table in log/trials.csv")
    say(f"best trial {best.number + 1}: AUC {best.value:.5f} with {best.params}")
    return best


def write_summary(search: automl_search.Search, best_row: dict, final_model: dict) -> None:
    """log/search.json: the budget, how the trials ended, the best trial's row and the
    final model's figures."""
    states = [r.state for r in search.records]
    summary = {
        "trials": search.budget,
        "finished": states.count(automl_search.COMPLETE),
        "pruned": states.count(automl_search.PRUNED),
        "failed": states.count(automl_search.FAILED),
        "best": best_row,
        "final_model": final_model,
    }
    SUMMARY.parent.mkdir(exist_ok=True)
    SUMMARY.write_text(json.dumps(summary, indent=1))
