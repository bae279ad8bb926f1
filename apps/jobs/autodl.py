"""The spec's AutoDL jobs: image classification by transfer learning (a pretrained CNN
fine-tuned on the user's photos, workers/runners/autodl_transfer.py) and by ENAS (an
architecture search, then the architecture found trained from scratch and saved as the
spec's Keras HDF5, workers/runners/autodl_enas.py). The training data path
is a zip, or a folder whose zips (the first 10 by name) are all used; one folder per class
inside. One instance, on the job's device lease (CUDA when leased, the CPU otherwise).
Outputs `<output>/<job_id>/model/` (the spec's `.pth`, plus what serving loads) and `log/`
(the data report, preprocessing, confusion matrix).
"""

from pathlib import Path

from django.core.exceptions import ValidationError

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


def _image_sorting(name: str, title: str, validate, trainer: str, release) -> Algorithm:
    """An AutoDL algorithm: the training data staged in as train_data/, the trainer run on
    it with the other settings, model/ and log/ stored; one instance, as the spec says."""

    def prepare(params: dict, workspace: Path):
        stage = [{"uri": params["train_data_path"], "dest": "train_data"}]
        settings = {key: value for key, value in params.items() if not key.endswith("_path")}
        return runner(trainer, workspace, settings | {"input": "train_data"}), stage

    return register(
        Algorithm(
            kind=KIND,
            name=name,
            title=title,
            validate=validate,
            prepare=prepare,
            outputs=("model", "log"),
            stages_data_paths=False,
            needs_train_data=True,
            instances=(1, 1),  # the spec: "Number of instances 1"
            release=release,
        )
    )


TRANSFER_LEARNING = _image_sorting(
    "transfer_learning",
    "Image sorting - transfer learning",
    _validate_transfer,
    "autodl_transfer",
    # The spec's answer for its client: {"result": "[[logits]]"}.
    lambda params: Release(
        "image_classification",
        "model/",
        {"image_size": params.get("image_size", 224), "output": "logits"},
    ),
)


def _validate_enas(params: dict) -> dict:
    image_size = number(params, "image_size", 16, 128, 32, integer=True)
    if image_size % 4:
        raise ValidationError(
            {"image_size": "image_size must be a multiple of 4 (the network halves it twice)."}
        )
    return {
        "image_size": image_size,
        "layers": number(params, "layers", 2, 12, 6, integer=True),
        "channels": number(params, "channels", 8, 128, 32, integer=True),
        "search_rounds": number(params, "search_rounds", 1, 100, 30, integer=True),
        "controller_steps": number(params, "controller_steps", 1, 500, 30, integer=True),
        "derive_samples": number(params, "derive_samples", 1, 100, 10, integer=True),
        "final_epochs": number(params, "final_epochs", 1, 300, 30, integer=True),
        "random_baselines": number(params, "random_baselines", 0, 10, 2, integer=True),
        "validation_ratio": number(params, "validation_ratio", 0.05, 0.5, 0.2),
        "batch_size": number(params, "batch_size", 8, 512, 64, integer=True),
        "seed": number(params, "seed", 0, 2**31 - 1, 0, integer=True),
    }


ENAS = _image_sorting(
    "enas",
    "Image sorting - ENAS",
    _validate_enas,
    "autodl_enas",
    # The spec's Keras HDF5; served as a Keras model that takes photos and answers the
    # spec's {"result": "[[logits]]"} like the transfer learning model.
    lambda params: Release("keras", "model/", {"output": "logits"}),
)


# -- the console's form ------------------------------------------------------------------

TRAIN_DATA_HELP = (
    "Training data path (a zip, or a folder of zips: the first 10; one folder per class inside)"
)

FORMS = {
    "transfer_learning": {
        "fields": [
            Field("backbone", "Pretrained network", BACKBONES[0], BACKBONES, kind="choice"),
            Field("epochs", "Epochs", 10, help="1 to 100: the head first, then the whole network"),
            Field("validation_ratio", "Validation share", 0.2, help="0.05 to 0.5, per class"),
            Field("image_size", "Input size (px)", 224, help="64 to 512"),
            Field("batch_size", "Batch size", 32, help="1 to 512"),
        ],
        "paths": {"train_data_path": TRAIN_DATA_HELP},
    },
    "enas": {
        "fields": [
            Field(
                "search_rounds",
                "Search rounds",
                30,
                help="1 to 100, each a pass over the search photos",
            ),
            Field("controller_steps", "Controller steps per round", 30, help="1 to 500"),
            Field(
                "derive_samples",
                "Children proposed at the end",
                10,
                help="1 to 100: the best of them on the reward photos is trained from scratch",
            ),
            Field("layers", "Searched layers", 6, help="2 to 12"),
            Field("channels", "Channels", 32, help="8 to 128"),
            Field(
                "final_epochs",
                "Epochs from scratch",
                30,
                help="1 to 300, for the architecture found",
            ),
            Field(
                "random_baselines",
                "Random architectures to compare",
                2,
                help="0 to 10, each trained with the same budget (the fairness check)",
            ),
            Field("image_size", "Input size (px)", 32, help="16 to 128, a multiple of 4"),
            Field("validation_ratio", "Validation share", 0.2, help="0.05 to 0.5, per class"),
            Field("batch_size", "Batch size", 64, help="8 to 512"),
        ],
        "paths": {"train_data_path": TRAIN_DATA_HELP},
    },
}


def params_from_form(algorithm: str, form) -> dict:
    return {
        field.name: form.get(field.name)
        for field in FORMS[algorithm]["fields"]
        if form.get(field.name, "") != ""
    }
