"""Landmark sketches: the renderer's conditioning image (68 points drawn as coloured curves)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch
from PIL import Image, ImageDraw

if TYPE_CHECKING:
    import torch

#: (first, last, closed, RGB colour) of each facial part in the iBUG 68-point order. Distinct
#: colours let the UNet tell the parts apart where they cross (lips over jaw when yawning).
PARTS: tuple[tuple[int, int, bool, tuple[int, int, int]], ...] = (
    (0, 16, False, (255, 255, 255)),  # jaw
    (17, 21, False, (255, 160, 0)),  # right brow
    (22, 26, False, (255, 160, 0)),  # left brow
    (27, 30, False, (0, 200, 255)),  # nose bridge
    (31, 35, False, (0, 200, 255)),  # nostrils
    (36, 41, True, (0, 255, 0)),  # right eye
    (42, 47, True, (0, 255, 0)),  # left eye
    (48, 59, True, (255, 0, 0)),  # outer lips
    (60, 67, True, (255, 0, 255)),  # inner lips
)


def draw_sketch(landmarks: np.ndarray, size: int, line_width: int | None = None) -> np.ndarray:
    """Draw one face's landmarks as a sketch on black.

    Args:
        landmarks: ``(68, 2)`` ``(x, y)`` in the sketch's pixels (points may lie outside).
        size: side of the square sketch in pixels.
        line_width: stroke width in pixels; default ``max(1, size // 128)``.

    Returns:
        ``(size, size, 3)`` uint8 RGB.
    """
    if landmarks.shape != (68, 2):
        raise ValueError(f"landmarks must be (68, 2), got {landmarks.shape}")
    width = line_width or max(1, size // 128)
    image = Image.new("RGB", (size, size))
    draw = ImageDraw.Draw(image)
    points = np.nan_to_num(landmarks.astype(np.float64))
    for first, last, closed, colour in PARTS:
        part = [tuple(p) for p in points[first : last + 1]]
        if closed:
            part.append(part[0])
        draw.line(part, fill=colour, width=width)
    return np.asarray(image)


def to_tensor_image(image: np.ndarray) -> torch.Tensor:
    """``(H, W, 3)`` uint8 → ``(3, H, W)`` float32 in [-1, 1] (the networks' image range)."""
    return torch.from_numpy(np.array(image, dtype=np.uint8)).permute(2, 0, 1).float() / 127.5 - 1.0


def from_tensor_image(tensor: torch.Tensor) -> np.ndarray:
    """``(3, H, W)`` in [-1, 1] → ``(H, W, 3)`` uint8 (rounded, clipped)."""
    values = ((tensor.detach().cpu().float().clamp(-1, 1) + 1.0) * 127.5).round()
    return values.permute(1, 2, 0).numpy().astype(np.uint8)
