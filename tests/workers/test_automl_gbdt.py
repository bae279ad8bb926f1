"""The AutoML GBDT runner, in-process on small data: its final model on breast cancer is as
good on held-out data as a plain XGBoost with default settings; on a 1:50 set with the
class weight "auto" it writes a model the warehouse's bml_gbdt type serves; a journal of an
earlier run is replayed instead of run again; bad ranges are refused by name."""

import csv
import json

import numpy as np
import pytest
import xgboost as xgb
from sklearn.datasets import load_breast_cancer
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import train_test_split

from workers.runners import automl_gbdt, automl_search, model_loaders
from workers.runners.ml_lr import RunnerError

FAST = {"num_round_range": [10, 60], "max_depth_range": [2, 6]}  # seconds, not minutes


def write_dense(path, X, y) -> None:
    path.mkdir(parents=True)
    rows = (f",{label}," + ",".join(f"{v:.8g}" for v in x) for x, label in zip(X, y, strict=True))
    (path / "part-0").write_text("\n".join(rows) + "\n")


def weighted_lines(X, y=None) -> list[str]:
    """SPARSE_ID_WEIGHT sample lines: "No,label,name weight,..." with zeros left out."""
    labels = y if y is not None else [""] * len(X)
    return [
        f",{label}," + ",".join(f"f{j} {v:.6g}" for j, v in enumerate(x) if v)
        for x, label in zip(X, labels, strict=True)
    ]


def params(trials: int, **more) -> dict:
    folders = {role: role for role in ("tune_train", "tune_test", "model_train")}
    return FAST | folders | {"trials": trials, "format": "DENSE", "seed": 0} | more


