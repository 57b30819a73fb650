"""mp3, m4a and opus outputs through the bundled ffmpeg: decodable, same bytes every time."""

from __future__ import annotations

import numpy as np
import pytest

from avtool.io.audio import load_audio, save_audio


@pytest.mark.parametrize("suffix", [".mp3", ".m4a", ".opus"])
def test_compressed_output_round_trips_and_is_deterministic(tmp_path, suffix):
    audio = (0.3 * np.sin(2 * np.pi * 440 * np.arange(22050) / 22050)).astype(np.float32)
    first, second = tmp_path / f"a{suffix}", tmp_path / f"b{suffix}"
    save_audio(first, audio, 22050)
    save_audio(second, audio, 22050)
    assert first.read_bytes() == second.read_bytes()
    decoded, _ = load_audio(first, sample_rate=22050)
    assert abs(decoded.size - audio.size) < 0.1 * audio.size
    assert np.abs(decoded).max() > 0.2
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_block_writer_encodes_mp3_and_leaves_no_temporary_file(tmp_path):
    from avtool.io.audio import AudioWriter

    out = tmp_path / "long.mp3"
    with AudioWriter(out, 16000) as writer:
        for _ in range(4):
            writer.write((0.2 * np.sin(np.arange(4000) / 3)).astype(np.float32))
    assert writer.frames_written == 16000
    decoded, rate = load_audio(out, sample_rate=16000)
    assert rate == 16000 and abs(decoded.size - 16000) < 1600
    assert [p.name for p in tmp_path.iterdir()] == ["long.mp3"]


def test_tts_writes_mp3_byte_identically(tmp_path, use_voice_cache):
    from typer.testing import CliRunner

    from avtool.cli.main import app

    runner = CliRunner()
    for name in ("a.mp3", "b.mp3"):
        result = runner.invoke(app, ["tts", "Hello there.", "-o", str(tmp_path / name)])
        assert result.exit_code == 0, result.output
    assert (tmp_path / "a.mp3").read_bytes() == (tmp_path / "b.mp3").read_bytes()
