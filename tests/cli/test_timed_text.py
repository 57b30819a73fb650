"""``tts --timings`` and ``lipread --format`` in srt, vtt, tsv, json, TextGrid and all, on real
speech and a real GRID clip; edge words do not swallow silence, merged function words keep
their own phonemes."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from avtool.cli.main import app

runner = CliRunner()
TEXT = "This is avtool, speaking offline with a neural voice. Put it on the table."


def test_tts_timings_all_formats_and_merged_function_words(tmp_path, use_voice_cache):
    result = runner.invoke(app, ["tts", TEXT, "-o", str(tmp_path / "s.wav"),
                                 "--timings", str(tmp_path / "s.all")])  # fmt: skip
    assert result.exit_code == 0, result.output
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["s.TextGrid", "s.json", "s.srt", "s.tsv", "s.vtt", "s.wav", "s.wav.json"]
    srt = (tmp_path / "s.srt").read_text()
    assert srt.count(" --> ") == 2 and "Put it on the table." in srt
    words = {w["word"]: w for w in json.loads((tmp_path / "s.json").read_text())["words"]}
    # espeak says "with a" as one word "wɪðɐ": "a" gets "ɐ", not "neural"'s phonemes.
    assert words["a"]["phonemes"] == "ɐ" and words["neural"]["phonemes"].startswith("n")
    assert words["with"]["end"] <= words["a"]["start"] < words["neural"]["start"]
    tsv = (tmp_path / "s.tsv").read_text().splitlines()
    assert tsv[0] == "start\tend\ttext" and tsv[1].endswith("\tThis")
    assert 'name = "phonemes"' in (tmp_path / "s.TextGrid").read_text()


def test_tts_srt_timings_with_a_single_format(tmp_path, use_voice_cache):
    out = tmp_path / "s.vtt"
    result = runner.invoke(app, ["tts", "Hello there.", "-o", str(tmp_path / "s.wav"),
                                 "--timings", str(out)])  # fmt: skip
    assert result.exit_code == 0 and out.read_text().startswith("WEBVTT")
    assert json.loads((tmp_path / "s.wav.json").read_text())["timings_file"] == str(out)


def test_lipread_formats_and_edge_words_on_a_real_clip(tmp_path, grid_dir, accept_license):
    """bbaf2n (GRID s1): the speech starts at 0.95 s (corpus alignment); the first word used
    to be timed from 0.00 s."""
    stem = tmp_path / "clip"
    result = runner.invoke(app, ["lipread", str(grid_dir / "bbaf2n.mpg"), "--format", "all",
                                 "-o", str(stem)])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.endswith("meta.json")) == [
        "clip.TextGrid", "clip.json", "clip.srt", "clip.tsv", "clip.vtt",
    ]  # fmt: skip
    words = json.loads((tmp_path / "clip.json").read_text())["words"]
    assert 0.75 <= words[0]["start"] <= 1.0
    assert words[-1]["end"] <= 2.7  # the speech ends at 2.12 s; the clip at 3.0 s
    srt = (tmp_path / "clip.srt").read_text()
    assert srt.startswith("1\n00:00:00,") and srt.count(" --> ") == 1
