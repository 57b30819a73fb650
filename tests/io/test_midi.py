"""MIDI writing and reading on the four-voice sixteenth-note grid."""

from __future__ import annotations

from types import MappingProxyType

import mido
import numpy as np
import pytest

from avtool.datasets.chorales import HOLD, REST
from avtool.errors import InputError
from avtool.io.midi import (
    FERMATA_STRETCH,
    GM_PROGRAMS,
    TICKS_PER_QUARTER,
    build_midi,
    gm_program,
    read_midi,
    write_midi,
)

H, R = HOLD, REST
SATB = np.array(
    [
        [72, H, H, H, 74, 74, H, R, 76, H, H, H, H, H, H, H],
        [67, H, 65, H, 67, H, H, H, R, R, 67, H, H, H, H, H],
        [R, R, 60, H, 59, H, 64, H, 60, H, H, 62, 60, H, H, H],
        [48, H, H, H, H, H, H, H, 43, H, 55, H, 48, H, H, H],
    ],
    dtype=np.int16,
)


def _single_track(path, notes, ticks=TICKS_PER_QUARTER, channel=0):
    """A type-0 file from ``(on_tick, off_tick, pitch)`` notes."""
    events = []
    for on, off, pitch in notes:
        events.append((on, 1, mido.Message("note_on", note=pitch, velocity=90, channel=channel)))
        events.append((off, 0, mido.Message("note_off", note=pitch, channel=channel)))
    track, now = mido.MidiTrack(), 0
    track.append(mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(90)))
    for tick, _, message in sorted(events, key=lambda e: (e[0], e[1])):
        track.append(message.copy(time=tick - now))
        now = tick
    midi = mido.MidiFile(type=0, ticks_per_beat=ticks)
    midi.tracks.append(track)
    midi.save(str(path))
    return path


def test_round_trip_gives_the_same_voices(tmp_path):
    path = write_midi(tmp_path / "satb.mid", SATB, 72.5, time_signature="3/4", programs=(19,) * 4)
    voices, tempo, signature = read_midi(path)
    np.testing.assert_array_equal(voices, SATB)
    assert voices.dtype == np.int16
    assert tempo == pytest.approx(72.5, abs=1e-3)
    assert signature == "3/4"
    midi = mido.MidiFile(str(path))
    assert len(midi.tracks) == 5  # conductor + one per voice
    programs = [m.program for t in midi.tracks for m in t if m.type == "program_change"]
    assert programs == [19] * 4


def test_round_trip_with_fermata_stretches_time_not_notes(tmp_path):
    fermata = np.zeros(SATB.shape[1], bool)
    fermata[8:12] = True
    path = write_midi(tmp_path / "f.mid", SATB, 100, fermata=fermata)
    voices, tempo, _ = read_midi(path)
    np.testing.assert_array_equal(voices, SATB)
    assert tempo == pytest.approx(100)
    midi = mido.MidiFile(str(path))
    plain = mido.MidiFile(str(write_midi(tmp_path / "p.mid", SATB, 100)))
    assert midi.length == pytest.approx(plain.length + 4 * 0.15 * (FERMATA_STRETCH - 1))


def test_trailing_rests_and_repeated_pitches_survive(tmp_path):
    voices = SATB.copy()
    voices[:, -3:] = REST
    out, _, _ = read_midi(write_midi(tmp_path / "r.mid", voices, 120))
    # The file ends where the grid ends, so trailing rests come back only as far as the
    # last note; compare what was read and check the rest is silence.
    np.testing.assert_array_equal(out, voices[:, : out.shape[1]])
    assert (voices[:, out.shape[1] :] == REST).all()


def test_single_track_melody_becomes_the_soprano(tmp_path):
    q = TICKS_PER_QUARTER
    # Played legato: each note overlaps the next by a few ticks.
    notes = [(0, q + 10, 60), (q, 2 * q + 5, 62), (2 * q, 4 * q, 64), (5 * q, 6 * q, 65)]
    voices, tempo, signature = read_midi(_single_track(tmp_path / "m.mid", notes))
    assert voices.shape == (4, 24)
    assert voices[0].tolist() == [60, H, H, H, 62, H, H, H, 64, *[H] * 7, R, R, R, R, 65, H, H, H]
    assert (voices[1:] == REST).all()
    assert tempo == pytest.approx(90) and signature == "4/4"


