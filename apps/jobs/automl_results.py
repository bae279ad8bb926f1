"""What an AutoML job's page and API show of its search: the trial table and the
parameters' importances, read from the journal the runner stores after every round
(`<output>/<job_id>/log/trials.jsonl`), so they follow a running search as well as a
finished one."""

import functools
import json
import math
import warnings

from apps.jobs import selectors
from apps.jobs.automl import JOURNAL
from apps.jobs.models import Job

# Recorded with a trial's parameters but not searched: GBDT's best round count follows
# from early stopping, so it has no importance of its own.
DERIVED = {"rounds"}
MAX_JOURNAL_BYTES = 4 << 20  # 100 trials take ~40 KB; room for long per-epoch score lists


def trial_rows(job: Job) -> list[dict]:
    """One row per trial: trial, each searched parameter, auc, seconds, state, instance,
    error, and the per-epoch scores a pruned trial was judged on (`epochs`)."""
    data = selectors.result_bytes(job, JOURNAL, MAX_JOURNAL_BYTES)
    rows = []
    for line in (data or b"").decode("utf-8", errors="replace").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue  # a line being written, or cut by the read limit
        if not isinstance(record, dict) or not isinstance(record.get("params"), dict):
            continue
        value = record.get("value")
        rows.append(
            {
                "trial": record.get("number"),
                **record["params"],
                "auc": value if isinstance(value, (int, float)) and math.isfinite(value) else None,
                "seconds": record.get("seconds"),
                "state": record.get("state"),
                "instance": record.get("instance"),
                "error": record.get("error") or "",
                "epochs": len(record.get("intermediate") or {}),
            }
        )
    return rows


def search_summary(job: Job) -> dict:
    """The trial table, the best trial, and each parameter's importance (Optuna's fANOVA
    over the finished trials: the share of the AUC's variance it explains)."""
    rows = trial_rows(job)
    params = _param_names(rows)
    complete = [row for row in rows if row["state"] == "COMPLETE" and row["auc"] is not None]
    best = max(complete, key=lambda row: row["auc"]) if complete else None
    return {
        "params": params,
        "trials": rows,
        "best": best,
        "importances": importances(
            tuple(
                (
                    *((name, row.get(name)) for name in params if name not in DERIVED),
                    ("auc", row["auc"]),
                )
                for row in complete
            )
        ),
        "budget": job.params.get("trials"),
    }


def _param_names(rows: list[dict]) -> list[str]:
    fixed = {"trial", "auc", "seconds", "state", "instance", "error", "epochs"}
    names: dict[str, None] = {}
    for row in rows:
        for key in row:
            if key not in fixed:
                names.setdefault(key, None)
    return list(names)


@functools.lru_cache(maxsize=64)
def importances(finished: tuple) -> dict[str, float]:
    """{parameter: importance} from the finished trials ((name, value) pairs and the auc);
    empty below 3 trials or when the trials do not vary. Cached: the page asks every few
    seconds while the search runs, with the same trials most of the time."""
    if len(finished) < 3:
        return {}
    import optuna

    trials = [dict(pairs) for pairs in finished]
    names = [name for name in trials[0] if name != "auc"]
    distributions = {}
    for name in names:
        values = [t[name] for t in trials]
        if not all(isinstance(v, (int, float)) for v in values) or min(values) == max(values):
            continue
        if all(isinstance(v, int) for v in values):
            distributions[name] = optuna.distributions.IntDistribution(min(values), max(values))
        else:
            distributions[name] = optuna.distributions.FloatDistribution(min(values), max(values))
    if not distributions:
        return {}
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize")
    for t in trials:
        study.add_trial(
            optuna.trial.create_trial(
                value=t["auc"],
                params={name: t[name] for name in distributions},
                distributions=distributions,
            )
        )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            found = optuna.importance.get_param_importances(
                study, evaluator=optuna.importance.FanovaImportanceEvaluator(seed=0)
            )
        except (ValueError, RuntimeError):
            return {}
    return {name: round(float(value), 4) for name, value in found.items()}
