"""``avtool music`` with the shipped chorale models: MIDI/audio out, prompts, harmonisation."""

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from typer.testing import CliRunner

from avtool.cli.main import app
from avtool.datasets.chorales import HOLD, REST, VOICE_RANGES, VOICES
from avtool.io.midi import read_midi, write_midi

runner = CliRunner()


def music(*args: str):
    return runner.invoke(app, ["--quiet", *args])


def test_sixteen_bars_in_range_with_sidecar(tmp_path: Path):
    out = tmp_path / "piece.mid"
    result = music("music", "-o", str(out), "--bars", "4", "--key", "G major")
    assert result.exit_code == 0, result.stderr
    voices, _, metre = read_midi(out)
    assert voices.shape[0] == 4 and abs(voices.shape[1] - 64) <= 4 and metre == "4/4"
    for row, name in zip(voices, VOICES, strict=True):
        notes = row[row >= 0]
        low, high = VOICE_RANGES[name]
        assert notes.size and low <= notes.min() and notes.max() <= high
    side = json.loads(Path(f"{out}.json").read_text())
    assert side["model"]["name"] == "music-transformer-chorales" and side["key"] == "G major"
    assert len(side["model"]["sha256"]) == 64


def test_same_seed_same_midi_and_batch(tmp_path: Path):
    a, b = tmp_path / "a.mid", tmp_path / "b.mid"
    for path in (a, b):
        assert music("--seed", "4", "music", "--bars", "2", "-o", str(path)).exit_code == 0
    assert a.read_bytes() == b.read_bytes()
    result = music("--seed", "4", "music", "--bars", "2", "-n", "3", "-o", str(tmp_path / "p.mid"))
    assert result.exit_code == 0
    names = sorted(p.name for p in tmp_path.glob("p-*.mid"))
    assert names == ["p-0001.mid", "p-0002.mid", "p-0003.mid"]
    assert (tmp_path / "p-0001.mid").read_bytes() == a.read_bytes()  # piece i uses seed + i


def test_audio_rendering(tmp_path: Path):
    result = music(
        "music", "--bars", "2", "--tempo", "120", "-o", str(tmp_path / "x.mid"),
        "--audio", str(tmp_path / "x.wav"),
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    info = sf.info(tmp_path / "x.wav")
    assert info.samplerate == 44100 and 3.5 < info.duration < 6.0  # 2 bars at 120 bpm = 4 s


def _melody(path: Path) -> np.ndarray:
    soprano = []
    for pitch in (67, 69, 71, 72, 74, 72, 71, 69, 67, 67, 66, 67):  # G major, quarter notes
        soprano += [pitch, HOLD, HOLD, HOLD]
    voices = np.full((4, len(soprano)), REST, dtype=np.int16)
    voices[0] = soprano
    write_midi(path, voices, 90)
    return voices[0]


def test_harmonisation_keeps_the_melody(tmp_path: Path):
    melody = _melody(tmp_path / "melody.mid")
    out = tmp_path / "harm.mid"
    assert (
        music("music", "--harmonize", str(tmp_path / "melody.mid"), "-o", str(out)).exit_code == 0
    )
    voices, _, _ = read_midi(out)
    np.testing.assert_array_equal(voices[0, : melody.size], melody)
    assert all((voices[v] >= 0).any() for v in (1, 2, 3))  # alto, tenor and bass were filled
    assert json.loads(Path(f"{out}.json").read_text())["key"] == "G major"  # estimated


def test_prompt_is_continued_verbatim(tmp_path: Path):
    _melody(tmp_path / "prompt.mid")
    prompt, _, _ = read_midi(tmp_path / "prompt.mid")
    out = tmp_path / "cont.mid"
    result = music("music", "--prompt", str(tmp_path / "prompt.mid"), "--bars", "2", "-o", str(out))
    assert result.exit_code == 0, result.stderr
    voices, _, _ = read_midi(out)
    np.testing.assert_array_equal(voices[:, : prompt.shape[1]], prompt)
    assert voices.shape[1] >= prompt.shape[1] + 28


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["--bars", "0"], 2, "must be 1..256"),
        (["--key", "H major"], 2, "H major"),
        (["--model", "nope"], 3, "avtool models list"),
        (["-o", "x.txt"], 2, ".mid"),
    ],
)
def test_bad_options(tmp_path: Path, monkeypatch, args, code, message):
    monkeypatch.chdir(tmp_path)
    result = music("music", *args)
    assert result.exit_code == code, result.stderr
    assert message in result.stderr
    assert not list(tmp_path.iterdir())


def test_bad_prompts(tmp_path: Path):
    empty = tmp_path / "empty.mid"
    empty.write_bytes(b"")
    result = music("music", "--prompt", str(empty), "-o", str(tmp_path / "o.mid"))
    assert result.exit_code == 2 and "empty.mid" in result.stderr
    silence = tmp_path / "silence.wav"
    sf.write(silence, np.zeros(22050, np.float32), 22050)
    result = music("music", "--prompt", str(silence), "-o", str(tmp_path / "o.mid"))
    assert result.exit_code == 2 and "no notes" in result.stderr
    assert not (tmp_path / "o.mid").exists()


def test_avoid_parallels_writes_none(tmp_path: Path):
    from avtool.metrics.music import parallel_motion

    out = tmp_path / "clean.mid"
    result = music("music", "--bars", "8", "--avoid-parallels", "-o", str(out))
    assert result.exit_code == 0, result.stderr
    voices, _, _ = read_midi(out)
    assert parallel_motion(voices) == (0, 0)


def test_audio_prompt_is_transcribed_and_continued(tmp_path: Path):
    pytest.importorskip("onnxruntime")
    from avtool.io.audio import save_audio
    from avtool.io.synth import render
    from avtool.models import basic_pitch

    try:
        basic_pitch.model_path()
    except Exception:
        pytest.skip("basic-pitch is not installed")
    voices = np.full((4, 32), REST, dtype=np.int16)
    voices[0] = [
        p if i % 4 == 0 else HOLD
        for i, p in enumerate(np.repeat([67, 71, 74, 72, 71, 69, 67, 67], 4))
    ]
    audio = render(voices, 90, 22050, "flute", renderer="builtin")
    save_audio(tmp_path / "hum.wav", audio, 22050)
    out = tmp_path / "cont.mid"
    result = music("music", "--prompt", str(tmp_path / "hum.wav"), "--bars", "2", "-o", str(out))
    assert result.exit_code == 0, result.stderr
    got, _, _ = read_midi(out)
    notes = got[0][got[0] >= 0][:8]
    assert list(notes[:3]) == [67, 71, 74]  # the transcribed prompt opens the piece
    assert got.shape[1] >= 32 + 32
