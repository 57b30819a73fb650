"""Audio reading, writing, resampling and streaming, on generated and real files."""

from __future__ import annotations

import io
import logging
import subprocess
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from avtool.errors import InputError, SetupError
from avtool.io.audio import (
    AudioWriter,
    audio_info,
    iter_audio_blocks,
    load_audio,
    resample,
    save_audio,
    to_mono,
    wav_bytes,
)
from avtool.io.ffmpeg import ffmpeg_exe


def sine(freq: float, rate: int, seconds: float, channels: int = 1) -> np.ndarray:
    """(T,) or (C, T) float32; channel c is at ``freq * (c + 1)`` Hz, amplitude 0.5."""
    t = np.arange(round(rate * seconds)) / rate
    waves = [0.5 * np.sin(2 * np.pi * freq * (c + 1) * t) for c in range(channels)]
    return np.asarray(waves[0] if channels == 1 else waves, dtype=np.float32)


def peak_hz(x: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.argmax(spectrum)) * rate / len(x)


def ffmpeg(*args: str | Path) -> None:
    subprocess.run([ffmpeg_exe(), "-nostdin", "-v", "error", "-y", *map(str, args)], check=True)


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


# --- round trips -------------------------------------------------------------------------------

RATES = [8000, 16000, 22050, 44100, 48000]


@pytest.mark.parametrize("rate", RATES)
@pytest.mark.parametrize("channels", [1, 2])
@pytest.mark.parametrize(("suffix", "subtype", "tol"), [
    (".wav", "PCM_16", 1 / 16000),
    (".wav", "FLOAT", 0.0),
    (".flac", "PCM_16", 1 / 16000),
])  # fmt: skip
def test_lossless_round_trip(tmp_path, rate, channels, suffix, subtype, tol):
    audio = sine(440, rate, 0.25, channels)
    path = save_audio(tmp_path / f"x{suffix}", audio, rate, subtype=subtype)
    back, back_rate = load_audio(path, mono=False)
    assert back_rate == rate
    assert back.dtype == np.float32
    assert back.shape == (channels, audio.shape[-1])
    np.testing.assert_allclose(back, audio.reshape(channels, -1), atol=tol)
    if channels == 1:
        mono, _ = load_audio(path)
        assert mono.shape == audio.shape


@pytest.mark.parametrize("rate", [8000, 22050, 48000])
@pytest.mark.parametrize("channels", [1, 2])
def test_ogg_vorbis_round_trip(tmp_path, rate, channels):
    audio = sine(300, rate, 0.5, channels)
    path = save_audio(tmp_path / "x.ogg", audio, rate)  # PCM_16 request -> Vorbis
    assert sf.info(str(path)).subtype == "VORBIS"
    back, back_rate = load_audio(path, mono=False)
    assert back_rate == rate and back.shape == (channels, audio.shape[-1])
    for c in range(channels):
        assert peak_hz(back[c], rate) == pytest.approx(300 * (c + 1), abs=4)


def test_int16_input_and_float_output(tmp_path):
    pcm = (sine(440, 16000, 0.1) * 32767).astype(np.int16)
    path = save_audio(tmp_path / "x.wav", pcm, 16000, subtype="FLOAT")
    assert sf.info(str(path)).subtype == "FLOAT"
    back, _ = load_audio(path)
    np.testing.assert_allclose(back, pcm / 32768, atol=1e-6)
    path = save_audio(tmp_path / "y.wav", pcm, 16000)
    np.testing.assert_array_equal(sf.read(str(path), dtype="int16")[0], pcm)  # bit-exact


