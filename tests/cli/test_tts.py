"""``avtool tts`` end to end through the CLI: outputs, stdout streaming, batches, bad input."""

import io
import json
import os
from pathlib import Path

import pytest
import soundfile as sf
from typer.testing import CliRunner

from avtool.cli.main import app

runner = CliRunner()
pytestmark = pytest.mark.usefixtures("use_voice_cache")


def tts(*args: str, **kwargs):
    return runner.invoke(app, ["--quiet", *args], **kwargs)


def test_writes_audio_sidecar_and_timings(tmp_path: Path):
    out = tmp_path / "out" / "hello.wav"
    result = tts("tts", "Hello there.", "-o", str(out), "--timings", str(tmp_path / "t.json"))
    assert result.exit_code == 0, result.stderr
    assert sf.info(out).samplerate == 22050
    side = json.loads(Path(f"{out}.json").read_text())
    assert side["model"]["name"] == "piper-joe-medium" and side["seed"] == 0
    assert json.loads((tmp_path / "t.json").read_text())["words"][0]["word"] == "Hello"


def test_stdout_streams_a_wav(tmp_path: Path):
    result = tts("tts", "Streaming to a pipe.", "-o", "-")
    assert result.exit_code == 0, result.stderr
    data = result.stdout_bytes
    assert data[:4] == b"RIFF" and data[8:12] == b"WAVE"
    pcm = data[44:]
    assert len(pcm) % 2 == 0 and 0.8 < len(pcm) / 2 / 22050 < 4
    assert not list(tmp_path.iterdir())


def test_cli_seed_is_byte_identical(tmp_path: Path):
    paths = [tmp_path / f"{i}.wav" for i in range(3)]
    for path, seed in zip(paths, ("3", "3", "4"), strict=True):
        assert tts("--seed", seed, "tts", "Reproducible speech.", "-o", str(path)).exit_code == 0
    assert paths[0].read_bytes() == paths[1].read_bytes() != paths[2].read_bytes()


def test_text_file_and_stdin(tmp_path: Path):
    text = tmp_path / "speech.txt"
    text.write_text("Read from a file.\n", encoding="utf-8")
    assert tts("tts", "-f", str(text), "-o", str(tmp_path / "{stem}.flac")).exit_code == 0
    assert sf.info(tmp_path / "speech.flac").format == "FLAC"
    result = tts("tts", "-f", "-", "-o", str(tmp_path / "in.wav"), input="From standard input.")
    assert result.exit_code == 0 and (tmp_path / "in.wav").stat().st_size > 1000


def test_manifest_batch_keeps_going_and_reports(tmp_path: Path):
    manifest = tmp_path / "lines.csv"
    manifest.write_text(
        "id,text,speed\nfirst,The first line.,\nempty,   ,\nthird,The third line is faster.,1.5\n",
        encoding="utf-8",
    )
    report = tmp_path / "status.jsonl"
    result = tts(
        "--json",
        "tts",
        "-m",
        str(manifest),
        "-o",
        str(tmp_path / "out/{id}.wav"),
        "--report",
        str(report),
    )
    assert result.exit_code == 1
    summary = json.loads(result.stdout)
    assert (summary["ok"], summary["failed"]) == (2, 1)
    lines = [json.loads(x) for x in report.read_text().splitlines()]
    assert [x["status"] for x in lines] == ["ok", "failed", "ok"]
    assert "lines.csv:3" in lines[1]["error"]
    assert sorted(os.listdir(tmp_path / "out")) == [
        "first.wav",
        "first.wav.json",
        "third.wav",
        "third.wav.json",
    ]
    third = json.loads((tmp_path / "out/third.wav.json").read_text())
    assert third["options"]["speed"] == 1.5


def test_refuses_to_overwrite_silently(tmp_path: Path):
    out = tmp_path / "a.wav"
    out.write_bytes(b"keep me")
    result = tts("tts", "New words.", "-o", str(out))
    assert result.exit_code == 2 and "--overwrite" in result.stderr
    assert out.read_bytes() == b"keep me"
    assert tts("tts", "New words.", "-o", str(out), "--skip-existing").exit_code == 0
    assert out.read_bytes() == b"keep me"
    assert tts("tts", "New words.", "-o", str(out), "--overwrite").exit_code == 0
    assert out.read_bytes()[:4] == b"RIFF"


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["tts", "   "], 2, "empty text"),
        (["tts"], 2, "nothing to say"),
        (["tts", "x", "--voice", "no-such-voice"], 3, "avtool models list"),
        (["tts", "x", "--speed", "0"], 2, "--speed"),
        (["tts", "x", "--sample-rate", "10"], 2, "--sample-rate"),
        (["tts", "a", "b", "-o", "same.wav"], 2, "several items would write"),
        (["tts", "x", "-o", "x.aiff"], 2, "unknown audio format"),
        (["tts", "x", "-o", "{nope}.wav"], 2, "unknown field"),
    ],
)
def test_bad_input_exit_codes(tmp_path: Path, monkeypatch, args, code, message):
    monkeypatch.chdir(tmp_path)
    result = tts(*args)
    assert result.exit_code == code, result.stderr
    assert message in result.stderr
    assert not [p for p in tmp_path.iterdir() if p.name != "status.jsonl"]


