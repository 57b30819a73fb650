"""The speaker-domain guard on real GRID clips: s1 passes, other people are warned about."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from avtool import registry
from avtool.datasets.grid import s1_split
from avtool.tasks import speaker_guard
from tests.conftest import shared_data_dir

#: Every speaker-dependent registry entry names its training identity.
GUARDED = (
    "lipread-grid-s1",
    "lipnet-grid-s1",
    "v2a-grid-s1",
    "v2a-content-grid-s1",
    "av2a-grid-s1",
    "anyonenet-predictor-grid-s1",
    "anyonenet-unet-grid-s1",
)


@pytest.mark.parametrize("name", GUARDED)
def test_speaker_dependent_entries_ship_a_registered_identity(name: str):
    entry = registry.load_registry()[name]
    spec = speaker_guard.identity_file(entry)
    assert spec is not None and spec.name == "identity-grid-s1.npz" and spec.size
    guard = speaker_guard.load_guard(name, accept_license=True)
    assert guard is not None and guard.reference.speakers == ("GRID s1",)
    # Built from training-split clips only (never validation or test).
    assert set(guard.reference.clip_ids) <= set(s1_split()["train"])


def test_speaker_independent_models_have_no_guard():
    assert speaker_guard.load_guard("hifigan-v1-universal") is None
    assert speaker_guard.load_guard("/some/local/weights.pt") is None


def _clips() -> dict[str, Path]:
    data = shared_data_dir()
    clips = {
        "s1_test": data / "grid_s1" / "clips" / f"{s1_split()['test'][0]}.mkv",
        "s4": data / "grid_s4" / "clips" / "bbilzs.mkv",
        "other": data / "grid" / "lbax4n.mpg",
    }
    missing = [str(p) for p in clips.values() if not p.is_file()]
    if missing:
        pytest.skip(f"real GRID clips not found: {missing}")
    return clips


def test_guard_on_real_clips_passes_s1_and_warns_for_others():
    from avtool.models.face import FaceDetector, track_video

    clips = _clips()
    guard = speaker_guard.load_guard("v2a-content-grid-s1")
    detector = FaceDetector()
    results = {}
    for key, path in clips.items():
        track = track_video(path, fps=25.0, detector=detector)
        results[key] = guard.check_video(path, track.landmarks, track.detected, 25.0)
    assert results["s1_test"].warnings == [] and results["s1_test"].record["same_speaker"]
    for key in ("s4", "other"):
        check = results[key]
        assert len(check.warnings) == 1 and "GRID s1" in check.warnings[0]
        assert check.record["distance"] > check.record["threshold"]
    assert results["s1_test"].record["distance"] < results["s4"].record["distance"]
    assert results["s1_test"].record["faces_compared"] == speaker_guard.GUARD_FACES


def test_lipread_sidecar_and_stderr_carry_the_warning(tmp_path: Path):
    from typer.testing import CliRunner

    from avtool.cli.main import app

    clip = _clips()["other"]
    out = tmp_path / "other.txt"
    result = CliRunner().invoke(app, ["--accept-license", "lipread", str(clip), "-o", str(out)])
    assert result.exit_code == 0, result.stderr
    side = json.loads(Path(f"{out}.json").read_text())
    assert side["speaker_check"]["same_speaker"] is False
    assert (
        len(side["warnings"]) == 1
        and "not lipread-grid-s1's training speaker" in (side["warnings"][0])
    )
    assert "training speaker" in result.stderr
    assert np.isfinite(side["speaker_check"]["distance"])