def test_format_override_and_errors(tmp_path):
    audio = sine(440, 16000, 0.1)
    path = save_audio(tmp_path / "x.audio", audio, 16000, format="FLAC")
    assert sf.info(str(path)).format == "FLAC"
    with pytest.raises(ValueError, match="suffix"):
        save_audio(tmp_path / "x.xyz", audio, 16000)
    with pytest.raises(ValueError, match="FLAC cannot store FLOAT"):
        save_audio(tmp_path / "y.flac", audio, 16000, subtype="FLOAT")
    with pytest.raises(ValueError, match=r"\(C, T\)"):
        save_audio(tmp_path / "y.wav", np.zeros((1000, 2), np.float32), 16000)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_nonfinite_audio_rejected(tmp_path, bad):
    audio = sine(440, 16000, 0.1)
    audio[10] = bad
    with pytest.raises(ValueError, match="NaN or infinite"):
        save_audio(tmp_path / "x.wav", audio, 16000)
    assert leftovers(tmp_path) == []


def test_wav_bytes():
    audio = sine(440, 22050, 0.1, channels=2)
    data = wav_bytes(audio, 22050)
    assert data[:4] == b"RIFF"
    back, rate = sf.read(io.BytesIO(data), dtype="float32", always_2d=True)
    assert rate == 22050
    np.testing.assert_allclose(back.T, audio, atol=1 / 16000)


