"""Piecewise-affine warp of a photo over its 68 landmarks, with static anchors around the face.

The mesh has the 68 landmarks, five forehead points (which follow the head), and a ring of
static anchors on an ellipse well outside the face plus the ring's bounding box: everything
outside the ring is copied from the photo unchanged, so hair and background stay put and the
motion is absorbed smoothly between the face and the ring.

The triangulation is computed once, on the photo's landmarks with the mouth and eyes opened
(so no triangle bridges the lips or the eyelids), and reused for every frame. Per frame the
target mesh is rasterised into a triangle-label image with PIL (C speed), each label's affine map
from output pixel to photo pixel is solved in one batched ``solve``, and the photo is sampled
bilinearly in one vectorised gather over the ring's bounding box. Shared triangle edges get
identical maps from both sides, so there are no seams.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw
from scipy.spatial import Delaunay

from avtool.io.face import N_LANDMARKS, inter_ocular

N_FOREHEAD = 5
N_RING = 24
RING_SCALE = 1.55
"""Ring radii as multiples of the face's half-extent (landmarks plus forehead)."""


def forehead_points(landmarks: np.ndarray) -> np.ndarray:
    """Five forehead points above the brows, ``(..., 5, 2)`` from ``(..., 68, 2)``.

    They lie 0.55 brow-to-nose-tip distances above brow points 17, 19, 24, 26 and the brow
    midpoint, so they rotate and move with the head but not with the jaw.
    """
    up = landmarks[..., 27, :] - landmarks[..., 33, :]  # nose tip -> nose bridge
    brows = landmarks[..., [17, 19, 21, 24, 26], :].copy()
    brows[..., 2, :] = 0.5 * (landmarks[..., 21, :] + landmarks[..., 22, :])
    return brows + 0.75 * up[..., None, :]


