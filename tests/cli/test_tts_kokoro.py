"""``avtool tts`` with Kokoro voices: listing, voice names, blends, bad input, determinism."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from typer.testing import CliRunner

from avtool.cli.main import app

runner = CliRunner()
pytestmark = [
    pytest.mark.usefixtures("use_voice_cache"),
    pytest.mark.skipif(
        importlib.util.find_spec("avtool_kokoro_data") is None,
        reason="Kokoro not assembled (make install)",
    ),
]


def tts(*args: str):
    return runner.invoke(app, ["--quiet", "tts", *args])


def test_list_voices_shows_kokoro_voices_with_gender_and_accent():
    result = tts("--list-voices")
    assert result.exit_code == 0, result.output
    lines = {line.split()[0]: line.split() for line in result.stdout.splitlines()[1:]}
    assert lines["am_adam"][1:] == ["kokoro", "male", "us", "24000", "Apache-2.0", "yes"]
    assert lines["bf_emma"][2:4] == ["female", "gb"]
    assert lines["piper-joe-medium"][2] == "male"
    assert sum(row[1] == "kokoro" for row in lines.values()) == 28
    as_json = runner.invoke(app, ["--json", "tts", "--list-voices"])
    rows = json.loads(as_json.stdout)
    assert {"voice": "af_heart", "installed": True}.items() <= rows[6].items() or any(
        r["voice"] == "af_heart" and r["installed"] for r in rows
    )


def test_kokoro_voice_is_deterministic_and_streams(tmp_path: Path):
    out = tmp_path / "a.wav"
    first = tts(
        "Bin blue now.", "--voice", "am_adam", "-o", str(out), "--timings", str(tmp_path / "t.json")
    )
    assert first.exit_code == 0, first.output
    info = sf.info(out)
    assert info.samplerate == 24000 and 0.5 < info.duration < 3.0
    side = json.loads(Path(f"{out}.json").read_text())
    assert side["model"]["name"] == "kokoro-am_adam" and side["model"]["voice"] == "am_adam"
    assert len(side["model"]["packs_sha256"]["am_adam"]) == 64
    words = json.loads((tmp_path / "t.json").read_text())["words"]
    assert [w["word"] for w in words] == ["Bin", "blue", "now"]
    assert all(w["start"] < w["end"] for w in words)
    again = tmp_path / "again.wav"
    assert tts("Bin blue now.", "--voice", "am_adam", "-o", str(again)).exit_code == 0
    assert again.read_bytes() == out.read_bytes()  # same text and voice: the same bytes
    streamed = tts("Bin blue now.", "--voice", "kokoro-am_adam", "-o", "-")
    assert streamed.exit_code == 0
    data = np.frombuffer(streamed.stdout_bytes[44:], "<i2").astype(int)
    assert streamed.stdout_bytes[:4] == b"RIFF"
    # the stream rounds to int16 itself; soundfile's file writer may differ by one step
    assert np.abs(data - sf.read(out, dtype="int16")[0]).max() <= 1


def test_blend_is_recorded(tmp_path: Path):
    out = tmp_path / "b.wav"
    result = tts("Hi.", "--voice", "af_heart:3,am_adam:1", "-o", str(out))
    assert result.exit_code == 0, result.output
    model = json.loads(Path(f"{out}.json").read_text())["model"]
    assert model["voice"] == "af_heart:0.75,am_adam:0.25" and model["name"] == "kokoro-v1.0"


@pytest.mark.parametrize(
    ("voice", "message"),
    [("am_adamm", "close names: am_adam"), ("af_heart:x,am_adam", "not a number")],
)
def test_bad_voice_exits_2_and_writes_nothing(tmp_path: Path, voice: str, message: str):
    out = tmp_path / "x.wav"
    result = tts("Hello.", "--voice", voice, "-o", str(out))
    assert result.exit_code == 2 and message in result.output
    assert not out.exists()