def test_save_audio_unwritable_folder(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(SetupError):
        save_audio(blocker / "out.wav", sine(440, 8000, 0.1), 8000)


# --- resampling and channels --------------------------------------------------------------------


@pytest.mark.parametrize(("src", "dst"), [(44100, 16000), (16000, 48000), (22050, 8000)])
def test_resample_keeps_frequency_and_duration(src, dst):
    audio = sine(440, src, 1.0, channels=2)
    out = resample(audio, src, dst)
    assert out.dtype == np.float32 and out.flags.c_contiguous
    assert out.shape == (2, dst)
    assert peak_hz(out[0], dst) == pytest.approx(440, abs=2)
    assert peak_hz(out[1], dst) == pytest.approx(880, abs=2)
    assert resample(audio[0], src, dst).shape == (dst,)


def test_to_mono():
    stereo = np.stack([np.ones(5), -np.ones(5) * 0.5]).astype(np.float32)
    np.testing.assert_allclose(to_mono(stereo), 0.25)
    left = stereo[0]
    assert to_mono(left) is left


def test_load_audio_converts_and_logs(tmp_path, caplog):
    path = save_audio(tmp_path / "x.flac", sine(440, 44100, 1.0, channels=2), 44100)
    with caplog.at_level(logging.DEBUG, logger="avtool.io.audio"):  # --verbose lines
        audio, rate = load_audio(path, sample_rate=16000)
    assert rate == 16000 and audio.shape == (16000,)
    assert "downmixed 2 channels to mono" in caplog.text
    assert "resampled 44100 Hz -> 16000 Hz" in caplog.text


def test_load_audio_start_and_duration(tmp_path):
    audio = np.arange(16000, dtype=np.float32) / 16000
    path = save_audio(tmp_path / "ramp.wav", audio, 16000, subtype="FLOAT")
    part, _ = load_audio(path, start=0.25, duration=0.5)
    np.testing.assert_array_equal(part, audio[4000:12000])
    tail, _ = load_audio(path, start=0.9)
    assert len(tail) == 1600


def test_mp3_round_trip_via_ffmpeg(tmp_path, caplog):
    wav = save_audio(tmp_path / "x.wav", sine(440, 44100, 2.0, channels=2), 44100)
    mp3 = tmp_path / "x.mp3"
    ffmpeg("-i", wav, "-c:a", "libmp3lame", "-b:a", "192k", mp3)
    info = audio_info(mp3)
    assert (info.sample_rate, info.channels) == (44100, 2)
    assert info.duration == pytest.approx(2.0, abs=0.05)
    with caplog.at_level(logging.DEBUG, logger="avtool.io.audio"):  # --verbose lines
        audio, rate = load_audio(mp3, sample_rate=16000)
    assert "resampled 44100 Hz -> 16000 Hz" in caplog.text
    assert rate == 16000
    assert len(audio) / rate == pytest.approx(2.0, abs=0.03)
    assert min(abs(peak_hz(audio, rate) - f) for f in (440, 880)) < 2
    stereo, _ = load_audio(mp3, mono=False, start=0.5, duration=1.0)
    assert stereo.shape[0] == 2 and stereo.shape[1] == pytest.approx(44100, abs=1200)
    assert peak_hz(stereo[0], 44100) == pytest.approx(440, abs=2)


# --- real GRID clips ----------------------------------------------------------------------------


def test_grid_mpg_audio(grid_dir, caplog):
    path = grid_dir / "bbaf2n.mpg"
    stereo, rate = load_audio(path, mono=False)
    assert rate == 44100
    assert stereo.shape[0] == 2
    assert stereo.shape[1] / rate == pytest.approx(3.0, abs=0.05)
    assert 0.01 < np.abs(stereo).max() <= 1.0  # real speech, not silence
    with caplog.at_level(logging.DEBUG, logger="avtool.io.audio"):  # --verbose lines
        mono, rate16 = load_audio(path, sample_rate=16000)
    assert rate16 == 16000 and mono.ndim == 1
    assert len(mono) == pytest.approx(stereo.shape[1] * 16000 / 44100, abs=2)
    assert "downmixed 2 channels to mono" in caplog.text
    info = audio_info(path)
    assert (info.sample_rate, info.channels) == (44100, 2)


# --- block writing and streaming ----------------------------------------------------------------


@pytest.mark.parametrize("channels", [1, 2])
def test_audio_writer_blocks(tmp_path, channels):
    audio = sine(440, 16000, 1.0, channels)
    path = tmp_path / "out.flac"
    with AudioWriter(path, 16000, channels=channels) as writer:
        for start in range(0, 16000, 3000):
            writer.write(audio[..., start : start + 3000])
        assert not path.exists()  # only the temporary file exists until the end
    assert writer.frames_written == 16000
    back, _ = load_audio(path, mono=False)
    np.testing.assert_allclose(back, audio.reshape(channels, -1), atol=1 / 16000)
    assert leftovers(tmp_path) == ["out.flac"]


def test_audio_writer_exception_leaves_nothing(tmp_path):
    with pytest.raises(RuntimeError, match="boom"), AudioWriter(tmp_path / "x.wav", 16000) as w:
        w.write(sine(440, 16000, 0.5))
        raise RuntimeError("boom")
    assert leftovers(tmp_path) == []


def test_audio_writer_exception_keeps_existing_file(tmp_path):
    path = save_audio(tmp_path / "x.wav", sine(440, 8000, 0.1), 8000)
    before = path.read_bytes()
    with pytest.raises(ValueError, match="channels"), AudioWriter(path, 8000) as w:
        w.write(sine(440, 8000, 0.1, channels=2))
    assert path.read_bytes() == before
    assert leftovers(tmp_path) == ["x.wav"]


@pytest.mark.parametrize(("suffix", "rate", "mono"), [
    (".wav", None, True),
    (".flac", None, False),
    (".flac", 16000, True),
    (".flac", 48000, False),
    (".mka", 16000, True),  # Matroska audio: decoded through the ffmpeg pipe
])  # fmt: skip
def test_iter_audio_blocks_matches_load_audio(tmp_path, suffix, rate, mono):
    src = save_audio(tmp_path / "src.flac", sine(440, 22050, 1.3, channels=2), 22050)
    path = src
    if suffix != ".flac":
        path = tmp_path / f"x{suffix}"
        ffmpeg("-i", src, *(["-c:a", "copy"] if suffix == ".mka" else []), path)
    whole, _ = load_audio(path, sample_rate=rate, mono=mono)
    blocks = list(iter_audio_blocks(path, 4096, sample_rate=rate, mono=mono))
    assert all(b.shape[-1] == 4096 for b in blocks[:-1])
    assert 0 < blocks[-1].shape[-1] <= 4096
    assert all(b.dtype == np.float32 and b.ndim == (1 if mono else 2) for b in blocks)
    np.testing.assert_allclose(np.concatenate(blocks, axis=-1), whole, atol=1e-5)


def test_iter_audio_blocks_grid(grid_dir):
    blocks = list(iter_audio_blocks(grid_dir / "lbax4n.mpg", 8000, sample_rate=16000))
    whole, _ = load_audio(grid_dir / "lbax4n.mpg", sample_rate=16000)
    np.testing.assert_allclose(np.concatenate(blocks), whole, atol=1e-5)


@pytest.mark.slow
def test_iter_audio_blocks_hour_long_bounded_memory(tmp_path):
    flac = tmp_path / "hour.flac"
    ffmpeg("-f", "lavfi", "-i", "sine=frequency=440:sample_rate=16000:duration=3600", flac)
    # ffmpeg alone needs ~2.5 s to decode an hour, so the pipe path reads a quarter of it.
    mka = tmp_path / "quarter.mka"
    ffmpeg("-i", flac, "-t", "900", "-c:a", "copy", mka)
    for path, rate, seconds in [(flac, 8000, 3600), (mka, None, 900)]:
        tracemalloc.start()
        try:
            frames = 0
            for block in iter_audio_blocks(path, 16000, sample_rate=rate):
                frames += len(block)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert frames == pytest.approx(seconds * (rate or 16000), abs=4608)  # a FLAC frame
        # The hour is 230 MB as float32; a few blocks of 64 kB is all that may be held.
        assert peak < 8 * 2**20, f"{path.name}: peak {peak / 2**20:.1f} MiB"


# --- bad input ----------------------------------------------------------------------------------


def test_missing_file(tmp_path):
    for path in [tmp_path / "none.wav", tmp_path / "none.mp3"]:
        with pytest.raises(InputError, match="none"):
            load_audio(path)
        with pytest.raises(InputError, match="no such file"):
            iter_audio_blocks(path, 1024)
        with pytest.raises(InputError, match="no such file"):
            audio_info(path)


def test_text_file_named_wav(tmp_path):
    path = tmp_path / "notes.wav"
    path.write_text("hello world\n" * 20)
    with pytest.raises(InputError, match=r"notes.wav"):
        load_audio(path)
    with pytest.raises(InputError, match=r"notes.wav"):
        audio_info(path)


def test_truncated_files(tmp_path):
    flac = save_audio(tmp_path / "x.flac", sine(440, 16000, 1.0), 16000)
    cut = tmp_path / "cut.flac"
    cut.write_bytes(flac.read_bytes()[: flac.stat().st_size // 2])
    with pytest.raises(InputError, match=r"cut.flac"):
        load_audio(cut)
    with pytest.raises(InputError, match=r"cut.flac"):
        list(iter_audio_blocks(cut, 1024))
    mp3 = tmp_path / "x.mp3"
    ffmpeg("-i", flac, mp3)
    stub = tmp_path / "stub.mp3"
    stub.write_bytes(mp3.read_bytes()[:100])
    with pytest.raises(InputError, match=r"stub.mp3"):
        load_audio(stub)


def test_video_without_audio(tmp_path):
    path = tmp_path / "silent.mp4"
    ffmpeg("-f", "lavfi", "-i", "testsrc=size=64x48:rate=10:duration=0.5", "-c:v", "libx264", path)
    with pytest.raises(InputError, match=r"silent.mp4: has no audio stream"):
        load_audio(path)
    with pytest.raises(InputError, match="no audio stream"):
        iter_audio_blocks(path, 1024)
    with pytest.raises(InputError, match="no audio stream"):
        audio_info(path)


def test_missing_ffmpeg_is_setup_error(tmp_path, monkeypatch):
    mp3 = tmp_path / "x.mp3"
    mp3.write_bytes(b"\xff" * 1000)
    monkeypatch.setenv("AVTOOL_FFMPEG", "/nonexistent")
    with pytest.raises(SetupError, match="AVTOOL_FFMPEG"):
        load_audio(mp3)
