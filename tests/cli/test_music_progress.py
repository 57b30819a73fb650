"""``avtool music``: a progress bar while composing long pieces, and the ``--bars`` cap.

A tiny random Transformer (the ``debug`` preset, 41 k parameters) keeps composing fast; the
bar's threshold is lowered so a one-bar piece shows it, and rich is told stderr is a terminal
(``TTY_COMPATIBLE=1``), as it is for a user at a shell.
"""

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from avtool.cli.main import app
from avtool.models.music import transformer as music_transformer
from avtool.models.music.generate import SamplingOptions, Score, generate_batch
from avtool.tasks import music as music_task

runner = CliRunner()
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    model = music_transformer.build(music_transformer.MusicTransformerConfig.debug()).eval()
    path = tmp_path_factory.mktemp("music") / "tiny.pt"
    torch.save(music_transformer.to_checkpoint(model), path)
    return path


@pytest.fixture()
def terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TTY_COMPATIBLE", "1")
    monkeypatch.setattr(music_task, "PROGRESS_MIN_BARS", 1)


def _bars_shown(stderr: str) -> set[str]:
    return set(re.findall(r"\d+/\d+ bars", _ANSI.sub("", stderr)))


def test_progress_bar_on_stderr_unless_quiet(tmp_path: Path, tiny_model: Path, terminal: None):
    shown = tmp_path / "shown.mid"
    args = ["music", "--model", str(tiny_model), "--bars", "1", "-o"]
    result = runner.invoke(app, ["--seed", "5", *args, str(shown)])
    assert result.exit_code == 0, result.stderr
    assert {"0/1 bars", "1/1 bars"} <= _bars_shown(result.stderr)
    assert "music shown.mid" in _ANSI.sub("", result.stderr)

    quiet = tmp_path / "quiet.mid"
    result = runner.invoke(app, ["--quiet", "--seed", "5", *args, str(quiet)])
    assert result.exit_code == 0, result.stderr
    assert not _bars_shown(result.stderr)
    assert quiet.read_bytes() == shown.read_bytes()  # the bar does not change the piece

    as_json = tmp_path / "json.mid"
    result = runner.invoke(app, ["--json", "--seed", "5", *args, str(as_json)])
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["ok"] == 1  # stdout stays pure JSON; the bar is on stderr
    assert "1/1 bars" in _bars_shown(result.stderr)


def test_short_pieces_and_logs_show_no_bar(tmp_path: Path, tiny_model: Path, monkeypatch):
    args = ["music", "--model", str(tiny_model), "--bars", "1", "-o"]
    monkeypatch.setenv("TTY_COMPATIBLE", "1")
    result = runner.invoke(app, [*args, str(tmp_path / "short.mid")])  # 1 bar < 16
    assert result.exit_code == 0, result.stderr
    assert not _bars_shown(result.stderr)
    monkeypatch.setenv("TTY_COMPATIBLE", "0")  # stderr is a log file: no bar, no blank line
    monkeypatch.setattr(music_task, "PROGRESS_MIN_BARS", 1)
    result = runner.invoke(app, [*args, str(tmp_path / "log.mid")])
    assert result.exit_code == 0, result.stderr
    assert not _bars_shown(result.stderr) and "\n\n" not in result.stderr


def test_progress_callback_counts_bars_and_changes_nothing(tiny_model: Path):
    model = music_transformer.load(tiny_model)
    prompt = np.full((4, 4), 60, dtype=np.int64)  # a quarter of a bar, then 1.25: 1.5 bars
    score = Score(0, "major", 20, prompt_voices=prompt)
    calls: list[tuple[int, int]] = []
    with_bar = generate_batch(
        model, 2, score, SamplingOptions(seed=3), lambda done, total: calls.append((done, total))
    )
    without = generate_batch(model, 2, score, SamplingOptions(seed=3))
    np.testing.assert_array_equal(with_bar, without)
    assert calls == [(0, 2), (1, 2), (2, 2)]


@pytest.mark.parametrize("bars", [str(music_task.MAX_BARS + 1), "10000"])
def test_bars_above_the_cap_are_refused(tmp_path: Path, monkeypatch, bars: str):
    monkeypatch.chdir(tmp_path)

    def never(*args, **kwargs):
        raise AssertionError("the model must not load for a refused --bars")

    monkeypatch.setattr(music_task, "load_music_model", never)
    result = runner.invoke(app, ["music", "--bars", bars, "-o", "long.mid"])
    assert result.exit_code == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and f"--bars {bars}" in lines[0] and "1..256" in lines[0]
    assert not list(tmp_path.iterdir())
    help_text = _ANSI.sub("", runner.invoke(app, ["music", "--help"]).stdout)
    assert "1..256" in " ".join(help_text.split())


def test_many_pieces_are_composed_chunk_by_chunk(tiny_model: Path, monkeypatch):
    from avtool.models.loading import Loaded

    loaded = music_task.load_music_model(str(tiny_model))
    assert isinstance(loaded, Loaded)
    options = music_task.MusicOptions(count=3, sampling=SamplingOptions(bars=1, seed=7))
    whole, _, _ = music_task.compose(loaded, options)
    monkeypatch.setattr(music_task, "BATCH_PIECE_BARS", 1)  # one piece per chunk
    calls: list[tuple[int, int]] = []
    chunked, _, _ = music_task.compose(
        loaded, options, progress=lambda done, total: calls.append((done, total))
    )
    np.testing.assert_array_equal(chunked, whole)  # piece i keeps seed + i in any chunk
    assert calls == [(0, 3), (1, 3), (1, 3), (2, 3), (2, 3), (3, 3)]


def test_a_melody_longer_than_the_cap_is_refused(tmp_path: Path, tiny_model: Path):
    from avtool.datasets.chorales import HOLD, REST
    from avtool.io.midi import write_midi

    steps = 16 * (music_task.MAX_BARS + 1)
    voices = np.full((4, steps), REST, dtype=np.int16)
    voices[0] = HOLD
    voices[0, ::16] = 67
    melody = tmp_path / "long.mid"
    write_midi(melody, voices, 90)
    out = tmp_path / "harm.mid"
    args = ["music", "--model", str(tiny_model), "--harmonize", str(melody), "-o", str(out)]
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.stderr
    assert f"{melody}: 257 bars long; --prompt and --harmonize files may have at most 256" in (
        result.stderr
    )
    assert not out.exists()
