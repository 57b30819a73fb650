"""GRID alignments, the written-down s1 split and the cached face-stage dataset."""

from __future__ import annotations

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
