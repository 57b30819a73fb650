"""``avtool talkinghead`` as a batch (inputs, folders, manifest; bad rows fail alone) and with
speech on stdin (``avtool tts ... -o - | avtool talkinghead --audio - ...``)."""

from __future__ import annotations

import json

import pytest
from PIL import Image
from typer.testing import CliRunner

from avtool.cli.main import app
from avtool.io.audio import load_audio, save_audio, wav_bytes

skimage_data = pytest.importorskip("skimage.data")
runner = CliRunner()


@pytest.fixture
def files(grid_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("AVTOOL_ACCEPT_LICENSE", "1")
    face = tmp_path / "me.png"
    Image.fromarray(skimage_data.astronaut()).resize((256, 256)).save(face)
    audio, rate = load_audio(grid_dir / "lbax4n.mpg", sample_rate=16000, start=0.6, duration=0.6)
    for name in ("a", "b"):
        save_audio(tmp_path / f"{name}.wav", audio, rate)
    return face, audio, rate, tmp_path


def test_manifest_rows_run_and_bad_rows_fail_alone(files):
    face, _, _, folder = files
    manifest = folder / "pairs.csv"
    manifest.write_text(f'input,face,id\na.wav,{face.name},first\nb.wav,,second\n"c.wav,x,y\n')
    report = folder / "status.jsonl"
    result = runner.invoke(app, ["talkinghead", "-m", str(manifest), "-o",
                                 str(folder / "out" / "{id}.mp4"), "--report", str(report),
                                 "--still"])  # fmt: skip
    assert result.exit_code == 1, result.output
    rows = [json.loads(line) for line in report.read_text().splitlines()]
    assert [r["status"] for r in rows] == ["ok", "failed", "failed"]
    assert rows[1]["error"] == f"{manifest}:3: no face: give --face or a face column"
    assert rows[2]["error"] == f"{manifest}:4: unterminated quote"
    assert sorted(p.name for p in (folder / "out").iterdir()) == ["first.mp4", "first.mp4.json"]


def test_audio_inputs_with_one_face_and_a_template(files):
    face, _, _, folder = files
    result = runner.invoke(app, ["talkinghead", "--face", str(face), str(folder / "a.wav"),
                                 str(folder / "b.wav"), "-o", str(folder / "v" / "{stem}.mp4"),
                                 "--still", "--json"])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["ok"] == 2
    assert (folder / "v" / "a.mp4").stat().st_size > 0 and (folder / "v" / "b.mp4").is_file()


def test_speech_from_stdin(files):
    face, audio, rate, folder = files
    out = folder / "piped.mp4"
    result = runner.invoke(
        app,
        ["talkinghead", "--face", str(face), "--audio", "-", "-o", str(out), "--still"],
        input=wav_bytes(audio, rate),
    )
    assert result.exit_code == 0, result.output
    sidecar = json.loads((folder / "piped.mp4.json").read_text())
    assert sidecar["input"]["audio"] == "-"
    assert "avtool-stdin" not in result.output and "stdin.wav" not in result.output


def test_empty_stdin_is_a_usage_error(files):
    face, _, _, folder = files
    result = runner.invoke(
        app, ["talkinghead", "--face", str(face), "-a", "-", "-o", str(folder / "x.mp4")], input=b""
    )
    assert result.exit_code == 2 and "no audio on standard input" in result.output
    assert not (folder / "x.mp4").exists()
