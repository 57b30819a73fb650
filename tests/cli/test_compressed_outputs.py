"""Issue 18 point 5: mp3/ogg/m4a output wherever audio is written (through the bundled ffmpeg),
through the CLI: vocode, music --audio and v2a (tts: tests/io/test_audio_encode.py)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf
from typer.testing import CliRunner

from avtool.cli.main import app
from avtool.io.audio import load_audio

runner = CliRunner()


def _decodes(path, seconds: float, rate: int = 22050) -> None:
    audio, _ = load_audio(path, sample_rate=rate)
    assert abs(audio.size / rate - seconds) < 0.15 and np.abs(audio).max() > 0.01
    assert json.loads(path.with_name(path.name + ".json").read_text())["output"] == str(path)


@pytest.mark.parametrize("suffix", [".mp3", ".ogg", ".m4a"])
def test_vocode_writes_compressed_audio(tmp_path, suffix):
    tone = tmp_path / "tone.wav"
    sf.write(tone, (0.3 * np.sin(np.arange(22050) / 5)).astype(np.float32), 22050)
    out = tmp_path / f"out{suffix}"
    result = runner.invoke(app, ["vocode", str(tone), "-o", str(out), "--model", "griffin-lim",
                                 "--iters", "2"])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert f"wrote {out} (1.0 s, griffin-lim)" in result.stderr
    _decodes(out, 1.0)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary left


def test_music_audio_as_ogg(tmp_path):
    out, audio = tmp_path / "m.mid", tmp_path / "m.ogg"
    result = runner.invoke(app, ["music", "--bars", "2", "-o", str(out), "--audio", str(audio)])
    assert result.exit_code == 0, result.output
    decoded, rate = load_audio(audio)
    assert decoded.size / rate > 1.0 and out.stat().st_size > 0


def test_v2a_writes_mp3(tmp_path, monkeypatch):
    from avtool.io.video import VideoWriter
    from tests.tasks.test_v2a import save_debug_model

    data = pytest.importorskip("skimage.data")
    monkeypatch.setenv("AVTOOL_ACCEPT_LICENSE", "1")
    still = np.ascontiguousarray(data.astronaut()[30:222, 120:312])
    clip = tmp_path / "clip.mp4"
    with VideoWriter(clip, 25.0, (192, 192), preset="ultrafast") as writer:
        for i in range(25):
            writer.write(np.roll(still, i % 3, axis=1))
    out = tmp_path / "speech.mp3"
    result = runner.invoke(app, ["--quiet", "v2a", str(clip), "-o", str(out), "--model",
                                 str(save_debug_model(tmp_path)), "--vocoder", "griffin-lim",
                                 "--iters", "1"])  # fmt: skip
    assert result.exit_code == 0, result.output
    _decodes(out, 1.0)