def test_off_grid_notes_are_quantised(tmp_path):
    # 96 ticks per quarter; a triplet-ish onset at 40 ticks rounds to the second sixteenth.
    voices, _, _ = read_midi(_single_track(tmp_path / "q.mid", [(0, 40, 60), (40, 96, 62)], 96))
    assert voices[0].tolist() == [60, H, 62, H]


def test_polyphonic_track_is_split_by_pitch(tmp_path):
    q = TICKS_PER_QUARTER
    chord = [(0, q, p) for p in (48, 55, 64, 72)]
    dyad = [(q, 2 * q, p) for p in (50, 71)]
    triad = [(2 * q, 3 * q, p) for p in (43, 59, 67)]
    voices, _, _ = read_midi(_single_track(tmp_path / "p.mid", chord + dyad + triad))
    assert voices[:, 0].tolist() == [72, 64, 55, 48]
    assert voices[:, 4].tolist() == [71, R, R, 50]
    assert voices[:, 8].tolist() == [67, 59, R, 43]
    assert (voices[:, [1, 5, 9]] != REST).sum() == 4 + 2 + 3  # held, not re-struck
    assert (voices[:, [1, 5, 9]][voices[:, [1, 5, 9]] != REST] == HOLD).all()


def test_four_tracks_are_ordered_high_to_low(tmp_path):
    midi = build_midi(SATB[::-1].copy(), 100)  # bass written first
    midi.save(str(tmp_path / "btas.mid"))
    voices, _, _ = read_midi(tmp_path / "btas.mid")
    np.testing.assert_array_equal(voices, SATB)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "not a readable MIDI file"),
        (b"MThd garbage that is not midi at all" * 3, "not a readable MIDI file"),
        (bytes(range(256)), "not a readable MIDI file"),
    ],
)
def test_garbage_is_an_input_error_naming_the_file(tmp_path, content, message):
    path = tmp_path / "bad.mid"
    path.write_bytes(content)
    with pytest.raises(InputError, match=message) as info:
        read_midi(path)
    assert str(path) in str(info.value)
    assert info.value.exit_code == 2


def test_missing_file_and_files_without_notes(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        read_midi(tmp_path / "absent.mid")
    empty = mido.MidiFile()
    empty.tracks.append(mido.MidiTrack([mido.MetaMessage("set_tempo", tempo=500000)]))
    empty.save(str(tmp_path / "empty.mid"))
    with pytest.raises(InputError, match="no notes") as info:
        read_midi(tmp_path / "empty.mid")
    assert "empty.mid" in str(info.value)
    drums = _single_track(tmp_path / "drums.mid", [(0, 480, 36), (480, 960, 38)], channel=9)
    with pytest.raises(InputError, match="no notes"):
        read_midi(drums)


def test_write_is_atomic(tmp_path, monkeypatch):
    target = tmp_path / "out.mid"
    target.write_bytes(b"old")

    def broken_save(self, filename=None, file=None):
        with open(filename, "wb") as f:
            f.write(b"MThd partial")
        raise OSError("disk full")

    monkeypatch.setattr(mido.MidiFile, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        write_midi(target, SATB, 100)
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.mid"]


def test_bad_grids_write_nothing(tmp_path):
    target = tmp_path / "out.mid"
    with pytest.raises(ValueError):
        write_midi(target, np.array([[60, 200]]), 100, programs=(0,))
    with pytest.raises(ValueError):
        write_midi(target, SATB, 100, programs=(0, 0))
    with pytest.raises(InputError, match="time signature"):
        write_midi(target, SATB, 100, time_signature="3/5")
    assert not target.exists()


def test_instrument_names():
    assert isinstance(GM_PROGRAMS, MappingProxyType)
    assert (gm_program("organ"), gm_program("piano"), gm_program("strings")) == (19, 0, 48)
    assert gm_program("Choir") == 52
    assert gm_program("church_organ") == 19
    with pytest.raises(InputError, match=r"unknown instrument 'kazoo'.*organ"):
        gm_program("kazoo")
    with pytest.raises(TypeError):
        GM_PROGRAMS["kazoo"] = 1  # type: ignore[index]
