"""Issue 18, bad-input items 8 and 10 for the video readers (``lipread``, ``v2a``): too-short,
empty and truncated videos are refused (or warned about) before any model loads, in one line
naming the file; ``--face-index`` beyond the faces shown says so. Inputs are made in tmp_path."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from avtool.cli.main import app

runner = CliRunner()


def _error_line(result) -> str:
    lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, result.stderr
    return lines[0]


@pytest.fixture(scope="module")
def face_frames() -> np.ndarray:
    """The astronaut photo cropped to her face (192x192, the face 90 px wide: one the video
    detector finds), as 30 frames with a slight sway."""
    data = pytest.importorskip("skimage.data")
    still = np.ascontiguousarray(data.astronaut()[30:222, 120:312])
    return np.stack([np.roll(still, i % 3, axis=1) for i in range(30)])


def _video(path: Path, frames: np.ndarray) -> Path:
    from avtool.io.video import VideoWriter

    height, width = frames[0].shape[:2]
    with VideoWriter(path, 25.0, (width, height), preset="ultrafast") as writer:
        for frame in frames:
            writer.write(frame)
    return path


@pytest.fixture(scope="module")
def tiny_lipnet(tmp_path_factory) -> Path:
    from avtool.models.lipnet import build, save
    from avtool.models.lipnet.model import LipNetConfig

    torch.manual_seed(0)
    config = LipNetConfig.debug()
    return save(build(config).state_dict(), config, tmp_path_factory.mktemp("m") / "tiny.pt")


def _run(command: str, *args: str):
    return runner.invoke(app, ["--quiet", "--accept-license", command, *args])


def _never_load(monkeypatch) -> None:
    """Fail the test if a model would load: a bad video must be refused before that."""

    def refuse(*args, **kwargs):
        raise AssertionError("a model was loaded for an input that should have been refused")

    import avtool.tasks.lipread
    import avtool.tasks.v2a

    monkeypatch.setattr(avtool.tasks.lipread, "load_reader", refuse)
    monkeypatch.setattr(avtool.tasks.v2a, "load_model", refuse)


@pytest.mark.parametrize("command", ["lipread", "v2a"])
def test_8_still_image_and_one_frame_video_are_refused(command, tmp_path, face_frames, monkeypatch):
    _never_load(monkeypatch)
    still = tmp_path / "still.png"
    Image.fromarray(face_frames[0]).save(still)
    one = _video(tmp_path / "one.mp4", face_frames[:1])
    task = "lip reading" if command == "lipread" else "v2a"
    for video in (still, one):
        out = tmp_path / "out.txt" if command == "lipread" else tmp_path / "out.wav"
        result = _run(command, str(video), "-o", str(out))
        assert result.exit_code == 2, result.output
        line = _error_line(result)
        assert f"{video}: 1 video frame (0.04 s); {task} needs at least 5 frames" in line
        assert not out.exists() and not list(tmp_path.glob("out*"))


@pytest.mark.parametrize("command", ["lipread", "v2a"])
def test_10_empty_video_is_refused_before_the_model_loads(command, tmp_path, monkeypatch):
    _never_load(monkeypatch)
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"not a video\n" * 10)
    for video, text in ((empty, "empty file (0 bytes)"), (junk, "ffmpeg cannot open it")):
        result = _run(command, str(video), "-o", str(tmp_path / "out.x"))
        assert result.exit_code == 2 and f"{video}: {text}" in _error_line(result)
        assert "\n  " not in result.stderr  # no ffmpeg log lines
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty.mp4", "junk.mp4"]


def test_8_truncated_video_too_short_is_refused_naming_the_header(
    tmp_path, face_frames, monkeypatch
):
    _never_load(monkeypatch)
    whole = _video(tmp_path / "whole.mp4", np.concatenate([face_frames] * 3))  # 90 frames
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 10])
    result = _run("lipread", str(cut), "-o", str(tmp_path / "cut.txt"))
    assert result.exit_code == 2
    line = _error_line(result)
    assert f"{cut}: " in line and "of the 90 its header declares (truncated?)" in line
    assert not (tmp_path / "cut.txt").exists()


def test_8_truncated_video_is_read_with_a_warning(tmp_path, face_frames, tiny_lipnet):
    whole = _video(tmp_path / "whole.mp4", face_frames)
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size * 6 // 10])
    out = tmp_path / "cut.txt"
    result = runner.invoke(app, ["--accept-license", "lipread", str(cut), "-o", str(out),
                                 "--model", str(tiny_lipnet), "--decoder", "greedy"])  # fmt: skip
    assert result.exit_code == 0, result.output
    warning = next(line for line in result.stderr.splitlines() if "truncated?" in line)
    assert f"{cut}: truncated? its header says 1.20 s (30 frames)" in warning
    meta = json.loads((tmp_path / "cut.txt.json").read_text())
    assert any("truncated?" in w for w in meta["warnings"])


def test_8_a_batch_goes_on_past_a_bad_video(tmp_path, face_frames, tiny_lipnet):
    good = _video(tmp_path / "good.mp4", face_frames[:10])
    still = tmp_path / "still.png"
    Image.fromarray(face_frames[0]).save(still)
    report = tmp_path / "report.jsonl"
    result = _run("lipread", str(still), str(good), "-o", str(tmp_path / "{stem}.txt"),
                  "--model", str(tiny_lipnet), "--decoder", "greedy",
                  "--report", str(report))  # fmt: skip
    assert result.exit_code == 1
    rows = {json.loads(line)["id"]: json.loads(line) for line in report.read_text().splitlines()}
    assert rows["good"]["status"] == "ok" and rows["still"]["status"] == "failed"
    assert "1 video frame" in rows["still"]["error"]
    assert (tmp_path / "good.txt").is_file() and not (tmp_path / "still.txt").exists()


def test_10_face_index_beyond_the_faces_shown(tmp_path, face_frames, tiny_lipnet):
    clip = _video(tmp_path / "one_face.mp4", face_frames[:10])
    out = tmp_path / "x.txt"
    result = _run("lipread", str(clip), "-o", str(out), "--model", str(tiny_lipnet),
                  "--face-index", "3")  # fmt: skip
    assert result.exit_code == 2
    line = _error_line(result)
    assert f"{clip}: --face-index 3 is out of range: the video shows 1 face (index 0" in line
    assert not out.exists() and not (tmp_path / "x.txt.json").exists()


def test_7_v2a_audio_with_nan_samples_names_the_audio_file(tmp_path, face_frames):
    import soundfile as sf

    from tests.tasks.test_v2a import save_debug_model

    model = save_debug_model(tmp_path, audio=True)
    clip = _video(tmp_path / "clip.mp4", face_frames[:10])
    noisy = tmp_path / "nan.wav"
    samples = (0.1 * np.sin(np.arange(8000) / 5)).astype(np.float32)
    samples[50] = np.inf
    sf.write(noisy, samples, 16000, subtype="FLOAT")
    out = tmp_path / "speech.wav"
    result = _run("v2a", str(clip), "--audio", str(noisy), "-o", str(out), "--model", str(model),
                  "--vocoder", "griffin-lim", "--iters", "1")  # fmt: skip
    assert result.exit_code == 2
    assert f"{noisy}: 1 NaN or infinite samples" in _error_line(result)
    assert not out.exists() and not (tmp_path / "speech.wav.json").exists()
