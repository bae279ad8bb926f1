"""Logistic regression dichotomy (the spec's "Logistic regression dichotomy"): a binary
classifier trained on standardized data, evaluated and applied when evaluation and prediction
data are given. No Django import.

Run by the job engine with the job's workspace as cwd, once per instance:

    python -m workers.runners.ml_lr --params params.json

params.json:
    l1, l2         regularisation, each 0 <= x <= 1
    termination    convergence condition, 0 < x <= 0.1 (see "Stopping" below)
    max_iter       20 <= x <= 200 (L-BFGS iterations)
    train          standardized training data folder (this instance's share of its parts)
    evaluate       standardized evaluation data folder, or null
    predict        standardized prediction data folder, or null
    model_dir, evaluate_dir, predict_dir   output folders ("model", "evaluate", "predict")

Objective: mean log loss over all training samples (every instance's share)
+ l1 * ||w||_1 + (l2 / 2) * ||w||_2^2; the intercept is not penalised. Label id 1 of the
training data is the positive class; the training data must hold exactly label ids 0 and 1.

Optimiser: L-BFGS-B (scipy). With l1 > 0 the weights are split, w = u - v with u, v >= 0,
so the L1 term is linear and the bounds make the exact zeros. With several instances
(RANK / WORLD_SIZE / MASTER_ADDR / MASTER_PORT, as torchrun sets them) the training is
data-parallel: rank 0 runs the optimiser and, for every objective evaluation, sends the point
to all instances; each returns the log loss and gradient sums of its own share and the sums
are combined with allreduce, so every step uses the whole data set. The others follow rank 0
in lock-step, so no instance can take a different step.

Stopping: after iteration k (k >= 1) with objective values f[0] (the starting point), f[1],
..., training stops when the average relative decrease over the last m = min(k, 5)
iterations, (f[k-m] - f[k]) / (m * |f[k]|), is below `termination` (the OWL-QN rule), or after
max_iter iterations, or when the line search can make no further progress at floating-point
precision.

Outputs:
    model/model        one line per feature "weight internal_id original_name", then
                       "<intercept> -1 __intercept__" (rank 0)
    model/model.json   weights, intercept, format, feature_num, feature_names, label_names,
                       positive_label, objective, iterations, params (rank 0)
    evaluate/metrics.json, metrics.txt   accuracy, AUC, ... over every instance's share of the
                       evaluation data (rank 0 writes)
    predict/part-<rank:05d>   "No,probability,label" per prediction sample of this instance's
                       share; probability is P(positive), label the original label name
                       (threshold 0.5)

Evaluation and prediction data are matched to the training features by their original names
(featureIDMap), since each standardization job numbers its own features; features unknown to
the model are ignored. Failure: the message on stderr and exit code 1.

Helpers shared with the KMeans runner (ml_kmeans.py) live here too: parameter checks, the
per-instance data loading, feature alignment, raw sample lines and the command line wrapper.
"""

from __future__ import annotations

import argparse
import json
import math
import signal
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
from scipy import sparse

from workers.runners import ml_data, ml_dist, ml_metrics

INTERCEPT_NAME = "__intercept__"
AVERAGE_OVER = 5  # iterations the termination rule averages over
DENSE_BLOCK_ROWS = 16_384  # rows per block of the dense loss: ~2.4 MB at 18 features, cache-sized


class RunnerError(Exception):
    """A problem the user can fix; the message says what and how."""


# ---------------------------------------------------------------------------------------------
# Shared helpers (also used by ml_kmeans)


def say(message: str) -> None:
    prefix = f"[rank {ml_dist.rank()}] " if ml_dist.world() > 1 else ""
    print(prefix + message, flush=True)


def report(step: int, **values: float) -> None:
    """A point of the job's curves (rank 0 only); never fails the job."""
    if ml_dist.rank() != 0:
        return
    values = {k: float(v) for k, v in values.items() if math.isfinite(float(v))}
    if not values:
        return
    try:
        import bml

        bml.report(step=step, **values)
    except Exception as error:  # noqa: BLE001 - curves are a nicety, not the job
        print(f"could not report metrics: {error}", file=sys.stderr, flush=True)


