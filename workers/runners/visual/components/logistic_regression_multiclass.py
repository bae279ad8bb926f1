"""Logistic regression for a label of two or more classes (multinomial, scikit-learn)."""

from __future__ import annotations

from workers.runners.visual import base, training
from workers.runners.visual.components.logistic_regression_binary import (
    lr_params,
    make_lr,
    scaled_upstream,
)

SOLVERS = ("auto", "lbfgs", "newton-cholesky", "newton-cg", "saga")


@base.register
class LogisticRegressionMulticlass(training.DeferDynamic, base.Component):
    name = "logistic_regression_multiclass"
    imports = ("sklearn.linear_model",)
    label = "Logistic regression (multiclass)"
    group = "Training"
    description = "Learns the probability of each class (multinomial) from numeric features."
    inputs = (base.Port("table", "table", "Training table"),)
    outputs = (base.Port("model", "model", "Model"),)
    params = lr_params(SOLVERS)
    is_algorithm = True

    def check(self, params, inputs):
        return training.check_training(self.name, "multiclass", params)

    def run(self, params, inputs, context):
        return training.fit(
            self,
            params,
            inputs,
            context,
            "multiclass",
            lambda p, classes: make_lr(
                p, context.seed, classes, scaled_upstream(inputs["table"], p["features"])
            ),
            "multiclass logistic regression",
        )
