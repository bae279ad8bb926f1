"""Which training frameworks this appliance can run: what is installed in its environment
(the one every job's own package layer sits on). Looked up without importing them, since
importing torch or paddle costs seconds and hundreds of MB in the web process."""

import importlib.util
from functools import cache

# framework -> (title, importable module, how to add it when missing)
FRAMEWORKS = {
    "pytorch": ("PyTorch", "torch", "pip install torch==2.14.1"),
    "paddlepaddle": ("PaddlePaddle", "paddle", "pip install paddlepaddle"),
    "sklearn": ("scikit-learn", "sklearn", "pip install scikit-learn"),
    "tensorflow": ("TensorFlow", "tensorflow", "pip install tensorflow"),
    "python": ("Python", "json", ""),
    # The spec's RAPIDS-cuML jobs: cuML/cuDF on a GPU host that has them, otherwise the
    # same code on scikit-learn and XGBoost (what the template does).
    "rapids": ("RAPIDS-cuML (Python 3)", "xgboost", "pip install xgboost-cpu"),
}


@cache
def installed(framework: str) -> bool:
    module = FRAMEWORKS[framework][1]
    return importlib.util.find_spec(module) is not None


def missing_message(framework: str) -> str:
    title, _, install = FRAMEWORKS[framework]
    return (
        f"{title} is not installed on this appliance. An administrator can add it to the "
        f"appliance's environment ({install} in .venv), or choose another framework."
    )


def choices() -> list[dict]:
    """For forms: every framework, with whether it can be picked and why not."""
    return [
        {"value": key, "title": title, "installed": installed(key), "why": missing_message(key)}
        for key, (title, _, _) in FRAMEWORKS.items()
    ]
