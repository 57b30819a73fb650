"""Bach chorale parsing, transposition, split and key names (a handful of real chorales)."""

from __future__ import annotations

import json
import logging
from types import MappingProxyType

import numpy as np
import pytest

from avtool.datasets import chorales as ch
from avtool.datasets.chorales import (
    HOLD,
    REST,
    SPLIT_FILE,
    VOICE_RANGES,
    VOICES,
    Chorale,
    augment,
    load_chorales,
    melody_groups,
    notes_to_row,
    parse_chorales,
    parse_key,
    read_split_file,
    row_to_notes,
    split,
)
from avtool.errors import InputError

NAMES = (
    "bwv66.6",  # f# minor, one-crotchet pickup
    "bwv10.7",  # g minor, no pickup, ties
    "bwv101.7",  # bars split by repeat signs, a tie across a bar line
    "bwv299",  # 3/4 with a pickup, grace notes
    "bwv432",  # thirty-second ornaments
    "bwv123.6",  # 3/2
    "bwv254",  # soprano dips below the soprano range
    "bwv304",  # changes metre
    "bwv4.8",  # a bar split at a phrase end that music21 pads the wrong way round
    "bwv1.6",  # horn + SATB: five parts, dropped
)


@pytest.fixture(scope="session")
def parsed() -> tuple[dict[str, Chorale], dict[str, str]]:
    kept, dropped = parse_chorales(NAMES)
    return {c.name: c for c in kept}, dropped


@pytest.fixture(scope="session")
def chorales(parsed) -> dict[str, Chorale]:
    return parsed[0]


def _chorale(voices, name="x", tonic=0, mode="major", beat=None) -> Chorale:
    voices = np.asarray(voices, dtype=np.int16)
    steps = voices.shape[1]
    beat = np.arange(steps) % 16 if beat is None else beat
    return Chorale(name, voices, np.zeros(steps, bool), beat, tonic, mode, "4/4")


def test_only_four_part_scores_are_kept(parsed):
    kept, dropped = parsed
    assert set(kept) == set(NAMES) - {"bwv1.6"}
    assert dropped == {"bwv1.6": "5 parts, not 4"}


def test_grids_are_well_formed(chorales):
    for c in chorales.values():
        steps = c.steps
        assert c.voices.shape == (4, steps) and c.voices.dtype == np.int16
        assert c.fermata.shape == (steps,) and c.fermata.dtype == bool
        assert c.beat.shape == (steps,) and c.beat.dtype == np.int8
        assert ((c.voices >= 0) | (c.voices == HOLD) | (c.voices == REST)).all()
        # HOLD only continues a note: never first, never after a rest.
        assert (c.voices[:, 0] != HOLD).all()
        assert not ((c.voices[:, 1:] == HOLD) & (c.voices[:, :-1] == REST)).any()
        assert c.fermata.any(), c.name
        assert (c.voices[:, 0] >= 0).any(), c.name


def test_pickup_and_split_bars_keep_beat_positions(chorales):
    # One-crotchet pickup in 4/4: the first note is on beat 4 (sixteenth 12); the bars cut
    # in two by repeat signs continue the count instead of restarting it.
    for name in ("bwv66.6", "bwv101.7"):
        c = chorales[name]
        assert c.time_signature == "4/4"
        np.testing.assert_array_equal(c.beat, (np.arange(c.steps) + 12) % 16)
    c = chorales["bwv299"]  # 3/4, one-crotchet pickup
    assert c.time_signature == "3/4"
    assert c.beat[:6].tolist() == [8, 9, 10, 11, 0, 1]
    c = chorales["bwv10.7"]  # starts on the downbeat
    assert c.beat[:4].tolist() == [0, 1, 2, 3]
    c = chorales["bwv123.6"]
    assert c.time_signature == "3/2" and c.beat.max() == 23
    # Three crotchets, a section break, then the one-crotchet upbeat: one bar, in order.
    assert chorales["bwv4.8"].beat[112:128].tolist() == list(range(16))


def test_fermatas_end_phrases(chorales):
    c = chorales["bwv66.6"]
    runs = np.flatnonzero(np.diff(np.concatenate([[0], c.fermata.astype(int), [0]])) == 1)
    assert len(runs) == 6  # six phrases, each ending on a fermata
    assert c.fermata[-1]  # the final chord
    assert (c.voices[0, runs] >= 0).all()  # a fermata starts with a soprano note


