"""Speech on stdin: a streamed WAV (unknown sizes) is read with its real length."""

from __future__ import annotations

import io
import struct
import sys

import numpy as np

from avtool.io.audio import load_audio, stdin_to_file, wav_bytes


def test_streamed_wav_from_stdin_gets_its_real_length(monkeypatch):
    audio = (0.3 * np.sin(np.arange(8000) / 5)).astype(np.float32)
    data = bytearray(wav_bytes(audio, 16000))
    struct.pack_into("<I", data, 4, 0xFFFFFFFF)  # as a pipe writer leaves them
    struct.pack_into("<I", data, 40, 0xFFFFFFFF)
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(bytes(data))))
    with stdin_to_file("-") as path:
        read, rate = load_audio(path)
        folder = path.parent
    assert rate == 16000 and read.shape[-1] == 8000
    assert not folder.exists()  # the temporary copy is gone


def test_a_real_path_passes_through(tmp_path):
    with stdin_to_file(tmp_path / "x.wav") as path:
        assert path == tmp_path / "x.wav"
