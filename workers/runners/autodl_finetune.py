"""The training half of AutoDL transfer learning (workers/runners/autodl_transfer.py): the
stratified split, the photo datasets and their transforms, the two fine-tuning phases and
the evaluation (accuracy, loss, confusion matrix). No Django import.

Evaluation images are prepared exactly as the image_classification model type serves them
(workers/runners/model_loaders.py: image_batch): RGB, a bilinear resize to image_size x
image_size, /255, normalised. So the validation accuracy is the accuracy the service gives.
"""

from __future__ import annotations

import copy
import math
import os
import random
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from PIL import Image
from torch import nn
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms

from workers.runners.autodl_backbones import BuiltModel

HEAD_LEARNING_RATE = 3e-3  # a new linear head on fixed features learns fast
FINE_TUNE_LEARNING_RATE = 3e-4  # the whole network: small steps keep the ImageNet features
WEIGHT_DECAY = 1e-4


# ---- the split -----------------------------------------------------------------------------


def stratified_split(
    labelled: list[tuple[Path, str]], validation_ratio: float, seed: int
) -> tuple[list[tuple[Path, str]], list[tuple[Path, str]]]:
    """(train, validation): the ratio of each class goes to validation, at least one photo
    and never all of them, so every class is both learned and measured."""
    by_class: dict[str, list[Path]] = defaultdict(list)
    for path, class_name in labelled:
        by_class[class_name].append(path)
    rng = random.Random(seed)
    train, validation = [], []
    for class_name in sorted(by_class):
        paths = sorted(by_class[class_name])  # the order of extraction must not matter
        rng.shuffle(paths)
        n_val = min(len(paths) - 1, max(1, round(len(paths) * validation_ratio)))
        validation += [(path, class_name) for path in paths[:n_val]]
        train += [(path, class_name) for path in paths[n_val:]]
    return train, validation


# ---- the photos ----------------------------------------------------------------------------


def augmentation(image_size: int) -> Callable:
    """Training photos only: a random crop of 60-100% of the photo, a mirror image, a light
    colour change. Photos of a class vary like that; the class does not."""
    return transforms.Compose(
        [
            transforms.RandomResizedCrop(image_size, scale=(0.6, 1.0)),
            transforms.RandomHorizontalFlip(),
            transforms.ColorJitter(brightness=0.2, contrast=0.2, saturation=0.2),
        ]
    )


def train_transform(image_size: int, mean, std) -> Callable:
    return transforms.Compose(
        [augmentation(image_size), transforms.ToTensor(), transforms.Normalize(mean, std)]
    )


def eval_transform(image_size: int, mean, std) -> Callable:
    return transforms.Compose(
        [
            transforms.Resize(
                (image_size, image_size), interpolation=transforms.InterpolationMode.BILINEAR
            ),
            transforms.ToTensor(),
            transforms.Normalize(mean, std),
        ]
    )


class PhotoDataset(Dataset):
    """(image tensor, class index) per photo. The photos were decoded once already by the
    data check, which refused any past its pixel limit; the limit is set here again because
    this is where the pixels are decoded for training (and in DataLoader worker processes)."""

    def __init__(
        self,
        items: list[tuple[Path, str]],
        class_index: dict[str, int],
        transform: Callable,
        pixel_limit: int,
        *,
        draft_size: int | None = None,
    ):
        self.items = [(str(path), class_index[name]) for path, name in items]
        self.transform, self.pixel_limit, self.draft_size = transform, pixel_limit, draft_size

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int):
        path, label = self.items[index]
        return self.transform(self.open(path)), label

    def open(self, path: str) -> Image.Image:
        Image.MAX_IMAGE_PIXELS = self.pixel_limit
        with Image.open(path) as image:
            if self.draft_size:
                # JPEG decodes at a reduced scale (never below draft_size) for free: a
                # 12-megapixel photo trained at 224 px need not be decoded whole every epoch.
                image.draft("RGB", (self.draft_size, self.draft_size))
            return image.convert("RGB")


def loader(dataset: PhotoDataset, batch_size: int, *, shuffle: bool, seed: int) -> DataLoader:
    workers = loader_workers()
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=shuffle,
        num_workers=workers,
        persistent_workers=workers > 0,
        generator=torch.Generator().manual_seed(seed) if shuffle else None,
        pin_memory=torch.cuda.is_available(),
    )


def available_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))  # what the run's confinement leaves us
    except AttributeError:
        return os.cpu_count() or 1