def number(raw: dict, name: str, low: float, high: float, *, low_open=False, integer=False):
    """raw[name] as a float (or int) within [low, high] ((low, high] with low_open)."""
    value = raw.get(name)
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            pass
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        kind = "an integer" if integer else "a number"
        raise RunnerError(f"{name} must be {kind}, got {raw.get(name)!r}")
    if integer:
        if value != int(value):
            raise RunnerError(f"{name} must be an integer, got {value!r}")
        value = int(value)
    below = value <= low if low_open else value < low
    if below or value > high:
        interval = f"{'(' if low_open else '['}{low:g}, {high:g}]"
        raise RunnerError(f"{name} must be in {interval}, got {value:g}")
    return value


def folder_param(raw: dict, name: str, default: str | None = None, required=False) -> str | None:
    value = raw.get(name, default)
    if value in (None, ""):
        if required:
            raise RunnerError(f"{name} is required: the path of standardized data")
        return None
    if not isinstance(value, str):
        raise RunnerError(f"{name} must be a folder path, got {value!r}")
    return value


def read_params(path: str) -> dict:
    try:
        raw = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise RunnerError(f"cannot read {path}: {error}") from None
    if not isinstance(raw, dict):
        raise RunnerError(f"{path} must hold a JSON object")
    return raw


def agree(problem: str | None) -> None:
    """Collective: raise on every instance if any instance found a problem (so that none is
    left waiting for the others)."""
    problems = ml_dist.allgather(problem)
    for index, found in enumerate(problems):
        if found:
            where = f"instance {index}: " if ml_dist.world() > 1 else ""
            raise RunnerError(where + found)


def load_share(folder: str, role: str) -> ml_data.Standardized:
    """This instance's share of a standardized folder. With several instances a share may be
    empty (fewer part files than instances); the folder's dataset.info must still be there."""
    path = Path(folder)
    if not path.is_dir():
        raise RunnerError(f"{role} data folder {folder} does not exist")
    try:
        info = ml_data.read_info(path)
        if not ml_data.part_files(path) and ml_dist.world() > 1:
            d = int(info["feature_num"])
            empty = np.zeros((0, d)) if info["format"] == "DENSE" else sparse.csr_matrix((0, d))
            return ml_data.Standardized(
                info=info,
                X=empty,
                y=np.zeros(0),
                numbers=[],
                feature_names=ml_data.read_id_map(
                    path / ml_data.DICTIONARY_DIR / ml_data.FEATURE_MAP
                ),
                label_names=ml_data.read_id_map(path / ml_data.DICTIONARY_DIR / ml_data.LABEL_MAP),
            )
        data = ml_data.load(path)
    except ml_data.StandardizedDataError as error:
        raise RunnerError(f"{role} data: {error}") from None
    except (ValueError, IndexError) as error:
        raise RunnerError(f"{role} data in {folder} is damaged: {error}") from None
    if sparse.issparse(data.X):
        data.X = sparse.csr_matrix(data.X)
        data.X.sum_duplicates()
    return data


def collective_load(folder: str, role: str) -> ml_data.Standardized | None:
    """load_share on every instance; a failure anywhere fails all of them."""
    data, problem = None, None
    try:
        data = load_share(folder, role)
    except RunnerError as error:
        problem = str(error)
    agree(problem)
    return data


def align_features(data: ml_data.Standardized, names: list[str], feature_num: int):
    """data.X with its columns in the model's feature order (matched by original name)."""
    X = data.X
    theirs = data.feature_names
    if theirs and names:
        if list(theirs) == list(names):
            return X
        position = {name: index for index, name in enumerate(names)}
        target = np.array([position.get(name, -1) for name in theirs], dtype=np.int64)
    else:  # no dictionary on one side: same ids
        target = np.arange(X.shape[1], dtype=np.int64)
        if X.shape[1] == feature_num:
            return X
        target[target >= feature_num] = -1
    if sparse.issparse(X):
        X = sparse.csr_matrix(X)
        mapped = target[X.indices] if X.nnz else X.indices
        keep = mapped >= 0
        row_of = np.repeat(np.arange(X.shape[0]), np.diff(X.indptr))
        out = sparse.csr_matrix(
            (X.data[keep], (row_of[keep], mapped[keep])), shape=(X.shape[0], feature_num)
        )
        out.sum_duplicates()
        return out
    out = np.zeros((X.shape[0], feature_num))
    source = np.flatnonzero(target >= 0)
    out[:, target[source]] = X[:, source]
    return out


