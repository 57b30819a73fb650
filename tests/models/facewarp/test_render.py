"""The warp, the motion and the mouth interior on the real example face (skimage astronaut)."""

from __future__ import annotations

import numpy as np
import pytest

from avtool.io.face import inter_ocular, register
from avtool.models.face import FaceDetector, detect_face
from avtool.models.facewarp import FaceMotion, WarpRenderer
from avtool.models.facewarp.mesh import N_FOREHEAD, FaceMesh
from avtool.models.facewarp.motion import blink_track, head_motion, rest_shape
from avtool.models.facewarp.mouth import draw_seam, mouth_area_ratio
from avtool.models.facewarp.visemes import Phone, viseme_track

skimage_data = pytest.importorskip("skimage.data")


@pytest.fixture(scope="module")
def astronaut():
    image = skimage_data.astronaut()
    face = detect_face(image, detector=FaceDetector())
    return image, face.landmarks


@pytest.fixture(scope="module")
def renderer(astronaut):
    return WarpRenderer(*astronaut)


def _params(n: int, open_: float = 0.0, close: float = 0.0) -> np.ndarray:
    return np.tile(np.float32([open_, 0.0, 0.0, close]), (n, 1))


def test_rest_motion_reproduces_the_photo(renderer, astronaut):
    image, landmarks = astronaut
    motion = renderer.motion(_params(1), 25.0, still=True)
    points = renderer.landmarks(motion)[0]
    # Rest closes the astronaut's smile, so compare everything but the lips and jaw.
    upper = np.r_[17:48]
    assert np.abs(points[upper] - landmarks[upper]).max() < 1e-3
    photo = FaceMotion(register(landmarks)[0][None], renderer.quaternion[None], 25.0)
    same = renderer.landmarks(photo)[0]
    assert np.abs(same - landmarks).max() < 1e-3
    frame = renderer.mesh.warp(same)
    assert np.abs(frame.astype(int) - image).mean() < 0.6  # only bilinear resampling noise


