"""Code templates offered in the console's job form ("Select code template").

Each is a real script in code_templates/ (linted and run by the tests like any code) that
runs offline: on the job's train_data/ CSV files when given, else on data bundled with an
installed package. A template whose framework is not installed is not offered.
"""

from dataclasses import dataclass
from functools import cache
from pathlib import Path

from apps.jobs import frameworks

TEMPLATE_DIR = Path(__file__).parent / "code_templates"


@dataclass(frozen=True)
class CodeTemplate:
    key: str
    title: str
    framework: str

    @property
    def code(self) -> str:
        return (TEMPLATE_DIR / f"{self.key}.py").read_text()


ALL_TEMPLATES = (
    CodeTemplate("pytorch_digits", "PyTorch: digits classifier (DDP-ready)", "pytorch"),
    CodeTemplate("paddle_digits", "PaddlePaddle: digits classifier", "paddlepaddle"),
    CodeTemplate("sklearn_digits", "scikit-learn: random forest on digits", "sklearn"),
    CodeTemplate("plain_python", "Plain Python: linear model", "python"),
    CodeTemplate("rapids_xgboost", "RAPIDS-cuML: XGBoost and KMeans (CPU fallback)", "rapids"),
)


@cache
def available_templates() -> dict[str, CodeTemplate]:
    return {t.key: t for t in ALL_TEMPLATES if frameworks.installed(t.framework)}


def default_template() -> CodeTemplate:
    return next(iter(available_templates().values()))
