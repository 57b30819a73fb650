"""``avtool eval voices``: who is evaluated, and the command is registered."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from avtool.cli.main import app
from avtool.tasks.eval.voices import grid_people, grid_sentences


def test_people_are_seven_grid_speakers_without_s1_twice(grid_dir: Path):
    data = grid_dir.parent
    if not (data / "grid_s4" / "manifest.csv").is_file() or not (data / "grid_s1").is_dir():
        pytest.skip("grid_s1 / grid_s4 not found")
    people = grid_people(data)
    speakers = [p.speaker for p in people]
    assert sorted(speakers) == sorted(["B", "C", "D", "E", "s2", "s1", "s4"])
    assert all("bbaf2n.mpg" not in str(c) for p in people for c in p.clips)
    s1 = next(p for p in people if p.speaker == "s1")
    assert len(s1.clips) == 3 and all(len(t.split()) == 6 for t in s1.transcripts)
    texts = grid_sentences(data, 8)
    assert len(texts) == 8 and all(len(t.split()) == 6 for t in texts)


def test_eval_voices_is_registered():
    result = CliRunner().invoke(app, ["eval", "voices", "--help"])
    assert result.exit_code == 0 and "--accent" in result.output


def test_missing_data_exits_2(tmp_path: Path):
    result = CliRunner().invoke(app, ["--accept-license", "eval", "voices", str(tmp_path)])
    assert result.exit_code == 2 and "manifest.csv" in result.output
