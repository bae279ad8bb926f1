"""Clustering evaluation: the silhouette of the clusters over the feature columns (on at
most 10,000 rows sampled with the run's seed), the number of clusters and of rows."""

from __future__ import annotations

from workers.runners.visual import base, evaluation, training

MAX_SILHOUETTE_ROWS = 10_000


@base.register
class EvaluateClustering(training.DeferDynamic, base.Component):
    name = "evaluate_clustering"
    imports = ("sklearn.metrics",)
    label = "Clustering evaluation"
    group = "Evaluation"
    description = "Silhouette (-1 to 1, higher: tighter, better separated clusters)."
    inputs = (base.Port("table", "table", "Predictions"),)
    outputs = (base.Port("report", "report", "Evaluation report"),)
    params = (
        training.features_param(),
        base.Param(
            "cluster",
            "Cluster column",
            "column",
            default="prediction_result",
            column_types=("int", "string"),
        ),
    )

    def check(self, params, inputs):
        evaluation.require_column(inputs, "cluster", params["cluster"], ("int", "string"))
        if params["cluster"] in params["features"]:
            raise base.ComponentError(
                "cluster", f"'{params['cluster']}' is also a feature; pick another column"
            )
        return {"report": {"kind": "report", "task": "clustering"}}

    def run(self, params, inputs, context):
        import numpy as np
        from sklearn import metrics

        from workers.runners.visual.models import feature_matrix

        table = inputs["table"]
        params, _ = self.validate(params, {"table": table.schema()})
        features, cluster = params["features"], params["cluster"]
        frame = evaluation.rows_with(table.frame, [*features, cluster], context)
        if not len(frame):
            raise base.ComponentError("table", "no rows to evaluate")
        X = feature_matrix(frame, features)
        clusters = frame[cluster].astype(str).to_numpy()
        n, sampled = len(X), None
        if n > MAX_SILHOUETTE_ROWS:
            rows = np.random.default_rng(context.seed).choice(n, MAX_SILHOUETTE_ROWS, replace=False)
            X, clusters, sampled = X[rows], clusters[rows], MAX_SILHOUETTE_ROWS
            context.log(f"Silhouette on {sampled} of {n} rows (sampled, seed {context.seed})")
        k = len(set(clusters.tolist()))
        silhouette = None
        if 2 <= k < len(X):
            silhouette = evaluation.number(metrics.silhouette_score(X, clusters))
        else:
            context.log(f"{k} clusters in {len(X)} rows: no silhouette (it needs 2 to n-1)")
        m = {"silhouette": silhouette, "clusters": k, "samples": n}
        context.log(f"Clustering evaluation of {n} rows: {k} clusters, silhouette {silhouette}")
        context.facts.update(silhouette=silhouette, clusters=k, samples=n)
        return {"report": {"task": "clustering", "metrics": m, "sampled": sampled}}
