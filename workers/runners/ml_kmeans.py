"""KMeans clustering (the spec's "KMeans clustering") of standardized data. No Django import.

Run by the job engine with the job's workspace as cwd, once per instance:

    python -m workers.runners.ml_kmeans --params params.json

params.json:
    k              number of clusters, 2..3000
    max_iter       6..10000 (Lloyd rounds)
    tol            convergence condition, 0..0.5 (see "Stopping")
    init           "INITCLUSTER_RANDOM" (the only one)
    distance       DISTANCE_EUCLIDEAN | DISTANCE_SQUAREEUCLIDEAN | DISTANCE_MANHATTAN |
                   DISTANCE_COSINE | DISTANCE_TANIMOTO
    sparse_centers store the centers sparse ("fid:weight" pairs) instead of dense
    output_cluster write the training samples' clusters to cluster_dir
    train          standardized training data folder (this instance's share of its parts)
    predict        standardized prediction data folder, or null
    model_dir, cluster_dir, predict_dir   output folders ("model", "cluster", "predict")
    seed           optional integer: the random initialisation (default: a random one, recorded
                   in model.json)
    restarts       optional integer 1..100: random initialisations tried (default 30 for
                   k <= 20, 10 for k <= 200, else 3)

Distances (x a sample, c a center): Euclidean |x - c|, squared Euclidean |x - c|^2, Manhattan
sum |x_j - c_j|, cosine 1 - x.c / (|x| |c|) (1 when either is zero), Tanimoto
1 - x.c / (|x|^2 + |c|^2 - x.c) (0 when both are zero). Each sample belongs to its nearest
center (ties: the lowest cluster id). A center is the mean of its samples for every distance
(as Mahout's KMeans does; for Manhattan the mean, not the coordinate-wise median), except
cosine, where it is the mean of the samples scaled to unit length (the direction that
maximises the summed cosine similarity; scaling a center does not change cosine distances).

Algorithm: Lloyd rounds (assign every sample to its nearest center, then move every center
to its samples' mean). The objective is the total distance: the sum over all samples of the
distance to their center. Initialisation (INITCLUSTER_RANDOM): k distinct samples chosen at
random. Restarts: on a uniform random sample of the training data (all of it when it has at
most max(5000, 20 k) samples), `restarts` random initialisations each run Lloyd rounds (same
stopping rule, at most min(max_iter, 50) rounds); the one with the lowest total distance on
the sample gives the starting centers of the rounds on the whole data (with several
instances the restarts are shared out among them). An empty cluster is
re-seeded with the sample farthest from its center (the next farthest for the next empty one).

Data-parallel with several instances (RANK / WORLD_SIZE / MASTER_ADDR / MASTER_PORT as
torchrun sets them): every instance assigns its own share; the per-cluster sums, counts and
total distance are combined with allreduce, so every instance computes the same centers and
takes the same decisions. The restart sample is drawn from every share in proportion to its
size and gathered; each instance runs its part of the restarts and the best is taken.

Stopping: after round t >= 2 the change rate is |D[t-1] - D[t]| / D[t-1], D[t] being the
total distance of round t's assignment (0 when both are 0); training stops when the rate has
been below tol for 5 consecutive rounds, or after max_iter rounds, or as soon as a round
changes no sample's cluster (every later round would repeat it exactly).

Outputs:
    model/cluster_info    one line per center: "cluster_id w0 w1 ..." (dense) or, with
                          sparse_centers, "cluster_id fid:weight fid:weight ..." (non-zeros)
    model/distance_type   "distance_type <DISTANCE_...>" and "feature_num <d>"
    model/model.json      centers (dense lists, or {"ids", "weights"} per center with
                          sparse_centers), format (of the raw data), distance, feature_num,
                          feature_names, k, objective
                          (total distance), sse (Euclidean distances only), cluster_sizes,
                          iterations, seed, restarts, params
    cluster/part-<rank:05d>  with output_cluster: "<sample line as in the input>;<cluster id>"
                          for this instance's share of the training data
    predict/part-<rank:05d>  the same for this instance's share of the prediction data
The model files are written by rank 0. Prediction data is matched to the training features by
original name (featureIDMap); unknown features are ignored. Failure: stderr, exit code 1.
"""

from __future__ import annotations

import json
import math
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import sparse