def test_non_utf8_text_file_names_file_and_line(tmp_path: Path):
    bad = tmp_path / "latin1.txt"
    bad.write_bytes("first line\ncaf\xe9 au lait\n".encode("latin-1"))
    result = tts("tts", "-f", str(bad), "-o", str(tmp_path / "x.wav"))
    assert result.exit_code == 2
    assert "latin1.txt:2: not UTF-8" in result.stderr
    assert not (tmp_path / "x.wav").exists()


def test_unwritable_output_folder_exits_4(tmp_path: Path):
    blocker = tmp_path / "file"
    blocker.write_text("in the way")
    result = tts("tts", "Hello.", "-o", str(blocker / "out.wav"))
    assert result.exit_code == 4
    assert "out.wav" in result.stderr


def test_second_voice_and_json_summary(tmp_path: Path):
    out = tmp_path / "heart.wav"
    result = tts("--json", "tts", "A different voice.", "--voice", "hibari-heart", "-o", str(out))
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["ok"] == 1
    audio, rate = sf.read(io.BytesIO(out.read_bytes()))
    assert rate == 24000 and audio.size > 0


def test_text_files_from_a_folder_and_a_glob(tmp_path: Path):
    chapters = tmp_path / "chapters"
    chapters.mkdir()
    for name in ("one", "two"):
        (chapters / f"{name}.txt").write_text(f"Chapter {name}.", encoding="utf-8")
    (chapters / "notes.csv").write_text("ignored", encoding="utf-8")
    out = tmp_path / "out"
    assert tts("tts", "-f", str(chapters), "-o", f"{out}/{{stem}}.wav").exit_code == 0
    assert sorted(p.name for p in out.glob("*.wav")) == ["one.wav", "two.wav"]
    result = tts("tts", "-f", str(chapters / "*.md"), "-o", f"{out}/{{stem}}.wav")
    assert result.exit_code == 2 and "matches no input files" in result.stderr


def _face_photo(folder: Path) -> Path:
    skimage_data = pytest.importorskip("skimage.data")
    from PIL import Image

    path = folder / "astronaut.png"
    Image.fromarray(skimage_data.astronaut()).save(path)
    return path


def test_face_makes_a_talking_head_video(tmp_path: Path, monkeypatch, use_voice_cache):
    monkeypatch.setenv("AVTOOL_ACCEPT_LICENSE", "1")
    face = _face_photo(tmp_path)
    out = tmp_path / "hello.mp4"
    result = tts(
        "tts",
        "Hello there.",
        "--face",
        str(face),
        "-o",
        str(out),
        "--size",
        "160x160",
        "--fps",
        "20",
    )
    assert result.exit_code == 0, result.output
    from avtool.io.video import probe

    info = probe(out)
    assert (info.width, info.fps, info.audio_codec) == (160, 20.0, "aac")
    meta = json.loads((tmp_path / "hello.mp4.json").read_text())
    assert meta["input"]["drive"]["source"] == "tts"  # the voice's phoneme timings drove the mouth
    # no --voice: a Kokoro voice chosen from the face (the astronaut is a woman)
    assert meta["speech"]["voice_from_face"]["gender"] == "female"
    assert meta["speech"]["model"]["family"] == "kokoro"
    assert abs(meta["video"]["duration"] - meta["speech"]["audio"]["duration"]) <= 1 / 20


def test_face_takes_talkinghead_mouth_and_crop(tmp_path: Path, monkeypatch, use_voice_cache):
    monkeypatch.setenv("AVTOOL_ACCEPT_LICENSE", "1")
    out = tmp_path / "drawn.mp4"
    face = _face_photo(tmp_path)
    options = ["--mouth", "drawn", "--crop", "face", "--size", "96x96"]
    result = tts("tts", "Hi.", "--voice", "piper-joe-medium", "--face", str(face), *options,
                 "-o", str(out))  # fmt: skip
    assert result.exit_code == 0, result.output
    meta = json.loads((tmp_path / "drawn.mp4.json").read_text())
    assert (meta["options"]["mouth"], meta["options"]["crop"]) == ("drawn", "face")
    bad = tts("tts", "Hi.", "--face", str(face), "--mouth", "painted",
              "-o", str(tmp_path / "x.mp4"))  # fmt: skip
    assert bad.exit_code == 2 and "--mouth" in bad.output


def test_face_refuses_audio_outputs_and_faceless_photos(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("AVTOOL_ACCEPT_LICENSE", "1")
    face = _face_photo(tmp_path)
    wav = tts("tts", "Hi.", "--face", str(face), "-o", str(tmp_path / "hi.wav"))
    assert wav.exit_code == 2 and "video" in wav.output
    from PIL import Image

    wall = tmp_path / "wall.png"
    Image.new("RGB", (100, 100), (90, 90, 90)).save(wall)
    none = tts("tts", "Hi.", "--face", str(wall), "-o", str(tmp_path / "hi.mp4"))
    assert none.exit_code == 2 and "wall.png" in none.output
