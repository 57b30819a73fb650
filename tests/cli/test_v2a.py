"""``avtool v2a`` and ``avtool eval v2a`` through the CLI (tiny random models, real GRID video)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from avtool.cli.main import app
from tests.tasks.test_v2a import save_debug_model

runner = CliRunner()


def v2a(*args: str):
    return runner.invoke(app, ["--quiet", "--accept-license", "v2a", *args])


def test_help_lists_the_options() -> None:
    result = runner.invoke(app, ["v2a", "--help"])
    assert result.exit_code == 0
    for option in ("--audio", "--audio-from-video", "--mel", "--vocoder", "--chunk-frames"):
        assert option in result.stdout


def test_video_to_wav_and_mel(grid_dir: Path, tmp_path: Path) -> None:
    model = save_debug_model(tmp_path)
    out, mel = tmp_path / "speech.wav", tmp_path / "speech.npz"
    result = v2a(str(grid_dir / "lrwp9a.mpg"), "-o", str(out), "--mel", str(mel),
                 "--model", str(model), "--iters", "2")  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert out.stat().st_size > 40000 and mel.is_file()
    meta = json.loads(out.with_name("speech.wav.json").read_text())
    assert meta["task"] == "v2a" and meta["mel_output"] == str(mel)
    # An existing output is refused unless --overwrite.
    again = v2a(str(grid_dir / "lrwp9a.mpg"), "-o", str(out), "--model", str(model))
    assert again.exit_code == 2 and "--overwrite" in again.stderr


def test_bad_input_exit_codes(grid_dir: Path, tmp_path: Path) -> None:
    model = save_debug_model(tmp_path)
    missing = v2a(str(tmp_path / "nope.mp4"), "--model", str(model))
    assert missing.exit_code == 2 and "nope.mp4" in missing.stderr
    # Audio given to a video-only model: a model error (3), before any output exists.
    out = tmp_path / "x.wav"
    wrong = v2a(str(grid_dir / "bbaf2n.mpg"), "-o", str(out), "--model", str(model),
                "--audio", str(grid_dir / "bbaf2n.mpg"))  # fmt: skip
    assert wrong.exit_code == 3 and "video-only model" in wrong.stderr
    assert not out.exists()
    unknown = v2a(str(grid_dir / "bbaf2n.mpg"), "--model", "no-such-model")
    assert unknown.exit_code == 3


def test_eval_v2a_scores_real_clips(grid_dir: Path, grid_s1_dir: Path, tmp_path: Path) -> None:
    pytest.importorskip("pesq")
    pytest.importorskip("pystoi")
    model = save_debug_model(tmp_path)
    av = save_debug_model(tmp_path, audio=True)
    out = tmp_path / "eval.json"
    result = runner.invoke(app, ["--quiet", "--accept-license", "eval", "v2a", "--seen",
                                 str(grid_s1_dir), "--limit", "1", "--model", str(model),
                                 "--av-model", str(av), "--vocoder", "griffin-lim",
                                 "-o", str(out)])  # fmt: skip
    assert result.exit_code == 0, result.stderr
    data = json.loads(out.read_text())
    rows = data["sets"]["seen (s1 test)"]
    # Every mel variant is labelled with its vocoder; the noisy input is not vocoded.
    assert {"resynth (griffin-lim)", "v2a (griffin-lim)", "av2a video-only (griffin-lim)",
            "av2a audio-visual 0 dB (griffin-lim)", "noisy input 5 dB"} <= set(rows)  # fmt: skip
    # Griffin-Lim of the real mel is intelligible; a random model's output is not.
    assert rows["resynth (griffin-lim)"]["stoi"] > 0.8 > rows["v2a (griffin-lim)"]["stoi"]
    assert rows["noisy input 0 dB"]["stoi"] < rows["noisy input 5 dB"]["stoi"]
    v2a_row = rows["v2a (griffin-lim)"]
    assert 0 <= v2a_row["wer"] <= 1.5 and v2a_row["clips"] == 1
