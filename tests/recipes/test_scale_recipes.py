"""The at-scale recipes: per-item make rules (``recipes/batch-tts.mk``, ``batch-files.mk``) and
the Slurm array template (``recipes/slurm/``) with the merge of its per-shard reports."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
RECIPES = REPO / "recipes"

# Stands in for avtool in the make tests: copies the input to -o and logs what it made.
FAKE_AVTOOL = """
import sys
from pathlib import Path
args = sys.argv[1:]
out = Path(args[args.index("-o") + 1])
source = Path(args[args.index("-f") + 1]) if "-f" in args else Path(args[1])
out.write_bytes(source.read_bytes())
with open(Path(__file__).with_name("log.txt"), "a") as log:
    log.write(out.name + "\\n")
"""

needs_make = pytest.mark.skipif(shutil.which("make") is None, reason="GNU make not installed")


def _fake(tmp_path: Path) -> str:
    script = tmp_path / "fake_avtool.py"
    script.write_text(FAKE_AVTOOL, encoding="utf-8")
    return f"{sys.executable} {script}"


def _made(tmp_path: Path) -> list[str]:
    log = tmp_path / "log.txt"
    names = log.read_text().split() if log.exists() else []
    log.unlink(missing_ok=True)
    return sorted(names)


def _make(recipe: str, *variables: str) -> None:
    subprocess.run(["make", "-s", "-j4", "-f", str(RECIPES / recipe), *variables],
                   check=True, capture_output=True, text=True)  # fmt: skip


@needs_make
def test_batch_tts_rerenders_only_the_edited_line(tmp_path: Path) -> None:
    lines, out = tmp_path / "lines.txt", tmp_path / "out"
    lines.write_text("First line.\n\nSecond line.\nThird line.\n", encoding="utf-8")
    variables = [f"AVTOOL={_fake(tmp_path)}", f"LINES={lines}", f"OUT={out}"]
    _make("batch-tts.mk", *variables)
    assert _made(tmp_path) == ["line00001.wav", "line00003.wav", "line00004.wav"]
    assert (out / "line00003.wav").read_text() == "Second line.\n"
    _make("batch-tts.mk", *variables)
    assert _made(tmp_path) == []  # nothing changed, nothing redone
    lines.write_text("First line.\n\nSecond line, edited.\nThird line.\n", encoding="utf-8")
    _make("batch-tts.mk", *variables)
    assert _made(tmp_path) == ["line00003.wav"]
    assert (out / "line00003.wav").read_text() == "Second line, edited.\n"


@needs_make
def test_batch_files_redoes_only_the_changed_input(tmp_path: Path) -> None:
    inputs, out = tmp_path / "in", tmp_path / "out"
    inputs.mkdir()
    for name in ("a", "b", "c"):
        (inputs / f"{name}.mpg").write_text(name)
    variables = [f"AVTOOL={_fake(tmp_path)}", "COMMAND=lipread", f"IN={inputs}", f"OUT={out}",
                 "SUFFIX=.mpg", "OUTPUT_SUFFIX=.txt"]  # fmt: skip
    out.mkdir()
    _make("batch-files.mk", *variables)
    assert _made(tmp_path) == ["a.txt", "b.txt", "c.txt"]
    (inputs / "b.mpg").write_text("b2")
    os.utime(inputs / "b.mpg", ns=(10**19, 10**19))  # newer than every output
    _make("batch-files.mk", *variables)
    assert _made(tmp_path) == ["b.txt"]


@pytest.mark.slow
def test_slurm_array_shards_cover_the_batch(grid_dir: Path, tmp_path: Path) -> None:
    """Two array tasks of the sbatch template, real avtool on four GRID clips, then the
    merge: every clip once, all written; a resubmitted task skips what exists."""
    avtool = Path(sys.executable).with_name("avtool")
    if not avtool.exists():
        pytest.skip("the avtool console script is not installed beside this python")
    clips = sorted(grid_dir.glob("*.mpg"))[:4]
    env = {**os.environ, "AVTOOL": str(avtool), "SLURM_ARRAY_TASK_MAX": "2", "AVTOOL_OFFLINE": "1",
           "REPORTS": str(tmp_path / "reports")}  # fmt: skip
    command = ["bash", str(RECIPES / "slurm" / "avtool-array.sbatch"), "vocode", *map(str, clips),
               "-o", str(tmp_path / "out" / "{stem}.wav"), "--model", "griffin-lim",
               "--iters", "4", "--quiet"]  # fmt: skip
    for task in ("1", "2"):
        run = subprocess.run(command, env={**env, "SLURM_ARRAY_TASK_ID": task},
                             capture_output=True, text=True, check=False)  # fmt: skip
        assert run.returncode == 0, run.stderr
    reports = sorted((tmp_path / "reports").glob("shard-*-of-2.jsonl"))
    assert len(reports) == 2
    merged_path = tmp_path / "all.jsonl"
    merge = subprocess.run(
        [sys.executable, str(RECIPES / "slurm" / "merge_reports.py"), *map(str, reports),
         "--shards", "2", "-o", str(merged_path)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert merge.returncode == 0, merge.stderr
    merged = [json.loads(line) for line in merged_path.read_text().splitlines()]
    assert sorted(r["id"] for r in merged) == sorted(c.stem for c in clips)  # each clip once
    per_shard = [len(r.read_text().splitlines()) for r in reports]
    assert per_shard == [2, 2]
    assert all((tmp_path / "out" / f"{c.stem}.wav").stat().st_size > 0 for c in clips)
    again = subprocess.run(command, env={**env, "SLURM_ARRAY_TASK_ID": "2"},
                           capture_output=True, text=True, check=False)  # fmt: skip
    assert again.returncode == 0, again.stderr
    rows = [json.loads(line) for line in reports[1].read_text().splitlines()]
    assert [r["status"] for r in rows] == ["skipped"] * 2