def test_ties_become_holds(chorales):
    tenor = chorales["bwv101.7"].voices[2]
    # B-flat tied over the bar line at quarter 45 (step 180): one onset, then HOLDs.
    assert tenor[172] == 58
    assert (tenor[173:182] == HOLD).all()
    assert tenor[182] != HOLD


def test_thirty_seconds_round_to_the_grid(chorales):
    notes = row_to_notes(chorales["bwv432"].voices[0])
    assert all(end > onset for onset, end, _ in notes)


def test_known_keys(chorales):
    assert (chorales["bwv66.6"].key_tonic, chorales["bwv66.6"].mode) == (6, "minor")
    assert (chorales["bwv10.7"].key_tonic, chorales["bwv10.7"].mode) == (7, "minor")


def test_transpose_shifts_pitches_and_key(chorales):
    c = chorales["bwv10.7"]
    up = c.transpose(3)
    sounding = c.voices >= 0
    np.testing.assert_array_equal(up.voices[sounding], c.voices[sounding] + 3)
    np.testing.assert_array_equal(up.voices[~sounding], c.voices[~sounding])
    assert up.key_tonic == (c.key_tonic + 3) % 12 and up.mode == c.mode
    assert up.name == c.name
    np.testing.assert_array_equal(up.transpose(-3).voices, c.voices)
    assert c.voices[0, 0] == up.voices[0, 0] - 3  # the original is untouched


def test_augment_keeps_every_voice_in_range(chorales):
    for c in chorales.values():
        shifted = augment(c)
        assert all(a.in_ranges() for a in shifted)
        assert len(shifted) <= 13
    assert not chorales["bwv254"].in_ranges()
    assert chorales["bwv254"] not in augment(chorales["bwv254"])
    assert chorales["bwv66.6"] in augment(chorales["bwv66.6"])


def test_augment_excludes_out_of_range_shifts():
    top = VOICE_RANGES["soprano"][1]
    voices = [[top - 1, HOLD], [58, HOLD], [55, REST], [48, HOLD]]
    shifts = [a.voices[0, 0] - (top - 1) for a in augment(_chorale(voices), max_shift=6)]
    assert max(shifts) == 1
    assert min(shifts) == -5  # the alto's low end (53) stops it
    assert shifts == sorted(shifts)


def test_voice_ranges_are_immutable():
    assert isinstance(VOICE_RANGES, MappingProxyType)
    assert tuple(VOICE_RANGES) == VOICES
    with pytest.raises(TypeError):
        VOICE_RANGES["soprano"] = (0, 127)  # type: ignore[index]


def test_chorale_validates_shapes():
    with pytest.raises(ValueError, match="voices"):
        Chorale("x", np.zeros((3, 4)), np.zeros(4, bool), np.zeros(4), 0, "major", "4/4")
    with pytest.raises(ValueError, match="key"):
        _chorale([[60], [55], [50], [40]], mode="dorian")


def test_rows_round_trip():
    row = np.array([60, HOLD, HOLD, REST, 62, 62, HOLD, REST, REST, 64], dtype=np.int16)
    notes = row_to_notes(row)
    assert notes == [(0, 3, 60), (4, 5, 62), (5, 7, 62), (9, 10, 64)]
    np.testing.assert_array_equal(notes_to_row(notes, len(row)), row)
    # Same onset: the higher note wins; a long note is cut by the next onset.
    assert notes_to_row([(0, 4, 50), (0, 2, 55), (2, 3, 57)], 4).tolist() == [55, HOLD, 57, REST]
    # A HOLD with nothing to hold reads as a rest.
    assert row_to_notes(np.array([HOLD, 60, HOLD])) == [(1, 3, 60)]


