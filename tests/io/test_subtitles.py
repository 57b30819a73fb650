"""One timed-text writer: srt, vtt, tsv, json and Praat TextGrid (and all of them)."""

from __future__ import annotations

import json

from avtool.io.files import sidecar_path
from avtool.io.subtitles import Interval, output_paths, render, write_timed_text

TIERS = {
    "sentences": [Interval(0.5, 2.25, "Hello there.")],
    "words": [Interval(0.5, 1.0, "Hello"), Interval(1.2, 2.25, "there")],
}


def test_srt_vtt_tsv():
    assert render("srt", TIERS, duration=3.0) == (
        "1\n00:00:00,500 --> 00:00:02,250\nHello there.\n\n"
    )
    assert render("vtt", TIERS, duration=3.0).startswith(
        "WEBVTT\n\n00:00:00.500 --> 00:00:02.250\nHello there."
    )
    assert render("tsv", TIERS, duration=3.0) == (
        "start\tend\ttext\n500\t1000\tHello\n1200\t2250\tthere\n"
    )


def test_textgrid_fills_silence_with_empty_intervals():
    grid = render("textgrid", TIERS, duration=3.0)
    assert 'class = "IntervalTier"' in grid and 'name = "words"' in grid
    # words tier: silence 0-0.5, Hello, gap 1.0-1.2, there, silence to 3.0
    assert "intervals: size = 5" in grid and 'text = "there"' in grid
    assert "xmax = 3.0000" in grid


def test_all_writes_every_format_beside_each_other(tmp_path):
    written = write_timed_text(tmp_path / "clip", "all", TIERS, duration=3.0)
    assert sorted(p.name for p in written) == [
        "clip.TextGrid", "clip.json", "clip.srt", "clip.tsv", "clip.vtt",
    ]  # fmt: skip
    assert json.loads((tmp_path / "clip.json").read_text())["words"][1]["text"] == "there"
    assert output_paths(tmp_path / "x.srt", "srt") == {"srt": tmp_path / "x.srt"}


def test_json_outputs_have_sensible_sidecars(tmp_path):
    assert sidecar_path(tmp_path / "clip.json").name == "clip.meta.json"
    assert sidecar_path(tmp_path / "a.wav").name == "a.wav.json"