@pytest.fixture
def workspace(tmp_path, monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    monkeypatch.delenv("RANK", raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def cancer(workspace):
    """Tuning-train, tuning-test and model-training (their union) as raw DENSE files, and a
    held-out quarter nobody trains or tunes on."""
    X, y = load_breast_cancer(return_X_y=True)
    X_rest, X_held, y_rest, y_held = train_test_split(X, y, test_size=0.25, random_state=0)
    X_tt, X_tv, y_tt, y_tv = train_test_split(X_rest, y_rest, test_size=0.4, random_state=0)
    write_dense(workspace / "tune_train", X_tt, y_tt)
    write_dense(workspace / "tune_test", X_tv, y_tv)
    write_dense(workspace / "model_train", X_rest, y_rest)
    return {"X": X_rest, "y": y_rest, "X_held": X_held, "y_held": y_held}


def test_the_searched_model_is_as_good_as_xgboost_defaults(cancer, workspace):
    automl_gbdt.run(params(12))
    booster = xgb.Booster(model_file=str(workspace / "model/model.json"))
    ours = roc_auc_score(cancer["y_held"], booster.predict(xgb.DMatrix(cancer["X_held"])))

    plain = xgb.XGBClassifier(tree_method="hist", random_state=0)  # 100 trees, depth 6, eta 0.3
    plain.fit(cancer["X"], cancer["y"])
    theirs = roc_auc_score(cancer["y_held"], plain.predict_proba(cancer["X_held"])[:, 1])
    assert ours >= theirs - 0.01, (ours, theirs)

    with (workspace / "log/trials.csv").open() as table:
        rows = list(csv.DictReader(table))
    assert len(rows) == 12
    assert list(rows[0]) == ["trial", *automl_gbdt.PARAMETERS, "auc", "seconds", "state"] + [
        "instance",
        "error",
    ]
    summary = json.loads((workspace / "log/search.json").read_text())
    best = summary["best"]
    assert summary["final_model"]["rounds"] == best["rounds"] <= best["num_round"]
    assert 10 <= best["num_round"] <= 60 and 2 <= best["max_depth"] <= 6
    assert booster.num_boosted_rounds() == best["rounds"]
    # balanced data, class weight "auto": about 1 (negatives/positives), the same every row
    assert {row["scale_pos_weight"] for row in rows} == {str(best["scale_pos_weight"])}
    assert 0.4 < best["scale_pos_weight"] < 0.8


def test_a_rare_class_set_makes_a_model_the_warehouse_serves(workspace):
    """1:50, SPARSE_ID_WEIGHT: the class weight "auto" is the tuning-train ratio; the model
    folder loads as bml_gbdt and answers sample lines by the original labels."""
    rng = np.random.default_rng(0)

    def rare(rows: int):
        X = np.round(rng.normal(size=(rows, 6)), 3)
        y = (X[:, 0] + 0.5 * X[:, 1] + rng.normal(scale=0.3, size=rows) > 2.37).astype(int)
        return X, np.where(y == 1, "yes", "no")  # "yes", sorted second, is positive

    sets = {role: rare(1500) for role in ("tune_train", "tune_test", "model_train")}
    for role, (X, y) in sets.items():
        (workspace / role).mkdir()
        (workspace / role / "part-0").write_text("\n".join(weighted_lines(X, y)) + "\n")
    positives = np.sum(sets["tune_train"][1] == "yes")
    assert 15 <= positives <= 60  # about 1 in 50

    automl_gbdt.run(params(10, format="SPARSE_ID_WEIGHT"))
    summary = json.loads((workspace / "log/search.json").read_text())
    expected = (1500 - positives) / positives
    assert summary["final_model"]["scale_pos_weight"] == pytest.approx(expected)
    assert summary["final_model"]["sparse"] is True

    model = model_loaders.load("bml_gbdt", workspace / "model", {})
    info = json.loads((workspace / "model/model_info.json").read_text())
    assert info["label_names"] == ["no", "yes"]
    assert info["search"]["params"]["scale_pos_weight"] == pytest.approx(expected)
    X_new, y_new = rare(600)
    answers = model.predict(weighted_lines(X_new))
    assert {a["label"] for a in answers} == {"yes", "no"}
    scores = [a["probability"] for a in answers]
    assert roc_auc_score(y_new == "yes", scores) > 0.9


def test_a_resumed_search_goes_on_from_the_finished_trials(cancer, workspace, capsys):
    automl_gbdt.run(params(10))
    first = automl_search.read_journal(workspace / "log/trials.jsonl")
    assert len(first) == 10 and all("rounds" in r.params for r in first)
    # The run was killed after 6 trials, one of them cut short: 5 finished are kept.
    kept = first[:5] + [automl_search.TrialRecord(number=5, params=first[5].params, state="FAIL")]
    (workspace / "resume").mkdir()
    (workspace / "resume/trials.jsonl").write_text(
        "".join(json.dumps(r.__dict__) + "\n" for r in kept) + '{"number": 6, "par'
    )
    (workspace / "log/trials.jsonl").unlink()
    capsys.readouterr()
    automl_gbdt.run(params(10, resume="resume"))
    said = capsys.readouterr().out
    assert "resumed: 5 finished trials kept" in said
    assert "trial 1/10" not in said and "trial 6/10" in said  # only the rest ran
    again = automl_search.read_journal(workspace / "log/trials.jsonl")
    assert [r.number for r in again] == list(range(10))
    assert [(r.params, r.value) for r in again[:5]] == [(r.params, r.value) for r in first[:5]]


@pytest.mark.parametrize(
    "bad, named",
    [
        ({"eta_range": [0.3, 0.01]}, "eta_range: low must be below high"),
        ({"eta_range": [0, 0.3]}, "eta_range must be in"),
        ({"max_depth_range": [2, 4.5]}, "max_depth_range must be an integer"),
        ({"subsample_range": [0.5, 1.5]}, "subsample_range must be in"),
        ({"num_round_range": [50]}, r"num_round_range must be \[low, high\]"),
        ({"reg_alpha_range": ["a", 1]}, "reg_alpha_range must be a number"),
        ({"scale_pos_weight": 5000}, 'scale_pos_weight must be "auto" or'),
        ({"scale_pos_weight": [10, 1]}, "scale_pos_weight: low must be below high"),
        ({"trials": 5}, "trials must be in"),
    ],
)
def test_the_runner_refuses_bad_ranges_by_name(bad, named):
    with pytest.raises(RunnerError, match=named):
        automl_gbdt.parse_params(params(10) | bad)


def test_absent_ranges_take_the_defaults():
    parsed = automl_gbdt.parse_params(params(10) | {"scale_pos_weight": [1, 5000]})
    assert parsed["ranges"]["eta"] == (0.01, 0.3) and parsed["ranges"]["max_depth"] == (2, 6)
    assert parsed["ranges"]["num_round"] == (10, 60)
    searched = automl_gbdt.space(parsed)
    assert searched["scale_pos_weight"].log and searched["eta"].log
    assert set(searched) == {*automl_gbdt.SEARCHED, "scale_pos_weight"}
