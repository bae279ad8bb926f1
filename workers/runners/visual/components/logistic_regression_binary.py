"""Logistic regression for a label of two classes (scikit-learn)."""

from __future__ import annotations

from workers.runners.visual import base, training

SOLVERS = ("lbfgs", "newton-cg", "saga", "liblinear")


def lr_params(solvers: tuple[str, ...]) -> tuple[base.Param, ...]:
    return (
        training.features_param(),
        training.label_param(),
        base.Param(
            "C",
            "Regularization inverse (C)",
            "float",
            default=1.0,
            min=1e-9,
            help="Smaller values regularize more (the inverse of the L2 penalty's strength).",
        ),
        base.Param("max_iter", "Maximum iterations", "int", default=100, min=1, max=100_000),
        base.Param("solver", "Solver", "choice", default="lbfgs", choices=solvers),
    )


def make_lr(params: dict, seed: int):
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(
        C=params["C"], max_iter=params["max_iter"], solver=params["solver"], random_state=seed
    )


@base.register
class LogisticRegressionBinary(training.DeferDynamic, base.Component):
    name = "logistic_regression_binary"
    label = "Logistic regression (binary)"
    group = "Training"
    description = (
        "Learns the probability of the positive class (the greater of the two label values) "
        "from numeric features."
    )
    inputs = (base.Port("table", "table", "Training table"),)
    outputs = (base.Port("model", "model", "Model"),)
    params = lr_params(SOLVERS)
    is_algorithm = True

    def check(self, params, inputs):
        return training.check_training(self.name, "binary", params)

    def run(self, params, inputs, context):
        return training.fit(
            self,
            params,
            inputs,
            context,
            "binary",
            lambda p, _: make_lr(p, context.seed),
            "logistic regression",
        )
