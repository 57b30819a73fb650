"""The GRID cache builder on real s1 clips: cached, unchanged clips skipped, bad ones reported."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from avtool.datasets import grid
from avtool.errors import InputError
from avtool.training import grid_cache


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
    index = grid_cache.prepare(
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
    grid_cache.prepare(tmp_path / "set", tmp_path / "cache")  # unchanged clips are not redone
    assert (tmp_path / "cache" / "bbaf2n.npz").stat().st_mtime_ns == stamp
    on_disk = json.loads((tmp_path / "cache" / "index.json").read_text())
    assert on_disk["items"]["bbaf2n"]["frames"] == 75
    with pytest.raises(InputError, match="not in the cache"):
        grid.load_item(tmp_path / "cache", "nope")
