"""Real mouth interiors: an exemplar bank of teeth, tongue and darkness cut from real video.

A photo with closed lips has no pixels for the inside of the mouth. Instead of drawing teeth, the
renderer takes them from real frames: the bank holds mouth patches of GRID speaker s1 (training
split only, built by :mod:`avtool.training.mouth_bank`), each cut in a *canonical mouth frame*
(the outer lip corners 48 and 54 on a horizontal line, :data:`CANON_WIDTH` pixels apart, their
midpoint at :data:`CANON_CENTRE`) with its inner-lip landmarks 60-67 in that frame.

Per rendered frame (:func:`paint_mouth`): the target's inner lips are brought into the canonical
frame, the two exemplars whose inner lips are closest are picked and cross-faded (soft weights,
so the choice changes smoothly as the mouth opens), each is warped piecewise-affinely from its
own inner-lip contour onto the target's (a fan of triangles around the contour's centroid), its
colour is matched to the photo (per-channel gain from the skin around the mouth, exemplar vs
photo), the rim just inside the lips is shaded (:func:`shading`: the lips shadow the mouth's
edge), and it is blended into the frame through the inner-lip polygon, anti-aliased and
feathered by about a pixel so the lips' edge shows no seam.

The rim shadow is what lets a viewer, and a landmark tracker, see where the lips part: without
it, an s1 exemplar pasted into another person's lips (teeth right under the upper lip, a pink
interior) blends into them, and dlib re-detected on the rendered video saw about a third of the
driven opening on GRID s4 (mouth-area r 0.29 against 0.52 for the driven landmarks themselves,
four s4 clips); a thin dark rim restores most of it at a small cost in pixels (docs/
talkinghead-realism.md).

Example::

    bank = load("mouth-bank-grid-s1.npz")
    frame = paint_mouth(frame, landmarks, bank, photo_skin)   # (H, W, 3) uint8, in place
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter
from scipy.ndimage import distance_transform_edt

from avtool.errors import ModelError
from avtool.models.facewarp.mesh import _affine_maps, bilinear
from avtool.models.facewarp.mouth import pixel_box

PATCH_SIZE = (96, 80)
"""``(width, height)`` of a stored patch in canonical pixels."""
CANON_WIDTH = 56.0
"""Distance of the outer lip corners (48-54) in the canonical frame, pixels."""
CANON_CENTRE = (48.0, 30.0)
"""Where the corners' midpoint lies in the patch: room for a dropped jaw below."""
INNER = slice(60, 68)
SUPERSAMPLE = 4
SOFTNESS = 1.5
"""Canonical pixels (RMS inner-lip distance) over which the two nearest exemplars cross-fade."""
GAIN_RANGE = (0.55, 1.8)
GAIN_POWER = 0.7
"""Share of the skin-colour ratio applied to the interior: skin differs by person as well as by
light; teeth and mouth darkness follow the light, not the skin, so only part of it is used."""
RIM_DARKEN = 0.5
"""Darkening at the inner-lip edge (1 = black): the lips shade the rim of the mouth. Chosen on
GRID s1 validation clips (0.35-0.7 and three widths measured; docs/talkinghead-realism.md)."""
RIM_WIDTH = 0.12
"""Fall-off distance of the rim shadow, as a share of the opening's widest gap (at least half a
pixel): a thin rim gave the tracker the lips' edge at the least cost in pixels."""


@dataclass(frozen=True)
class MouthBank:
    """Mouth exemplars in the canonical mouth frame.

    Attributes:
        patches: ``(N, H, W, 3)`` uint8 RGB patches (``PATCH_SIZE``), zero outside the inner
            lips' neighbourhood.
        inner: ``(N, 8, 2)`` float32 inner-lip landmarks 60-67 in patch pixels.
        skin: ``(N, 3)`` float32 mean RGB of the skin around the exemplar's mouth.
        opening: ``(N,)`` float32 mean inner-lip gap (61/67, 62/66, 63/65), canonical pixels.
        source: ``(N,)`` clip id and frame of each exemplar (``"bbaf3s:12"``).
    """

    patches: np.ndarray
    inner: np.ndarray
    skin: np.ndarray
    opening: np.ndarray
    source: np.ndarray

    def __post_init__(self) -> None:
        n = len(self.patches)
        width, height = PATCH_SIZE
        if self.patches.shape != (n, height, width, 3) or self.patches.dtype != np.uint8:
            raise ModelError(f"mouth bank patches must be (N, {height}, {width}, 3) uint8")
        if n == 0:
            raise ModelError("the mouth bank is empty")
        for name, shape in (("inner", (n, 8, 2)), ("skin", (n, 3)), ("opening", (n,))):
            if getattr(self, name).shape != shape:
                raise ModelError(f"mouth bank {name} must be {shape}")

    def __len__(self) -> int:
        return len(self.patches)

    def save(self, path: Path) -> None:
        """Write the bank as a compressed ``.npz`` (to ``path`` as given: callers rename).

        The zip entries get a fixed timestamp (``np.savez_compressed`` stamps the current
        time), so the same bank gives the same bytes and sha256.
        """
        arrays = {
            "patches": self.patches,
            "inner": self.inner.astype(np.float32),
            "skin": self.skin.astype(np.float32),
            "opening": self.opening.astype(np.float32),
            "source": self.source.astype(str),
        }
        with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for name, array in arrays.items():
                info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
                info.compress_type = zipfile.ZIP_DEFLATED
                with archive.open(info, "w") as handle:
                    np.lib.format.write_array(handle, np.ascontiguousarray(array))


