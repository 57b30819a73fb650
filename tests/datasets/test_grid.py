"""GRID alignments, the written-down s1 split and the cached face-stage dataset."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from avtool.datasets import grid
from avtool.errors import InputError


def test_read_align_drops_silences_and_names_bad_lines(tmp_path):
    path = tmp_path / "x.align"
    path.write_text("0 23750 sil\n23750 29500 bin\n29500 34000 blue\n70000 74500 sil\n")
    words = grid.read_align(path)
    assert [w.word for w in words] == ["bin", "blue"]
    assert words[0].start == pytest.approx(0.95) and words[1].end == pytest.approx(1.36)
    path.write_text("0 100 sil\n100 oops\n")
    with pytest.raises(InputError, match=r"x\.align:2: expected"):
        grid.read_align(path)


def test_split_is_deterministic_disjoint_and_order_independent():
    ids = [f"id{i:03d}" for i in range(500)]
    split = grid.split_ids(ids)
    assert grid.split_ids(list(reversed(ids))) == split
    parts = [set(v) for v in split.values()]
    assert sum(map(len, parts)) == 500 and not (parts[0] & parts[1] or parts[1] & parts[2])
    assert 30 < len(split["test"]) < 75  # about 10 %


def test_the_shipped_s1_split_is_the_hash_split():
    split = grid.s1_split()
    everything = sorted(split["train"] + split["val"] + split["test"])
    assert len(everything) == 900 and len(set(everything)) == 900
    assert grid.split_ids(everything) == split


def test_prepare_caches_clips_skips_unchanged_and_reports_bad_ones(grid_s1_dir, tmp_path):
    clips = tmp_path / "set" / "clips"
    align = tmp_path / "set" / "align"
    clips.mkdir(parents=True)
    align.mkdir()
    for clip_id in ("bbaf2n", "bbaf3s"):
        shutil.copy(grid_s1_dir / "clips" / f"{clip_id}.mkv", clips)
        shutil.copy(grid_s1_dir / "align" / f"{clip_id}.align", align)
    (clips / "broken.mkv").write_bytes(b"not a video")
    seen: list[tuple[str, str | None]] = []
    index = grid.prepare(
        tmp_path / "set", tmp_path / "cache", on_item=lambda i, e: seen.append((i, e))
    )
    assert sorted(index["items"]) == ["bbaf2n", "bbaf3s"] and list(index["failed"]) == ["broken"]
    assert "broken.mkv" in index["failed"]["broken"]
    assert [i for i, e in seen if e] == ["broken"] and len(seen) == 3
    item = grid.load_item(tmp_path / "cache", "bbaf2n")
    assert item["lipnet"].shape == (75, 50, 100, 3) and item["gray88"].shape == (75, 88, 88)
    assert item["landmarks"].shape == (75, 68, 2) and item["detected"].all()
    assert item["mel"].shape[0] == 80 and abs(item["mel"].shape[1] - 3.0 * 22050 / 256) < 3
    assert str(item["text"]) == "bin blue at f two now" == grid.sentence_from_id("bbaf2n")
    assert list(item["word_labels"]) == str(item["text"]).split()
    assert item["audio"].dtype == np.int16 and abs(len(item["audio"]) / 22050 - 3.0) < 0.05
    stamp = (tmp_path / "cache" / "bbaf2n.npz").stat().st_mtime_ns
    grid.prepare(tmp_path / "set", tmp_path / "cache")  # unchanged clips are not redone
    assert (tmp_path / "cache" / "bbaf2n.npz").stat().st_mtime_ns == stamp
    on_disk = json.loads((tmp_path / "cache" / "index.json").read_text())
    assert on_disk["items"]["bbaf2n"]["frames"] == 75
    with pytest.raises(InputError, match="not in the cache"):
        grid.load_item(tmp_path / "cache", "nope")
