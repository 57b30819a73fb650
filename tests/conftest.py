"""Shared fixtures: the real-data folder (``../shared/data``) and an isolated model cache."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


def shared_data_dir() -> Path:
    """``$AVTOOL_SHARED_DATA``, else ``../shared/data`` beside the repository."""
    env = os.environ.get("AVTOOL_SHARED_DATA")
    return Path(env) if env else REPO_ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def grid_dir() -> Path:
    """The six multi-speaker GRID clips; skips the test when the folder is absent."""
    path = shared_data_dir() / "grid"
    if not (path / "manifest.csv").is_file():
        pytest.skip(f"real GRID clips not found at {path}")
    return path


@pytest.fixture(scope="session")
def grid_manifest(grid_dir: Path) -> list[dict[str, str]]:
    """Rows of ``grid/manifest.csv``: file, transcript, speaker."""
    import csv

    with open(grid_dir / "manifest.csv", newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch):
    """Each test gets its own model cache and no user registry, so tests never share state."""
    cache = tmp_path_factory.mktemp("avtool-cache")
    monkeypatch.setenv("AVTOOL_CACHE_DIR", str(cache))
    monkeypatch.delenv("AVTOOL_REGISTRY", raising=False)
    monkeypatch.delenv("AVTOOL_OFFLINE", raising=False)
    return cache


@pytest.fixture(scope="session")
def voice_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A cache shared by the tests that load real voices (the seedable graph is built once)."""
    return tmp_path_factory.mktemp("voice-cache")


@pytest.fixture(scope="session")
def piper_voice(voice_cache: Path):
    """The bundled Piper voice, loaded once per test session."""
    from avtool.tasks.tts import load_voice

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AVTOOL_CACHE_DIR", str(voice_cache))
        return load_voice("piper-joe-medium", device="cpu")


@pytest.fixture
def use_voice_cache(voice_cache: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point this test's cache at the shared voice cache (for CLI runs that load voices)."""
    monkeypatch.setenv("AVTOOL_CACHE_DIR", str(voice_cache))
    return voice_cache


@pytest.fixture(scope="session")
def grid_s1_dir() -> Path:
    """The 900 GRID s1 clips with alignments; skips the test when the folder is absent."""
    path = shared_data_dir() / "grid_s1"
    if not (path / "clips").is_dir():
        pytest.skip(f"GRID s1 clips not found at {path}")
    return path


@pytest.fixture(scope="session")
def face_detector():
    """The dlib detector + 68-point predictor, loaded once per session."""
    from avtool.models.face import FaceDetector

    return FaceDetector()


@pytest.fixture(scope="session")
def astronaut() -> np.ndarray:
    """A real frontal face photo (512x512 RGB): scikit-image's public-domain astronaut."""
    data = pytest.importorskip("skimage.data")
    return data.astronaut()


@pytest.fixture
def accept_license(monkeypatch: pytest.MonkeyPatch) -> None:
    """Accept non-commercial licences (the dlib 68-point model) as a user would."""
    monkeypatch.setenv("AVTOOL_ACCEPT_LICENSE", "1")
