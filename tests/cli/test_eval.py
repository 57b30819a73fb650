import json
from pathlib import Path

from typer.testing import CliRunner

from avtool.cli.main import app

runner = CliRunner()


def test_eval_vocode_griffin_lim_on_real_speech(grid_dir: Path):
    clips = [str(grid_dir / "bbaf2n.mpg"), str(grid_dir / "lrwp9a.mpg")]
    result = runner.invoke(app, ["--quiet", "--json", "eval", "vocode", *clips])
    assert result.exit_code == 0, result.stderr
    scores = json.loads(result.stdout)["models"]["griffin-lim"]
    assert len(scores["per_clip"]) == 2
    mean = scores["mean"]
    # Griffin-Lim from an 80-band mel: intelligible but audibly phasey.
    assert 0.85 < mean["stoi"] < 1.0 and 2.5 < mean["pesq_wb"] < 4.5
    assert 0.5 < mean["mcd_db"] < 8 and mean["mrstft"] > 0


def test_eval_vocode_needs_clips(tmp_path: Path):
    result = runner.invoke(app, ["eval", "vocode", str(tmp_path / "none.wav")])
    assert result.exit_code == 2 and "no such file" in result.stderr
