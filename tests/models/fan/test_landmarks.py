"""Crop geometry, heatmap decoding and flip symmetry of the 2D-FAN landmark pipeline."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from avtool.io.face import frontal_template
from avtool.models.fan import (
    MIRROR_ORDER,
    FaceCrop,
    FanConfig,
    FanLandmarker,
    build,
    decode_heatmaps,
    mirror_heatmaps,
)


def gaussian_maps(points: np.ndarray, size: int = 64, sigma: float = 1.5) -> np.ndarray:
    """``(N, size, size)`` Gaussians at ``points`` ``(N, 2)`` (x, y; cell centres at integers)."""
    grid = np.arange(size, dtype=np.float64)
    dx = grid[None, None, :] - points[:, 0, None, None]
    dy = grid[None, :, None] - points[:, 1, None, None]
    return np.exp(-(dx**2 + dy**2) / (2 * sigma**2)).astype(np.float32)


def reference_to_image(points: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    """face-alignment 1.5.0's mapping of heatmap peaks to the image, written out independently.

    Box corners (left, top, right, bottom) with right = x + w - 1; center moved up by 0.12 of
    the height; scale = (width + height) / 195; a 1-based peak minus 0.5 goes back through
    x = (p - 32) * 200 * scale / 64 + center.
    """
    x, y, w, h = box
    left, top, right, bottom = x, y, x + w - 1, y + h - 1
    center = np.array([(left + right) / 2, (top + bottom) / 2 - 0.12 * (bottom - top)])
    scale = (right - left + bottom - top) / 195.0
    one_based_minus_half = points + 1 - 0.5
    return (one_based_minus_half - 32) * 200.0 * scale / 64 + center


def test_gaussian_peaks_are_recovered_in_image_pixels() -> None:
    rng = np.random.default_rng(0)
    box = (141, 57, 60, 60)  # one heatmap cell is 1.89 image pixels
    crop = FaceCrop.from_box(*box)
    cell = crop.side / 64
    # Peaks a quarter cell off a cell centre are exactly what the quarter-cell rule recovers.
    quarters = rng.integers(4, 60, size=(68, 2)) + rng.choice([-0.25, 0.25], size=(68, 2))
    points, scores = decode_heatmaps(gaussian_maps(quarters))
    assert points.shape == (68, 2) and points.dtype == np.float32
    np.testing.assert_allclose(points, quarters, atol=1e-6)
    assert np.all(scores > 0.9)
    image = crop.to_image(points, 64)
    np.testing.assert_allclose(image, reference_to_image(quarters, box), atol=1e-6)

    # Anywhere else within a quarter cell, i.e. within half an image pixel here.
    truth = rng.uniform(2, 61, size=(68, 2))
    points, _ = decode_heatmaps(gaussian_maps(truth))
    error = np.abs(crop.to_image(points, 64) - reference_to_image(truth, box))
    assert error.max() <= 0.25 * cell + 1e-6 and error.max() < 0.5
    assert np.median(error) < 0.3


def test_peaks_on_the_border_are_not_refined() -> None:
    # As in face-alignment: a peak on the border of either axis is refined on neither.
    maps = gaussian_maps(np.array([[0.0, 30.2], [63.0, 63.0], [20.3, 0.4], [1.0, 62.2]]))
    points, _ = decode_heatmaps(maps)
    np.testing.assert_allclose(points, [[0.0, 30.0], [63.0, 63.0], [20.0, 0.0], [1.0, 62.25]])


def test_crop_samples_the_square_with_zero_padding() -> None:
    # A horizontal ramp (value = column) shows where each crop column samples the image.
    width, height = 250, 120
    image = np.repeat(np.arange(width, dtype=np.uint8)[None, :, None], height, axis=0)
    image = np.repeat(image, 3, axis=2)
    crop = FaceCrop.from_box(150, 20, 80, 70)  # the square runs past the right edge
    pixels = crop.sample(image, 256)
    assert pixels.shape == (256, 256, 3) and pixels.dtype == np.float32
    xs = crop.to_image(np.stack([np.arange(256.0)] * 2, axis=1), 256)[:, 0]
    inside = (xs >= 0) & (xs <= width - 1)
    row = 128  # rows inside the image
    assert 0 <= crop.to_image(np.array([0.0, row]), 256)[1] <= height - 1
    np.testing.assert_allclose(pixels[row, inside, 0] * 255, xs[inside], atol=1e-3)
    assert np.all(pixels[row, xs > width, 0] == 0)
    # Above the image (y < -1) the crop is black too.
    ys = crop.to_image(np.stack([np.arange(256.0)] * 2, axis=1), 256)[:, 1]
    assert ys[0] < -1 and np.all(pixels[ys < -1] == 0)
    points = np.random.default_rng(2).uniform(-5, 300, size=(10, 2))
    np.testing.assert_allclose(crop.to_image(crop.to_grid(points, 64), 64), points, atol=1e-9)


def test_mirror_order_mirrors_a_real_frontal_face() -> None:
    order = np.array(MIRROR_ORDER)
    assert sorted(order) == list(range(68)) and np.array_equal(order[order], np.arange(68))
    assert order[36] == 45 and order[48] == 54 and order[8] == 8 and order[30] == 30
    # The frontal template (mean of real faces) mirrored about x = 0, points relabelled,
    # lands on itself; a wrong pairing would move points by about an eye width.
    template = frontal_template()[:, :2]
    mirrored = template[order] * [-1.0, 1.0]
    assert np.abs(mirrored - template).max() < 0.1
    maps = np.random.default_rng(1).random((68, 8, 8)).astype(np.float32)
    np.testing.assert_array_equal(mirror_heatmaps(mirror_heatmaps(maps)), maps)


def test_landmarks_of_a_mirrored_photo_are_the_mirrored_landmarks(astronaut, face_detector):
    torch.manual_seed(0)
    network = build(FanConfig.debug()).eval()
    landmarker = FanLandmarker(network, name="debug", path=Path("debug.pt"))
    box = face_detector.detect(astronaut)[0]
    points = landmarker(astronaut, box)
    assert points.shape == (68, 2) and points.dtype == np.float32

    width = astronaut.shape[1]
    flipped_box = type(box)(width - box.x - box.w, box.y, box.w, box.h)
    flipped = landmarker(np.ascontiguousarray(astronaut[:, ::-1]), flipped_box)
    expected = points[list(MIRROR_ORDER)] * [-1.0, 1.0] + [width - 1.0, 0.0]
    np.testing.assert_allclose(flipped, expected, atol=1e-3)
