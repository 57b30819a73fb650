"""The mouth-interior exemplar bank: storage, selection, warping into the lips, the builder."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from avtool.errors import ModelError
from avtool.models.facewarp import mouth_bank
from avtool.models.facewarp.mouth_bank import (
    CANON_CENTRE,
    CANON_WIDTH,
    PATCH_SIZE,
    MouthBank,
    apply,
    canonical_transform,
    choose,
    colour_gain,
    paint_mouth,
)
from avtool.training.mouth_bank import cut_patch, mask_patch, select


def _face(opening: float = 12.0, scale: float = 1.0, shift=(100.0, 120.0)) -> np.ndarray:
    """68 landmarks with only the lips placed meaningfully (outer 48-59, inner 60-67)."""
    points = np.zeros((68, 2))
    points[:48] = [0.0, -40.0]  # far above the mouth; unused by the bank
    outer = np.array(
        [[-28, 0], [-18, -7], [-7, -9], [0, -8], [7, -9], [18, -7], [28, 0],
         [18, 9 + opening], [7, 12 + opening], [0, 12 + opening], [-7, 12 + opening],
         [-18, 9 + opening]], dtype=np.float64,
    )  # fmt: skip
    inner = np.array(
        [[-20, 0], [-8, -2], [0, -2], [8, -2], [20, 0], [8, opening], [0, opening],
         [-8, opening]], dtype=np.float64,
    )  # fmt: skip
    points[48:60], points[60:68] = outer, inner
    return points * scale + np.asarray(shift)


def _bank(openings=(0.0, 6.0, 12.0, 18.0), value: int = 30) -> MouthBank:
    width, height = PATCH_SIZE
    patches, inners = [], []
    for k, opening in enumerate(openings):
        face = _face(opening / (CANON_WIDTH / 56.0))
        transform = canonical_transform(face)
        inners.append(apply(transform, face[60:68]))
        patch = np.full((height, width, 3), value + 10 * k, np.uint8)
        patches.append(patch)
    n = len(openings)
    return MouthBank(
        patches=np.stack(patches),
        inner=np.stack(inners).astype(np.float32),
        skin=np.full((n, 3), 150.0, np.float32),
        opening=np.asarray(openings, np.float32),
        source=np.array([f"clip:{i}" for i in range(n)]),
    )


def test_canonical_frame_puts_the_corners_in_place():
    face = _face(scale=2.3, shift=(321.0, 77.0))
    # rotate the face by 10 degrees: the frame undoes it
    angle = np.deg2rad(10)
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    face = face @ rot.T
    corners = apply(canonical_transform(face), face[[48, 54]])
    cx, cy = CANON_CENTRE
    np.testing.assert_allclose(corners, [[cx - 28, cy], [cx + 28, cy]], atol=1e-9)


def test_save_load_round_trip_is_byte_identical(tmp_path):
    bank = _bank()
    a, b = tmp_path / "a.npz", tmp_path / "b.npz"
    bank.save(a)
    bank.save(b)
    assert hashlib.sha256(a.read_bytes()).digest() == hashlib.sha256(b.read_bytes()).digest()
    loaded = mouth_bank.load(a)
    np.testing.assert_array_equal(loaded.patches, bank.patches)
    np.testing.assert_allclose(loaded.inner, bank.inner)
    assert list(loaded.source) == list(bank.source)


def test_bad_file_is_a_model_error(tmp_path):
    path = tmp_path / "bad.npz"
    path.write_bytes(b"not a zip")
    with pytest.raises(ModelError, match=r"bad\.npz"):
        mouth_bank.load(path)


def test_choose_prefers_the_nearest_opening_and_cross_fades():
    bank = _bank()
    picks = choose(bank, bank.inner[2])
    assert picks[0][0] == 2 and picks[0][1] >= 0.99
    halfway = 0.5 * (bank.inner[1] + bank.inner[2])
    picks = dict(choose(bank, halfway))
    assert set(picks) == {1, 2}
    assert picks[1] == pytest.approx(0.5, abs=1e-6) and sum(picks.values()) == pytest.approx(1)


def test_colour_gain_follows_the_light_partly_and_is_bounded():
    gain = colour_gain(np.array([100.0, 100.0, 100.0]), np.array([150.0, 100.0, 10.0]))
    assert 1.0 < gain[0] < 1.5 and gain[1] == pytest.approx(1.0) and gain[2] == 0.55


def test_paint_fills_only_inside_the_inner_lips():
    bank = _bank(value=20)
    frame = np.full((240, 200, 3), 200, np.uint8)
    face = _face(opening=12.0)
    out = paint_mouth(frame.copy(), face, bank, np.full(3, 150.0, np.float32))
    inside = out[120 + 4 : 120 + 9, 100 - 4 : 100 + 4]
    assert inside.mean() < 60  # the (dark) exemplar interior
    assert (out[:100] == 200).all() and (out[140:] == 200).all()  # lips' outside untouched
    # The same call gives the same bytes.
    again = paint_mouth(frame.copy(), face, bank, np.full(3, 150.0, np.float32))
    np.testing.assert_array_equal(out, again)


def test_cut_patch_maps_the_inner_lips_into_the_canonical_frame():
    frame = np.random.default_rng(0).integers(0, 255, (240, 200, 3), dtype=np.uint8)
    face = _face(opening=10.0, scale=1.5)
    patch, inner = cut_patch(frame, face)
    assert patch.shape == (PATCH_SIZE[1], PATCH_SIZE[0], 3) and patch.dtype == np.uint8
    np.testing.assert_allclose(inner, apply(canonical_transform(face), face[60:68]), atol=1e-4)
    # The patch's centre samples the frame at the mouth centre.
    cx, cy = (int(v) for v in CANON_CENTRE)
    mid = 0.5 * (face[48] + face[54])
    assert np.abs(patch[cy, cx].astype(int) - frame[round(mid[1]), round(mid[0])]).max() < 90
    masked = mask_patch(patch, inner)
    assert (masked[0, 0] == 0).all() and (masked[cy, cx] == patch[cy, cx]).all()


def test_select_keeps_one_frame_per_opening_cell():
    rng = np.random.default_rng(1)
    base = _bank().inner[0]
    inner = np.stack([base + rng.normal(0, 0.1, base.shape) for _ in range(200)])
    openings = rng.uniform(0, 10, 200)
    inner[:, 5:, 1] += openings[:, None]  # lower inner lip drops
    chosen = select(inner.astype(np.float32), rng.uniform(0, 1, 200))
    assert len(chosen) == len(set(chosen)) > 10
    assert all(0 <= i < 200 for i in chosen)


def test_rim_shadow_darkens_the_interior_at_the_lips_not_the_centre(monkeypatch):
    from avtool.models.facewarp.mouth_bank import RIM_DARKEN, shading

    assert RIM_DARKEN > 0  # the shipped renderer shades the rim
    bank = _bank(value=150)
    frame = np.full((240, 200, 3), 200, np.uint8)
    face = _face(opening=14.0)  # inner lips from y = 118 (upper) to y = 134 (lower)
    skin = np.full(3, 150.0, np.float32)
    shaded = paint_mouth(frame.copy(), face, bank, skin).astype(int)
    monkeypatch.setattr(mouth_bank, "RIM_DARKEN", 0.0)
    plain = paint_mouth(frame.copy(), face, bank, skin).astype(int)
    assert shaded[133, 100].mean() < plain[133, 100].mean() - 10  # a pixel inside the lower lip
    assert abs(shaded[127, 100].mean() - plain[127, 100].mean()) <= 3  # the middle: unchanged
    assert (shaded <= plain).all()
    # shading itself: 1 - RIM_DARKEN at the edge, near 1 deep inside, never negative
    mask = np.zeros((20, 40), np.uint8)
    mask[2:18, 2:38] = 255
    inner = np.array([[2, 10], [12, 2], [20, 2], [28, 2], [38, 10], [28, 18], [20, 18],
                      [12, 18]], np.float64)  # fmt: skip
    monkeypatch.setattr(mouth_bank, "RIM_DARKEN", RIM_DARKEN)
    shade = shading(mask, inner)
    assert shade.min() >= 1 - RIM_DARKEN - 1e-6 and shade[10, 20] > shade[3, 20]
    assert shade[10, 20] == pytest.approx(1.0, abs=0.01)


def test_paint_survives_inner_lips_in_line_with_their_centroid():
    # GRID s1 test clip bwbt8p drove inner lips where two neighbours lie on one ray from the
    # centroid (an empty fan sector): the render crashed in PIL instead of painting.
    bank = _bank(value=60)
    frame = np.full((240, 200, 3), 200, np.uint8)
    face = _face(opening=12.0)
    for _ in range(50):  # 61 halfway along the ray from the (moving) centroid to 62
        centre = face[60:68].mean(axis=0)
        face[61] = centre + 0.5 * (face[62] - centre)
    centre = face[60:68].mean(axis=0)
    assert mouth_bank._cross(face[61] - centre, face[62] - centre) == 0
    out = paint_mouth(frame.copy(), face, bank, np.full(3, 150.0, np.float32))
    assert out.dtype == np.uint8 and (out[:100] == 200).all()