def load(path: str | Path) -> MouthBank:
    """Read a bank written by :meth:`MouthBank.save`.

    Raises:
        ModelError: missing, unreadable or malformed file (naming it).
    """
    try:
        with np.load(path, allow_pickle=False) as data:
            return MouthBank(
                patches=data["patches"],
                inner=data["inner"].astype(np.float32),
                skin=data["skin"].astype(np.float32),
                opening=data["opening"].astype(np.float32),
                source=data["source"],
            )
    except (OSError, KeyError, ValueError) as exc:
        raise ModelError(f"{path}: not a readable mouth bank ({exc})") from exc


def canonical_transform(landmarks: np.ndarray) -> np.ndarray:
    """The ``(2, 3)`` similarity taking image pixels into the canonical mouth frame.

    Args:
        landmarks: ``(68, 2)`` pixels.
    """
    left, right = np.asarray(landmarks[48], np.float64), np.asarray(landmarks[54], np.float64)
    axis = right - left
    length = max(float(np.hypot(*axis)), 1e-6)
    cos, sin = axis / length
    scale = CANON_WIDTH / length
    rotation = scale * np.array([[cos, sin], [-sin, cos]])
    mid = 0.5 * (left + right)
    offset = np.asarray(CANON_CENTRE) - rotation @ mid
    return np.concatenate([rotation, offset[:, None]], axis=1)


def apply(transform: np.ndarray, points: np.ndarray) -> np.ndarray:
    """``(..., 2)`` points through a ``(2, 3)`` affine map."""
    return points @ transform[:, :2].T + transform[:, 2]


def inner_opening(inner: np.ndarray) -> np.ndarray:
    """Mean vertical gap of the inner lips ``(..., 8, 2)`` (points 60-67) -> ``(...,)``."""
    upper, lower = inner[..., [1, 2, 3], 1], inner[..., [7, 6, 5], 1]
    return np.clip(lower - upper, 0.0, None).mean(axis=-1)


def choose(bank: MouthBank, inner: np.ndarray) -> list[tuple[int, float]]:
    """The two exemplars nearest to canonical inner lips ``(8, 2)``, with blend weights.

    The distance is the RMS over the 8 inner-lip points; the weights cross-fade over
    :data:`SOFTNESS`, so they change continuously with the target shape (no popping when the
    nearest exemplar changes).

    Returns:
        ``[(index, weight), ...]``, weights summing to 1, heaviest first.
    """
    distances = np.sqrt(((bank.inner - inner[None]) ** 2).sum(axis=2).mean(axis=1))
    order = np.argsort(distances, kind="stable")[:2]
    if len(order) == 1:
        return [(int(order[0]), 1.0)]
    first, second = distances[order]
    # Weight of the second nearest: 0.5 at equal distance, falling to 0 once it is SOFTNESS
    # farther than the nearest.
    w2 = 0.5 * max(0.0, 1.0 - (second - first) / SOFTNESS)
    return [(int(order[0]), 1.0 - w2), (int(order[1]), w2)]


def colour_gain(exemplar_skin: np.ndarray, photo_skin: np.ndarray) -> np.ndarray:
    """Per-channel ``(3,)`` gain bringing an exemplar's light to the photo's."""
    ratio = np.maximum(photo_skin, 1.0) / np.maximum(exemplar_skin, 1.0)
    return np.clip(ratio**GAIN_POWER, *GAIN_RANGE).astype(np.float32)


def _fan(inner: np.ndarray) -> np.ndarray:
    """``(9, 2)``: the 8 inner-lip points and their centroid (vertex 8)."""
    return np.vstack([inner, inner.mean(axis=0)])


_FAN_TRIANGLES = np.array([[i, (i + 1) % 8, 8] for i in range(8)])


