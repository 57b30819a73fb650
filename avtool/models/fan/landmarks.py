"""From a face box to 68 landmarks with 2D-FAN: crop, heatmaps, peaks, back to image pixels.

    crop = FaceCrop.from_box(x, y, w, h)        # the square the network sees (about 2x the box)
    pixels = crop.sample(image)                 # (256, 256, 3) float32 in [0, 1]
    points, scores = decode_heatmaps(heatmaps)  # (68, 64, 64) -> cell coordinates (68, 2), (68,)
    crop.to_image(points, HEATMAP_RESOLUTION)   # -> (68, 2) image pixels

Geometry follows face-alignment 1.5.0 (the published weights were evaluated with it): the crop
is centred on the box, moved up by 12% of its height, with side ``200 * (w + h) / 195``
pixels; a heatmap peak is refined by a quarter cell towards its larger neighbour. Coordinates
are continuous pixels with pixel centres at integers (dlib's convention). One cell of a
resolution-``R`` grid spans ``side / R`` image pixels and cell ``k``'s centre lies at
``left + (k + 0.5) * side / R``, for the 256-pixel crop and the 64-cell heatmaps alike; this
equals face-alignment's mapping of heatmap peaks back to the image (which then truncates to
whole pixels, as we do not) and its crop up to the whole-pixel rounding of the crop's corner.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from avtool.models.fan.model import CROP_RESOLUTION

#: face-alignment's calibration of a detector box to its crop: side = 200 * (w + h) / 195.
REFERENCE_SCALE = 195.0
SCALE_FACTOR = 200.0
#: The crop centre sits this fraction of the box height above the box centre.
CENTER_Y_OFFSET = 0.12
#: Peak refinement: a quarter cell towards the larger neighbour.
REFINE_STEP = 0.25


def _mirror_order() -> tuple[int, ...]:
    """Landmark ``i`` of a mirrored face is landmark ``order[i]`` of the face (iBUG 68)."""
    order = list(range(16, -1, -1))  # jaw 0-16 reversed
    order += range(26, 16, -1)  # brows 17-26 reversed
    order += [27, 28, 29, 30, 35, 34, 33, 32, 31]  # nose bridge stays, nostrils reversed
    order += [45, 44, 43, 42, 47, 46, 39, 38, 37, 36, 41, 40]  # the eyes swap, each mirrored
    order += [54, 53, 52, 51, 50, 49, 48, 59, 58, 57, 56, 55]  # outer lips
    order += [64, 63, 62, 61, 60, 67, 66, 65]  # inner lips
    return tuple(order)


#: Left-right landmark permutation (an involution) used to un-mirror flipped heatmaps.
MIRROR_ORDER = _mirror_order()


@dataclass(frozen=True)
class FaceCrop:
    """The square image region the network reads.

    Attributes:
        center_x: centre of the square, in image pixels.
        center_y: centre of the square, in image pixels.
        side: side of the square, in image pixels.
    """

    center_x: float
    center_y: float
    side: float

    @classmethod
    def from_box(cls, x: float, y: float, w: float, h: float) -> FaceCrop:
        """The crop for a detector box (top-left corner, width and height in pixels).

        The box's right and bottom edges are the last pixel inside it (``x + w - 1``), as the
        ``(left, top, right, bottom)`` boxes of dlib that face-alignment reads.
        """
        width, height = w - 1.0, h - 1.0
        return cls(
            center_x=x + width / 2.0,
            center_y=y + height / 2.0 - CENTER_Y_OFFSET * height,
            side=SCALE_FACTOR * (width + height) / REFERENCE_SCALE,
        )

    @property
    def left(self) -> float:
        """The square's left edge in image pixels (half a pixel before its first sample)."""
        return self.center_x - self.side / 2.0

    @property
    def top(self) -> float:
        """The square's top edge in image pixels."""
        return self.center_y - self.side / 2.0

    def to_image(self, points: np.ndarray, resolution: int) -> np.ndarray:
        """Grid coordinates (cell centres at integers) -> image pixels.

        Args:
            points: ``(..., 2)`` ``(x, y)`` positions on a ``resolution``-cell grid over the crop.
            resolution: cells per side (256 for the crop, 64 for heatmaps).

        Returns:
            ``(..., 2)`` float64 image coordinates.
        """
        cell = self.side / resolution
        return (np.asarray(points, dtype=np.float64) + 0.5) * cell + [self.left, self.top]

    def to_grid(self, points: np.ndarray, resolution: int) -> np.ndarray:
        """Image pixels -> grid coordinates; the inverse of :meth:`to_image`."""
        cell = self.side / resolution
        return (np.asarray(points, dtype=np.float64) - [self.left, self.top]) / cell - 0.5

    def sample(self, image: np.ndarray, resolution: int = CROP_RESOLUTION) -> np.ndarray:
        """Bilinear resampling of the square out of ``image``; zeros beyond the image.

        Like face-alignment's crop (zero padding, then a bilinear resize without
        antialiasing), so the network sees what its published weights were evaluated on.

        Args:
            image: ``(H, W, 3)`` uint8 RGB.
            resolution: output side in pixels.

        Returns:
            ``(resolution, resolution, 3)`` float32 in [0, 1].
        """
        centres = np.arange(resolution, dtype=np.float64)
        xs = self.to_image(np.stack([centres, centres], axis=1), resolution)
        rows = _bilinear_weights(xs[:, 1], image.shape[0])
        cols = _bilinear_weights(xs[:, 0], image.shape[1])
        # Separable: the crop's rows depend on y only and its columns on x only. Gathering rows
        # first keeps the float copy at (resolution, W, 3), whatever the photo's size.
        (r0, r1, rw0, rw1), (c0, c1, cw0, cw1) = rows, cols
        strip = rw0[:, None, None] * image[r0].astype(np.float32)
        strip += rw1[:, None, None] * image[r1].astype(np.float32)
        crop = cw0[None, :, None] * strip[:, c0] + cw1[None, :, None] * strip[:, c1]
        return (crop / 255.0).astype(np.float32)


