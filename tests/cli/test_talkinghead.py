"""``avtool talkinghead`` on the command line: outputs, exit codes, licence gate."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from avtool.cli.main import app
from avtool.io.audio import load_audio, save_audio

skimage_data = pytest.importorskip("skimage.data")
runner = CliRunner()


@pytest.fixture
def files(grid_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("AVTOOL_ACCEPT_LICENSE", "1")
    face = tmp_path / "me.png"
    Image.fromarray(skimage_data.astronaut()).save(face)
    audio, rate = load_audio(grid_dir / "lbax4n.mpg", sample_rate=16000, start=0.5, duration=1.0)
    speech = tmp_path / "speech.wav"
    save_audio(speech, audio, rate)
    return face, speech, tmp_path


def test_renders_video_preview_and_sidecar(files):
    face, speech, folder = files
    out = folder / "me.mp4"
    args = [
        "talkinghead",
        "--face",
        str(face),
        "--audio",
        str(speech),
        "-o",
        str(out),
        "--size",
        "192x192",
        "--preview",
        str(folder / "me.png"),
        "--still",
    ]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert out.stat().st_size > 0 and (folder / "me.png").is_file()
    meta = json.loads((folder / "me.mp4.json").read_text())
    assert meta["options"]["still"] is True and meta["video"]["width"] == 192
    again = runner.invoke(app, args)
    assert again.exit_code == 2 and "--overwrite" in again.output


def test_no_face_exits_2_naming_the_file(files):
    _, speech, folder = files
    wall = folder / "wall.png"
    Image.fromarray(np.full((120, 120, 3), 90, np.uint8)).save(wall)
    result = runner.invoke(
        app,
        ["talkinghead", "--face", str(wall), "--audio", str(speech), "-o", str(folder / "x.mp4")],
    )
    assert result.exit_code == 2
    assert "wall.png" in result.output and "no face" in result.output


def test_zero_length_audio_and_bad_options_exit_2(files):
    face, _, folder = files
    empty = folder / "empty.wav"
    save_audio(empty, np.zeros(0, np.float32), 16000)
    result = runner.invoke(
        app,
        ["talkinghead", "--face", str(face), "--audio", str(empty), "-o", str(folder / "x.mp4")],
    )
    assert result.exit_code == 2 and "empty.wav" in result.output
    odd = runner.invoke(
        app,
        [
            "talkinghead",
            "--face",
            str(face),
            "--audio",
            str(empty),
            "-o",
            str(folder / "x.mp4"),
            "--size",
            "101x100",
        ],
    )
    assert odd.exit_code == 2 and "even" in odd.output


def test_licence_gate_exit_3(files, monkeypatch):
    face, speech, folder = files
    monkeypatch.delenv("AVTOOL_ACCEPT_LICENSE")
    result = runner.invoke(
        app,
        ["talkinghead", "--face", str(face), "--audio", str(speech), "-o", str(folder / "x.mp4")],
    )
    assert result.exit_code == 3 and "accept-license" in result.output
