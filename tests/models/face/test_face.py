"""The face stage: images, detection, pose, registration, tracking, gaps, mouth crops."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from avtool.errors import InputError, ModelError
from avtool.io import face as F
from avtool.io.video import VideoReader, VideoWriter
from avtool.models import face as MF


def _template_projection(yaw: float, pitch: float, roll: float, scale=50.0, shift=(200, 150)):
    rotation = F.quaternion_to_rotation(F.quaternion_from_euler(yaw, pitch, roll))
    points = F.frontal_template() @ rotation.T
    return (scale * points[:, :2] + np.array(shift)).astype(np.float32)


# ---------------------------------------------------------------------------- images


def test_to_rgb_uint8_handles_gray_alpha_16bit_and_float():
    gray = np.full((4, 5), 100, np.uint8)
    assert F.to_rgb_uint8(gray).shape == (4, 5, 3)
    rgba = np.zeros((4, 5, 4), np.uint8)  # fully transparent black: white after compositing
    assert (F.to_rgb_uint8(rgba) == 255).all()
    deep = np.full((4, 5, 3), 65535, np.uint16)
    assert (F.to_rgb_uint8(deep) == 255).all()
    assert (F.to_rgb_uint8(np.full((4, 5, 3), 0.5, np.float32)) == 128).all()
    with pytest.raises(InputError, match="expected an image"):
        F.to_rgb_uint8(np.zeros((4, 5, 7)))


@pytest.mark.parametrize("mode", ["L", "RGBA", "P", "I;16", "LA", "CMYK"])
def test_load_image_modes_keep_the_face(tmp_path, astronaut, face_detector, mode):
    from PIL import Image

    image = Image.fromarray(astronaut)
    if mode == "I;16":
        image = Image.fromarray(np.asarray(image.convert("L"), np.uint16) * 257)
    else:
        image = image.convert(mode)
    path = tmp_path / ("face.tiff" if mode == "CMYK" else "face.png")
    image.save(path)
    loaded = F.load_image(path)
    assert loaded.shape == (512, 512, 3) and loaded.dtype == np.uint8
    assert len(face_detector.detect(loaded)) == 1


def test_load_image_errors_name_the_file(tmp_path):
    with pytest.raises(InputError, match="no such image"):
        F.load_image(tmp_path / "missing.png")
    bad = tmp_path / "bad.jpg"
    bad.write_text("not an image")
    with pytest.raises(InputError, match=r"bad\.jpg: cannot read"):
        F.load_image(bad)
    from PIL import Image

    Image.new("RGB", (10, 10)).save(tmp_path / "tiny.png")
    with pytest.raises(InputError, match=r"tiny\.png: 10x10 is too small"):
        F.load_image(tmp_path / "tiny.png")


def test_huge_images_are_detected_on_a_downscaled_copy(astronaut, face_detector):
    big = np.kron(astronaut, np.ones((4, 4, 1), np.uint8))  # 2048x2048
    small_box = face_detector.detect(astronaut)[0]
    big_box = face_detector.detect(big)[0]
    tolerance = 0.15 * 4 * small_box.w  # boxes at different pyramid levels differ a little
    assert abs(big_box.x - 4 * small_box.x) < tolerance
    assert abs(big_box.w - 4 * small_box.w) < tolerance


def test_small_faces_get_an_upsampled_pass(astronaut, face_detector):
    small = F.resize_image(astronaut, (160, 160))  # face about 30 px wide
    assert len(face_detector.detect(small)) == 1


# ---------------------------------------------------------------------------- detection


def test_detect_face_on_a_real_photo(astronaut, face_detector):
    face = MF.detect_face(astronaut, detector=face_detector)
    assert face.n_faces == 1
    inside = (face.landmarks[:, 0] >= face.box.x - 10) & (
        face.landmarks[:, 0] <= face.box.x + face.box.w + 10
    )
    assert inside.all()
    assert abs(face.pose.yaw) < 15 and abs(face.pose.pitch) < 20 and abs(face.pose.roll) < 10
    # the eyes are level-ish and above the mouth
    assert face.landmarks[F.MOUTH, 1].mean() > face.landmarks[F.RIGHT_EYE, 1].mean() + 20


def test_several_faces_largest_first_and_face_index(astronaut, face_detector):
    canvas = np.full((512, 800, 3), 255, np.uint8)
    canvas[:, :512] = astronaut
    canvas[100:356, 530:786] = F.resize_image(astronaut, (256, 256))
    boxes = face_detector.detect(canvas)
    assert len(boxes) == 2 and boxes[0].area > boxes[1].area and boxes[0].x < 512
    second = MF.detect_face(canvas, face_index=1, detector=face_detector)
    assert second.box.x > 512 and second.n_faces == 2
    with pytest.raises(InputError, match="--face-index 2 asked for, but 2 face"):
        MF.detect_face(canvas, face_index=2, detector=face_detector, source="two.png")


def test_no_face_and_bad_boxes(astronaut, face_detector):
    with pytest.raises(InputError, match=r"wall\.png: no face found"):
        MF.detect_face(
            np.full((200, 200, 3), 128, np.uint8), detector=face_detector, source="wall.png"
        )
    box = face_detector.detect(astronaut)[0]
    face = MF.detect_face(astronaut, box=box, detector=face_detector)
    assert face.box == box
    with pytest.raises(InputError, match="lies outside"):
        MF.detect_face(astronaut, box=F.Box(400, 400, 300, 300), detector=face_detector)
    assert F.Box.parse("1,2,30,40") == F.Box(1, 2, 30, 40)
    for text in ("1,2,3", "a,b,c,d", "0,0,0,10"):
        with pytest.raises(InputError, match="--box"):
            F.Box.parse(text)


def test_landmark_model_needs_the_licence():
    with pytest.raises(ModelError, match="--accept-license"):
        MF.load_detector(accept_license=False)
    detector = MF.load_detector(accept_license=True)
    assert detector.predictor_path.name.endswith("68_face_landmarks.dat")


# ---------------------------------------------------------------------------- pose


def test_quaternions_round_trip():
    for angles in [(0, 0, 0), (30, -10, 5), (-60, 20, -15), (10, 45, 90)]:
        q = F.quaternion_from_euler(*angles)
        assert math.isclose(np.linalg.norm(q), 1.0, rel_tol=1e-9)
        rotation = F.quaternion_to_rotation(q)
        assert np.allclose(rotation @ rotation.T, np.eye(3), atol=1e-9)
        assert np.allclose(F.rotation_to_quaternion(rotation), q if q[0] >= 0 else -q, atol=1e-9)
    identity = np.array([1.0, 0, 0, 0])
    q = F.quaternion_from_euler(20, 0, 0)
    assert np.allclose(F.quaternion_multiply(identity, q), q)


@pytest.mark.parametrize("angles", [(0, 0, 0), (25, 0, 0), (-30, 10, 5), (10, -15, -20)])
def test_estimate_pose_recovers_known_rotations(angles):
    points = _template_projection(*angles)
    pose = F.estimate_pose(points)
    assert np.allclose((pose.yaw, pose.pitch, pose.roll), angles, atol=1.0)
    assert math.isclose(pose.scale, 50.0, rel_tol=0.01)


def test_profile_faces_are_refused(monkeypatch, astronaut, face_detector):
    profile = _template_projection(70, 0, 0)
    monkeypatch.setattr(face_detector, "landmarks", lambda image, box: profile)
    with pytest.raises(InputError, match=r"side\.png: the face is turned 70 degrees"):
        MF.detect_face(astronaut, detector=face_detector, source="side.png")


def test_procrustes_and_register_remove_pose():
    rng = np.random.default_rng(0)
    src = rng.normal(size=(68, 2))
    angle = 0.3
    rotation = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    dst = 2.5 * src @ rotation.T + np.array([10.0, -4.0])
    scale, r, t = F.procrustes(src, dst)
    assert math.isclose(scale, 2.5, rel_tol=1e-9) and np.allclose(r, rotation)
    assert np.allclose(t, [10.0, -4.0])

    track = np.stack([_template_projection(y, 0, r) for y, r in [(0, 0), (20, 5), (-15, -10)]])
    frontal, quats = F.register(track)
    assert frontal.shape == (3, 68, 2) and quats.shape == (3, 4)
    assert np.abs(frontal - F.frontal_template()[:, :2]).max() < 0.02
    assert np.allclose(quats[1], F.quaternion_from_euler(20, 0, 5), atol=0.01)


# ---------------------------------------------------------------------------- tracks


def test_gap_filling_and_reporting():
    landmarks = np.zeros((10, 68, 2), np.float32)
    landmarks[:, :, 0] = np.arange(10)[:, None]
    detected = np.ones(10, bool)
    detected[[3, 4]] = False
    landmarks[[3, 4]] = 0
    filled = F.fill_gaps(landmarks, detected, max_gap=2)
    assert np.allclose(filled[:, 0, 0], np.arange(10))
    assert F.gap_ranges(detected) == [(3, 4)]
    with pytest.raises(InputError, match=r"clip\.mp4: the face is lost .* at frames 3-4"):
        F.fill_gaps(landmarks, detected, max_gap=1, source="clip.mp4")
    with pytest.raises(InputError, match="no face found in any of its 10 frames"):
        F.fill_gaps(landmarks, np.zeros(10, bool), max_gap=2)


def test_smoothing_reduces_jitter_but_keeps_length():
    rng = np.random.default_rng(1)
    clean = np.sin(np.linspace(0, 6, 100))[:, None, None] * np.ones((1, 68, 2))
    noisy = (clean + rng.normal(0, 0.2, clean.shape)).astype(np.float32)
    smooth = F.smooth_landmarks(noisy, 7)
    assert smooth.shape == noisy.shape
    assert np.abs(smooth - clean).mean() < 0.7 * np.abs(noisy - clean).mean()
    assert np.array_equal(F.smooth_landmarks(noisy[:3], 7), noisy[:3])


def test_mouth_area_is_the_inner_lip_polygon():
    landmarks = np.zeros((68, 2))
    square = [(0, 0), (1, 0), (2, 0), (2, 1), (2, 2), (1, 2), (0, 2), (0, 1)]
    landmarks[F.INNER_LIPS] = square
    assert math.isclose(F.mouth_area(landmarks), 4.0)


@pytest.fixture(scope="module")
def real_clip(grid_dir: Path) -> Path:
    return grid_dir / "bbaf2n.mpg"


def test_track_video_on_real_grid_clip(real_clip, face_detector):
    track = MF.track_video(real_clip, detector=face_detector)
    assert track.landmarks.shape == (75, 68, 2) and track.detected.all()
    assert track.fps == 25.0 and track.size == (360, 288)
    # following the face between detections stays within a few pixels of detecting every frame
    with VideoReader(real_clip, fps=25) as reader:
        every, _ = MF.track_frames(reader, detector=face_detector, redetect_every=1)
    raw = MF.track_video(real_clip, detector=face_detector, smooth_window=0).landmarks
    assert np.abs(raw - every).mean() < 1.0
    # the speaker talks: the inner-mouth area varies a lot over the clip
    area = F.mouth_area(track.landmarks)
    assert area.max() > 3 * max(area.min(), 1.0)


def test_track_round_trips_through_npz(real_clip, face_detector, tmp_path):
    track = MF.track_video(real_clip, detector=face_detector)
    track.save(tmp_path / "t.npz")
    again = F.FaceTrack.load(tmp_path / "t.npz")
    assert np.array_equal(again.landmarks, track.landmarks) and again.fps == track.fps


def _write_video(path: Path, frames: list[np.ndarray], fps: float = 25.0) -> Path:
    height, width = frames[0].shape[:2]
    with VideoWriter(path, fps, (width, height), preset="ultrafast") as writer:
        for frame in frames:
            writer.write(frame)
    return path


def test_track_video_reports_lost_faces_with_frames(real_clip, face_detector, tmp_path):
    with VideoReader(real_clip) as reader:
        frames = list(reader)[:40]
    blank = np.full_like(frames[0], 90)
    gap = frames[:10] + [blank] * 20 + frames[30:]
    with pytest.raises(InputError, match=r"lost\.mp4: the face is lost .* at frames 10-29"):
        MF.track_video(_write_video(tmp_path / "lost.mp4", gap), detector=face_detector)
    short = frames[:10] + [blank] * 3 + frames[13:]
    track = MF.track_video(_write_video(tmp_path / "short.mp4", short), detector=face_detector)
    assert not track.detected[10:13].any() and track.detected[:10].all()
    assert np.abs(track.landmarks[11] - track.landmarks[9]).mean() < 5
    with pytest.raises(InputError, match=r"wall\.mp4: no face found \(first failing frame: 0"):
        MF.track_video(_write_video(tmp_path / "wall.mp4", [blank] * 5), detector=face_detector)


def test_track_video_resamples_other_frame_rates(real_clip, face_detector, tmp_path):
    with VideoReader(real_clip) as reader:
        frames = list(reader)[:25]
    path = _write_video(tmp_path / "fast.mp4", frames, fps=50.0)  # 0.5 s at 50 fps
    track = MF.track_video(path, detector=face_detector)
    assert track.fps == 25.0 and abs(track.n_frames - 13) <= 1


@pytest.mark.parametrize("preset,shape", [("lipnet", (50, 100, 3)), ("gray88", (88, 88))])
def test_mouth_crops_are_centred_and_sized(real_clip, face_detector, preset, shape):
    track = MF.track_video(real_clip, detector=face_detector)
    crop = F.MouthCrop.preset(preset)
    with VideoReader(real_clip) as reader:
        crops = np.stack(list(F.mouth_crops(reader, track.landmarks, crop)))
    assert crops.shape == (75, *shape) and crops.dtype == np.uint8
    # the lip landmarks map near the crop centre
    maps = F.mouth_transforms(track.landmarks, crop)
    inverse = np.linalg.inv(np.vstack([maps[0], [0, 0, 1]]))
    centre = track.landmarks[0, F.MOUTH].mean(axis=0)
    u, v, _ = inverse @ np.array([centre[0], centre[1], 1.0])
    assert abs(u - (crop.width - 1) / 2) < crop.width * 0.08
    assert abs(v - (crop.height - 1) / 2) < crop.height * 0.12
    # crops move when the mouth moves: frame-to-frame change is not zero
    assert np.abs(np.diff(crops.astype(np.float32), axis=0)).mean() > 1.0
    with pytest.raises(InputError, match="unknown mouth crop"):
        F.MouthCrop.preset("huge")


def test_detection_on_a_crop_view_is_deterministic(real_clip, face_detector):
    with VideoReader(real_clip) as reader:
        frame = next(iter(reader))
    view = frame[20:280, 40:300]  # a strided view, as the tracker passes
    results = {tuple(face_detector.detect(view, exhaustive=False)) for _ in range(5)}
    assert len(results) == 1 and len(next(iter(results))) == 1
    assert face_detector.detect(np.ascontiguousarray(view)) == list(next(iter(results)))


def test_track_video_is_deterministic(real_clip, face_detector):
    first = MF.track_video(real_clip, detector=face_detector)
    second = MF.track_video(real_clip, detector=face_detector)
    assert np.array_equal(first.landmarks, second.landmarks)