from workers.runners import ml_dist
from workers.runners.ml_lr import (
    RunnerError,
    agree,
    align_features,
    cli,
    collective_load,
    folder_param,
    number,
    part_name,
    raw_lines,
    report,
    same_folder,
    say,
    write_text_lines,
)

DISTANCES = (
    "DISTANCE_EUCLIDEAN",
    "DISTANCE_SQUAREEUCLIDEAN",
    "DISTANCE_MANHATTAN",
    "DISTANCE_COSINE",
    "DISTANCE_TANIMOTO",
)
INITS = ("INITCLUSTER_RANDOM",)
CONSECUTIVE_ROUNDS = 5  # the spec: change rate below tol for 5 consecutive rounds
SAMPLE_MIN = 5_000
SAMPLE_PER_CLUSTER = 20
RESTART_MAX_ITER = 50
BLOCK = 1 << 21  # elements of a temporary distance block (16 MB of float64)


# ---------------------------------------------------------------------------------------------
# Parameters


def _flag(raw: dict, name: str) -> bool:
    value = raw.get(name, False)
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    if not isinstance(value, bool):
        raise RunnerError(f"{name} must be true or false, got {value!r}")
    return value


def _choice(raw: dict, name: str, choices: tuple[str, ...]) -> str:
    value = raw.get(name)
    if value not in choices:
        raise RunnerError(f"{name} must be one of {', '.join(choices)}; got {value!r}")
    return value


def parse_params(raw: dict) -> dict:
    params = {
        "k": number(raw, "k", 2, 3000, integer=True),
        "max_iter": number(raw, "max_iter", 6, 10000, integer=True),
        "tol": float(number(raw, "tol", 0, 0.5)),
        "init": _choice({"init": raw.get("init", INITS[0])}, "init", INITS),
        "distance": _choice(raw, "distance", DISTANCES),
        "sparse_centers": _flag(raw, "sparse_centers"),
        "output_cluster": _flag(raw, "output_cluster"),
        "train": folder_param(raw, "train", required=True),
        "predict": folder_param(raw, "predict"),
        "model_dir": folder_param(raw, "model_dir", "model"),
        "cluster_dir": folder_param(raw, "cluster_dir", "cluster"),
        "predict_dir": folder_param(raw, "predict_dir", "predict"),
        "seed": None,
        "restarts": None,
    }
    if raw.get("seed") is not None:
        params["seed"] = number(raw, "seed", 0, 2**63 - 1, integer=True)
    if raw.get("restarts") is not None:
        params["restarts"] = number(raw, "restarts", 1, 100, integer=True)
    return params


# ---------------------------------------------------------------------------------------------
# Distances


@dataclass
class Rows:
    """Samples plus what the distances need of them, computed once."""

    X: object  # ndarray or CSR
    sq: np.ndarray  # |x|^2

    @classmethod
    def of(cls, X) -> Rows:
        if sparse.issparse(X):
            sq = np.asarray(X.multiply(X).sum(axis=1)).ravel()
        else:
            sq = np.einsum("ij,ij->i", X, X)
        return cls(X, sq)

    @property
    def n(self) -> int:
        return self.X.shape[0]

    def take(self, index) -> Rows:
        return Rows(self.X[index], self.sq[index])


def _dot(X, C) -> np.ndarray:
    """X C^T as a dense array, for any mix of dense and sparse."""
    if sparse.issparse(C):
        if sparse.issparse(X):
            return (X @ C.T).toarray()
        return np.asarray((C @ X.T).T)
    return np.asarray(X @ C.T)


def _dense_rows(C, start: int, stop: int) -> np.ndarray:
    return C[start:stop].toarray() if sparse.issparse(C) else C[start:stop]


