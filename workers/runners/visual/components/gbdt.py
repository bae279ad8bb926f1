"""Gradient boosted decision trees (XGBoost's scikit-learn API): binary or multiclass
classification, or regression. Missing feature values are taken as they are."""

from __future__ import annotations

import os

from workers.runners.visual import base, training

TASK_BY_OBJECTIVE = {"binary": "binary", "multiclass": "multiclass", "regression": "regression"}


def make_gbdt(params: dict, seed: int):
    import xgboost

    common = dict(
        n_estimators=params["n_estimators"],
        max_depth=params["max_depth"],
        learning_rate=params["learning_rate"],
        n_jobs=os.cpu_count(),
        random_state=seed,
        tree_method="hist",
    )
    if params["objective"] == "regression":
        return xgboost.XGBRegressor(objective="reg:squarederror", **common)
    if params["objective"] == "binary":
        return xgboost.XGBClassifier(objective="binary:logistic", **common)
    return xgboost.XGBClassifier(objective="multi:softprob", **common)


@base.register
class Gbdt(training.DeferDynamic, base.Component):
    name = "gbdt"
    imports = ("xgboost",)
    label = "GBDT (XGBoost)"
    group = "Training"
    description = (
        "Gradient boosted decision trees: classification (binary or multiclass) or "
        "regression; takes missing feature values."
    )
    inputs = (base.Port("table", "table", "Training table"),)
    outputs = (base.Port("model", "model", "Model"),)
    params = (
        training.features_param(),
        training.label_param(),
        base.Param(
            "objective",
            "Objective",
            "choice",
            default="binary",
            choices=tuple(TASK_BY_OBJECTIVE),
        ),
        base.Param("n_estimators", "Trees", "int", default=100, min=1, max=10_000),
        base.Param("max_depth", "Maximum depth", "int", default=6, min=1, max=32),
        base.Param("learning_rate", "Learning rate", "float", default=0.3, min=1e-6, max=1),
    )
    is_algorithm = True

    def check(self, params, inputs):
        task = TASK_BY_OBJECTIVE[params["objective"]]
        if task == "regression":
            types = dict((c["name"], c["type"]) for c in inputs["table"]["columns"])
            kind = types.get(params["label"])
            if kind is not None and kind not in training.REGRESSION_LABEL_TYPES:
                raise base.ComponentError(
                    "label", f"column '{params['label']}' is {kind}; regression needs a number"
                )
        return training.check_training(self.name, task, params)

    def run(self, params, inputs, context):
        objective = params.get("objective") or "binary"
        return training.fit(
            self,
            params,
            inputs,
            context,
            TASK_BY_OBJECTIVE.get(objective, objective),
            lambda p, _: make_gbdt(p, context.seed),
            "GBDT",
        )
