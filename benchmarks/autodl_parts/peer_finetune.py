"""The peer of benchmarks/autodl.py's transfer-learning part: the plain fine-tuning script a
user would write with torchvision (after PyTorch's "Transfer learning for computer vision"
tutorial, "fine-tuning the ConvNet"): unzip, ImageFolder, RandomResizedCrop + flip for
training and Resize + CenterCrop for validation, the whole network trained from the first
epoch, cross-entropy, the tutorial's StepLR (a tenth every 7 epochs). The optimizer is Adam
at 1e-3, not the tutorial's SGD at 0.001 with momentum: on autodl.py's --quick photos that
one reached 0.60 validation accuracy after 12 epochs and Adam at 1e-4 0.78 after 8, while
Adam at 1e-3 reached 0.95 at epoch 4 - the peer is the strongest usual recipe we tried.
Not a benchmark of its own (tests/benchmarks/test_smoke.py skips it).

Only the recipe is the user's; what must be equal for a fair comparison comes from
autodl.py: the same photos held out for validation (--validation-list, the archive
members of the job's own seeded split), the same pretrained EfficientNet-Lite0 loaded the
same way (autodl_backbones.build_model, pretrained=True), the same image size, batch size,
DataLoader worker count and torch threads.

    .venv/bin/python benchmarks/autodl_parts/peer_finetune.py --input data.zip --work DIR \\
        --validation-list val.txt --image-size 128 --epochs 10 [--stop-at 0.95]

Prints `epoch k/N train loss L acc A, val_acc X (S s)` per epoch, flushed, so the caller
can stamp each line as it arrives; --stop-at ends the run after the first epoch at or above
that validation accuracy (the benchmark needs no more of it).
"""

import argparse
import sys
import time
import zipfile
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader, Subset
from torchvision import datasets, transforms

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repo root

from workers.runners.autodl_backbones import IMAGENET_MEAN, IMAGENET_STD, build_model  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--input", required=True, type=Path, help="zip, one folder per class")
    parser.add_argument("--work", required=True, type=Path, help="folder to unzip into")
    parser.add_argument("--validation-list", required=True, type=Path, help="class/file lines")
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--workers", type=int, default=0)
    parser.add_argument("--threads", type=int, default=0, help="torch threads; 0: its default")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--optimizer", choices=("adam", "sgd"), default="adam")
    parser.add_argument("--lr", type=float, default=0.001)
    parser.add_argument("--stop-at", type=float, default=None)
    args = parser.parse_args()
    torch.manual_seed(args.seed)
    if args.threads:
        torch.set_num_threads(args.threads)

    photos = args.work / "photos"
    with zipfile.ZipFile(args.input) as archive:
        archive.extractall(photos)
    size = args.image_size
    normalize = transforms.Normalize(IMAGENET_MEAN, IMAGENET_STD)
    train_tf = transforms.Compose(
        [
            transforms.RandomResizedCrop(size),
            transforms.RandomHorizontalFlip(),
            transforms.ToTensor(),
            normalize,
        ]
    )
    val_tf = transforms.Compose(
        [
            transforms.Resize(round(size * 256 / 224)),
            transforms.CenterCrop(size),
            transforms.ToTensor(),
            normalize,
        ]
    )
    train_images = datasets.ImageFolder(photos, train_tf)
    val_images = datasets.ImageFolder(photos, val_tf)
    held_out = set(args.validation_list.read_text().split())
    names = [Path(path).relative_to(photos).as_posix() for path, _ in train_images.samples]
    val_idx = [i for i, name in enumerate(names) if name in held_out]
    train_idx = [i for i, name in enumerate(names) if name not in held_out]
    if len(val_idx) != len(held_out):
        raise SystemExit(f"{len(held_out) - len(val_idx)} validation photos are not in the zip")
    train_loader = DataLoader(
        Subset(train_images, train_idx),
        batch_size=args.batch_size,
        shuffle=True,
        num_workers=args.workers,
    )
    val_loader = DataLoader(
        Subset(val_images, val_idx), batch_size=args.batch_size, num_workers=args.workers
    )
    print(f"{len(train_idx)} train, {len(val_idx)} validation photos", flush=True)

    model = build_model("efficientnet-lite0", len(train_images.classes), size, pretrained=True)
    print(model.message, flush=True)
    net = model.module
    criterion = nn.CrossEntropyLoss()
    if args.optimizer == "adam":
        optimizer = torch.optim.Adam(net.parameters(), lr=args.lr)
    else:
        optimizer = torch.optim.SGD(net.parameters(), lr=args.lr, momentum=0.9)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=7, gamma=0.1)

    for epoch in range(1, args.epochs + 1):
        started = time.monotonic()
        net.train()
        total_loss, correct, seen = 0.0, 0, 0
        for images, labels in train_loader:
            optimizer.zero_grad()
            outputs = net(images)
            loss = criterion(outputs, labels)
            loss.backward()
            optimizer.step()
            total_loss += loss.item() * len(labels)
            correct += (outputs.argmax(1) == labels).sum().item()
            seen += len(labels)
        scheduler.step()
        net.eval()
        val_correct, val_seen = 0, 0
        with torch.no_grad():
            for images, labels in val_loader:
                val_correct += (net(images).argmax(1) == labels).sum().item()
                val_seen += len(labels)
        val_acc = val_correct / val_seen
        print(
            f"epoch {epoch}/{args.epochs} train loss {total_loss / seen:.4f} acc "
            f"{correct / seen:.4f}, val_acc {val_acc:.4f} ({time.monotonic() - started:.1f} s)",
            flush=True,
        )
        if args.stop_at is not None and val_acc >= args.stop_at:
            break


if __name__ == "__main__":
    main()