def _bilinear_weights(
    coords: np.ndarray, length: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Neighbour indices and weights for sampling positions ``coords`` along an axis.

    Returns:
        ``(i0, i1, w0, w1)``, each ``(N,)``: a neighbour outside ``0..length-1`` gets weight 0
        (and a clipped index), which is zero padding.
    """
    base = np.floor(coords)
    frac = (coords - base).astype(np.float32)
    i0, i1 = base.astype(np.int64), base.astype(np.int64) + 1
    w0 = np.where((i0 >= 0) & (i0 < length), 1.0 - frac, 0.0).astype(np.float32)
    w1 = np.where((i1 >= 0) & (i1 < length), frac, 0.0).astype(np.float32)
    return np.clip(i0, 0, length - 1), np.clip(i1, 0, length - 1), w0, w1


def decode_heatmaps(heatmaps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Peak of each heatmap, refined by a quarter cell towards the larger neighbour.

    As in face-alignment, the refinement (on each axis, by the sign of the difference of the
    two neighbours) applies only to peaks off the border on both axes.

    Args:
        heatmaps: ``(N, H, W)`` float.

    Returns:
        ``(points, scores)``: ``(N, 2)`` float32 ``(x, y)`` in cell coordinates (cell centres
        at integers) and ``(N,)`` float32 peak values.
    """
    heatmaps = np.asarray(heatmaps, dtype=np.float32)
    n, height, width = heatmaps.shape
    flat = heatmaps.reshape(n, -1)
    peak = flat.argmax(axis=1)
    rows, cols = peak // width, peak % width
    scores = flat[np.arange(n), peak]
    points = np.stack([cols, rows], axis=1).astype(np.float32)
    inside = (cols > 0) & (cols < width - 1) & (rows > 0) & (rows < height - 1)
    for i in np.flatnonzero(inside):
        r, c, h = rows[i], cols[i], heatmaps[i]
        points[i, 0] += REFINE_STEP * np.sign(h[r, c + 1] - h[r, c - 1])
        points[i, 1] += REFINE_STEP * np.sign(h[r + 1, c] - h[r - 1, c])
    return points, scores.astype(np.float32)


def mirror_heatmaps(heatmaps: np.ndarray) -> np.ndarray:
    """Heatmaps of a mirrored crop -> heatmaps of the crop: flip x, swap left/right points.

    Args:
        heatmaps: ``(..., 68, H, W)``.

    Returns:
        The same shape.
    """
    return np.flip(np.take(heatmaps, MIRROR_ORDER, axis=-3), axis=-1)
