"""(c) One epoch of CIFAR-shaped training data (uint8 3x32x32, reflect-pad 4 random crop,
flip, normalise), batch 128, delivered to the training device: ablate's device-resident
loader against a torchvision DataLoader with the same augmentations as PIL transforms
in worker processes (the released code's pipeline). No model runs: this is the input
pipeline alone."""

from __future__ import annotations

import time

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms

from ablate.data.augment import CropFlip
from ablate.data.device_loader import DeviceLoader

MEAN, STD = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)


class PILImages(Dataset):
    def __init__(self, images_hwc: np.ndarray, labels: np.ndarray, transform):
        self.images, self.labels, self.transform = images_hwc, labels, transform

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        return self.transform(Image.fromarray(self.images[i])), int(self.labels[i])


def _epoch_seconds(loader, device) -> float:
    start = time.perf_counter()
    for x, y in loader:
        x = x.to(device, non_blocking=True)
        y = y.to(device, non_blocking=True)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - start


def table(*, num_images: int, batch: int, workers: int, device: torch.device) -> tuple[str, dict]:
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (num_images, 32, 32, 3), dtype=np.uint8)
    labels = rng.integers(0, 10, num_images)

    pil_pipeline = transforms.Compose([
        transforms.RandomCrop(32, padding=4, padding_mode="reflect"),
        transforms.RandomHorizontalFlip(),
        transforms.ToTensor(),
        transforms.Normalize(MEAN, STD),
    ])
    reference = DataLoader(PILImages(images, labels, pil_pipeline), batch_size=batch, shuffle=True,
                           num_workers=workers, pin_memory=device.type == "cuda", persistent_workers=workers > 0)
    resident = DeviceLoader(torch.from_numpy(images).permute(0, 3, 1, 2).contiguous().to(device),
                            torch.from_numpy(labels).to(device), batch_size=batch, shuffle=True,
                            augmentation=CropFlip(padding=4, pad_mode="reflect", flip=True),
                            mean=MEAN, std=STD, seed=0)
    # the second epoch of each, so that worker start-up is not counted against the reference
    for loader in (reference, resident):
        _epoch_seconds(loader, device)
    t_ref = _epoch_seconds(reference, device)
    t_dev = _epoch_seconds(resident, device)
    row = {"num_images": num_images, "dataloader_s": t_ref, "device_loader_s": t_dev, "speedup": t_ref / t_dev}
    text = "\n".join([
        f"Input pipeline, one epoch of {num_images} CIFAR-shaped images, batch {batch} "
        f"(reference: {workers} worker processes)",
        "",
        "| torchvision DataLoader + PIL s/epoch | device-resident loader s/epoch | speed-up |",
        "|---|---|---|",
        f"| {t_ref:.2f} | {t_dev:.3f} | {t_ref / t_dev:.1f}x |",
    ])
    return text, row
