"""Random forest (scikit-learn): binary or multiclass classification, or regression."""

from __future__ import annotations

from workers.runners.visual import base, training

TASK_BY_CHOICE = {
    "classification_binary": "binary",
    "classification_multiclass": "multiclass",
    "regression": "regression",
}


def make_forest(params: dict, seed: int):
    from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor

    cls = RandomForestRegressor if params["task"] == "regression" else RandomForestClassifier
    return cls(
        n_estimators=params["n_estimators"],
        max_depth=params["max_depth"],
        n_jobs=-1,
        random_state=seed,
    )


@base.register
class RandomForest(training.DeferDynamic, base.Component):
    name = "random_forest"
    imports = ("sklearn.ensemble",)
    label = "Random forest"
    group = "Training"
    description = (
        "An ensemble of decision trees: classification (binary or multiclass) or regression."
    )
    inputs = (base.Port("table", "table", "Training table"),)
    outputs = (base.Port("model", "model", "Model"),)
    params = (
        training.features_param(),
        training.label_param(),
        base.Param(
            "task", "Task", "choice", default="classification_binary", choices=tuple(TASK_BY_CHOICE)
        ),
        base.Param("n_estimators", "Trees", "int", default=100, min=1, max=10_000),
        base.Param(
            "max_depth",
            "Maximum depth",
            "int",
            default=None,
            min=1,
            max=1000,
            help="Empty: trees grow until their leaves are pure.",
        ),
    )
    is_algorithm = True

    def check(self, params, inputs):
        task = TASK_BY_CHOICE[params["task"]]
        if task == "regression":
            types = dict((c["name"], c["type"]) for c in inputs["table"]["columns"])
            kind = types.get(params["label"])
            if kind is not None and kind not in training.REGRESSION_LABEL_TYPES:
                raise base.ComponentError(
                    "label", f"column '{params['label']}' is {kind}; regression needs a number"
                )
        return training.check_training(self.name, task, params)

    def run(self, params, inputs, context):
        task = TASK_BY_CHOICE.get(params.get("task") or "classification_binary", "binary")
        return training.fit(
            self,
            params,
            inputs,
            context,
            task,
            lambda p, _: make_forest(p, context.seed),
            "random forest",
        )
