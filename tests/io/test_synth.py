"""Audio rendering: the built-in additive synthesiser, and fluidsynth where installed."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from avtool.datasets.chorales import HOLD, REST
from avtool.errors import InputError, SetupError
from avtool.io import synth
from avtool.io.synth import PEAK_DBFS, RELEASE_TAIL_S, find_soundfont, render, renderer_name

H, R = HOLD, REST
RATE = 16000


def _whole_note(pitch: int = 69) -> np.ndarray:
    voices = np.full((4, 16), REST, dtype=np.int16)
    voices[0] = [pitch] + [HOLD] * 15
    return voices


def _pitch(audio: np.ndarray, rate: int) -> float:
    """Frequency of the strongest spectral peak, refined by parabolic interpolation."""
    windowed = audio * np.hanning(len(audio))
    spectrum = np.abs(np.fft.rfft(windowed, n=8 * len(audio)))
    k = int(np.argmax(spectrum))
    a, b, c = np.log(spectrum[k - 1 : k + 2] + 1e-12)
    offset = 0.5 * (a - c) / (a - 2 * b + c)
    return (k + offset) * rate / (8 * len(audio))


def _fluidsynth_available() -> bool:
    try:
        return bool(shutil.which("fluidsynth")) and find_soundfont() is not None
    except (InputError, SetupError):
        return False


def test_duration_is_steps_at_tempo_plus_the_tail():
    voices = np.full((4, 37), REST, dtype=np.int16)
    voices[:, 0] = [72, 67, 64, 48]
    voices[:, 1:] = HOLD
    for tempo in (60, 97.5, 140):
        audio = render(voices, tempo, RATE, renderer="builtin")
        seconds = 37 / 4 * 60 / tempo + RELEASE_TAIL_S
        assert audio.shape == (round(seconds * RATE),)
        assert audio.dtype == np.float32


@pytest.mark.parametrize("instrument", ["organ", "choir", "strings", "flute", "piano"])
def test_a4_whole_note_is_440_hz(instrument):
    audio = render(_whole_note(), 60, RATE, instrument=instrument, renderer="builtin")
    steady = audio[int(0.5 * RATE) : int(3.5 * RATE)]  # past the attack, before the release
    assert _pitch(steady, RATE) == pytest.approx(440.0, rel=0.01)


def test_built_in_output_is_deterministic_and_normalised():
    voices = np.array(
        [
            [72, H, 74, H, 76, H, H, H],
            [67, H, H, H, 67, H, R, R],
            [64, H, 65, H, 60, H, H, H],
            [48, H, 47, H, 48, H, H, H],
        ],
        dtype=np.int16,
    )
    first = render(voices, 100, 44100, instrument="organ", renderer="builtin")
    again = render(voices, 100, 44100, instrument="organ", renderer="builtin")
    assert first.tobytes() == again.tobytes()
    assert np.max(np.abs(first)) == pytest.approx(10 ** (PEAK_DBFS / 20), rel=1e-5)


def test_built_in_has_no_clicks():
    audio = render(_whole_note(57), 120, RATE, instrument="organ", renderer="builtin")
    assert abs(audio[0]) < 1e-3 and abs(audio[-1]) < 1e-6
    # Largest sample-to-sample step stays within what a 220 Hz wave at this level makes.
    assert np.max(np.abs(np.diff(audio))) < 0.5


def test_fermata_lengthens_the_render():
    voices = _whole_note()
    fermata = np.zeros(16, bool)
    fermata[8:] = True
    plain = render(voices, 60, RATE, renderer="builtin")
    held = render(voices, 60, RATE, renderer="builtin", fermata=fermata)
    assert len(held) - len(plain) == round(8 * 0.25 * 0.5 * RATE)


def test_silence_renders_as_zeros():
    audio = render(np.full((4, 8), REST, dtype=np.int16), 120, RATE, renderer="builtin")
    assert audio.shape == (round((1.0 + RELEASE_TAIL_S) * RATE),)
    assert not audio.any()


def test_bad_arguments():
    with pytest.raises(InputError, match="unknown instrument"):
        render(_whole_note(), 60, RATE, instrument="kazoo")
    with pytest.raises(ValueError):
        render(np.zeros((4, 0), dtype=np.int16), 60, RATE)
    with pytest.raises(ValueError):
        render(_whole_note(), 0, RATE)


def test_renderer_choice(monkeypatch, tmp_path):
    monkeypatch.setattr(synth.shutil, "which", lambda name: None)
    assert renderer_name() == "builtin"
    with pytest.raises(SetupError, match="fluidsynth"):
        render(_whole_note(), 60, RATE, renderer="fluidsynth")
    assert renderer_name(renderer="builtin") == "builtin"
    with pytest.raises(InputError, match="no such soundfont"):
        renderer_name(soundfont=tmp_path / "absent.sf2")
    monkeypatch.setenv("AVTOOL_SOUNDFONT", str(tmp_path / "absent.sf2"))
    with pytest.raises(SetupError, match="AVTOOL_SOUNDFONT"):
        renderer_name()


@pytest.mark.skipif(not _fluidsynth_available(), reason="fluidsynth or a GM soundfont missing")
def test_fluidsynth_renders_the_grid():
    assert renderer_name() == "fluidsynth"
    voices = _whole_note()
    audio = render(voices, 60, 22050, instrument="flute")
    assert audio.shape == (round((4.0 + RELEASE_TAIL_S) * 22050),)
    assert np.max(np.abs(audio)) == pytest.approx(10 ** (PEAK_DBFS / 20), rel=1e-4)
    steady = audio[int(0.5 * 22050) : int(3.5 * 22050)]
    assert _pitch(steady, 22050) == pytest.approx(440.0, rel=0.01)
    ending = audio[-int(0.1 * 22050) :]
    assert np.sqrt(np.mean(ending**2)) < 0.3 * np.sqrt(np.mean(steady**2))  # released
