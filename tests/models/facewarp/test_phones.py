"""Phone recognition with pocketsphinx and per-frame loudness, on real GRID speech."""

from __future__ import annotations

import numpy as np
import pytest

from avtool.io.audio import load_audio, save_audio
from avtool.models.facewarp.phones import (
    BAND_EDGES_HZ,
    SILENCE,
    analyse_audio,
    band_levels,
    frame_count,
    loudness_from_rms,
    phones_from_timings,
)


def test_frame_count_rounds_to_the_nearest_frame():
    assert frame_count(2.978, 25.0) == 74
    assert frame_count(2.99, 25.0) == 75
    assert frame_count(0.001, 25.0) == 1


def test_loudness_floor_and_range():
    rms = np.array([0.0, 1e-4, 0.01, 0.1, 0.3])
    loudness, voiced = loudness_from_rms(rms)
    assert voiced.tolist() == [False, False, True, True, True]
    assert loudness[0] == 0.0 and loudness[-1] == pytest.approx(1.0)
    assert 0.0 < loudness[2] < loudness[3] < 1.0
    silent, none = loudness_from_rms(np.zeros(5))
    assert not none.any() and not silent.any()


def test_band_levels_put_a_tone_in_its_band():
    rate = 16000
    tone = np.sin(2 * np.pi * 1000.0 * np.arange(640) / rate)  # one 25 fps frame
    levels = band_levels(tone, rate)
    assert levels.shape == (len(BAND_EDGES_HZ) - 1,)
    assert int(np.argmax(levels)) == 2  # 700-1200 Hz
    assert band_levels(np.zeros(640), rate).max() == pytest.approx(-100.0)


def test_phones_from_tts_timings():
    timings = {"phonemes": [{"phoneme": "h", "start": 0.0, "end": 0.1},
                            {"phoneme": " ", "start": 0.1, "end": 0.2},
                            {"phoneme": ",", "start": 0.2, "end": 0.3}]}  # fmt: skip
    phones = phones_from_timings(timings)
    assert [p.label for p in phones] == ["h", SILENCE, SILENCE]


def test_grid_speech_gives_phones_where_the_words_are(grid_dir, tmp_path):
    clip = grid_dir / "lbax4n.mpg"  # "lay blue at x four now"
    drive = analyse_audio(clip, 25.0)
    audio, rate = load_audio(clip)
    assert drive.duration == pytest.approx(audio.size / rate, abs=0.01)
    assert drive.n_frames == frame_count(drive.duration, 25.0)
    assert drive.loudness.shape == (drive.n_frames,)
    assert drive.bands.shape == (drive.n_frames, len(BAND_EDGES_HZ) - 1)
    # The loudest frames (speech) carry more power than the quietest (pauses) in every band.
    order = np.argsort(drive.loudness)
    loud, quiet = drive.bands[order[-10:]].mean(axis=0), drive.bands[order[:10]].mean(axis=0)
    assert (loud > quiet).all()
    speech = [p for p in drive.phones if p.label != SILENCE]
    assert len(speech) >= 8
    labels = {p.label for p in speech}
    assert labels & {"L", "EY", "UW", "F", "AO", "AW", "B"}
    # The clip starts and ends with silence: the phones sit inside the voiced span.
    first, last = speech[0].start, speech[-1].end
    assert 0.2 < first < 1.2 and 1.8 < last < drive.duration
    assert drive.voiced[int(1.5 * 25)]


def test_block_boundaries_keep_times_absolute(grid_dir, tmp_path):
    clip = grid_dir / "lbax4n.mpg"
    audio, rate = load_audio(clip, sample_rate=16000)
    twice = tmp_path / "twice.wav"
    save_audio(twice, np.concatenate([audio, audio]), rate)
    drive = analyse_audio(twice, 25.0, block_seconds=3.5)
    speech = [p for p in drive.phones if p.label != SILENCE]
    half = audio.size / rate
    assert any(p.start > half + 0.3 for p in speech)  # the second copy was recognised
    starts = [p.start for p in drive.phones]
    assert starts == sorted(starts)


def test_silent_audio_has_no_voiced_frames(tmp_path):
    path = tmp_path / "silence.wav"
    save_audio(path, np.zeros(16000, np.float32), 16000)
    drive = analyse_audio(path, 25.0)
    assert drive.n_frames == 25
    assert not drive.voiced.any()
    assert all(p.label == SILENCE for p in drive.phones)