def loader_workers() -> int:
    """Decoding photos in worker processes pays on a GPU or a big CPU host; with two cores
    the workers would only take turns with the training itself."""
    cpus = available_cpus()
    return 0 if cpus <= 2 else min(8, cpus // 2)


# ---- training ------------------------------------------------------------------------------


@dataclass
class EpochResult:
    epoch: int
    phase: str  # "head" or "full"
    train_loss: float
    train_acc: float
    val_loss: float
    val_acc: float
    seconds: float = 0.0


@dataclass
class Evaluation:
    loss: float
    accuracy: float
    confusion: list[list[int]] = field(default_factory=list)  # rows: true, columns: predicted


def head_epoch_count(epochs: int) -> int:
    """About a third of the epochs train the head alone (at least one); the rest the whole
    network. A new random head would otherwise push large gradients into the backbone and
    wash out the features the transfer is for."""
    return max(1, round(epochs / 3)) if epochs > 1 else 1


def head_phase(model: BuiltModel) -> torch.optim.Optimizer:
    for parameter in model.body_parameters():
        parameter.requires_grad_(False)
    return torch.optim.AdamW(
        model.head_parameters(), lr=HEAD_LEARNING_RATE, weight_decay=WEIGHT_DECAY
    )


def full_phase(model: BuiltModel) -> torch.optim.Optimizer:
    for parameter in model.module.parameters():
        parameter.requires_grad_(True)
    return torch.optim.AdamW(
        model.module.parameters(), lr=FINE_TUNE_LEARNING_RATE, weight_decay=WEIGHT_DECAY
    )


def train_one_epoch(
    model: BuiltModel,
    batches: DataLoader,
    optimizer: torch.optim.Optimizer,
    device: torch.device,
    *,
    body_frozen: bool,
    scheduler=None,
) -> tuple[float, float]:
    """(mean loss, accuracy) over the epoch's training batches (with augmentation)."""
    module = model.module
    module.train()
    if body_frozen:  # frozen layers keep their batch-norm statistics too
        for child in model.body_modules():
            child.eval()
    else:
        # The batch norms keep their ImageNet statistics when the whole network trains too
        # (Keras's transfer-learning guide does the same): switching them to batch
        # statistics at the unfreeze threw the validation accuracy from 0.975 to 0.825 over
        # the next epochs on benchmarks/autodl.py's photos; frozen, it came back to 0.975.
        for layer in module.modules():
            if isinstance(layer, nn.modules.batchnorm._BatchNorm):
                layer.eval()
    criterion = nn.CrossEntropyLoss()
    total_loss, correct, seen = 0.0, 0, 0
    for images, labels in batches:
        images, labels = images.to(device, non_blocking=True), labels.to(device)
        optimizer.zero_grad(set_to_none=True)
        outputs = module(images)
        loss = criterion(outputs, labels)
        loss.backward()
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        total_loss += loss.item() * len(labels)
        correct += (outputs.argmax(1) == labels).sum().item()
        seen += len(labels)
    return total_loss / max(seen, 1), correct / max(seen, 1)


def evaluate(module: nn.Module, batches: DataLoader, num_classes: int, device) -> Evaluation:
    module.eval()
    criterion = nn.CrossEntropyLoss(reduction="sum")
    confusion = torch.zeros((num_classes, num_classes), dtype=torch.long)
    total_loss, seen = 0.0, 0
    with torch.inference_mode():
        for images, labels in batches:
            outputs = module(images.to(device))
            total_loss += criterion(outputs, labels.to(device)).item()
            predicted = outputs.argmax(1).cpu()
            for true, guess in zip(labels.tolist(), predicted.tolist(), strict=True):
                confusion[true, guess] += 1
            seen += len(labels)
    correct = int(confusion.diag().sum())
    return Evaluation(total_loss / max(seen, 1), correct / max(seen, 1), confusion.tolist())


def cosine_schedule(optimizer: torch.optim.Optimizer, total_steps: int):
    """The fine-tuning rate decays to a tenth along a half cosine: the last epochs settle."""
    total_steps = max(total_steps, 1)

    def factor(step: int) -> float:
        progress = min(step / total_steps, 1.0)
        return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


class BestWeights:
    """The weights of the epoch with the best validation accuracy (ties: the lower loss)."""

    def __init__(self):
        self.key: tuple[float, float] | None = None
        self.state: dict | None = None
        self.epoch = 0

    def offer(self, module: nn.Module, result: EpochResult) -> bool:
        key = (result.val_acc, -result.val_loss)
        if self.key is not None and key <= self.key:
            return False
        self.key, self.epoch = key, result.epoch
        self.state = {k: v.detach().to("cpu", copy=True) for k, v in module.state_dict().items()}
        return True

    def restore(self, module: nn.Module) -> None:
        module.load_state_dict(copy.deepcopy(self.state))
