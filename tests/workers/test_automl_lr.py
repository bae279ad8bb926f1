"""The AutoML logistic regression runner on data that ships with scikit-learn: its final
model is as good on held-out data as the best of a 100-point grid over the same ranges;
a journal of an earlier run is replayed instead of run again; the three sets share one
feature map even when their features differ."""

import json

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import train_test_split

from workers.runners import automl_lr, automl_search, ml_lr

RANGES = {"l1_range": [1e-6, 0.1], "l2_range": [1e-6, 0.1], "iterations_range": [10, 100]}


def write_dense(path, X, y) -> None:
    path.mkdir(parents=True)
    rows = (f",{label}," + ",".join(f"{v:.8g}" for v in x) for x, label in zip(X, y, strict=True))
    (path / "part-0").write_text("\n".join(rows) + "\n")


@pytest.fixture
def cancer(tmp_path, monkeypatch):
    """Tuning-train, tuning-test and model-training (their union) as raw DENSE files, and a
    held-out quarter nobody trains or tunes on."""
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    monkeypatch.delenv("RANK", raising=False)
    monkeypatch.chdir(tmp_path)
    X, y = load_breast_cancer(return_X_y=True)
    X = (X - X.mean(axis=0)) / X.std(axis=0)
    X_rest, X_held, y_rest, y_held = train_test_split(X, y, test_size=0.25, random_state=0)
    X_tt, X_tv, y_tt, y_tv = train_test_split(X_rest, y_rest, test_size=0.4, random_state=0)
    write_dense(tmp_path / "tune_train", X_tt, y_tt)
    write_dense(tmp_path / "tune_test", X_tv, y_tv)
    write_dense(tmp_path / "model_train", X_rest, y_rest)
    return {"X": X_rest, "y": y_rest, "X_held": X_held, "y_held": y_held}


def params(trials: int, **more) -> dict:
    folders = {role: role for role in ("tune_train", "tune_test", "model_train")}
    return RANGES | folders | {"trials": trials, "format": "DENSE", "seed": 0} | more


def held_out_auc(model: dict, data: dict) -> float:
    theta = np.array([*model["weights"], model["intercept"]])
    return automl_lr.auc(data["y_held"], data["X_held"], theta)


def test_the_searched_model_is_as_good_as_a_100_point_grid(cancer, tmp_path):
    automl_lr.run(params(30))
    model = json.loads((tmp_path / "model/model.json").read_text())
    ours = held_out_auc(model, cancer)

    grid = []
    for l1 in np.geomspace(*RANGES["l1_range"], 10):
        for l2 in np.geomspace(*RANGES["l2_range"], 10):
            theta, _ = automl_lr.train(cancer["X"], cancer["y"], l1, l2, 100)
            grid.append(automl_lr.auc(cancer["y_held"], cancer["X_held"], theta))
    assert len(grid) == 100
    assert ours >= max(grid) - 0.005, (ours, max(grid))
    # The model file holds the non-zero weights only, as the spec says.
    lines = (tmp_path / "model/model").read_text().splitlines()
    assert len(lines) == model["nonzero_weights"] + 1
    assert roc_auc_score(cancer["y_held"], cancer["X_held"] @ model["weights"]) == pytest.approx(
        ours
    )


def test_a_resumed_search_goes_on_from_the_finished_trials(cancer, tmp_path, capsys):
    automl_lr.run(params(10))
    first = automl_search.read_journal(tmp_path / "log/trials.jsonl")
    assert len(first) == 10
    # The run was killed after 6 trials, one of them cut short: 5 finished are kept.
    kept = first[:5] + [automl_search.TrialRecord(number=5, params=first[5].params, state="FAIL")]
    (tmp_path / "resume").mkdir()
    (tmp_path / "resume/trials.jsonl").write_text(
        "".join(json.dumps(r.__dict__) + "\n" for r in kept) + '{"number": 6, "par'
    )
    (tmp_path / "log/trials.jsonl").unlink()
    capsys.readouterr()
    automl_lr.run(params(10, resume="resume/trials.jsonl"))
    said = capsys.readouterr().out
    assert "resumed: 5 finished trials kept" in said
    assert "trial 1/10" not in said and "trial 6/10" in said  # only the rest ran
    again = automl_search.read_journal(tmp_path / "log/trials.jsonl")
    assert [r.number for r in again] == list(range(10))
    assert [r.params for r in again[:5]] == [r.params for r in first[:5]]
    assert [r.value for r in again[:5]] == [r.value for r in first[:5]]


def test_the_three_sets_share_one_feature_map(tmp_path, monkeypatch):
    """SPARSE_ID sets with different features: one id per feature name in all three."""
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(0)

    def sparse_set(name: str, features: list[str], rows: int) -> None:
        lines = []
        for _ in range(rows):
            chosen = [f for f in features if rng.random() < 0.4]
            label = int(("good" in chosen) or (rng.random() < 0.2))
            lines.append(f",{label}," + ",".join(chosen))
        (tmp_path / name).mkdir()
        (tmp_path / name / "part-0").write_text("\n".join(lines) + "\n")

    sparse_set("tune_train", ["good", "b", "c"], 200)
    sparse_set("tune_test", ["good", "c", "d"], 200)
    sparse_set("model_train", ["good", "b", "e"], 200)
    automl_lr.run(params(10, format="SPARSE_ID"))
    model = json.loads((tmp_path / "model/model.json").read_text())
    assert model["feature_names"] == ["b", "c", "d", "e", "good"]
    weights = dict(zip(model["feature_names"], model["weights"], strict=True))
    assert weights["good"] > 1 and weights["good"] == max(weights.values())
    # ids in the model file are the shared map's: "good" is 4 in every set
    good = next(
        line for line in (tmp_path / "model/model").read_text().splitlines() if "good" in line
    )
    assert good.split(" ")[1:] == ["4", "good"]


def test_the_runner_refuses_settings_outside_the_spec():
    with pytest.raises(ml_lr.RunnerError, match="trials must be in"):
        automl_lr.parse_params(params(5))
