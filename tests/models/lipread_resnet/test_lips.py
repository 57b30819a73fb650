"""The lip reader's lip-landmark stream: config, shapes, warm start, windowed inference, trainer."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from avtool.errors import ModelError
from avtool.models.checkpoint import read_any
from avtool.models.lipnet.model import VOCAB_SIZE
from avtool.models.lipread_resnet import (
    CONTEXT_FRAMES,
    N_WORD_CLASSES,
    LipReaderConfig,
    build,
    infer,
    load_checkpoint,
    save,
)
from avtool.models.visual import LIP_DIM, lip_features, prepare_crops
from avtool.training.lipread_resnet import (
    augment,
    augment_clip,
    lip_stats,
    load_clips,
    warm_start,
)
from avtool.training.lipread_resnet import main as train_main
from tests.models.lipread_resnet.test_model import write_tiny_cache

LIPS = dataclasses.replace(LipReaderConfig.debug(), lip_landmarks=True)


def _landmarks(t: int, seed: int = 0) -> np.ndarray:
    """``(t, 68, 2)`` float32 pixel landmarks: eyes 60 px apart, lips below, mouth moving."""
    rng = np.random.default_rng(seed)
    marks = rng.normal(0, 2, (t, 68, 2)) + np.array([180.0, 140.0])
    marks[:, 36:42, 0] -= 30
    marks[:, 42:48, 0] += 30
    marks[:, 48:68, 1] += 50
    marks[:, 57, 1] += 15 * np.sin(np.arange(t) / 3.0)
    return marks.astype(np.float32)


def _live(model):
    """Give the zero-initialised lip stream random output weights so it changes the output."""
    torch.manual_seed(11)
    torch.nn.init.normal_(model.lips.conv2.weight, std=0.3)
    return model


def test_config_round_trips_and_old_json_loads():
    assert LipReaderConfig().lip_landmarks is False
    data = json.loads(LIPS.to_json())
    assert data["lip_landmarks"] is True and LipReaderConfig.from_dict(data) == LIPS
    old = LipReaderConfig.debug().to_dict()
    del old["lip_landmarks"]  # checkpoints written before the stream existed
    assert LipReaderConfig.from_dict(old) == LipReaderConfig.debug()
    assert build(LipReaderConfig.debug()).lips is None


def test_forward_shapes_with_lips_and_refusals():
    torch.manual_seed(0)
    model = build(LIPS).eval()
    crops = torch.rand(2, 9, LIPS.crop_size, LIPS.crop_size)
    lips = lip_features(torch.from_numpy(np.stack([_landmarks(9, 0), _landmarks(9, 1)])))
    assert lips.shape == (2, 9, LIP_DIM)
    log_probs, words = model(crops, lips)
    assert log_probs.shape == (2, 9, VOCAB_SIZE) and words.shape == (2, 9, N_WORD_CLASSES)
    assert torch.allclose(log_probs.exp().sum(-1), torch.ones(2, 9), atol=1e-5)
    assert model.hidden(crops, lips).shape == (2, 9, 2 * LIPS.hidden)
    with pytest.raises(ValueError, match="lip_landmarks"):
        model(crops)
    with pytest.raises(ValueError, match="lip_landmarks"):
        build(LipReaderConfig.debug())(crops, lips)


def test_warm_started_stream_leaves_outputs_unchanged_until_trained(tmp_path: Path):
    torch.manual_seed(0)
    old = build(LipReaderConfig.debug()).eval()
    path = save(old.state_dict(), old.config, tmp_path / "old.pt")
    torch.manual_seed(1)
    new = build(LIPS)
    missing = warm_start(new, read_any(path, "lipread-resnet").state_dict)
    assert missing and all(k.startswith("lips.") for k in missing) and "lips.mean" in missing
    new.eval()
    crops = torch.rand(1, 12, LIPS.crop_size, LIPS.crop_size)
    lips = lip_features(torch.from_numpy(_landmarks(12)))[None]
    assert torch.equal(new(crops, lips)[0], old(crops)[0])
    assert torch.equal(new.hidden(crops, lips), old.hidden(crops))
    # Once the stream's output weights move, the landmarks change the output.
    assert not torch.equal(_live(new)(crops, lips)[0], old(crops)[0])
    # A checkpoint of another shape, or one with foreign keys, is refused.
    with pytest.raises(ModelError, match="do not fit"):
        warm_start(build(LIPS), {**old.state_dict(), "extra.weight": torch.zeros(1)})
    wider = dataclasses.replace(LIPS, hidden=12)
    with pytest.raises(ModelError, match="do not fit"):
        warm_start(build(wider), old.state_dict())


def test_windowed_infer_with_landmarks_matches_whole_clip_windows():
    torch.manual_seed(0)
    model = _live(build(LIPS).eval())
    t, chunk = 100, 30
    crops = np.random.default_rng(1).integers(0, 255, (t, 88, 88), dtype=np.uint8)
    marks = _landmarks(t)
    whole = infer(model, crops, landmarks=marks)
    assert whole.shape == (t, VOCAB_SIZE) and whole.dtype == np.float32
    assert np.array_equal(infer(model, crops, chunk_frames=10 * t, landmarks=marks), whole)
    # Each window is the model on the frames [start - context, end + context) of both inputs.
    streamed = infer(model, iter(crops), chunk_frames=chunk, landmarks=iter(marks))
    assert streamed.shape == whole.shape
    x = prepare_crops(torch.from_numpy(crops)[None], model.config.crop_size)
    lips = lip_features(torch.from_numpy(marks))[None]
    for start in range(0, t, chunk):
        a, b = max(0, start - CONTEXT_FRAMES), min(t, start + chunk + CONTEXT_FRAMES)
        with torch.no_grad():
            expected = model(x[:, a:b], lips[:, a:b])[0][0].numpy()
        stop = min(t, start + chunk)
        np.testing.assert_allclose(
            streamed[start:stop], expected[start - a : stop - a], rtol=0, atol=1e-5
        )
    # The seams see the same context as any other frame, so the runs stay close.
    assert np.abs(np.exp(streamed) - np.exp(whole)).max() < 0.05
    # Landmarks matter: shifted ones give a different result.
    shifted = infer(model, crops, landmarks=np.roll(marks, 7, axis=0))
    assert np.abs(shifted - whole).max() > 1e-4


def test_infer_requires_matching_landmarks_only_for_lip_models():
    torch.manual_seed(0)
    model = build(LIPS).eval()
    crops = np.zeros((30, 88, 88), np.uint8)
    with pytest.raises(ValueError, match="landmarks"):
        infer(model, crops)
    with pytest.raises(ValueError, match="different numbers of frames"):
        infer(model, crops, landmarks=_landmarks(29))
    with pytest.raises(ValueError, match="different numbers of frames"):
        infer(model, crops, chunk_frames=25, landmarks=_landmarks(31))
    plain = build(LipReaderConfig.debug()).eval()
    assert np.array_equal(infer(plain, crops, landmarks=_landmarks(30)), infer(plain, crops))
    empty = infer(model, np.zeros((0, 88, 88), np.uint8), landmarks=np.zeros((0, 68, 2)))
    assert empty.shape == (0, VOCAB_SIZE)


def test_augmentation_mirrors_and_drops_landmarks_with_the_frames():
    classes = torch.arange(12)
    crops = torch.arange(12.0)[:, None, None].expand(12, 4, 4).clone()
    crops[:, :, 0] = -1  # the left column marks mirroring
    marks = torch.from_numpy(_landmarks(12))
    for seed in range(8):
        out, labels, lips = augment_clip(
            crops, classes, marks, torch.Generator().manual_seed(seed), jitter=0.3
        )
        # Same draws as the crop-only augmentation.
        ref, ref_labels = augment(crops, classes, torch.Generator().manual_seed(seed), jitter=0.3)
        assert torch.equal(out, ref) and torch.equal(labels, ref_labels)
        mirrored = bool(out[0, 0, -1] == -1)
        expected = lip_features(marks[labels], mirror=mirrored)
        assert lips.shape == (len(out), LIP_DIM) and torch.allclose(lips, expected)


def test_trainer_warm_starts_with_the_stream_deterministically(tmp_path: Path):
    cache = tmp_path / "cache"
    ids = [f"clip{i}" for i in range(6)]
    write_tiny_cache(cache, ids, _landmarks)
    torch.manual_seed(0)
    old = build(LipReaderConfig.debug())
    init = save(old.state_dict(), old.config, tmp_path / "init" / "lipread.pt")

    def run(out: Path) -> dict[str, torch.Tensor]:
        argv = ["--cache", str(cache), "--out", str(out), "--init-reader", str(init),
                "--lip-landmarks", "--epochs", "2", "--batch-size", "2",
                "--lr", "0.01"]  # fmt: skip
        assert train_main(argv) == 0
        return torch.load(out / "state.pt", weights_only=False)["model"]

    a, b = run(tmp_path / "a"), run(tmp_path / "b")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    # The stream was added, trained, and normalised with the training clips' statistics.
    config = json.loads((tmp_path / "a" / "lipread.pt.json").read_text())
    assert LipReaderConfig.from_dict(config) == dataclasses.replace(old.config, lip_landmarks=True)
    assert a["lips.conv2.weight"].abs().sum() > 0
    clips = load_clips(cache, ids, LIPS.crop_size, with_lips=True)
    mean, std = lip_stats(clips)
    assert torch.equal(a["lips.mean"], mean) and torch.equal(a["lips.std"], std)
    # Started from the old weights (the word head moved little from them, not from scratch).
    torch.manual_seed(5)
    fresh = build(LipReaderConfig.debug()).state_dict()
    key = "words.weight"
    assert (a[key] - old.state_dict()[key]).norm() < (a[key] - fresh[key]).norm()
    model = load_checkpoint(tmp_path / "a" / "lipread.pt")
    assert model.lips is not None
    log_probs = infer(model, np.load(cache / "clip0.npz")["gray88"], landmarks=_landmarks(30))
    assert log_probs.shape == (30, VOCAB_SIZE) and np.isfinite(log_probs).all()


def test_trainer_refuses_a_cache_without_landmarks(tmp_path: Path):
    cache = tmp_path / "cache"
    cache.mkdir()
    np.savez(cache / "clip0.npz", gray88=np.zeros((5, 88, 88), np.uint8), text=np.array("a"))
    with pytest.raises(ModelError, match="landmarks"):
        load_clips(cache, ["clip0"], LIPS.crop_size, with_lips=True)