def test_open_mouth_moves_jaw_and_paints_a_dark_cavity(renderer, astronaut):
    image, landmarks = astronaut
    closed, opened = renderer.landmarks(
        renderer.motion(np.float32([[0, 0, 0, 0], [1, 0, 0, 0]]), 25.0, still=True)
    )
    iod = float(inter_ocular(landmarks))
    drop = opened[8, 1] - closed[8, 1]  # chin
    assert 0.15 * iod < drop < 0.35 * iod
    assert mouth_area_ratio(closed) < 0.01 < 0.05 < mouth_area_ratio(opened)
    frame = renderer.render(opened, 1.0)
    assert frame.shape == image.shape and frame.dtype == np.uint8
    inner = opened[60:68]
    cx, cy = inner.mean(axis=0).round().astype(int)
    lower_mid = int((opened[66, 1] + cy) // 2)
    # Below the teeth row, inside the inner lips: the dark cavity (or tongue), not skin.
    assert frame[lower_mid, cx].mean() < 0.6 * image[cy + 25, cx].mean()
    # Far from the face nothing moved: hair and background stay put.
    assert np.array_equal(frame[:20], image[:20])
    assert np.array_equal(frame[:, -60:], image[:, -60:])


def test_warp_has_no_seams(renderer):
    motion = renderer.motion(_params(1, 0.8), 25.0, still=True)
    points = renderer.landmarks(motion)[0]
    frame = renderer.render(points, 0.8).astype(np.float32)
    x0, y0, x1, y1 = renderer.mesh.box
    region = frame[y0:y1, x0:x1].mean(axis=2)
    photo = renderer.image[y0:y1, x0:x1].mean(axis=2).astype(np.float32)
    # A seam is a 1-pixel line much sharper than the photo's own texture.
    lap = np.abs(np.diff(region, 2, axis=0)).max()
    lap_photo = np.abs(np.diff(photo, 2, axis=0)).max()
    assert lap < 1.5 * lap_photo + 20


def test_mesh_triangles_do_not_bridge_the_lips(renderer):
    triangles = renderer.mesh.triangles
    upper = {48, 49, 50, 51, 52, 53, 54, 60, 61, 62, 63, 64}
    lower = {54, 55, 56, 57, 58, 59, 48, 60, 64, 65, 66, 67}
    for tri in triangles.tolist():
        has_upper_only = any(v in upper - lower for v in tri)
        has_lower_only = any(v in lower - upper for v in tri)
        if has_upper_only and has_lower_only:
            assert all(v in range(60, 68) for v in tri), tri  # only inside the inner mouth
    assert renderer.mesh.source.shape[0] > 68 + N_FOREHEAD


def test_head_motion_is_small_smooth_and_seeded():
    quats = head_motion(250, 25.0, seed=3)
    assert quats.shape == (250, 4)
    assert np.allclose(np.linalg.norm(quats, axis=1), 1.0)
    angles = 2 * np.degrees(np.arccos(np.clip(np.abs(quats[:, 0]), 0, 1)))
    assert angles.max() < 6.0 and angles.max() > 0.5
    step = 2 * np.degrees(np.arccos(np.clip(np.abs((quats[1:] * quats[:-1]).sum(1)), 0, 1)))
    assert step.max() < 0.5  # degrees per frame: smooth
    assert np.array_equal(quats, head_motion(250, 25.0, seed=3))
    assert not np.array_equal(quats, head_motion(250, 25.0, seed=4))


def test_blinks_are_brief_and_periodic():
    blinks = blink_track(25 * 30, 25.0, seed=0)
    closed = blinks > 0.9
    starts = np.flatnonzero(closed[1:] & ~closed[:-1])
    assert 4 <= len(starts) <= 16  # every 2-6 s over 30 s
    assert (blinks > 0.05).mean() < 0.15


def test_rest_shape_closes_an_open_photo_mouth(astronaut):
    _, landmarks = astronaut
    frontal = register(landmarks)[0]
    rest = rest_shape(frontal)
    assert (frontal[66, 1] - frontal[62, 1]) > 0.02  # the astronaut smiles with teeth
    assert abs(rest[66, 1] - rest[62, 1]) < 1e-6


def test_pixel_motion_drives_the_warp_directly(renderer, astronaut):
    _, landmarks = astronaut
    shifted = landmarks.copy()
    shifted[48:68, 1] += 3.0
    motion = FaceMotion(shifted[None], np.array([[1.0, 0, 0, 0]]), 25.0, units="pixels")
    assert np.allclose(renderer.landmarks(motion)[0], shifted)
    with pytest.raises(Exception, match="68, 2"):
        FaceMotion(np.zeros((2, 10, 2)), np.zeros((2, 4)), 25.0)


def test_mesh_on_a_face_at_the_image_border():
    image = skimage_data.astronaut()[60:260, 150:330]  # the face nearly fills the frame
    face = detect_face(image, detector=FaceDetector())
    mesh = FaceMesh.build(image, face.landmarks, face.landmarks)
    x0, y0, x1, y1 = mesh.box
    assert (x0, y0) >= (0, 0) and x1 <= image.shape[1] and y1 <= image.shape[0]
    out = mesh.warp(face.landmarks + np.array([0.0, 2.0]))
    assert out.shape == image.shape


def test_bilabial_between_open_vowels_closes_the_inner_mouth(renderer):
    # "a b a" with a 30 ms b: the inner-mouth area is near zero at the closure frame even on
    # the astronaut, whose photo smiles with parted lips.
    phones = [Phone("AA", 0.0, 0.3), Phone("B", 0.3, 0.33), Phone("AA", 0.33, 0.6)]
    params = viseme_track(phones, n_frames=15, fps=25.0)
    points = renderer.landmarks(renderer.motion(params, 25.0, still=True))
    areas = mouth_area_ratio(points)
    closure = round(0.315 * 25.0)
    assert areas[closure] < 0.002
    assert areas[3] > 0.05 and areas[12] > 0.05


def test_hold_keeps_the_photo_mouth_then_rests(renderer, astronaut):
    _, landmarks = astronaut
    hold = np.array([1.0, 0.5, 0.0])
    points = renderer.landmarks(renderer.motion(_params(3), 25.0, still=True, hold=hold))
    assert np.abs(points[0] - landmarks).max() < 1e-3  # frame 0 is the photo as given
    assert mouth_area_ratio(points[0]) > 0.02  # the astronaut's parted lips
    assert mouth_area_ratio(points[2]) < 1e-3  # closed rest
    assert mouth_area_ratio(points[2]) < mouth_area_ratio(points[1]) < mouth_area_ratio(points[0])


def test_closed_lips_get_a_dark_seam_not_the_collapsed_teeth(renderer):
    closed = renderer.landmarks(renderer.motion(_params(1, close=1.0), 25.0, still=True))[0]
    warped = renderer.mesh.warp(closed)
    frame = renderer.render(closed, 0.0)
    middle = 0.5 * (closed[[61, 62, 63]] + closed[[67, 66, 65]])
    xs, ys = middle[:, 0].round().astype(int), middle[:, 1].round().astype(int)
    before = warped[ys, xs].astype(float).mean()
    after = frame[ys, xs].astype(float).mean()
    assert after < before - 20  # the line where the lips meet is darker than the warp left it
    untouched = draw_seam(warped.copy(), closed[60:68], renderer.lips, renderer.iod)
    assert np.array_equal(untouched[:100], warped[:100])  # only the mouth region changes