def warp_exemplar(
    bank: MouthBank,
    index: int,
    target_inner: np.ndarray,
    box: tuple[int, int, int, int],
) -> np.ndarray:
    """Exemplar ``index`` warped onto the target's inner-lip contour, over a pixel box.

    Args:
        bank: the bank.
        index: exemplar.
        target_inner: ``(8, 2)`` target inner lips in frame pixels.
        box: ``(x0, y0, x1, y1)`` frame pixels to fill (exclusive ends).

    Returns:
        ``(y1 - y0, x1 - x0, 3)`` float32 RGB; pixels outside the contour extrapolate the
        nearest triangle's map (they are masked out by the caller).
    """
    x0, y0, x1, y1 = box
    target = _fan(np.asarray(target_inner, np.float64))
    source = _fan(bank.inner[index].astype(np.float64))
    maps = _affine_maps(target[_FAN_TRIANGLES], source[_FAN_TRIANGLES]).reshape(8, 6)
    # Each pixel takes the map of the fan triangle whose angular sector (around the centroid)
    # holds it, so pixels just outside the contour extend their triangle's map smoothly.
    labels = Image.new("L", (x1 - x0, y1 - y0), 0)
    draw = ImageDraw.Draw(labels)
    centre = target[8]
    far = 4.0 * max(x1 - x0, y1 - y0)
    for k, (a, b, _) in enumerate(_FAN_TRIANGLES):
        pa = centre + far * _unit(target[a] - centre)
        pb = centre + far * _unit(target[b] - centre)
        if _cross(pa - centre, pb - centre) == 0:
            continue  # two inner-lip points in line with the centroid: an empty sector
        draw.polygon([(x - x0, y - y0) for x, y in (centre, pa, pb)], fill=k, outline=k)
    label = np.asarray(labels).astype(np.intp)
    ys, xs = np.mgrid[y0:y1, x0:x1].astype(np.float32)
    coeff = maps[label]  # (h, w, 6)
    sx = coeff[..., 0] * xs + coeff[..., 1] * ys + coeff[..., 2]
    sy = coeff[..., 3] * xs + coeff[..., 4] * ys + coeff[..., 5]
    patch = bank.patches[index]
    flat = np.concatenate(
        [patch.reshape(-1, 3).astype(np.float32), np.zeros((patch.shape[1] + 1, 3), np.float32)]
    )
    sampled = bilinear(flat, patch.shape, sx.ravel(), sy.ravel())
    return sampled.reshape(y1 - y0, x1 - x0, 3).astype(np.float32)


def _unit(vector: np.ndarray) -> np.ndarray:
    norm = float(np.hypot(*vector))
    return vector / norm if norm > 1e-9 else np.array([0.0, 1.0])


def _cross(a: np.ndarray, b: np.ndarray) -> float:
    return float(a[0] * b[1] - a[1] * b[0])


def shading(mask: np.ndarray, inner: np.ndarray) -> np.ndarray:
    """Per-pixel brightness ``(h, w)`` float32 of the pasted interior: the rim shadow.

    ``1 - RIM_DARKEN * exp(-depth / width)``, with ``depth`` the distance (pixels) inside the
    inner-lip polygon and ``width`` :data:`RIM_WIDTH` times the opening's widest gap.

    Args:
        mask: ``(h, w)`` uint8 coverage of the inner-lip polygon over the box.
        inner: ``(8, 2)`` inner lips in frame pixels (60-67).
    """
    depth = distance_transform_edt(mask >= 128).astype(np.float32)
    width = max(0.5, RIM_WIDTH * float(np.max(inner[[7, 6, 5], 1] - inner[[1, 2, 3], 1])))
    return (1.0 - RIM_DARKEN * np.exp(-depth / width)).astype(np.float32)


def paint_mouth(
    frame: np.ndarray,
    landmarks: np.ndarray,
    bank: MouthBank,
    photo_skin: np.ndarray,
    *,
    feather: float = 0.75,
) -> np.ndarray:
    """Fill the inner-lip contour of ``frame`` with real mouth interiors, in place.

    Args:
        frame: ``(H, W, 3)`` uint8 warped frame.
        landmarks: ``(68, 2)`` its landmarks in pixels.
        bank: the exemplars.
        photo_skin: ``(3,)`` mean RGB of the photo's skin around the mouth
            (:func:`avtool.models.facewarp.mouth.skin_colour`).
        feather: blur radius of the blend mask in pixels.

    Returns:
        ``frame``.
    """
    inner = np.asarray(landmarks[INNER], np.float64)
    x0, y0, x1, y1 = pixel_box(inner, (frame.shape[1], frame.shape[0]), pad=3)
    if x1 - x0 < 2 or y1 - y0 < 2:
        return frame
    transform = canonical_transform(landmarks)
    picks = choose(bank, apply(transform, inner))
    colour = np.zeros((y1 - y0, x1 - x0, 3), np.float32)
    for index, weight in picks:
        if weight <= 0:
            continue
        gain = colour_gain(bank.skin[index], photo_skin)
        colour += weight * gain * warp_exemplar(bank, index, inner, (x0, y0, x1, y1))
    s = SUPERSAMPLE
    mask = Image.new("L", ((x1 - x0) * s, (y1 - y0) * s), 0)
    local = [((x - x0 + 0.5) * s - 0.5, (y - y0 + 0.5) * s - 0.5) for x, y in inner]
    ImageDraw.Draw(mask).polygon(local, fill=255)
    mask = mask.resize((x1 - x0, y1 - y0), Image.Resampling.BOX)
    colour *= shading(np.asarray(mask), inner)[:, :, None]
    if feather > 0:
        mask = mask.filter(ImageFilter.GaussianBlur(feather))
    alpha = np.asarray(mask, np.float32)[:, :, None] / 255.0
    region = frame[y0:y1, x0:x1].astype(np.float32)
    blended = region * (1 - alpha) + np.clip(colour, 0, 255) * alpha
    frame[y0:y1, x0:x1] = (blended + 0.5).astype(np.uint8)
    return frame
