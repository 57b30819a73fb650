"""basic-pitch transcription: windowing and note rules on made-up activations, then the real
model on audio from the built-in synthesiser (skipped when basic-pitch is not installed)."""

import time
import tracemalloc

import numpy as np
import pytest
import soundfile as sf

from avtool.datasets.chorales import HOLD, REST, row_to_notes
from avtool.errors import InputError, ModelError
from avtool.io.synth import render
from avtool.models import basic_pitch as bp
from avtool.models.basic_pitch import Note

SCALE = (60, 62, 64, 65, 67, 69, 71, 72, 71, 69, 67, 65, 64, 62, 60)  # C major, up and down
TEMPO = 90.0
STEP_S = 60.0 / TEMPO / 4  # one sixteenth


@pytest.fixture(scope="module")
def session():
    """The real model, loaded once; skips the test when basic-pitch is not installed."""
    try:
        bp.model_path()
    except ModelError:
        pytest.skip("basic-pitch is not installed (pip install --no-deps basic-pitch)")
    return bp.load()


def _quarters(*lines: tuple[int, ...], rows: tuple[int, ...] = (0, 3)) -> np.ndarray:
    """A (4, T) grid with each line in quarter notes on the given rows (soprano, bass)."""
    grid = np.full((4, 4 * max(len(line) for line in lines)), REST, np.int16)
    for row, line in zip(rows, lines, strict=False):
        for i, pitch in enumerate(line):
            grid[row, 4 * i] = pitch
            grid[row, 4 * i + 1 : 4 * i + 4] = HOLD
    return grid


def _recovered(truth: np.ndarray, notes: list[Note]) -> float:
    """Share of the grid row's notes found with their pitch and onset within a sixteenth."""
    wanted = row_to_notes(truth)
    unused = list(notes)
    found = 0
    for onset, _, pitch in wanted:
        match = next(
            (n for n in unused if n.pitch == pitch and abs(n.start_s / STEP_S - onset) <= 1),
            None,
        )
        if match is not None:
            unused.remove(match)
            found += 1
    return found / len(wanted)


# --- windowing (a stand-in model that reports the sample at each frame's centre) --------------


class _CentreProbe:
    """Answers like the model, each output row holding the window sample at its centre."""

    def run(self, names, feeds):
        windows = feeds[bp._INPUT][:, :, 0]
        assert windows.shape[1] == bp.WINDOW_SAMPLES and len(windows) <= bp.BATCH_WINDOWS
        rows = windows[:, np.arange(bp.WINDOW_FRAMES) * bp.FFT_HOP]
        out = np.repeat(rows[:, :, None], bp.N_PITCHES, axis=2)
        return [out, out]


