"""KMeans clustering (scikit-learn): k centers of the feature columns, no label."""

from __future__ import annotations

from workers.runners.visual import base, training


def make_kmeans(params: dict):
    from sklearn.cluster import KMeans

    return KMeans(
        n_clusters=params["k"], max_iter=params["max_iter"], random_state=params["seed"], n_init=4
    )


@base.register
class KMeansComponent(training.DeferDynamic, base.Component):
    name = "kmeans"
    imports = ("sklearn.cluster",)
    label = "KMeans clustering"
    group = "Training"
    description = "Groups rows into k clusters around centers of the numeric features."
    inputs = (base.Port("table", "table", "Training table"),)
    outputs = (base.Port("model", "model", "Model"),)
    params = (
        training.features_param(),
        base.Param("k", "Clusters (k)", "int", default=3, min=2, max=10_000),
        base.Param("max_iter", "Maximum iterations", "int", default=300, min=1, max=100_000),
        base.Param("seed", "Random seed", "int", default=0, min=0, max=2**31 - 1),
    )
    is_algorithm = True

    def check(self, params, inputs):
        return training.check_training(self.name, "clustering", params)

    def run(self, params, inputs, context):
        rows = len(inputs["table"].frame)
        k = params.get("k") or 3
        if isinstance(k, int) and k > rows:
            raise base.ComponentError("k", f"k is {k} but the table has only {rows} rows")
        return training.fit(
            self, params, inputs, context, "clustering", lambda p, _: make_kmeans(p), "KMeans"
        )
