"""Data extraction on a real GRID clip and the predict_track hook."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from avtool.models.anyonenet.config import MEL_RATE, PREDICTOR_MEL, PredictorConfig
from avtool.models.anyonenet.data import audio_mel, extract_clip, resample_track


def test_mel_is_80_hz():
    assert MEL_RATE == 80.0 and PREDICTOR_MEL.win_length == 800
    mel = audio_mel(np.zeros(22050 * 2, np.float32), 22050)  # 2 s
    assert mel.shape[1] == 80 and abs(len(mel) - 160) <= 1


def test_resample_track_by_frame_centres():
    track = np.arange(25, dtype=np.float32)[:, None]  # 1 s at 25 fps
    up = resample_track(track, 25, 80, 80)
    assert up.shape == (80, 1) and up[0, 0] == 0 and up[-1, 0] == 24
    assert np.all(np.diff(up[:, 0]) >= 0)
    np.testing.assert_allclose(up[40, 0], (40.5 / 80) * 25 - 0.5, atol=1e-5)


@pytest.fixture(scope="module")
def real_item(grid_dir):
    return extract_clip(grid_dir / "bbaf2n.mpg", frame_size=64, frame_step=5)


def test_extract_real_grid_clip(real_item):
    item = real_item
    frames = len(item["mel"])
    assert item["mel"].shape == (frames, 80) and abs(frames - 3.0 * 80) < 5  # a 3 s clip
    assert item["frontal"].shape == (frames, 68, 2)
    assert item["quaternions"].shape == (frames, 4)
    np.testing.assert_allclose(np.linalg.norm(item["quaternions"], axis=1), 1, atol=1e-5)
    assert item["landmarks"].shape == (75, 68, 2)
    # Frontal landmarks are in inter-ocular units: the eye centres are ~1 apart.
    from avtool.io.face import inter_ocular

    assert np.all(np.abs(inter_ocular(item["frontal"]) - 1) < 0.15)
    # The mouth opens and closes while the speaker talks.
    from avtool.io.face import mouth_area

    assert np.ptp(mouth_area(item["frontal"])) > 0.02
    assert item["frames"].shape == (15, 64, 64, 3) and item["frame_landmarks"].shape == (15, 68, 2)
    assert np.all((item["frame_landmarks"] > 0) & (item["frame_landmarks"] < 64))


def test_predict_track_on_real_audio(tmp_path, grid_dir, real_item):
    from avtool.models.anyonenet import checkpoint, predictor
    from avtool.models.anyonenet.infer import predict_track

    torch.manual_seed(0)
    path = checkpoint.save(
        tmp_path / "p.pt", predictor.build(PredictorConfig.debug()), PredictorConfig.debug()
    )
    face = real_item["landmarks"][0]
    landmarks, quats = predict_track(path, grid_dir / "bbaf2n.mpg", face, fps=25)
    assert landmarks.shape == (74, 68, 2) and quats.shape == (74, 4)
    # An untrained predictor holds the source face: the track reprojects onto it.
    assert np.abs(landmarks - face).max() < 1.0


def test_face_crops_from_a_grid_cache_item_reuse_its_landmarks(tmp_path, grid_dir, real_item):
    """Renderer data without dlib: the cache's landmarks cut the same crops as extraction."""
    from avtool.datasets.grid import SAMPLE_RATE
    from avtool.errors import InputError
    from avtool.io.audio import load_audio
    from avtool.models.anyonenet.data import extract_folder, from_grid_cache

    audio, _ = load_audio(grid_dir / "bbaf2n.mpg", sample_rate=SAMPLE_RATE)
    cache = tmp_path / "cache"
    cache.mkdir()
    for name in ("bbaf2n", "bbaf2n_b", "bbaf2n_c"):
        np.savez(
            cache / f"{name}.npz",
            landmarks=real_item["landmarks"],
            audio=(audio * 32767).astype(np.int16),
            fps=np.float64(25.0),
        )
    video = grid_dir / "bbaf2n.mpg"
    item = from_grid_cache(cache / "bbaf2n.npz", video=video, frame_size=64, frame_step=5)
    assert item["frames"].shape == (15, 64, 64, 3)
    np.testing.assert_allclose(item["frame_landmarks"], real_item["frame_landmarks"], atol=1e-4)
    assert np.abs(item["frames"].astype(int) - real_item["frames"].astype(int)).mean() < 1
    with pytest.raises(InputError, match="video"):
        from_grid_cache(cache / "bbaf2n.npz", video=None, frame_size=64)
    with pytest.raises(InputError, match="--clips"):
        extract_folder(cache, tmp_path / "x", from_cache=True, frame_size=64)
    # Every second cached clip (by id).
    index = extract_folder(cache, tmp_path / "out", from_cache=True, id_step=2)
    assert index["items"] == ["bbaf2n", "bbaf2n_c"] and not index["failed"]
