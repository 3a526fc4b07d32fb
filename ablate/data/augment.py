"""Training augmentation applied to a whole batch on its device: random crop with padding
and random horizontal flip, one independent draw per image, no Python loop over images.

Images are float (B, C, H, W) in [0, 1], before normalisation, so zero padding is black,
as torchvision's RandomCrop(padding=p) pads a uint8 image.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

PAD_MODES = ("zero", "reflect")


def pad_images(images: torch.Tensor, padding: int, mode: str = "zero") -> torch.Tensor:
    """Pad every image by `padding` pixels on each side."""
    if mode not in PAD_MODES:
        raise ValueError(f"pad mode {mode!r} is not one of {PAD_MODES}")
    if padding == 0:
        return images
    return F.pad(images, (padding,) * 4, mode="constant" if mode == "zero" else "reflect")


def crop_windows(images: torch.Tensor, offsets: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """The (h, w) window of image b whose top-left corner is offsets[b] = (row, col)."""
    b, c = images.shape[:2]
    h, w = size
    device = images.device
    rows = offsets[:, 0:1] + torch.arange(h, device=device)  # (B, h)
    cols = offsets[:, 1:2] + torch.arange(w, device=device)  # (B, w)
    return images[torch.arange(b, device=device).view(b, 1, 1, 1),
                  torch.arange(c, device=device).view(1, c, 1, 1),
                  rows.view(b, 1, h, 1),
                  cols.view(b, 1, 1, w)]


def random_crop(images: torch.Tensor, padding: int, *, generator: torch.Generator,
                mode: str = "zero") -> torch.Tensor:
    """Pad, then cut every image back to its size at its own uniformly drawn offset."""
    if padding == 0:
        return images
    b, _, h, w = images.shape
    offsets = torch.randint(0, 2 * padding + 1, (b, 2), generator=generator, device=images.device)
    return crop_windows(pad_images(images, padding, mode), offsets, (h, w))


def flip_where(images: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mirror left-right exactly the images whose mask entry is true."""
    return torch.where(mask.view(-1, 1, 1, 1), images.flip(-1), images)


def random_flip(images: torch.Tensor, *, generator: torch.Generator) -> torch.Tensor:
    """Mirror each image with probability 1/2."""
    mask = torch.rand(images.shape[0], generator=generator, device=images.device) < 0.5
    return flip_where(images, mask)


@dataclass(frozen=True)
class CropFlip:
    """Random crop with `padding` (pad mode 'zero' or 'reflect'), then, when `flip`,
    random horizontal flip: the standard small-image augmentation."""

    padding: int
    pad_mode: str = "zero"
    flip: bool = True

    def __post_init__(self):
        if self.padding < 0:
            raise ValueError(f"padding must be >= 0, got {self.padding}")
        if self.pad_mode not in PAD_MODES:
            raise ValueError(f"pad mode {self.pad_mode!r} is not one of {PAD_MODES}")

    def __call__(self, images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        images = random_crop(images, self.padding, generator=generator, mode=self.pad_mode)
        return random_flip(images, generator=generator) if self.flip else images