@pytest.mark.parametrize("length", [0, 1, 255, 257, bp.HOP_SAMPLES, bp.HOP_SAMPLES + 1, 100_000])
def test_frames_tile_one_uniform_grid_whatever_the_blocks(length):
    audio = np.arange(1, length + 1, dtype=np.float32)  # every sample tells its position
    rng = np.random.default_rng(length)
    cuts = np.sort(rng.integers(0, length + 1, 7))
    for blocks in ([audio], np.split(audio, cuts), np.array_split(audio, max(length // 999, 1))):
        note, onset = bp.activations(_CentreProbe(), blocks)
        assert note.shape == onset.shape == (bp.frame_count(length), bp.N_PITCHES)
        np.testing.assert_array_equal(note[:, 0], audio[:: bp.FFT_HOP])


def test_model_path_names_the_install_command(monkeypatch):
    monkeypatch.setattr(bp.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ModelError, match="pip install --no-deps basic-pitch"):
        bp.model_path()


# --- note extraction on made-up activations -----------------------------------------------------


def _maps(frames: int = 200) -> tuple[np.ndarray, np.ndarray]:
    return np.zeros((frames, bp.N_PITCHES), np.float32), np.zeros(
        (frames, bp.N_PITCHES), np.float32
    )


def _key(pitch: int) -> int:
    return pitch - bp.LOWEST_PITCH


def test_one_note_from_onset_to_last_active_frame():
    note, onset = _maps()
    note[10:41, _key(60)] = 0.8
    onset[9:12, _key(60)] = (0.6, 0.9, 0.6)
    assert bp.extract_notes(note, onset) == [(10, 41, 60, pytest.approx(0.8))]
    (only,) = bp.notes_from_activations(note, onset)
    assert only.start_s == pytest.approx(10 / bp.FRAME_RATE)
    assert only.end_s == pytest.approx(41 / bp.FRAME_RATE)


def test_gaps_shorter_than_the_patience_are_bridged():
    note, onset = _maps()
    note[10:100, _key(60)] = 0.8
    onset[10, _key(60)] = 0.9
    # A dip under the frame threshold, recovering slowly (a sharp rise would be an onset).
    quiet = bp.GAP_FRAMES - 1
    note[40 : 40 + quiet, _key(60)] = 0.1
    note[40 + quiet : 46 + quiet, _key(60)] = np.linspace(0.3, 0.8, 6)
    assert [n[:2] for n in bp.extract_notes(note, onset)] == [(10, 100)]
    note[40 + quiet, _key(60)] = 0.1  # one quiet frame more ends the note
    assert [n[:2] for n in bp.extract_notes(note, onset)] == [(10, 40)]


def test_a_wobbling_attack_gives_one_onset_but_a_reattack_two():
    note, onset = _maps()
    note[10:100, _key(67)] = 0.8
    # A slow attack: the onset head peaks, dips just under the threshold and peaks again.
    onset[8:20, _key(67)] = (0.3, 0.7, 0.81, 0.7, 0.49, 0.45, 0.55, 0.66, 0.64, 0.5, 0.3, 0.2)
    assert [n[:3] for n in bp.extract_notes(note, onset)] == [(10, 100, 67)]
    onset[60, _key(67)] = 0.9  # a re-attack well apart: the first note ends there
    assert [n[:3] for n in sorted(bp.extract_notes(note, onset))] == [
        (10, 60, 67),
        (60, 100, 67),
    ]


def test_a_weaker_neighbour_does_not_erase_a_stronger_note():
    note, onset = _maps()
    # The tail of the previous note (58) is heard re-starting as the melody steps to 57.
    note[50:90, _key(57)] = 0.85
    note[50:65, _key(58)] = 0.55
    onset[50, [_key(57), _key(58)]] = 0.9
    assert sorted(n[2] for n in bp.extract_notes(note, onset)) == [57, 58]


def test_short_notes_pitch_limits_and_min_velocity():
    note, onset = _maps()
    note[10:14, _key(60)] = 0.8  # 4 frames, 46 ms
    note[30:90, _key(84)] = 0.4
    note[30:90, _key(48)] = 0.9
    onset[[10, 30, 30], [_key(60), _key(84), _key(48)]] = 0.9

    def pitches(**options) -> list[int]:
        return [n.pitch for n in bp.notes_from_activations(note, onset, bp.NoteOptions(**options))]

    assert pitches() == [48, 84]
    assert pitches(min_note_ms=30) == [60, 48, 84]
    assert pitches(max_pitch=83) == [48]
    assert pitches(min_pitch=49) == [84]
    assert pitches(min_velocity=0.5) == [48]
    with pytest.raises(ValueError):
        pitches(min_pitch=90, max_pitch=80)
    with pytest.raises(ValueError):
        pitches(onset_threshold=1.5)


def test_melodia_trick_finds_notes_without_onsets():
    note, onset = _maps()
    note[20:70, _key(64)] = 0.7
    assert bp.extract_notes(note, onset) == []
    assert [n[:3] for n in bp.extract_notes(note, onset, melodia_trick=True)] == [(20, 70, 64)]


# --- notes -> grid ------------------------------------------------------------------------------


def _notes(*spec: tuple[float, float, int]) -> list[Note]:
    """Notes from (start, end, pitch) with times in sixteenths at TEMPO."""
    return [Note(s * STEP_S, e * STEP_S, p, 0.8) for s, e, p in spec]


def test_a_melody_goes_to_the_soprano_even_with_ringing_tails():
    # Each note rings on a little under the next one, as a release or a room does.
    notes = _notes((0.1, 5.2, 60), (4.0, 9.3, 64), (8.1, 10.1, 67), (10.0, 17.4, 65))
    grid = bp.notes_to_grid(notes, TEMPO)
    assert grid.dtype == np.int16 and grid.shape == (4, 17)
    assert row_to_notes(grid[0]) == [(0, 4, 60), (4, 8, 64), (8, 10, 67), (10, 17, 65)]
    assert (grid[1:] == REST).all()


def test_leading_silence_is_dropped_unless_an_offset_is_given():
    notes = _notes((8, 12, 60), (12, 16, 62))
    assert row_to_notes(bp.notes_to_grid(notes, TEMPO)[0]) == [(0, 4, 60), (4, 8, 62)]
    assert row_to_notes(bp.notes_to_grid(notes, TEMPO, offset_s=0)[0]) == [
        (8, 12, 60),
        (12, 16, 62),
    ]


def test_a_release_heard_as_a_new_note_is_merged_back():
    # 67 decays into the next step and the model hears it restart as 65 begins.
    notes = _notes((0, 4, 67), (4, 5, 67), (4, 8, 65), (8, 12, 64))
    grid = bp.notes_to_grid(notes, TEMPO)
    assert row_to_notes(grid[0]) == [(0, 4, 67), (4, 8, 65), (8, 12, 64)]
    assert (grid[1:] == REST).all()


def test_polyphony_is_split_by_pitch_order():
    two = _notes((0, 4, 72), (0, 8, 48), (4, 8, 74))
    grid = bp.notes_to_grid(two, TEMPO)
    assert [p for _, _, p in row_to_notes(grid[0])] == [72, 74]
    assert row_to_notes(grid[3]) == [(0, 8, 48)]
    assert (grid[1:3] == REST).all()

    chords = _notes((0, 4, 72), (0, 4, 67), (0, 4, 64), (0, 4, 48), (4, 8, 71), (4, 8, 62))
    grid = bp.notes_to_grid(chords, TEMPO)
    assert grid[:, 0].tolist() == [72, 67, 64, 48]
    assert grid[:, 4].tolist() == [71, REST, REST, 62]

    five = _notes(*((0, 4, p) for p in (72, 67, 64, 60, 48)))
    assert bp.notes_to_grid(five, TEMPO)[:, 0].tolist() == [72, 67, 64, 48]
    assert bp.notes_to_grid(five, TEMPO, voices=1)[:, 0].tolist() == [72]


def test_grid_edge_cases():
    assert bp.notes_to_grid([], TEMPO).shape == (4, 0)
    with pytest.raises(ValueError):
        bp.notes_to_grid(_notes((0, 4, 60)), 0)
    with pytest.raises(ValueError):
        bp.notes_to_grid(_notes((0, 4, 60)), TEMPO, voices=5)


# --- the real model -----------------------------------------------------------------------------


def test_scale_is_transcribed_into_the_soprano(session):
    truth = _quarters(SCALE)
    audio = render(truth, TEMPO, 44100, "flute", renderer="builtin")
    notes = bp.transcribe(audio, 44100, session=session)
    assert _recovered(truth[0], notes) >= 0.9
    grid = bp.notes_to_grid(notes, TEMPO)
    assert (grid[1:] == REST).all()
    got = [(onset, pitch) for onset, _, pitch in row_to_notes(grid[0])]
    assert got == [(onset, pitch) for onset, _, pitch in row_to_notes(truth[0])]
    # Stereo input at another rate is downmixed and resampled to the same answer.
    stereo = np.stack([audio, audio])
    assert bp.transcribe(stereo, 44100, session=session) == notes


def test_organ_harmonics_are_extra_notes_that_min_velocity_removes(session):
    truth = _quarters(SCALE)
    audio = render(truth, TEMPO, 44100, "organ", renderer="builtin")
    notes = bp.transcribe(audio, 44100, session=session)
    assert _recovered(truth[0], notes) >= 0.9
    assert {n.pitch - 24 for n in notes if n.velocity < 0.5} <= set(SCALE)
    confident = bp.transcribe(audio, 44100, bp.NoteOptions(min_velocity=0.5), session=session)
    grid = bp.notes_to_grid(confident, TEMPO)
    assert [p for _, _, p in row_to_notes(grid[0])] == list(SCALE)
    assert (grid[1:] == REST).all()


def test_two_voices_come_out_in_pitch_order(session):
    upper = (76, 74, 72, 74, 76, 77, 79, 76)
    lower = (60, 55, 57, 53, 48, 50, 55, 48)
    truth = _quarters(upper, lower)
    audio = render(truth, TEMPO, 44100, "flute", renderer="builtin")
    notes = bp.transcribe(audio, 44100, session=session)
    assert _recovered(truth[0], notes) >= 0.9 and _recovered(truth[3], notes) >= 0.9
    grid = bp.notes_to_grid(notes, TEMPO)
    assert [p for _, _, p in row_to_notes(grid[0])] == list(upper)
    assert [p for _, _, p in row_to_notes(grid[3])] == list(lower)
    assert (grid[1:3] == REST).all()


def test_silence_and_noise_give_no_notes(session, tmp_path):
    silent = tmp_path / "silent.wav"
    sf.write(silent, np.zeros(3 * 22050, np.float32), 22050)
    assert bp.transcribe(np.zeros(3 * 44100, np.float32), 44100, session=session) == []
    with pytest.raises(InputError, match=r"no notes detected in .*silent\.wav"):
        bp.transcribe_file(silent, TEMPO, session=session)

    noise = np.random.default_rng(0).normal(0, 0.1, 5 * 22050).clip(-1, 1).astype(np.float32)
    # The model hears a few brief, unsure notes in white noise; min_velocity drops them.
    heard = bp.transcribe(noise, 22050, session=session)
    assert len(heard) <= 5 and all(n.velocity < 0.5 for n in heard)
    noisy = tmp_path / "noise.flac"
    sf.write(noisy, noise, 22050)
    with pytest.raises(InputError, match=r"no notes detected in .*noise\.flac"):
        bp.transcribe_file(noisy, TEMPO, options=bp.NoteOptions(min_velocity=0.5), session=session)


def test_unreadable_files_name_themselves(tmp_path):
    # The file is checked before the model is used, so no model is needed here.
    bad = tmp_path / "broken.wav"
    bad.write_bytes(b"RIFF not really a wave file")
    with pytest.raises(InputError, match=r"broken\.wav"):
        bp.transcribe_file(bad, TEMPO, session=_CentreProbe())
    with pytest.raises(InputError, match=r"missing\.wav"):
        bp.transcribe_file(tmp_path / "missing.wav", TEMPO, session=_CentreProbe())


def test_a_minute_of_audio_streams_in_bounded_time_and_memory(session, tmp_path):
    line = SCALE[:-1] * 7  # 98 quarter notes at 98 bpm: one minute
    truth = _quarters(line)
    path = tmp_path / "long.wav"
    sf.write(path, render(truth, 98.0, 44100, "flute", renderer="builtin"), 44100)
    tracemalloc.start()
    started = time.perf_counter()
    try:
        grid = bp.transcribe_file(path, 98.0, session=session)
        seconds = time.perf_counter() - started
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert [p for _, _, p in row_to_notes(grid[0])] == list(line)
    assert (grid[1:] == REST).all()
    # The decoded minute alone would be 10 MB at 44.1 kHz; activations take ≈ 4 MB.
    assert peak < 40e6, f"peak traced memory {peak / 1e6:.1f} MB"
    assert seconds < 20, f"took {seconds:.1f} s"
