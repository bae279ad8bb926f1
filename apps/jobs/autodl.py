"""The spec's AutoDL jobs: image classification by transfer learning (a pretrained CNN
fine-tuned on the user's photos, workers/runners/autodl_transfer.py). The training data path
is a zip, or a folder whose zips (the first 10 by name) are all used; one folder per class
inside. One instance, on the job's device lease (CUDA when leased, the CPU otherwise).
Outputs `<output>/<job_id>/model/` (the spec's `.pth`, plus what serving loads) and `log/`
(the data report, preprocessing, confusion matrix).
"""

from pathlib import Path

from apps.jobs.algorithms import Algorithm, Release, register
from apps.jobs.machine_learning import Field, choice, number, runner

KIND = "autodl"
BACKBONES = ("efficientnet-lite0",)


def _validate_transfer(params: dict) -> dict:
    return {
        "backbone": choice(params, "backbone", BACKBONES, BACKBONES[0]),
        "epochs": number(params, "epochs", 1, 100, 10, integer=True),
        "validation_ratio": number(params, "validation_ratio", 0.05, 0.5, 0.2),
        "image_size": number(params, "image_size", 64, 512, 224, integer=True),
        "batch_size": number(params, "batch_size", 1, 512, 32, integer=True),
        "seed": number(params, "seed", 0, 2**31 - 1, 0, integer=True),
    }


def _prepare_transfer(params: dict, workspace: Path):
    stage = [{"uri": params["train_data_path"], "dest": "train_data"}]
    settings = {key: value for key, value in params.items() if not key.endswith("_path")}
    return runner("autodl_transfer", workspace, settings | {"input": "train_data"}), stage


TRANSFER_LEARNING = register(
    Algorithm(
        kind=KIND,
        name="transfer_learning",
        title="Image sorting - transfer learning",
        validate=_validate_transfer,
        prepare=_prepare_transfer,
        outputs=("model", "log"),
        stages_data_paths=False,
        needs_train_data=True,
        instances=(1, 1),  # the spec: "Number of instances 1"
        # The spec's answer for its client: {"result": "[[logits]]"}.
        release=lambda params: Release(
            "image_classification",
            "model/",
            {"image_size": params.get("image_size", 224), "output": "logits"},
        ),
    )
)


# -- the console's form ------------------------------------------------------------------

FORMS = {
    "transfer_learning": {
        "fields": [
            Field("backbone", "Pretrained network", BACKBONES[0], BACKBONES, kind="choice"),
            Field("epochs", "Epochs", 10, help="1 to 100: the head first, then the whole network"),
            Field("validation_ratio", "Validation share", 0.2, help="0.05 to 0.5, per class"),
            Field("image_size", "Input size (px)", 224, help="64 to 512"),
            Field("batch_size", "Batch size", 32, help="1 to 512"),
        ],
        "paths": {
            "train_data_path": "Training data path (a zip, or a folder of zips: the first 10; "
            "one folder per class inside)"
        },
    },
}


def params_from_form(algorithm: str, form) -> dict:
    return {
        field.name: form.get(field.name)
        for field in FORMS[algorithm]["fields"]
        if form.get(field.name, "") != ""
    }