def raw_lines(folder: str, dense: bool) -> Iterator[str]:
    """The sample lines of a standardized folder's share exactly as written, in the order
    ml_data.load() reads them (the same lines skipped: empty ones, and for sparse data lines
    without a label field)."""
    for path in ml_data.part_files(Path(folder)):
        with path.open(encoding="utf-8", newline="") as lines:
            for line in lines:
                line = line.rstrip("\r\n")
                if dense:
                    if line.strip() == "":
                        continue
                elif len(line.split(",")) < 2:
                    continue
                yield line


def write_text_lines(path: Path, lines: Iterator[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    with temporary.open("w", encoding="utf-8") as out:
        batch = []
        for line in lines:
            batch.append(line)
            if len(batch) >= 65_536:
                out.write("\n".join(batch) + "\n")
                batch.clear()
        if batch:
            out.write("\n".join(batch) + "\n")
    temporary.replace(path)


def same_folder(folder: str, *others: str | None) -> bool:
    """Whether any of `others` names the same folder (its data need not be read twice)."""
    return any(other and Path(other).resolve() == Path(folder).resolve() for other in others)


def part_name() -> str:
    return f"part-{ml_dist.rank():05d}"


def cli(run: Callable[[dict], None], what: str, argv: list[str] | None = None) -> int:
    """The command line of a runner: --params, distributed setup, errors on stderr, exit 1."""
    parser = argparse.ArgumentParser(description=what)
    parser.add_argument("--params", required=True, help="path of params.json")
    args = parser.parse_args(argv)
    previous = signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    started = time.monotonic()
    try:
        raw = read_params(args.params)
        ml_dist.init()
        run(raw)
        ml_dist.finish()
    except RunnerError as error:
        print(f"{what} failed: {error}", file=sys.stderr, flush=True)
        return 1
    except MemoryError:
        print(f"{what} failed: out of memory", file=sys.stderr, flush=True)
        return 1
    except Exception as error:  # noqa: BLE001 - the user needs a message, not only a trace
        traceback.print_exc()
        print(f"{what} failed unexpectedly: {error}", file=sys.stderr, flush=True)
        return 1
    finally:
        signal.signal(signal.SIGTERM, previous)
    say(f"done in {time.monotonic() - started:.1f} s")
    return 0


# ---------------------------------------------------------------------------------------------
# Parameters


def parse_params(raw: dict) -> dict:
    return {
        "l1": float(number(raw, "l1", 0, 1)),
        "l2": float(number(raw, "l2", 0, 1)),
        "termination": float(number(raw, "termination", 0, 0.1, low_open=True)),
        "max_iter": number(raw, "max_iter", 20, 200, integer=True),
        "train": folder_param(raw, "train", required=True),
        "evaluate": folder_param(raw, "evaluate"),
        "predict": folder_param(raw, "predict"),
        "model_dir": folder_param(raw, "model_dir", "model"),
        "evaluate_dir": folder_param(raw, "evaluate_dir", "evaluate"),
        "predict_dir": folder_param(raw, "predict_dir", "predict"),
    }


# ---------------------------------------------------------------------------------------------
# The loss


def sigmoid(z: np.ndarray) -> np.ndarray:
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1.0, e) / (1.0 + e)


class LocalLoss:
    """Log loss sums of this instance's share: for theta = [w, b] returns
    [sum_i loss_i, X^T (p - y), sum_i (p_i - y_i)]. The y-terms are precomputed:
    sum_i y_i z_i = (X^T y) . w + b * sum(y)."""

    def __init__(self, X, y: np.ndarray):
        self.X = X
        self.d = X.shape[1]
        self.Xty = np.asarray(X.T @ y).ravel() if X.shape[0] else np.zeros(self.d)
        self.sum_y = float(y.sum())

    def _block(self, X, w, b):
        z = np.asarray(X @ w).ravel()
        z += b
        e = np.abs(z)
        np.negative(e, out=e)
        np.exp(e, out=e)  # e = exp(-|z|)
        loss = np.maximum(z, 0).sum() + np.log1p(e).sum()  # softplus(z) = log(1 + e^z)
        p = np.where(z >= 0, 1.0, e)
        e += 1.0
        p /= e  # sigmoid(z)
        return loss, np.asarray(X.T @ p).ravel(), p.sum()

    def sums(self, theta: np.ndarray) -> np.ndarray:
        w, b = theta[:-1], float(theta[-1])
        loss, grad, grad_b = 0.0, np.zeros(self.d), 0.0
        n = self.X.shape[0]
        step = DENSE_BLOCK_ROWS if not sparse.issparse(self.X) else max(n, 1)
        for start in range(0, n, step):
            part = self._block(self.X[start : start + step], w, b)
            loss += part[0]
            grad += part[1]
            grad_b += part[2]
        loss -= self.Xty @ w + b * self.sum_y
        return np.concatenate([[loss], grad - self.Xty, [grad_b - self.sum_y]])


# Commands rank 0 sends the others before each evaluation (first element of the message).
STOP, EVALUATE, ABORT = 0.0, 1.0, -1.0


class DistributedLoss:
    """The objective over every instance's share. Rank 0 drives (evaluate(), then stop());
    the other ranks call follow() and compute their sums until rank 0 stops."""

    def __init__(
        self, local: LocalLoss, n_total: int, l1: float, l2: float, *, collective: bool = True
    ):
        self.local, self.n_total, self.l1, self.l2 = local, n_total, l1, l2
        self.d = local.d
        self.evaluations = 0
        # False: this process alone holds the data (an AutoML trial): no peer takes part.
        self.collective = collective and ml_dist.world() > 1

    def _send(self, command: float, theta: np.ndarray) -> np.ndarray:
        message = np.concatenate([[command], theta])
        if ml_dist.rank() != 0:
            message = np.zeros_like(message)
        return ml_dist.allreduce_sum(message)  # rank 0's message, on every rank

    def _total(self, theta: np.ndarray) -> np.ndarray:
        self.evaluations += 1
        sums = self.local.sums(theta)
        return (ml_dist.allreduce_sum(sums) if self.collective else sums) / self.n_total

    def evaluate(self, theta: np.ndarray) -> tuple[float, float, np.ndarray]:
        """(objective, mean log loss, gradient of the objective in theta)."""
        if self.collective:
            self._send(EVALUATE, theta)
        total = self._total(theta)
        w = theta[:-1]
        log_loss = float(total[0])
        objective = log_loss + self.l1 * np.abs(w).sum() + 0.5 * self.l2 * (w @ w)
        gradient = total[1:].copy()
        gradient[:-1] += self.l2 * w
        return objective, log_loss, gradient

    def stop(self, theta: np.ndarray, failed: bool = False) -> None:
        if self.collective:
            self._send(ABORT if failed else STOP, theta)

    def follow(self) -> np.ndarray:
        """Ranks > 0: serve evaluations until rank 0 stops; returns rank 0's final theta."""
        while True:
            message = self._send(STOP, np.zeros(self.d + 1))
            if message[0] == EVALUATE:
                self._total(message[1:])
            elif message[0] == STOP:
                return message[1:]
            else:
                raise RunnerError("training failed on instance 0 (see its log)")


def minimise(
    loss: DistributedLoss,
    l1: float,
    termination: float,
    max_iter: int,
    b0: float,
    progress: Callable[[int, float, np.ndarray], None] | None = None,
):
    """L-BFGS-B on rank 0; returns (theta, iterations, objective history, scipy's message).
    progress(iteration, objective, theta), when given, is told of every iteration instead
    of the log and the curve (AutoML trials score each one; an exception it raises ends
    the training and goes to the caller)."""
    from scipy.optimize import minimize

    d = loss.d
    split = l1 > 0
    history: list[float] = []
    started = time.monotonic()

    def theta_of(x):
        if split:
            return np.concatenate([x[:d] - x[d : 2 * d], x[-1:]])
        return x

    last: list = [None, None]  # the last point evaluated and its value (scipy asks twice)

    def fun(x):
        if last[0] is not None and np.array_equal(last[0], x):
            return last[1]
        theta = theta_of(x)
        objective, log_loss, gradient = loss.evaluate(theta)
        if split:
            g_w = gradient[:-1]
            # d/du l1 * sum(u + v) = l1 (the same for v); the l2 and loss terms act via w = u - v
            w = theta[:-1]
            objective = log_loss + l1 * x[: 2 * d].sum() + 0.5 * loss.l2 * (w @ w)
            gradient = np.concatenate([g_w + l1, -g_w + l1, gradient[-1:]])
        last[:] = [x.copy(), (objective, gradient)]
        return objective, gradient.copy()

    def callback(intermediate_result):
        history.append(float(intermediate_result.fun))
        k = len(history) - 1
        m = min(k, AVERAGE_OVER)
        current = history[-1]
        decrease = (history[-1 - m] - current) / (m * abs(current)) if current else 0.0
        if progress:
            progress(k, current, theta_of(intermediate_result.x))
        else:
            say(
                f"iteration {k}/{max_iter}: objective {current:.8g}, average relative "
                f"decrease {decrease:.3g} ({time.monotonic() - started:.1f} s)"
            )
            report(k, loss=current)
        if decrease < termination:
            raise StopIteration

    size = 2 * d + 1 if split else d + 1
    x0 = np.zeros(size)
    x0[-1] = b0
    bounds = [(0, None)] * (2 * d) + [(None, None)] if split else None
    try:
        first, _ = fun(x0)
        history.append(float(first))
        if not progress:
            say(f"iteration 0/{max_iter}: objective {first:.8g}")
            report(0, loss=first)
        result = minimize(
            fun,
            x0,
            jac=True,
            method="L-BFGS-B",
            bounds=bounds,
            callback=callback,
            options={
                "maxiter": max_iter,
                "maxfun": max_iter * 20,
                "maxcor": 10,
                "ftol": 1e-14,
                "gtol": 1e-12,
            },
        )
    except BaseException:
        loss.stop(theta_of(x0), failed=True)
        raise
    theta = theta_of(result.x)
    return theta, len(history) - 1, history, result.message


# ---------------------------------------------------------------------------------------------
# The job


def _check_labels(data: ml_data.Standardized) -> list[str]:
    """Exactly label ids 0 and 1 over all instances; returns the two label names."""
    problem = None
    if data.info.get("type") != "classification":
        problem = (
            f"the training data is {data.info.get('type')} data; logistic regression needs "
            "classification data (standardize it with the classification type)"
        )
    elif np.isnan(data.y).any():
        problem = f"{int(np.isnan(data.y).sum())} training samples have no label"
    agree(problem)
    found = sorted(set().union(*ml_dist.allgather(set(np.unique(data.y).tolist()))))
    names = data.label_names
    if found != [0.0, 1.0]:

        def name(label_id):
            index = int(label_id)
            if label_id == index and 0 <= index < len(names):
                return names[index]
            return f"{label_id:g}"

        listed = ", ".join(repr(name(label)) for label in found) or "none"
        raise RunnerError(
            "logistic regression dichotomy needs training data with exactly 2 classes "
            f"(label ids 0 and 1); found {len(found)}: {listed}"
        )
    if len(names) >= 2:
        return [names[0], names[1]]
    return ["0", "1"]


def _evaluation_labels(data: ml_data.Standardized, label_names: list[str]) -> np.ndarray:
    """The evaluation samples' labels as training label ids (matched by original name)."""
    y = data.y
    if np.isnan(y).any():
        raise RunnerError(f"{int(np.isnan(y).sum())} evaluation samples have no label")
    theirs = data.label_names
    if not theirs:
        ids = y
    else:
        position = {name: index for index, name in enumerate(label_names)}
        lookup = np.array([position.get(name, -1) for name in theirs], dtype=np.float64)
        index = y.astype(np.int64)
        if (index < 0).any() or (index >= len(theirs)).any():
            raise RunnerError("evaluation data has label ids missing from its labelIDMap")
        ids = lookup[index]
    unknown = sorted(set(np.unique(y[(ids != 0) & (ids != 1)]).tolist()))
    if unknown:
        shown = [theirs[int(u)] if theirs else f"{u:g}" for u in unknown]
        raise RunnerError(
            f"evaluation data has labels the training data lacks: {', '.join(map(repr, shown))}"
        )
    return ids


def _probabilities(X, w: np.ndarray, b: float) -> np.ndarray:
    if X.shape[0] == 0:
        return np.zeros(0)
    return sigmoid(np.asarray(X @ w).ravel() + b)


def write_model(folder: Path, model: dict, *, nonzero_only: bool = False) -> None:
    """model/model (one "weight internal_id original_name" line per feature; only the
    non-zero weights with nonzero_only, as AutoML's model) and model/model.json."""
    folder.mkdir(parents=True, exist_ok=True)
    names = model["feature_names"]
    lines = (
        f"{weight!r} {index} {names[index] if index < len(names) else index}"
        for index, weight in enumerate(model["weights"])
        if weight != 0 or not nonzero_only
    )
    write_text_lines(
        folder / "model", iter([*lines, f"{model['intercept']!r} -1 {INTERCEPT_NAME}"])
    )
    (folder / "model.json").write_text(json.dumps(model, indent=1))


def run(raw: dict) -> None:
    params = parse_params(raw)
    started = time.monotonic()
    train = collective_load(params["train"], "training")
    X, y = train.X, train.y
    label_names = _check_labels(train)
    d = X.shape[1]
    counts = ml_dist.allreduce_sum([X.shape[0], y.sum()])
    n_total, positives = int(counts[0]), float(counts[1])
    say(
        f"training share: {X.shape[0]:,} samples x {d:,} features "
        f"({'dense' if not sparse.issparse(X) else 'sparse'}), loaded in "
        f"{time.monotonic() - started:.1f} s; all instances: {n_total:,} samples"
    )
    feature_names = train.feature_names or [str(i) for i in range(d)]
    data_format = train.info.get("format")
    loss = DistributedLoss(LocalLoss(X, y), n_total, params["l1"], params["l2"])
    rate = min(max(positives / n_total, 1e-12), 1 - 1e-12)
    b0 = math.log(rate / (1 - rate))
    started = time.monotonic()
    if ml_dist.rank() == 0:
        theta, iterations, history, message = minimise(
            loss, params["l1"], params["termination"], params["max_iter"], b0
        )
        objective, log_loss, _ = loss.evaluate(theta)
        loss.stop(theta)
        say(
            f"trained: {iterations} iterations, {loss.evaluations} evaluations, objective "
            f"{objective:.8g}, training log loss {log_loss:.6g} in "
            f"{time.monotonic() - started:.1f} s ({message})"
        )
    else:
        theta = loss.follow()
    # the training data is no longer needed, unless it is also the evaluation/prediction data
    reuse = train if same_folder(params["train"], params["evaluate"], params["predict"]) else None
    train = X = y = loss = None
    w, b = theta[:-1], float(theta[-1])

    if ml_dist.rank() == 0:
        model = {
            "algorithm": "logistic_regression",
            # the data format of the samples before standardization: the served model takes
            # raw samples (workers/runners/model_loaders_bml.py)
            "format": data_format,
            "weights": w.tolist(),
            "intercept": b,
            "feature_num": d,
            "feature_names": feature_names,
            "label_names": label_names,
            "positive_label": label_names[1],
            "objective": objective,
            "train_log_loss": log_loss,
            "iterations": iterations,
            "samples": n_total,
            "nonzero_weights": int(np.count_nonzero(w)),
            "params": params,
        }
        write_model(Path(params["model_dir"]), model)
        say(f"model written to {params['model_dir']}/ ({model['nonzero_weights']} non-zero)")

    if params["evaluate"]:
        if same_folder(params["train"], params["evaluate"]):
            data = reuse
        else:
            data = collective_load(params["evaluate"], "evaluation")
        problem, ids = None, None
        try:
            ids = _evaluation_labels(data, label_names)
        except RunnerError as error:
            problem = str(error)
        agree(problem)
        X_eval = align_features(data, feature_names, d)
        metrics = ml_metrics.binary_metrics(ids, _probabilities(X_eval, w, b))
        if ml_dist.rank() == 0:
            ml_metrics.write_metrics(Path(params["evaluate_dir"]), metrics)
            say(
                f"evaluation on {metrics['samples']:,} samples: accuracy {metrics['accuracy']}, "
                f"AUC {metrics['auc']}, log loss {metrics['log_loss']}"
            )

    if params["predict"]:
        if same_folder(params["train"], params["predict"]):
            data = reuse
        else:
            data = collective_load(params["predict"], "prediction")
        probability = _probabilities(align_features(data, feature_names, d), w, b)
        names = label_names
        lines = (
            f"{no},{p:.6g},{names[1] if p >= 0.5 else names[0]}"
            for no, p in zip(data.numbers, probability.tolist(), strict=True)
        )
        path = Path(params["predict_dir"]) / part_name()
        write_text_lines(path, lines)
        say(f"predictions for {len(data.numbers):,} samples written to {path}")


def main(argv: list[str] | None = None) -> int:
    return cli(run, "logistic regression", argv)


if __name__ == "__main__":
    ml_dist.exit(main())
