"""Talking-head realism: the real-mouth bank, face framing, --device, pixel measures, montage."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from avtool.errors import InputError, SetupError
from avtool.io.audio import load_audio, save_audio
from avtool.models.face import FaceDetector
from avtool.tasks.eval import talkinghead as evt
from avtool.tasks.options.talkinghead import TalkingHeadOptions
from avtool.tasks.talkinghead import (
    face_crop_box,
    load_mouth_bank,
    model_device,
    plan_render,
    render_file,
    render_frames,
)

skimage_data = pytest.importorskip("skimage.data")
runner = CliRunner()


@pytest.fixture(scope="module")
def detector():
    return FaceDetector()


@pytest.fixture(scope="module")
def photo(tmp_path_factory):
    path = tmp_path_factory.mktemp("face") / "astronaut.png"
    Image.fromarray(skimage_data.astronaut()).save(path)
    return path


@pytest.fixture(scope="module")
def speech(grid_dir, tmp_path_factory):
    audio, rate = load_audio(grid_dir / "lbax4n.mpg", sample_rate=22050, start=0.5, duration=1.2)
    path = tmp_path_factory.mktemp("speech") / "speech.wav"
    save_audio(path, audio, rate)
    return path


def test_registered_bank_is_real_s1_training_data():
    from avtool.datasets.grid import s1_split

    loaded = load_mouth_bank("bank")
    bank = loaded.module
    assert len(bank) >= 50 and loaded.sha256 and "GRID" in loaded.license
    assert bank.opening.min() < 1.0 and bank.opening.max() > 12.0  # closed to wide open
    clips = {source.split(":")[0] for source in bank.source}
    assert clips <= set(s1_split()["train"])  # training split only
    assert load_mouth_bank("drawn") is None


def test_bank_mouth_is_darker_inside_than_the_lips_and_recorded(photo, speech, detector, tmp_path):
    plan = plan_render(photo, speech, TalkingHeadOptions(still=True), detector=detector)
    assert plan.renderer.bank is not None and plan.mouth is not None
    drawn = plan_render(
        photo, speech, TalkingHeadOptions(still=True, mouth="drawn"), detector=detector
    )
    index = int(np.argmax(plan.landmarks[:, 66, 1] - plan.landmarks[:, 62, 1]))
    frame = next(render_frames(plan, index, index + 1))
    other = next(render_frames(drawn, index, index + 1))
    points = plan.landmarks[index]
    cx, cy = np.round(points[[62, 66]].mean(axis=0)).astype(int)
    assert not np.array_equal(frame, other)
    # Inside the parted lips: darker than the photo's lips (a real cavity, teeth or tongue).
    assert frame[cy - 1 : cy + 2, cx - 3 : cx + 4].mean() < plan.renderer.lips.mean() + 25
    out = render_file(photo, speech, tmp_path / "a.mp4", TalkingHeadOptions(size=(256, 256)),
                      detector=detector)  # fmt: skip
    mouth = json.loads((tmp_path / "a.mp4.json").read_text())["model"]["mouth"]
    assert mouth["name"] == "mouth-bank-grid-s1" and len(mouth["sha256"]) == 64
    assert out.n_frames == 30


def test_face_crop_frames_head_and_shoulders(photo, speech, detector):
    full = plan_render(photo, speech, TalkingHeadOptions(still=True), detector=detector)
    face = plan_render(photo, speech, TalkingHeadOptions(still=True, crop="face"),
                       detector=detector)  # fmt: skip
    assert face.size == full.size == (512, 512)  # the size follows the photo
    width = np.ptp(face.renderer.photo_landmarks[:, 0])
    assert width > 1.6 * np.ptp(full.renderer.photo_landmarks[:, 0])  # the face is larger
    centre = face.renderer.photo_landmarks.mean(axis=0)
    assert 0.3 * 512 < centre[0] < 0.7 * 512 and 0.3 * 512 < centre[1] < 0.65 * 512
    # The box stays inside the photo and keeps the output's aspect.
    x0, y0, x1, y1 = face_crop_box(face.face.landmarks, (512, 512), 16 / 9)
    assert 0 <= x0 < x1 <= 512 and 0 <= y0 < y1 <= 512
    assert (x1 - x0) / (y1 - y0) == pytest.approx(16 / 9, rel=0.02)
    with pytest.raises(InputError, match="--crop"):
        TalkingHeadOptions(crop="zoom").validated()


def test_device_cuda_is_refused_for_the_warp_not_ignored(photo, speech, tmp_path, monkeypatch):
    from avtool.cli.main import app

    with pytest.raises(SetupError, match="CPU only"):
        model_device("warp", "cuda")
    assert model_device("warp", "auto") == "cpu"
    monkeypatch.setenv("AVTOOL_ACCEPT_LICENSE", "1")
    out = tmp_path / "x.mp4"
    result = runner.invoke(app, ["--device", "cuda", "talkinghead", "--face", str(photo),
                                 "-a", str(speech), "-o", str(out)])  # fmt: skip
    assert result.exit_code == 4 and not out.exists()


def test_mouth_pixel_scores_and_ssim():
    rng = np.random.default_rng(0)
    real = [rng.integers(0, 255, (60, 80, 3), dtype=np.uint8) for _ in range(4)]
    points = np.zeros((4, 68, 2))
    points[:, 48:68] = np.array([40.0, 30.0]) + rng.uniform(-8, 8, (4, 20, 2))
    same = evt.mouth_image_scores(real, real, points, np.ones(4, bool))
    assert same["mouth_l1"] == 0 and same["mouth_ssim"] == pytest.approx(1.0)
    assert same["n_frames"] == 3  # frame 0 is the photo itself
    noisy = [np.clip(f.astype(int) + 40, 0, 255).astype(np.uint8) for f in real]
    worse = evt.mouth_image_scores(noisy, real, points, np.array([1, 1, 0, 1], bool))
    assert worse["mouth_l1"] > 10 and worse["mouth_ssim"] < 0.99 and worse["n_frames"] == 2


def test_montage_png_and_unseen_clips(tmp_path, grid_dir):
    frame = np.full((60, 80, 3), 90, np.uint8)
    points = np.zeros((68, 2))
    points[48:68] = np.array([40.0, 30.0]) + np.random.default_rng(1).uniform(-6, 6, (20, 2))
    items = [("a", frame, points, {"renderer": frame, "static": frame})] * 2
    path = evt.write_montage(tmp_path / "m.png", items)
    image = Image.open(path)
    assert image.size[0] == 3 * 64 * 3 and image.size[1] > 2 * 40 * 3
    clips = sorted(Path(grid_dir).glob("*.mpg"))
    unseen = evt.unseen_clips(clips)
    assert "bbaf2n" in {c.stem for c in clips} and "bbaf2n" not in {c.stem for c in unseen}
    assert len(unseen) == len(clips) - 1


def test_unet_refuses_another_person_unless_forced(photo, speech, detector, tmp_path):
    from avtool.tasks.talkinghead import load_model

    model = load_model("anyonenet-unet", accept_license=True)
    options = TalkingHeadOptions(model="anyonenet-unet", still=True)
    with pytest.raises(InputError, match="--force"):
        plan_render(photo, speech, options, detector=detector, model=model, accept_license=True)
    forced = TalkingHeadOptions(model="anyonenet-unet", still=True, force=True)
    plan = plan_render(photo, speech, forced, detector=detector, model=model,
                       accept_license=True)  # fmt: skip
    assert plan.speaker_check["same_speaker"] is False
    assert any("--force" in w for w in plan.warnings)
    # The predictor only drives the warp on the photo itself: a warning, not a refusal.
    predictor = load_model("anyonenet", accept_license=True)
    plan = plan_render(photo, speech, TalkingHeadOptions(model="anyonenet", still=True),
                       detector=detector, model=predictor, accept_license=True)  # fmt: skip
    assert plan.speaker_check["same_speaker"] is False
