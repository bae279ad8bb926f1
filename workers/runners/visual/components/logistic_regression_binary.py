"""Logistic regression for a label of two classes (scikit-learn)."""

from __future__ import annotations

from workers.runners.visual import base, training

SOLVERS = ("auto", "lbfgs", "newton-cholesky", "newton-cg", "saga", "liblinear")
# "auto": lbfgs when every feature went through standardize or normalize upstream (well
# conditioned: it converges in a few cheap iterations, the fastest there); otherwise
# newton-cholesky while the Hessian it builds stays small (features of very different
# scales: lbfgs stopped at 100 iterations unconverged after 8 s on 800k x 18 where
# newton-cholesky converged in 0.7 s; its memory grows with the square of the features,
# times the classes of a multinomial model, supported since scikit-learn 1.6), else lbfgs.
NEWTON_CHOLESKY_MAX = 500


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
        base.Param(
            "solver",
            "Solver",
            "choice",
            default="auto",
            choices=solvers,
            help=(
                "auto: lbfgs on standardized or normalized features, else newton-cholesky "
                "for up to 500 features (times the classes above two), else lbfgs."
            ),
        ),
    )


def pick_solver(solver: str, features: int, classes: int = 2, scaled: bool = False) -> str:
    """The scikit-learn solver for the setting: "auto" resolved by the features' scaling
    and the model's size."""
    if solver != "auto":
        return solver
    if scaled:
        return "lbfgs"
    size = features * (classes if classes > 2 else 1)
    return "newton-cholesky" if size <= NEWTON_CHOLESKY_MAX else "lbfgs"


def scaled_upstream(table, features: list[str]) -> bool:
    """Whether every feature went through a standardize or normalize step."""
    covered = set()
    for step in table.steps:
        if step.get("op") in ("standardize", "normalize"):
            covered |= set(step.get("columns") or {})
    return set(features) <= covered


def make_lr(params: dict, seed: int, classes: int = 2, scaled: bool = False):
    from sklearn.linear_model import LogisticRegression

    solver = pick_solver(params["solver"], len(params["features"]), classes, scaled)
    return LogisticRegression(
        C=params["C"], max_iter=params["max_iter"], solver=solver, random_state=seed
    )


@base.register
class LogisticRegressionBinary(training.DeferDynamic, base.Component):
    name = "logistic_regression_binary"
    imports = ("sklearn.linear_model",)
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
            lambda p, classes: make_lr(
                p, context.seed, classes, scaled_upstream(inputs["table"], p["features"])
            ),
            "logistic regression",
        )