def ring_points(landmarks: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Static anchors: ``N_RING`` points on an ellipse around the face, clipped to the image.

    Args:
        landmarks: ``(68, 2)`` photo landmarks in output pixels.
        size: ``(width, height)`` of the output.

    Returns:
        ``(N_RING, 2)`` float64.
    """
    points = np.concatenate([landmarks, forehead_points(landmarks)])
    centre = 0.5 * (points.min(axis=0) + points.max(axis=0))
    half = 0.5 * (points.max(axis=0) - points.min(axis=0))
    radii = RING_SCALE * half + 0.15 * inter_ocular(landmarks)
    angles = np.linspace(0, 2 * np.pi, N_RING, endpoint=False)
    ring = centre + radii * np.column_stack([np.cos(angles), np.sin(angles)])
    width, height = size
    return np.column_stack([ring[:, 0].clip(0, width - 1), ring[:, 1].clip(0, height - 1)])


@dataclass
class FaceMesh:
    """A triangulated face with static anchors, ready to warp the photo it was built on.

    Attributes:
        image: ``(H, W, 3)`` uint8 photo in output pixels.
        source: ``(N, 2)`` mesh points on the photo: 68 landmarks, forehead, ring.
        triangles: ``(M, 3)`` vertex indices.
        box: ``(x0, y0, x1, y1)`` pixel bounds of the warped region (exclusive ends).
    """

    image: np.ndarray
    source: np.ndarray
    triangles: np.ndarray
    box: tuple[int, int, int, int]

    @classmethod
    def build(cls, image: np.ndarray, landmarks: np.ndarray, layout: np.ndarray) -> FaceMesh:
        """Triangulate the face.

        Args:
            image: ``(H, W, 3)`` uint8 photo.
            landmarks: ``(68, 2)`` its landmarks in pixels.
            layout: ``(68, 2)`` the same face with the mouth and eyes open, used only to pick
                the triangulation (Delaunay), so triangles follow the lips and eyelids.
        """
        height, width = image.shape[:2]
        ring = ring_points(landmarks, (width, height))
        source = np.concatenate([landmarks, forehead_points(landmarks), ring]).astype(np.float64)
        arranged = np.concatenate([layout, forehead_points(layout), ring])
        triangles = Delaunay(arranged).simplices.astype(np.int64)
        # A thin triangle may be flipped on an unusual face (a wide smile folds the sliver
        # between a mouth corner and the jaw). At rest its map is the identity, so the overlap
        # is invisible; moving, it affects that sliver only. Delaunay on the photo's own points
        # would be worse: it bridges parted lips.
        # Triangles between static points only map to themselves: skip them.
        moving = (triangles < N_LANDMARKS + N_FOREHEAD).any(axis=1)
        areas = _areas(source[triangles])
        triangles = triangles[moving & (np.abs(areas) > 1e-6)]
        x0, y0 = np.floor(ring.min(axis=0)).astype(int)
        x1, y1 = np.ceil(ring.max(axis=0)).astype(int) + 1
        box = (max(0, x0), max(0, y0), min(width, x1), min(height, y1))
        return cls(np.ascontiguousarray(image), source, triangles, box)

    def targets(self, landmarks: np.ndarray) -> np.ndarray:
        """``(N, 2)`` mesh points for target landmarks ``(68, 2)`` (the ring stays put)."""
        ring = self.source[N_LANDMARKS + N_FOREHEAD :]
        return np.concatenate([landmarks, forehead_points(landmarks), ring])

    def warp(self, landmarks: np.ndarray) -> np.ndarray:
        """The photo warped so its landmarks move to ``landmarks``.

        Args:
            landmarks: ``(68, 2)`` target landmarks in output pixels.

        Returns:
            ``(H, W, 3)`` uint8 frame (a new array).
        """
        x0, y0, x1, y1 = self.box
        frame = self.image.copy()
        if x1 - x0 < 2 or y1 - y0 < 2:
            return frame
        target = self.targets(np.asarray(landmarks, dtype=np.float64))
        tri_t = target[self.triangles]  # (M, 3, 2)
        # Rasterise triangle ids (1-based; 0 = outside every moving triangle) over the box;
        # 8-bit labels convert to numpy several times faster than 32-bit ones.
        count = len(self.triangles)
        labels = Image.new("L" if count < 255 else "I", (x1 - x0, y1 - y0), 0)
        draw = ImageDraw.Draw(labels)
        areas = np.abs(_areas(tri_t))
        corners = (tri_t - np.array([x0, y0], dtype=np.float64)).tolist()
        for index in np.argsort(-areas).tolist():  # small triangles last: they win at edges
            if areas[index] >= 1e-3:
                draw.polygon([tuple(c) for c in corners[index]], fill=index + 1, outline=index + 1)
        label = np.asarray(labels)
        ys, xs = np.nonzero(label)
        if ys.size == 0:
            return frame
        maps = np.zeros((count + 1, 6), dtype=np.float32)
        maps[0] = [1, 0, 0, 0, 1, 0]  # label 0: identity
        maps[1:] = _affine_maps(tri_t, self.source[self.triangles]).reshape(count, 6)
        chosen = label[ys, xs]
        px = (xs + x0).astype(np.float32)
        py = (ys + y0).astype(np.float32)
        coeff = maps.T[:, chosen]  # (6, P)
        sx = coeff[0] * px + coeff[1] * py + coeff[2]
        sy = coeff[3] * px + coeff[4] * py + coeff[5]
        frame[ys + y0, xs + x0] = bilinear(self._flat, self.image.shape, sx, sy)
        return frame

    @functools.cached_property
    def _flat(self) -> np.ndarray:
        """The photo as ``(H * W + W + 1, C)`` float32 rows, padded for the +1 neighbours."""
        _, width, channels = self.image.shape
        flat = self.image.reshape(-1, channels).astype(np.float32)
        return np.concatenate([flat, np.zeros((width + 1, channels), np.float32)])


def _areas(triangles: np.ndarray) -> np.ndarray:
    """Signed areas of ``(M, 3, 2)`` triangles."""
    a, b, c = triangles[:, 0], triangles[:, 1], triangles[:, 2]
    return 0.5 * (
        (b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (c[:, 0] - a[:, 0]) * (b[:, 1] - a[:, 1])
    )


def _affine_maps(target: np.ndarray, source: np.ndarray) -> np.ndarray:
    """``(M, 2, 3)`` affine maps taking each target triangle onto its source triangle."""
    ones = np.ones((len(target), 3, 1))
    a = np.concatenate([target, ones], axis=2)  # (M, 3, 3): rows (x, y, 1)
    det = np.linalg.det(a)
    safe = np.abs(det) > 1e-9
    maps = np.zeros((len(target), 2, 3))
    maps[:, 0, 0] = maps[:, 1, 1] = 1.0
    if safe.any():
        # a @ m.T = source  ->  m.T = solve(a, source)
        solved = np.linalg.solve(a[safe], source[safe])  # (k, 3, 2)
        maps[safe] = np.transpose(solved, (0, 2, 1))
    return maps


def bilinear(flat: np.ndarray, shape: tuple[int, ...], x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Sample an image at float pixel positions (clamped to the image), bilinearly.

    Args:
        flat: the ``(H, W, C)`` image as ``(H * W + W + 1, C)`` float32 rows (zero padded).
        shape: ``(H, W, C)``.
        x, y: ``(P,)`` positions in pixels.

    Returns:
        ``(P, C)`` uint8.
    """
    height, width = shape[:2]
    x = np.clip(x, 0.0, width - 1.001)
    y = np.clip(y, 0.0, height - 1.001)
    xi = x.astype(np.int32)
    yi = y.astype(np.int32)
    fx = (x - xi)[:, None]
    fy = (y - yi)[:, None]
    base = yi * width + xi
    a, b = flat[base], flat[base + 1]
    c, d = flat[base + width], flat[base + width + 1]
    top = a + fx * (b - a)
    bottom = c + fx * (d - c)
    return (top + fy * (bottom - top) + 0.5).astype(np.uint8)