def test_cache_is_written_once_and_read_back(chorales, tmp_path, monkeypatch):
    calls = []

    def fake_parse(names=None, progress=False):
        calls.append(progress)
        return list(chorales.values()), {"bwv1.6": "5 parts, not 4"}

    monkeypatch.setattr(ch, "parse_chorales", fake_parse)
    first = load_chorales(cache=tmp_path)
    again = load_chorales(cache=tmp_path)
    assert len(calls) == 1
    assert [c.name for c in again] == [c.name for c in first]
    for a, b in zip(first, again, strict=True):
        np.testing.assert_array_equal(a.voices, b.voices)
        np.testing.assert_array_equal(a.fermata, b.fermata)
        np.testing.assert_array_equal(a.beat, b.beat)
        assert (a.key_tonic, a.mode, a.time_signature) == (b.key_tonic, b.mode, b.time_signature)
    meta = json.loads(next(tmp_path.glob("*.json")).read_text())
    assert meta["dropped"] == {"bwv1.6": "5 parts, not 4"}
    assert not list(tmp_path.glob(".*"))  # no temporary files left


def test_default_cache_lives_under_cache_dir(chorales, isolated_cache, monkeypatch):
    monkeypatch.setattr(ch, "parse_chorales", lambda **_: (list(chorales.values()), {}))
    load_chorales()
    assert len(list((isolated_cache / "music").glob("bach-chorales-m21-*.npz"))) == 1


def test_split_file_is_disjoint_and_covers_the_chorales(chorales):
    names = read_split_file()
    assert set(names) == {"train", "valid", "test"}
    assert not names["train"] & names["valid"]
    assert not names["train"] & names["test"]
    assert not names["valid"] & names["test"]
    total = sum(len(v) for v in names.values())
    assert 0.75 < len(names["train"]) / total < 0.85
    assert set(chorales) <= names["train"] | names["valid"] | names["test"]
    raw = json.loads(SPLIT_FILE.read_text())
    assert all(raw[s] == sorted(raw[s]) for s in raw)


def test_one_melody_never_straddles_splits():
    names = read_split_file()
    passion = {"bwv244.15", "bwv244.44", "bwv244.54", "bwv244.62", "bwv248.5", "bwv270"}
    assert sum(bool(passion & members) for members in names.values()) == 1


def test_split_places_chorales_and_their_transpositions(chorales, caplog):
    names = read_split_file()
    stray = _chorale([[60], [55], [50], [40]], name="bwv9999")
    items = [a for c in chorales.values() for a in augment(c)] + [stray]
    with caplog.at_level(logging.WARNING, logger="avtool.datasets.chorales"):
        out = split(items)
    assert "bwv9999" in caplog.text
    assert sum(len(v) for v in out.values()) == len(items) - 1
    for which, members in out.items():
        assert all(c.name in names[which] for c in members)


def test_melody_groups_join_variants_of_one_tune():
    tune = [67, 69, 71, 72, 71, 69, 67, 66, 67, 69, 71, 74, 72, 71, 69, 67, 69, 71, 72, 74]

    def melody(pitches, name):
        row = np.full(2 * len(pitches), HOLD, dtype=np.int16)
        row[::2] = pitches
        rest = np.full_like(row, REST)
        return _chorale([row, rest, rest, rest], name=name)

    original = melody(tune, "a")
    transposed = melody([p + 5 for p in tune], "b")
    ornamented = melody([*tune[:10], 70, *tune[10:]], "c")
    other = melody([72, 64, 65, 67, 60, 62, 71, 69, 65, 64, 62, 60, 67, 65, 64, 62], "d")
    assert melody_groups([original, transposed, ornamented, other]) == [["a", "b", "c"], ["d"]]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("G major", (7, "major")),
        ("f# minor", (6, "minor")),
        ("Bb", (10, "major")),
        ("E-flat minor", (3, "minor")),
        ("E flat major", (3, "major")),
        ("B- major", (10, "major")),
        ("E♭ minor", (3, "minor")),
        ("c sharp minor", (1, "minor")),
        ("Am", (9, "minor")),
        ("F#min", (6, "minor")),
        ("a", (9, "minor")),
        ("C", (0, "major")),
        ("  D  MAJOR ", (2, "major")),
        ("Cb major", (11, "major")),
    ],
)
def test_parse_key_accepts(text, expected):
    assert parse_key(text) == expected


@pytest.mark.parametrize("text", ["", "H major", "G lydian", "major", "AM", "G##", "X", "7"])
def test_parse_key_rejects_with_the_accepted_form(text):
    with pytest.raises(InputError, match="unknown key") as info:
        parse_key(text)
    assert "f# minor" in str(info.value)
    assert info.value.exit_code == 2
