"""Linear regression (least squares; ridge when regularized), scikit-learn."""

from __future__ import annotations

from workers.runners.visual import base, training


def make_linear(params: dict):
    from sklearn.linear_model import LinearRegression, Ridge

    if params["alpha"] > 0:
        return Ridge(alpha=params["alpha"], fit_intercept=params["fit_intercept"])
    return LinearRegression(fit_intercept=params["fit_intercept"])


@base.register
class LinearRegressionComponent(training.DeferDynamic, base.Component):
    name = "linear_regression"
    imports = ("sklearn.linear_model",)
    label = "Linear regression"
    group = "Training"
    description = "Predicts a number as a weighted sum of numeric features."
    inputs = (base.Port("table", "table", "Training table"),)
    outputs = (base.Port("model", "model", "Model"),)
    params = (
        training.features_param(),
        training.label_param(training.REGRESSION_LABEL_TYPES),
        base.Param("fit_intercept", "Fit an intercept", "bool", default=True),
        base.Param(
            "alpha",
            "L2 regularization (alpha)",
            "float",
            default=0.0,
            min=0,
            help="0: ordinary least squares; above 0: ridge regression of that strength.",
        ),
    )
    is_algorithm = True

    def check(self, params, inputs):
        return training.check_training(self.name, "regression", params)

    def run(self, params, inputs, context):
        return training.fit(
            self,
            params,
            inputs,
            context,
            "regression",
            lambda p, _: make_linear(p),
            "linear regression",
        )
