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
