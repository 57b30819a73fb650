import importlib.util
import json
import math
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from avtool.tasks.eval import talkinghead as evt

HAVE_RENDERER = importlib.util.find_spec("avtool.tasks.talkinghead") is not None
needs_renderer = pytest.mark.skipif(not HAVE_RENDERER, reason="the talking-head renderer is absent")
runner = CliRunner()


@pytest.fixture
def licensed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AVTOOL_ACCEPT_LICENSE", "1")


@pytest.fixture(scope="module")
def short_clip(grid_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The first 1.6 s (40 frames) of a real GRID clip, with its audio, as H.264 + AAC."""
    from avtool.io.audio import load_audio
    from avtool.io.video import VideoReader, VideoWriter

    source = grid_dir / "bbaf2n.mpg"
    audio, rate = load_audio(source, duration=1.6)
    path = tmp_path_factory.mktemp("clip") / "bbaf2n_short.mp4"
    with (
        VideoReader(source, fps=25) as reader,
        VideoWriter(path, 25, (360, 288), audio_array=audio, sample_rate=rate) as writer,
    ):
        for index, frame in enumerate(reader):
            if index == 40:
                break
            writer.write(frame)
    return path


def test_static_baseline_video_holds_the_first_frame(short_clip: Path, tmp_path: Path, licensed):
    from avtool.io.video import probe
    from avtool.metrics.landmarks import lip_sync_metrics
    from avtool.models.face import load_detector, track_video

    face = evt.first_frame(short_clip, 25.0)
    assert face.shape == (288, 360, 3) and face.dtype == np.uint8
    path = evt.write_static_video(face, 30, 25.0, tmp_path / "static.mp4", size=(180, 144))
    info = probe(path)
    assert (info.width, info.height, info.n_frames) == (180, 144, 30)
    detector = load_detector(accept_license=True)
    static = track_video(path, detector=detector)
    real = track_video(short_clip, detector=detector)
    # Against its own first frame, a still face scores near zero; against the talking real
    # clip its mouth error is clearly larger (GRID speakers open their mouths).
    still = lip_sync_metrics(static.landmarks, np.repeat(real.landmarks[:1], 30, axis=0))
    talking = lip_sync_metrics(static.landmarks, real.landmarks)
    assert still["d_ll"] < 0.03 and still["d_a"] < 0.01
    assert talking["d_a"] > 2 * still["d_a"] and talking["d_ll"] > still["d_ll"]


def _row(renderer_da: float, static_da: float, corr: float) -> dict:
    scores = {"d_ll": 0.05, "d_vl": 0.01, "d_a": renderer_da, "area_corr": corr}
    static = {"d_ll": 0.06, "d_vl": 0.01, "d_a": static_da, "area_corr": None}
    return {"clip": "x", "systems": {"renderer": scores, "static": static, "driven": scores}}


def test_summary_ratio_and_targets():
    rows = [_row(0.01, 0.03, 0.7), _row(0.02, 0.03, 0.5), {"clip": "bad", "error": "no face"}]
    summary = evt.summarise(rows)
    assert summary["n_clips"] == 2
    assert summary["mean"]["renderer"]["d_a"] == pytest.approx(0.015)
    assert summary["mean"]["static"]["area_corr"] is None  # a still mouth has no r
    assert summary["d_a_ratio"] == pytest.approx(0.5)
    assert summary["targets"]["area_corr"]["met"] and summary["targets"]["d_a_ratio"]["met"]
    assert summary["passed"]
    worse = evt.summarise([_row(0.025, 0.03, 0.3)])
    assert not worse["targets"]["area_corr"]["met"] and not worse["targets"]["d_a_ratio"]["met"]
    assert not worse["passed"] and not evt.summarise([])["passed"]


@needs_renderer
def test_evaluate_one_real_clip_is_deterministic(short_clip: Path, tmp_path: Path, licensed):
    first = evt.evaluate_talkinghead([short_clip], accept_license=True, keep_dir=tmp_path)
    (row,) = first["clips"]
    assert "error" not in row, row
    assert row["n_frames"]["real"] == 40 and abs(row["n_frames"]["generated"] - 40) <= 1
    assert (tmp_path / "bbaf2n_short.generated.mp4").is_file()
    systems = row["systems"]
    for name in evt.SYSTEMS:
        assert all(math.isfinite(systems[name][m]) for m in ("d_ll", "d_vl", "d_a"))
    # The rendered mouth moves, so its area correlates with something; the static one
    # differs from the real talking mouth by a clearly non-zero area.
    assert systems["renderer"]["area_corr"] is not None
    assert systems["static"]["d_a"] > 0.002
    assert 0 < row["detected_fraction"] <= 1
    again = evt.evaluate_talkinghead([short_clip], accept_license=True)
    assert again["clips"][0]["systems"] == systems


@needs_renderer
def test_cli_reports_json_and_a_failed_clip(
    short_clip: Path, tmp_path: Path, licensed, grid_dir: Path
):
    from avtool.cli.main import app
    from avtool.io.video import VideoWriter

    faceless = tmp_path / "blank.mp4"
    with VideoWriter(faceless, 25, (64, 64), audio_array=np.zeros(8000), sample_rate=16000) as w:
        for _ in range(10):
            w.write(np.full((64, 64, 3), 90, np.uint8))
    # Issue 18, bad input 3: speech of 8 frames (0.32 s) is scored or refused in one line,
    # never a traceback.
    from avtool.io.audio import load_audio
    from avtool.io.video import VideoReader

    tiny = tmp_path / "tiny.mp4"
    audio, rate = load_audio(grid_dir / "bbaf2n.mpg", start=1.0, duration=0.32)
    with (
        VideoReader(grid_dir / "bbaf2n.mpg", fps=25) as reader,
        VideoWriter(tiny, 25, (360, 288), audio_array=audio, sample_rate=rate) as writer,
    ):
        for index, frame in enumerate(reader):
            if index == 33:
                break
            if index >= 25:
                writer.write(frame)
    report = tmp_path / "report.json"
    args = ["--quiet", "--json", "eval", "talkinghead", str(short_clip), str(faceless), str(tiny)]
    result = runner.invoke(app, [*args, "-o", str(report)])
    assert result.exit_code == 1, result.stderr  # one clip failed, the others were scored
    assert "Traceback" not in result.output + result.stderr
    printed = json.loads(result.stdout)
    assert printed["clips"][0]["clip"] == short_clip.name and "systems" in printed["clips"][0]
    assert "no face" in printed["clips"][1]["error"]
    short = printed["clips"][2]
    assert "systems" in short or "\n" not in short["error"]
    assert printed["summary"]["n_clips"] == 1 + ("systems" in short)
    assert json.loads(report.read_text())["summary"] == printed["summary"]


def test_cli_needs_existing_clips(tmp_path: Path):
    from avtool.cli.main import app

    result = runner.invoke(app, ["eval", "talkinghead", str(tmp_path / "none.mp4")])
    assert result.exit_code == 2 and "no such file" in result.stderr


@needs_renderer
def test_compare_scores_a_predictor_checkpoint_side_by_side(
    short_clip: Path, tmp_path: Path, licensed
):
    import torch

    from avtool.models.anyonenet import checkpoint, predictor
    from avtool.models.anyonenet.config import PredictorConfig

    torch.manual_seed(0)
    model = predictor.build(PredictorConfig.debug())  # zero output layer: the static face
    ckpt = checkpoint.save(tmp_path / "zero.pt", model, PredictorConfig.debug())
    result = evt.evaluate_talkinghead([short_clip], accept_license=True, compare=[str(ckpt)])
    (row,) = result["clips"]
    assert set(row["systems"]) == {*evt.SYSTEMS, "zero.pt", "zero.pt.driven"}
    # A predictor that predicts no motion drives exactly the photo's landmarks: its driven
    # track scores as the first real frame held still.
    assert row["systems"]["zero.pt.driven"]["area_corr"] is None
    summary = result["summary"]
    assert set(summary["d_a_ratio_by_system"]) >= {"renderer", "zero.pt"}
    assert result["systems"] == {"renderer": "warp", "zero.pt": str(ckpt)}
    assert result["models"][str(ckpt)]["sha256"]


def test_cli_unknown_compare_model_exits_3(short_clip: Path, licensed):
    from avtool.cli.main import app

    result = runner.invoke(app, ["eval", "talkinghead", str(short_clip), "--compare", "nosuch"])
    assert result.exit_code == 3, result.stderr