def _manhattan(X, centers: Centers) -> np.ndarray:
    """sum_j |x_j - c_j| for a block of samples against every center (dense result)."""
    n, d = X.shape
    k, C = centers.k, centers.C
    if sparse.issparse(X):
        # |x - c|_1 = |c|_1 + sum over x's non-zeros j of (|x_j - c_j| - |c_j|)
        X = sparse.csr_matrix(X)
        at = centers.columns[:, X.indices]  # k x nnz: the centers at x's non-zeros
        at = at.toarray() if sparse.issparse(at) else at
        terms = np.abs(X.data[None, :] - at)
        terms -= np.abs(at)
        rows_of_nnz = sparse.csr_matrix(
            (np.ones(X.nnz), np.arange(X.nnz), X.indptr), shape=(n, X.nnz)
        )
        return np.asarray(rows_of_nnz @ terms.T) + centers.l1
    out = np.empty((n, k))
    step = max(1, BLOCK // max(n * d, 1))
    for start in range(0, k, step):
        block = _dense_rows(C, start, min(k, start + step))
        out[:, start : start + block.shape[0]] = np.abs(X[:, None, :] - block[None]).sum(2)
    return out


class Centers:
    """k centers (dense array, or CSR with sparse centers) and their norms."""

    def __init__(self, C, distance: str):
        self.C = C
        self.distance = distance
        self.k = C.shape[0]
        if sparse.issparse(C):
            self.sq = np.asarray(C.multiply(C).sum(axis=1)).ravel()
        else:
            self.sq = np.einsum("ij,ij->i", C, C)
        norm = np.sqrt(self.sq)
        self.inverse_norm = np.divide(1.0, norm, out=np.zeros_like(norm), where=norm > 0)
        if distance == "DISTANCE_MANHATTAN":
            self.l1 = np.asarray(abs(C).sum(axis=1)).ravel()
            self.columns = sparse.csc_matrix(C) if sparse.issparse(C) else C

    def block_rows(self, X) -> int:
        """Samples per block, so that a block's distance temporaries stay about BLOCK."""
        if self.distance != "DISTANCE_MANHATTAN":
            return max(256, min(16_384, BLOCK // self.k))
        if sparse.issparse(X):
            per_row = max(1.0, X.nnz / max(X.shape[0], 1))
            return int(max(1, min(16_384, BLOCK // (self.k * per_row))))
        return max(1, min(4096, BLOCK // max(self.k * X.shape[1], 1)))

    def nearest(self, rows: Rows) -> tuple[np.ndarray, np.ndarray]:
        """Each sample's nearest center and its distance (chunked, vectorised)."""
        n = rows.n
        labels = np.empty(n, dtype=np.int64)
        dist = np.empty(n)
        step = self.block_rows(rows.X)
        for start in range(0, n, step):
            stop = min(n, start + step)
            labels[start:stop], dist[start:stop] = self._nearest_block(
                rows.X[start:stop], rows.sq[start:stop]
            )
        return labels, dist

    def _nearest_block(self, X, sq: np.ndarray):
        picked = np.arange(X.shape[0])
        if self.distance == "DISTANCE_MANHATTAN":
            D = _manhattan(X, self)
            labels = D.argmin(axis=1)
            return labels, D[picked, labels]
        G = _dot(X, self.C)
        if self.distance in ("DISTANCE_EUCLIDEAN", "DISTANCE_SQUAREEUCLIDEAN"):
            G *= -2.0
            G += self.sq  # |c|^2 - 2 x.c: |x|^2 does not change the order
            labels = G.argmin(axis=1)
            dist = np.maximum(G[picked, labels] + sq, 0.0)
            return labels, (np.sqrt(dist) if self.distance == "DISTANCE_EUCLIDEAN" else dist)
        if self.distance == "DISTANCE_COSINE":
            G *= self.inverse_norm  # x.c / |c|: the order of x.c / (|x| |c|)
            labels = G.argmax(axis=1)
            norm = np.sqrt(sq)
            inverse = np.divide(1.0, norm, out=np.zeros_like(norm), where=norm > 0)
            return labels, 1.0 - G[picked, labels] * inverse
        # Tanimoto
        denominator = sq[:, None] + self.sq[None, :] - G
        similarity = np.divide(G, denominator, out=np.ones_like(G), where=denominator > 0)
        labels = similarity.argmax(axis=1)
        return labels, 1.0 - similarity[picked, labels]


# ---------------------------------------------------------------------------------------------
# Lloyd rounds


def _total(values, collective: bool) -> np.ndarray:
    if collective:
        return ml_dist.allreduce_sum(values)
    return np.asarray(values, dtype=np.float64)


def _sums(rows: Rows, labels: np.ndarray, k: int, distance: str, keep_sparse: bool, collective):
    """Per-cluster sums of the samples (unit-scaled ones for cosine) over all instances."""
    n = rows.n
    weights = np.ones(n)
    if distance == "DISTANCE_COSINE":
        norm = np.sqrt(rows.sq)
        weights = np.divide(1.0, norm, out=np.zeros(n), where=norm > 0)
    membership = sparse.csc_matrix((weights, labels, np.arange(n + 1)), shape=(k, n))
    sums = membership @ rows.X
    if sparse.issparse(sums):
        if keep_sparse:
            sums = sparse.csr_matrix(sums)
            if collective and ml_dist.world() > 1:
                sums = sum(ml_dist.allgather(sums), sparse.csr_matrix(sums.shape))
            return sparse.csr_matrix(sums)
        sums = sums.toarray()
    return _total(np.asarray(sums).ravel(), collective).reshape(k, -1)


def _farthest(rows: Rows, dist: np.ndarray, m: int, collective: bool) -> list:
    """The m samples (over all instances) farthest from their centers, as center rows."""
    local = np.argsort(-dist, kind="stable")[:m]
    candidates = [(-float(dist[i]), ml_dist.rank(), int(i), rows.X[int(i)]) for i in local]
    if collective and ml_dist.world() > 1:
        candidates = [c for part in ml_dist.allgather(candidates) for c in part]
    candidates.sort(key=lambda c: c[:3])
    return [c[3] for c in candidates[:m]]


def _with_rows(C, index: np.ndarray, new_rows: list):
    if sparse.issparse(C):
        C = sparse.lil_matrix(C)
        for i, row in zip(index, new_rows, strict=False):
            C[int(i)] = sparse.csr_matrix(row) if sparse.issparse(row) else row
        return sparse.csr_matrix(C)
    C = C.copy()
    for i, row in zip(index, new_rows, strict=False):
        C[int(i)] = row.toarray().ravel() if sparse.issparse(row) else row
    return C


@dataclass
class Fit:
    centers: Centers
    labels: np.ndarray
    dist: np.ndarray
    objective: float
    iterations: int
    history: list
    counts: np.ndarray


def lloyd(
    rows: Rows,
    C,
    distance: str,
    *,
    max_iter: int,
    tol: float,
    collective: bool,
    keep_sparse: bool,
    progress=None,
) -> Fit:
    """Lloyd rounds from centers C until the spec's stopping rule; see the module doc."""
    k = C.shape[0]
    centers = Centers(C, distance)
    history: list[float] = []
    below = 0
    previous = None
    iterations = 0
    for iteration in range(1, max_iter + 1):
        labels, dist = centers.nearest(rows)
        changed = rows.n if previous is None else int(np.count_nonzero(labels != previous))
        previous = labels
        counts_total = _total(
            np.concatenate([np.bincount(labels, minlength=k), [dist.sum(), changed]]), collective
        )
        counts, objective, changed = counts_total[:k], float(counts_total[k]), counts_total[k + 1]
        history.append(objective)
        rate = None
        if iteration >= 2:
            last = history[-2]
            rate = abs(last - objective) / last if last > 0 else (0.0 if objective == 0 else 1.0)
            below = below + 1 if rate < tol else 0
        if progress:
            progress(iteration, objective, rate, below, int(changed))
        iterations = iteration
        empty = np.flatnonzero(counts == 0)
        if empty.size == 0 and changed == 0:  # a fixed point: the centers stay where they are
            return Fit(centers, labels, dist, objective, iterations, history, counts)
        sums = _sums(rows, labels, k, distance, keep_sparse, collective)
        filled = np.maximum(counts, 1)
        if sparse.issparse(sums):
            new = sparse.csr_matrix(sparse.diags(1.0 / filled) @ sums)
            new.sort_indices()
        else:
            new = sums / filled[:, None]
        if empty.size:
            new = _with_rows(new, empty, _farthest(rows, dist, empty.size, collective))
            previous = None  # the re-seeded centers have no samples yet
        centers = Centers(new, distance)
        if below >= CONSECUTIVE_ROUNDS:
            break
    labels, dist = centers.nearest(rows)
    final = _total(np.concatenate([np.bincount(labels, minlength=k), [dist.sum()]]), collective)
    return Fit(centers, labels, dist, float(final[k]), iterations, history, final[:k])


# ---------------------------------------------------------------------------------------------
# Initialisation and restarts


def _restart_sample(rows: Rows, n_total: int, k: int, seed: int) -> Rows:
    """A uniform random sample of all instances' data (the same on every instance)."""
    size = min(n_total, max(SAMPLE_MIN, SAMPLE_PER_CLUSTER * k))
    if size >= n_total:
        index = np.arange(rows.n)
    else:
        share = int(round(size * rows.n / n_total))
        rng = np.random.default_rng([seed, ml_dist.rank(), 1])
        index = np.sort(rng.choice(rows.n, size=min(share, rows.n), replace=False))
    if ml_dist.world() == 1:
        return rows.take(index)
    parts = ml_dist.allgather(rows.X[index])
    if sparse.issparse(parts[0]):
        X = sparse.vstack([sparse.csr_matrix(p) for p in parts], format="csr")
    else:
        X = np.concatenate(parts)
    return Rows.of(X)


def default_restarts(k: int) -> int:
    """Random initialisations tried: a random start misses some of well-separated clusters
    more often than not (e.g. about 3 in 4 starts for 8 blobs), and each restart on the
    sample costs little for small k; for large k every start is costly and gains less."""
    return 30 if k <= 20 else 10 if k <= 200 else 3


def initial_centers(rows: Rows, n_total: int, params: dict, keep_sparse: bool, seed: int):
    """Starting centers: the best of `restarts` random initialisations on a sample. The
    restarts are shared out over the instances (restart i on instance i mod world, with its
    own random stream from (seed, i)); every instance receives the best one."""
    k, distance = params["k"], params["distance"]
    restarts = params["restarts"] or default_restarts(k)
    sample = _restart_sample(rows, n_total, k, seed)
    mine, problem = [], None
    started = time.monotonic()
    try:
        for restart in range(ml_dist.rank(), restarts, ml_dist.world()):
            rng = np.random.default_rng([seed, restart])
            C = sample.X[np.sort(rng.choice(sample.n, size=k, replace=False))]
            if keep_sparse:
                C = sparse.csr_matrix(C)
            elif sparse.issparse(C):
                C = C.toarray()
            fit = lloyd(
                sample,
                np.array(C) if not sparse.issparse(C) else C,
                distance,
                max_iter=min(params["max_iter"], RESTART_MAX_ITER),
                tol=params["tol"],
                collective=False,
                keep_sparse=keep_sparse,
            )
            say(
                f"restart {restart + 1}/{restarts} on {sample.n:,} samples: total distance "
                f"{fit.objective:.8g} after {fit.iterations} rounds "
                f"({time.monotonic() - started:.1f} s)"
            )
            if not mine or fit.objective < mine[0]:
                mine = [fit.objective, restart, fit.centers.C]
    except (ValueError, MemoryError) as error:
        problem = f"the random initialisation failed: {error}"
    agree(problem)
    candidates = [c for c in ml_dist.allgather(mine) if c]
    objective, restart, C = min(candidates, key=lambda c: (c[0], c[1]))
    if ml_dist.rank() == 0:
        say(f"starting from restart {restart + 1} (total distance {objective:.8g} on the sample)")
    return C, restarts


# ---------------------------------------------------------------------------------------------
# Outputs


def _format(value: float) -> str:
    return repr(float(value))


def write_model(folder: Path, fit: Fit, meta: dict, sparse_centers: bool) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    C = fit.centers.C
    lines, centers_json = [], []
    for cid in range(C.shape[0]):
        if sparse_centers:
            row = sparse.csr_matrix(C[cid]) if sparse.issparse(C) else sparse.csr_matrix(C[cid])
            row.eliminate_zeros()
            row.sort_indices()
            ids, weights = row.indices.tolist(), row.data.tolist()
            lines.append(
                " ".join(
                    [str(cid), *(f"{i}:{_format(w)}" for i, w in zip(ids, weights, strict=True))]
                )
            )
            centers_json.append({"ids": ids, "weights": weights})
        else:
            values = C[cid].toarray().ravel() if sparse.issparse(C) else C[cid]
            lines.append(" ".join([str(cid), *map(_format, values.tolist())]))
            centers_json.append(values.tolist())
    write_text_lines(folder / "cluster_info", iter(lines))
    (folder / "distance_type").write_text(
        f"distance_type {meta['distance']}\nfeature_num {meta['feature_num']}\n"
    )
    (folder / "model.json").write_text(json.dumps({**meta, "centers": centers_json}, indent=1))


def _sample_line(number: str, label: float, X, index: int, dense: bool) -> str:
    label_text = "" if math.isnan(label) else f"{label:g}"
    if dense:
        cells = map(_format, X[index].tolist())
    else:
        row = X[index]
        cells = (f"{j} {_format(v)}" for j, v in zip(row.indices, row.data, strict=True))
    return ",".join([number, label_text, *cells])


def write_assignments(path: Path, folder: str, data, labels: np.ndarray) -> None:
    """'<original sample line>;<cluster id>' per sample of this instance's share."""
    dense = not sparse.issparse(data.X)
    lines = list(raw_lines(folder, dense)) if len(labels) else []
    if len(lines) != len(labels):  # not the lines the reader parsed: rebuild them
        say(f"warning: {folder} lines do not match the samples read; writing them rebuilt")
        X = data.X if dense else sparse.csr_matrix(data.X)
        lines = [
            _sample_line(data.numbers[i], float(data.y[i]), X, i, dense) for i in range(len(labels))
        ]
    write_text_lines(
        path, (f"{line};{label}" for line, label in zip(lines, labels.tolist(), strict=True))
    )


# ---------------------------------------------------------------------------------------------
# The job


def run(raw: dict) -> None:
    params = parse_params(raw)
    k, distance = params["k"], params["distance"]
    started = time.monotonic()
    train = collective_load(params["train"], "training")
    X = train.X
    d = X.shape[1]
    n_total = int(ml_dist.allreduce_sum([X.shape[0]])[0])
    say(
        f"training share: {X.shape[0]:,} samples x {d:,} features "
        f"({'sparse' if sparse.issparse(X) else 'dense'}), loaded in "
        f"{time.monotonic() - started:.1f} s; all instances: {n_total:,} samples"
    )
    if n_total < k:
        raise RunnerError(f"k={k} is more than the {n_total} training samples")
    agree(None if d > 0 else "the training data has no features")
    keep_sparse = params["sparse_centers"] and sparse.issparse(X)
    seed = params["seed"]
    if seed is None:
        seed = ml_dist.broadcast(secrets.randbits(63))
    rows = Rows.of(X)

    started = time.monotonic()
    C, restarts = initial_centers(rows, n_total, params, keep_sparse, seed)

    def progress(iteration, objective, rate, below, changed):
        if ml_dist.rank() != 0:
            return
        rate_text = "" if rate is None else f", change rate {rate:.3g} ({below}/5 below tol)"
        say(
            f"iteration {iteration}/{params['max_iter']}: total distance {objective:.10g}"
            f"{rate_text}, {changed:,} samples changed cluster "
            f"({time.monotonic() - started:.1f} s)"
        )
        report(iteration, loss=objective)

    fit = lloyd(
        rows,
        C,
        distance,
        max_iter=params["max_iter"],
        tol=params["tol"],
        collective=True,
        keep_sparse=keep_sparse,
        progress=progress,
    )
    sse = None
    if distance == "DISTANCE_EUCLIDEAN":
        sse = float(ml_dist.allreduce_sum([np.square(fit.dist).sum()])[0])
    elif distance == "DISTANCE_SQUAREEUCLIDEAN":
        sse = fit.objective
    say(
        f"trained: {fit.iterations} rounds, total distance {fit.objective:.10g} in "
        f"{time.monotonic() - started:.1f} s"
    )
    if ml_dist.rank() == 0:
        meta = {
            "algorithm": "kmeans",
            "format": train.info.get("format"),  # of the raw samples the served model takes
            "distance": distance,
            "feature_num": d,
            "feature_names": train.feature_names or [str(i) for i in range(d)],
            "k": k,
            "objective": fit.objective,
            "sse": sse,
            "cluster_sizes": [int(c) for c in fit.counts],
            "iterations": fit.iterations,
            "samples": n_total,
            "seed": seed,
            "restarts": restarts,
            "params": params,
        }
        write_model(Path(params["model_dir"]), fit, meta, params["sparse_centers"])
        say(f"model written to {params['model_dir']}/")
    if params["output_cluster"]:
        path = Path(params["cluster_dir"]) / part_name()
        write_assignments(path, params["train"], train, fit.labels)
        say(f"clusters of {len(fit.labels):,} training samples written to {path}")
    if not params["predict"]:
        return
    if same_folder(params["train"], params["predict"]):
        data, labels = train, fit.labels  # the training data: its clusters are known
    else:
        feature_names = train.feature_names
        train = rows = X = None  # no longer needed
        data = collective_load(params["predict"], "prediction")
        labels, _ = fit.centers.nearest(Rows.of(align_features(data, feature_names, d)))
    path = Path(params["predict_dir"]) / part_name()
    write_assignments(path, params["predict"], data, labels)
    say(f"clusters of {len(labels):,} prediction samples written to {path}")


def main(argv: list[str] | None = None) -> int:
    return cli(run, "KMeans clustering", argv)


if __name__ == "__main__":
    ml_dist.exit(main())
