"""The mouth interior: a dark cavity, upper and lower teeth and a tongue inside the inner lips.

A photo with closed lips has no pixels for the inside of the mouth, so when the warped lips part
the gap is painted: the cavity takes a dark tint of the photo's own lip colour, the upper teeth
hang from the upper inner lip (a row whose height grows with the opening, darker towards the
corners), the lower teeth show only on wide openings, and a tongue rises from the bottom.
Everything is drawn at 4x resolution on the mouth's bounding box and downsampled (anti-aliased
edges), then blended through a mask feathered by one pixel, so no seam shows at the lips.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from avtool.io.face import INNER_LIPS, OUTER_LIPS, inter_ocular, mouth_area

SUPERSAMPLE = 4
MIN_GAP_PIXELS = 0.6
"""Inner-lip openings thinner than this (pixels) are not painted."""
TEETH = np.array([226, 222, 208], dtype=np.float32)


def pixel_box(points: np.ndarray, size: tuple[int, int], pad: int = 0) -> tuple[int, ...]:
    """The whole-pixel box around ``points`` ``(n, 2)``, widened by ``pad`` pixels and clipped
    to an image of ``size`` ``(W, H)``: ``(x0, y0, x1, y1)`` with ``x1, y1`` exclusive."""
    x0, y0 = np.floor(points.min(axis=0)).astype(int) - pad
    x1, y1 = np.ceil(points.max(axis=0)).astype(int) + pad + 1
    width, height = size
    return max(0, x0), max(0, y0), min(width, x1), min(height, y1)


def ring_pixels(
    image: np.ndarray, outer: np.ndarray, inner: np.ndarray, min_side: int = 1
) -> np.ndarray:
    """RGB pixels ``(n, 3)`` of ``image`` inside polygon ``outer`` and outside ``inner``
    (both ``(k, 2)`` pixels); none when the box around ``outer`` is under ``min_side``."""
    x0, y0, x1, y1 = pixel_box(outer, (image.shape[1], image.shape[0]))
    if x1 - x0 < min_side or y1 - y0 < min_side:
        return np.zeros((0, 3), image.dtype)
    mask = Image.new("L", (x1 - x0, y1 - y0), 0)
    draw = ImageDraw.Draw(mask)
    draw.polygon([tuple(p) for p in outer - (x0, y0)], fill=255)
    draw.polygon([tuple(p) for p in inner - (x0, y0)], fill=0)
    return image[y0:y1, x0:x1][np.asarray(mask) > 0]


def lip_colour(image: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """Mean RGB ``(3,)`` float32 of the lips (between the outer and inner contours) in a photo."""
    region = ring_pixels(image, landmarks[OUTER_LIPS], landmarks[INNER_LIPS])
    if region.size == 0:
        return np.array([150, 80, 80], np.float32)
    return region.reshape(-1, 3).mean(axis=0).astype(np.float32)


def draw_mouth(
    frame: np.ndarray,
    landmarks: np.ndarray,
    openness: float,
    lips: np.ndarray,
    iod: float,
) -> np.ndarray:
    """Paint the mouth interior into ``frame`` in place.

    Args:
        frame: ``(H, W, 3)`` uint8 warped frame.
        landmarks: ``(68, 2)`` its landmarks in pixels.
        openness: jaw opening in ``[0, 1]`` (how much of the teeth and tongue to show).
        lips: ``(3,)`` lip colour of the photo (:func:`lip_colour`).
        iod: inter-ocular distance in pixels (scales the teeth).

    Returns:
        ``frame``.
    """
    inner = np.asarray(landmarks[INNER_LIPS], dtype=np.float64)
    upper = inner[[0, 1, 2, 3, 4]]  # 60 61 62 63 64: left corner, upper lip, right corner
    lower = inner[[4, 5, 6, 7, 0]]  # 64 65 66 67 60
    gap = inner_gap(inner)
    if gap < MIN_GAP_PIXELS:
        return draw_seam(frame, inner, lips, iod)
    x0, y0, x1, y1 = pixel_box(inner, (frame.shape[1], frame.shape[0]), pad=2)
    if x1 - x0 < 2 or y1 - y0 < 2:
        return frame
    s = SUPERSAMPLE
    box_w, box_h = (x1 - x0) * s, (y1 - y0) * s

    def local(points: np.ndarray) -> list[tuple[float, float]]:
        return [((x - x0 + 0.5) * s - 0.5, (y - y0 + 0.5) * s - 0.5) for x, y in points]

    cavity = np.clip(0.22 * lips + np.array([18, 4, 6]), 0, 255)
    canvas = Image.new("RGB", (box_w, box_h), tuple(int(c) for c in cavity))
    draw = ImageDraw.Draw(canvas)
    mouth_width = float(np.linalg.norm(inner[4] - inner[0]))
    # Tongue: a lighter, redder ellipse low in the cavity, on wider openings.
    if openness > 0.25:
        tongue = np.clip(0.55 * lips + np.array([30, 0, 5]), 0, 255)
        cx = float(inner[[0, 4], 0].mean())
        bottom = float(lower[2, 1])
        half_w, half_h = 0.32 * mouth_width, 0.45 * gap
        draw.ellipse(
            local(np.array([[cx - half_w, bottom - half_h], [cx + half_w, bottom + half_h]])),
            fill=tuple(int(c) for c in tongue),
        )
    # Upper teeth: the upper inner contour shifted down, cut by the cavity mask below.
    teeth_h = min(0.45 * gap, 0.09 * iod) * (0.5 + 0.5 * min(1.0, openness * 1.5))
    if teeth_h > 0.3:
        row = np.concatenate([upper, upper[::-1] + np.array([0.0, teeth_h])])
        draw.polygon(local(row), fill=tuple(int(c) for c in TEETH))
    if openness > 0.45 and gap > 0.06 * iod:
        low_h = min(0.25 * gap, 0.05 * iod)
        row = np.concatenate([lower[1:4], lower[3:0:-1] - np.array([0.0, low_h])])
        draw.polygon(local(row), fill=tuple(int(c * 0.9) for c in TEETH))
    # Shade towards the corners (the teeth and cavity recede): a horizontal falloff.
    colour = np.asarray(canvas.resize((x1 - x0, y1 - y0), Image.Resampling.BOX), np.float32)
    xs = np.arange(x0, x1) + 0.5
    centre = float(inner[[0, 4], 0].mean())
    falloff = 1.0 - 0.45 * np.clip(np.abs(xs - centre) / max(mouth_width / 2, 1.0), 0, 1) ** 2
    colour *= falloff[None, :, None]
    mask = Image.new("L", (box_w, box_h), 0)
    ImageDraw.Draw(mask).polygon(local(inner), fill=255)
    mask = mask.resize((x1 - x0, y1 - y0), Image.Resampling.BOX).filter(ImageFilter.BoxBlur(0.5))
    alpha = np.asarray(mask, np.float32)[:, :, None] / 255.0
    region = frame[y0:y1, x0:x1].astype(np.float32)
    frame[y0:y1, x0:x1] = (region * (1 - alpha) + colour * alpha + 0.5).astype(np.uint8)
    return frame


def inner_gap(inner: np.ndarray) -> float:
    """Widest vertical gap (pixels) between the inner lips ``(8, 2)`` (points 60-67)."""
    return float(np.max(inner[[7, 6, 5], 1] - inner[[1, 2, 3], 1]))


def draw_seam(frame: np.ndarray, inner: np.ndarray, lips: np.ndarray, iod: float) -> np.ndarray:
    """Paint the line where closed lips meet, in place.

    When the warp closes a photo's parted lips, the collapsed gap still samples the photo's
    teeth along its edges and leaves a bright line between the lips: it reads as an open mouth
    (to a viewer and to a landmark detector). Closed lips show a dark crease instead, so a thin
    line in a dark tint of the lip colour is drawn along the midline of the inner contour.

    Args:
        frame: ``(H, W, 3)`` uint8 warped frame.
        inner: ``(8, 2)`` inner-lip landmarks 60-67 in pixels.
        lips: ``(3,)`` lip colour.
        iod: inter-ocular distance in pixels (sets the line's thickness).

    Returns:
        ``frame``.
    """
    # Midline: corners, then the mean of each upper/lower pair (61/67, 62/66, 63/65).
    middle = 0.5 * (inner[[1, 2, 3]] + inner[[7, 6, 5]])
    line = np.vstack([inner[0], middle, inner[4]])
    x0, y0, x1, y1 = pixel_box(line, (frame.shape[1], frame.shape[0]), pad=3)
    if x1 - x0 < 2 or y1 - y0 < 2:
        return frame
    s = SUPERSAMPLE
    mask = Image.new("L", ((x1 - x0) * s, (y1 - y0) * s), 0)
    points = [((x - x0 + 0.5) * s - 0.5, (y - y0 + 0.5) * s - 0.5) for x, y in line]
    thickness = max(1.0, 0.025 * iod)
    ImageDraw.Draw(mask).line(points, fill=255, width=max(1, round(thickness * s)), joint="curve")
    mask = mask.resize((x1 - x0, y1 - y0), Image.Resampling.BOX)
    alpha = 0.85 * np.asarray(mask, np.float32)[:, :, None] / 255.0
    crease = np.clip(0.4 * lips, 0, 255)
    region = frame[y0:y1, x0:x1].astype(np.float32)
    frame[y0:y1, x0:x1] = (region * (1 - alpha) + crease * alpha + 0.5).astype(np.uint8)
    return frame


def mouth_area_ratio(landmarks: np.ndarray) -> np.ndarray:
    """Inner-mouth area over the squared inter-ocular distance, ``(...,)`` (scale-free).

    About 0 for closed lips and 0.1-0.15 for a wide-open vowel.
    """
    iod = np.maximum(inter_ocular(landmarks), 1e-6)
    return mouth_area(landmarks) / iod**2


def skin_colour(image: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """Median RGB ``(3,)`` float32 of the skin around the mouth (a ring outside the lips).

    The ring lies between the outer-lip contour scaled 1.15x and 1.7x about its centre (the
    upper lip's skin, the chin's top and the cheeks beside the corners): it shows the light on
    the lower face, which the mouth-interior exemplars are matched to. The median ignores a
    moustache or a shadow in part of the ring.
    """
    outer = np.asarray(landmarks[OUTER_LIPS], np.float64)
    centre = outer.mean(axis=0)
    big = centre + 1.7 * (outer - centre)
    small = centre + 1.15 * (outer - centre)
    region = ring_pixels(image, big, small, min_side=2)
    if len(region) < 4:
        return np.array([180, 140, 120], np.float32)
    return np.median(region.reshape(-1, 3), axis=0).astype(np.float32)
