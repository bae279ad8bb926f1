"""What each warehouse model type takes and answers, in the words of the service page ("Test"
section): one line for the request's instances, one for the results. The loaders
(workers/runners/model_loaders*.py) are the rule; this is their summary for users."""

MODEL_IO = {
    "pytorch": (
        'rows of numbers of the model\'s input shape, or {"data": "<base64 image>"} for '
        "image models",
        'classifiers: {"class", "probability", "top_k"}; other models their raw outputs',
    ),
    "image_classification": (
        '{"data": "<base64 image>"} (also the spec client\'s "b\'...\'" form)',
        'the top classes: [{"label", "score"}, ...]',
    ),
    "paddle": ("rows of numbers (objects {input name: value} for several inputs)", "the outputs"),
    "onnx": ("rows of numbers (objects {input name: value} for several inputs)", "the outputs"),
    "keras": (
        "rows of numbers (objects {input name: value} for several inputs); a model whose one "
        'input is an image [H, W, 1 or 3] also takes {"data": "<base64 image>"} (resized, '
        "raw pixels 0-255)",
        'the outputs; with output "logits" the spec\'s {"result": "[[class scores], ...]"} '
        "(one text)",
    ),
    "sklearn": (
        "rows of feature values, or objects {feature name: value}",
        'classifiers: {"label", "probabilities"}; regressors the value',
    ),
    "xgboost": (
        "rows of feature values",
        'binary: {"label", "probability"}; multi-class: {"label", "probabilities"}',
    ),
    "pmml": (
        "rows, or objects {field name: value} (categorical fields take their category)",
        'classifiers: {"label", "probabilities"}; regressors the value',
    ),
    "custom": ("whatever predictor.py's predict() takes", "what predict() returns"),
    "bml_logistic_regression": (
        'raw samples as the standardization job read them: a line "No,label,features" in '
        "the job's input format (No and label may be empty), a list of values (DENSE) or "
        "{feature: weight}",
        '{"probability" (of the positive label), "label"}, with "no" when given',
    ),
    "bml_kmeans": (
        'raw samples: a line "No,label,features" in the job\'s input format, a list of '
        "values (DENSE) or {feature: weight}",
        '{"cluster", "distance"} (to that cluster\'s center)',
    ),
    "bml_gbdt": (
        'raw samples: a line "No,label,features" in the job\'s input format, a list of '
        "values (DENSE) or {feature: weight}",
        'binary: {"probability", "label"}; multi-class: {"label", "probability", '
        '"probabilities"}; regression: {"value"}',
    ),
    "bml_visual": (
        "raw rows of the experiment's data set, before its preprocessing: {column: value} "
        "with every source column but the label, or a list of those values in the model's "
        "column order",
        'classification: {"label", "probabilities"} (binary also "probability" of the '
        'positive class); regression: {"value"}; clustering: {"cluster", "distance"}',
    ),
}


def model_io(model_type: str) -> dict | None:
    found = MODEL_IO.get(model_type)
    return {"request": found[0], "response": found[1]} if found else None
