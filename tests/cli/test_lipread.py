"""``avtool lipread`` through the CLI: outputs, formats, batches, bad inputs, exit codes."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from avtool.cli.main import app
from avtool.models.lipnet import build, save
from avtool.models.lipnet.model import LipNetConfig

runner = CliRunner()


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    config = LipNetConfig.debug()
    return save(build(config).state_dict(), config, tmp_path_factory.mktemp("m") / "tiny.pt")


def lipread(*args: str):
    return runner.invoke(app, ["--quiet", "--accept-license", "lipread", *args])


def test_text_output_with_grammar_and_sidecar(tiny_model: Path, grid_dir: Path, tmp_path: Path):
    out = tmp_path / "clip.txt"
    result = lipread(
        str(grid_dir / "bbaf2n.mpg"), "--model", str(tiny_model), "--grammar", "grid",
        "-o", str(out),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert len(out.read_text().split()) == 6
    meta = json.loads((tmp_path / "clip.txt.json").read_text())
    assert meta["options"]["decoder"] == "grid" and meta["model"]["name"].endswith("tiny.pt")


def test_json_to_stdout(tiny_model: Path, grid_dir: Path):
    result = lipread(
        str(grid_dir / "lbax4n.mpg"), "--model", str(tiny_model), "--format", "json",
        "--decoder", "greedy", "-o", "-",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    assert body["decoder"] == "greedy" and isinstance(body["words"], list)


def test_batch_keeps_going_past_a_bad_clip(tiny_model: Path, grid_dir: Path, tmp_path: Path):
    from avtool.io.video import VideoWriter

    bad = tmp_path / "noface.mp4"
    with VideoWriter(bad, 25, (64, 48)) as writer:
        for _ in range(10):
            writer.write(np.zeros((48, 64, 3), np.uint8))
    report = tmp_path / "report.jsonl"
    result = lipread(
        str(grid_dir / "lbbc2a.mpg"), str(bad), "--model", str(tiny_model),
        "-o", str(tmp_path / "{stem}.txt"), "--report", str(report),
    )  # fmt: skip
    assert result.exit_code == 1
    assert (tmp_path / "lbbc2a.txt").stat().st_size > 0
    assert not (tmp_path / "noface.txt").exists()
    rows = [json.loads(line) for line in report.read_text().splitlines()]
    assert [r["status"] for r in rows] == ["ok", "failed"]
    assert "noface.mp4: no face" in rows[1]["error"] and rows[1]["exit_code"] == 2


def test_single_bad_input_exits_2_naming_the_file(tiny_model: Path, tmp_path: Path):
    clip = tmp_path / "broken.mp4"
    clip.write_bytes(b"not a video")
    result = lipread(str(clip), "--model", str(tiny_model), "-o", str(tmp_path / "x.txt"))
    assert result.exit_code == 2
    assert "broken.mp4" in result.output
    assert not (tmp_path / "x.txt").exists()


def test_usage_errors(tiny_model: Path, grid_dir: Path, tmp_path: Path):
    clip = str(grid_dir / "bbaf2n.mpg")
    result = lipread(clip, "--model", str(tiny_model), "--grammar", "english")
    assert result.exit_code == 2 and "only grammar is grid" in result.output
    result = lipread(clip, "--model", str(tiny_model), "--grammar", "grid", "--decoder", "beam")
    assert result.exit_code == 2 and "exclude each other" in result.output
    result = lipread(clip, "--model", str(tmp_path / "missing.pt"))
    assert result.exit_code == 3
    existing = tmp_path / "done.txt"
    existing.write_text("keep\n")
    result = lipread(clip, "--model", str(tiny_model), "-o", str(existing))
    assert result.exit_code == 2 and "--overwrite" in result.output
    assert existing.read_text() == "keep\n"


def test_landmark_licence_must_be_accepted(tiny_model: Path, grid_dir: Path, monkeypatch):
    monkeypatch.delenv("AVTOOL_ACCEPT_LICENSE", raising=False)
    result = runner.invoke(
        app, ["--quiet", "lipread", str(grid_dir / "bbaf2n.mpg"), "--model", str(tiny_model)]
    )
    assert result.exit_code == 3 and "--accept-license" in result.output


def test_eval_lipread_reports_wer_per_decoder(tiny_model: Path, grid_dir: Path, tmp_path: Path):
    report = tmp_path / "eval.json"
    result = runner.invoke(
        app,
        ["--quiet", "--accept-license", "--json", "eval", "lipread", str(grid_dir / "lbax4n.mpg"),
         "--model", str(tiny_model), "--decoder", "greedy", "-o", str(report)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    data = json.loads(report.read_text())
    assert data["n_clips"] == 1 and set(data["decoders"]) == {"greedy"}
    assert json.loads(result.stdout)["decoders"]["greedy"]["words"] == 6


def test_default_model_reads_a_real_s1_clip(grid_s1_dir: Path, tmp_path: Path):
    """No --model: the shipped ResNet/BiGRU reader, named in the sidecar, reads a held-out clip."""
    out = tmp_path / "clip.txt"
    clip = grid_s1_dir / "clips" / "bgbh4n.mkv"  # s1 test split: never trained on
    result = lipread(str(clip), "--grammar", "grid", "-o", str(out))
    assert result.exit_code == 0, result.output
    assert len(out.read_text().split()) == 6
    meta = json.loads((tmp_path / "clip.txt.json").read_text())
    assert meta["model"]["name"] == "lipread-grid-s1"
