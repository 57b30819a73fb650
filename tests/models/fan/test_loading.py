"""2D-FAN through the registry and the face stage: load_detector(landmarks="fan"), the CLI."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from avtool.errors import InputError, ModelError
from avtool.models.face import FAN_LANDMARK_MODEL, load_detector
from avtool.models.fan import FaceCrop, FanConfig, FanLandmarker, build, load

runner = CliRunner()


@pytest.fixture(scope="module")
def published_layout_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Random (seeded) weights saved as the published file is: a bare FAN(4) state dict."""
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("fan") / "2DFAN4-random.pth.tar"
    torch.save(build(FanConfig()).state_dict(), path)
    return path


def registry_table(name: str, weights: Path, config: str = "") -> str:
    """A face/fan entry for a local file, as a user's extra registry would list it."""
    data = weights.read_bytes()
    table = (
        f"[models.{name}]\n"
        'task = "face"\nfamily = "fan"\n'
        'license = "BSD-3-Clause code; weights trained on 300W-LP"\ncommercial = false\n'
        f'source = "{weights}"\n'
        f'sha256 = "{hashlib.sha256(data).hexdigest()}"\nsize = {len(data)}\n'
    )
    return table + (f"[models.{name}.config]\n{config}\n" if config else "")


def use_registry(monkeypatch: pytest.MonkeyPatch, path: Path, text: str) -> None:
    path.write_text(text, encoding="utf-8")
    monkeypatch.setenv("AVTOOL_REGISTRY", str(path))


def test_published_layout_loads_through_the_registry_as_the_face_stage(
    published_layout_checkpoint: Path, tmp_path: Path, monkeypatch, astronaut
) -> None:
    # A later registry file overrides fan-2d-68 by name with the local file: load_detector
    # then runs the exact production path (resolve, sha256, weights_only load, FAN in the box).
    table = registry_table(FAN_LANDMARK_MODEL, published_layout_checkpoint)
    use_registry(monkeypatch, tmp_path / "fan.toml", table)
    with pytest.raises(ModelError, match="--accept-license"):
        load_detector(landmarks="fan")
    detector = load_detector(accept_license=True, landmarks="fan")
    assert detector.landmark_model == FAN_LANDMARK_MODEL
    assert detector.landmark_path == published_layout_checkpoint
    assert isinstance(detector.landmarker, FanLandmarker)
    assert detector.landmarker.network.config == FanConfig()

    box = detector.detect(astronaut)[0]  # detection stays dlib's
    points = detector.landmarks(astronaut, box)
    assert points.shape == (68, 2) and points.dtype == np.float32
    assert np.isfinite(points).all()
    # Random weights put the peaks anywhere in the square the network sees (about twice the
    # box): every point lies in it, and the result is reproducible.
    crop = FaceCrop.from_box(box.x, box.y, box.w, box.h)
    assert np.all(points >= [crop.left, crop.top])
    assert np.all(points <= [crop.left + crop.side, crop.top + crop.side])
    np.testing.assert_array_equal(detector.landmarks(astronaut, box), points)


def test_registry_config_and_mismatch_name_the_file(tmp_path: Path, monkeypatch) -> None:
    torch.manual_seed(0)
    weights = tmp_path / "tiny.pth.tar"
    torch.save(build(FanConfig.debug()).state_dict(), weights)
    tables = registry_table("fan-tiny", weights, "num_modules = 1\nfeatures = 16\n")
    tables += registry_table("fan-wrong", weights)  # the published config: does not fit
    use_registry(monkeypatch, tmp_path / "fan.toml", tables)
    landmarker = load("fan-tiny", accept_license=True)
    assert landmarker.network.config == FanConfig.debug()
    assert landmarker.describe()["sha256"] == hashlib.sha256(weights.read_bytes()).hexdigest()
    with pytest.raises(ModelError) as err:
        load("fan-wrong", accept_license=True)
    assert str(weights) in str(err.value) and "not a 2D-FAN state dict" in str(err.value)
    with pytest.raises(ModelError, match="not 'face'"):
        load("piper-joe-medium")
    with pytest.raises(InputError, match="--landmarks 'sfd'"):
        load_detector(accept_license=True, landmarks="sfd")


def test_offline_without_the_weights_fails_naming_the_model(monkeypatch, isolated_cache) -> None:
    monkeypatch.setenv("AVTOOL_OFFLINE", "1")
    with pytest.raises(ModelError) as err:
        load_detector(accept_license=True, landmarks="fan")
    message = str(err.value)
    assert "fan-2d-68" in message and "AVTOOL_OFFLINE" in message
    assert "11f355bf0693120222f5955ce3f9dc8fb5763ebb30a47d7906e509490d32e4aa" in message
    assert str(isolated_cache / "fan-2d-68" / "2DFAN4-11f355bf06.pth.tar") in message
    assert "size not published" in message


@pytest.fixture
def inputs(tmp_path: Path, astronaut) -> tuple[Path, Path]:
    from PIL import Image

    from avtool.io.audio import save_audio

    face, speech = tmp_path / "me.png", tmp_path / "speech.wav"
    Image.fromarray(astronaut).save(face)
    save_audio(speech, np.zeros(16000, np.float32), 16000)
    return face, speech


@pytest.mark.parametrize("command", ["talkinghead", "tts"])
def test_cli_landmarks_fan_offline_exits_3_before_any_work(
    command: str, inputs: tuple[Path, Path], tmp_path: Path, monkeypatch
) -> None:
    from avtool.cli.main import app

    monkeypatch.setenv("AVTOOL_OFFLINE", "1")
    face, speech = inputs
    out = tmp_path / "out.mp4"
    if command == "talkinghead":
        args = ["talkinghead", "--face", str(face), "--audio", str(speech), "-o", str(out)]
    else:
        args = ["tts", "Hello there.", "--face", str(face), "-o", str(out)]
    result = runner.invoke(app, ["--accept-license", *args, "--landmarks", "fan"])
    assert result.exit_code == 3, result.output
    assert "fan-2d-68" in result.output and "avtool models pull fan-2d-68" in result.output
    assert not out.exists()

    bad = runner.invoke(app, ["--accept-license", *args, "--landmarks", "sfd"])
    assert bad.exit_code == 2 and "--landmarks 'sfd'" in bad.output
