"""Training steps, determinism, resuming and inference of tiny AnyoneNet models."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from avtool.models import checkpoint as avtool_checkpoint
from avtool.models.anyonenet import checkpoint, predictor, unet
from avtool.models.anyonenet.config import PredictorConfig, RendererConfig
from avtool.models.anyonenet.infer import predict, project, render_frames
from avtool.models.anyonenet.losses import predictor_loss
from avtool.training.anyonenet import predictor as train_predictor
from avtool.training.anyonenet import renderer as train_renderer


def _items(n=3, frames=60, seed=0, size=32):
    """Synthetic items with a mouth that opens with the loudness of the mel."""
    from avtool.io.face import frontal_template

    rng = np.random.default_rng(seed)
    base = frontal_template()[:, :2].astype(np.float32)
    items = []
    for k in range(n):
        loud = (np.sin(np.arange(frames) / (3 + k)) > 0).astype(np.float32)
        mel = rng.normal(-6, 0.5, (frames, 80)).astype(np.float32) + 4 * loud[:, None]
        frontal = np.repeat(base[None], frames, axis=0)
        frontal[:, 57:60, 1] += 0.3 * loud[:, None]
        quats = np.tile([1.0, 0, 0, 0], (frames, 1)).astype(np.float32)
        pts = rng.uniform(4, size - 4, (8, 68, 2)).astype(np.float32)
        images = rng.integers(0, 255, (8, size, size, 3), dtype=np.uint8)
        items.append(
            {
                "id": f"c{k}",
                "mel": mel,
                "frontal": frontal,
                "quaternions": quats,
                "frames": images,
                "frame_landmarks": pts,
            }
        )
    return items


def _write(folder, items):
    folder.mkdir(parents=True, exist_ok=True)
    for item in items:
        np.savez(folder / f"{item['id']}.npz", **{k: v for k, v in item.items() if k != "id"})
    return folder


def test_tiny_predictor_step_reduces_loss_on_a_fixed_batch():
    torch.manual_seed(0)
    model = predictor.build(PredictorConfig.debug())
    batch = train_predictor.make_batch(
        _items(), 0, train_predictor.PredictorTraining(batch_size=4, segment_frames=40)
    )
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(30):
        disp, dq = model(batch["mel"], batch["source_landmarks"], batch["source_quaternion"])
        pred, quats = predictor.apply(
            batch["source_landmarks"], batch["source_quaternion"], disp, dq
        )
        loss, _ = predictor_loss(pred, quats, batch["landmarks"], batch["quaternions"])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


def test_predictor_training_is_deterministic_and_resumable(tmp_path):
    data = _write(tmp_path / "data", _items())
    settings = train_predictor.PredictorTraining(batch_size=2, segment_frames=32, seed=3)
    kwargs = {"config": PredictorConfig.debug(), "training": settings, "log_every": 2}
    train_predictor.train(data, tmp_path / "a", steps=4, **kwargs)
    train_predictor.train(data, tmp_path / "b", steps=2, **kwargs)
    with pytest.raises(Exception, match="--resume"):
        train_predictor.train(data, tmp_path / "b", steps=4, **kwargs)
    train_predictor.train(data, tmp_path / "b", steps=4, resume=True, **kwargs)
    a = avtool_checkpoint.read(tmp_path / "a" / "predictor.pt").state_dict
    b = avtool_checkpoint.read(tmp_path / "b" / "predictor.pt").state_dict
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert (tmp_path / "a" / "predictor.pt").read_bytes() == (
        tmp_path / "b" / "predictor.pt"
    ).read_bytes()
    record = json.loads((tmp_path / "a" / "train_log.jsonl").read_text().splitlines()[-1])
    assert record["step"] == 4 and "heldout_dist" in record and "static_dist" in record


def test_renderer_training_runs_resumes_and_falls_back(tmp_path, caplog):
    data = _write(tmp_path / "data", _items(n=2))
    settings = train_renderer.RendererTraining(batch_size=2, seed=1)
    kwargs = {"config": RendererConfig.debug(), "training": settings, "log_every": 1}
    with caplog.at_level("WARNING"):
        record = train_renderer.train(data, tmp_path / "a", steps=3, **kwargs)
    assert "feature-matching" in caplog.text and record["perceptual_kind"] == "feature-matching"
    train_renderer.train(data, tmp_path / "b", steps=2, **kwargs)
    train_renderer.train(data, tmp_path / "b", steps=3, resume=True, **kwargs)
    a = avtool_checkpoint.read(tmp_path / "a" / "renderer.pt").state_dict
    b = avtool_checkpoint.read(tmp_path / "b" / "renderer.pt").state_dict
    assert all(torch.equal(a[k], b[k]) for k in a)
    model, _, _ = checkpoint.load(tmp_path / "a" / "renderer.pt", "renderer")
    image = np.random.default_rng(0).integers(0, 255, (120, 100, 3), dtype=np.uint8)
    face = np.random.default_rng(1).uniform(30, 80, (68, 2)).astype(np.float32)
    frames = list(render_frames(model, image, face, np.stack([face, face + 1])))
    assert len(frames) == 2 and frames[0].shape == (32, 32, 3) and frames[0].dtype == np.uint8
    again = list(render_frames(model, image, face, np.stack([face, face + 1])))
    assert all(np.array_equal(x, y) for x, y in zip(frames, again, strict=True))


def test_renderer_with_dropout_resumes_bit_identically(tmp_path):
    data = _write(tmp_path / "data", _items(n=2))
    # Depth 5 reaches 8x the base width, so the inner up-steps have pix2pix's dropout.
    config = RendererConfig(image_size=32, base_channels=2, depth=5, disc_channels=4,
                            disc_layers=2)  # fmt: skip
    assert any(isinstance(m, torch.nn.Dropout) for m in unet.build(config).modules())
    kwargs = {"config": config, "training": train_renderer.RendererTraining(batch_size=2, seed=2),
              "log_every": 1}  # fmt: skip
    train_renderer.train(data, tmp_path / "a", steps=4, **kwargs)
    train_renderer.train(data, tmp_path / "b", steps=2, **kwargs)
    train_renderer.train(data, tmp_path / "b", steps=4, resume=True, **kwargs)
    a = avtool_checkpoint.read(tmp_path / "a" / "renderer.pt").state_dict
    b = avtool_checkpoint.read(tmp_path / "b" / "renderer.pt").state_dict
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_project_inverts_register():
    from avtool.io.face import estimate_pose, frontal_template, quaternion_from_euler, register

    q = quaternion_from_euler(12.0, -6.0, 4.0)
    from avtool.io.face import quaternion_to_rotation

    rotated = (frontal_template() @ quaternion_to_rotation(q).T)[:, :2] * 80 + [160, 140]
    frontal, quat = register(rotated.astype(np.float32))
    pose = estimate_pose(rotated.astype(np.float32))
    back = project(frontal[None], quat[None], pose.scale, pose.translation)[0]
    assert np.abs(back - rotated).max() < 0.5  # pixels


def test_predict_seeded_output_is_deterministic():
    outputs = []
    for _ in range(2):
        torch.manual_seed(7)
        model = predictor.build(PredictorConfig.debug())
        torch.nn.init.normal_(model.head[-1].weight, 0, 0.1)  # a non-static model
        outputs.append(
            predict(
                model.eval(),
                np.full((50, 80), -5.0, np.float32),
                np.zeros((68, 2), np.float32),
                np.array([1.0, 0, 0, 0]),
            )
        )
    assert outputs[0][0].shape == (50, 68, 2) and outputs[0][1].shape == (50, 4)
    assert np.array_equal(outputs[0][0], outputs[1][0])
    assert np.abs(outputs[0][0]).max() > 0


def test_best_on_heldout_checkpoint_and_heldout_folder(tmp_path):
    items = _items(n=4)
    data = _write(tmp_path / "train", items[:3])
    val = _write(tmp_path / "val", items[3:])
    settings = train_predictor.PredictorTraining(batch_size=2, segment_frames=32, seed=1)
    kwargs = {"config": PredictorConfig.debug(), "training": settings, "log_every": 2}
    train_predictor.train(data, tmp_path / "run", steps=6, heldout_dir=val, **kwargs)
    records = [
        json.loads(x) for x in (tmp_path / "run" / "train_log.jsonl").read_text().splitlines()
    ]
    scores = [r["heldout_mouth_dist"] for r in records]
    meta = json.loads((tmp_path / "run" / "best.json").read_text())
    assert meta["heldout_mouth_dist"] == min(scores) and meta["heldout_ids"] == ["c3"]
    assert meta["steps"] == records[scores.index(min(scores))]["step"]
    model, _, _ = checkpoint.load(tmp_path / "run" / "best.pt", "predictor")
    assert isinstance(model, predictor.LandmarkPredictor)
    state = torch.load(tmp_path / "run" / "trainer.pt", weights_only=True)
    assert state["best"] == min(scores)


def test_renderer_keeps_the_best_heldout_l1_and_resumes_with_it(tmp_path):
    items = _items(n=3)
    data = _write(tmp_path / "train", items[:2])
    val = _write(tmp_path / "val", items[2:])
    settings = train_renderer.RendererTraining(batch_size=2, seed=2)
    kwargs = {"config": RendererConfig.debug(), "training": settings, "log_every": 2}
    train_renderer.train(data, tmp_path / "run", steps=4, heldout_dir=val, **kwargs)
    records = [
        json.loads(x) for x in (tmp_path / "run" / "train_log.jsonl").read_text().splitlines()
    ]
    scores = [r["heldout_l1"] for r in records]
    meta = json.loads((tmp_path / "run" / "best.json").read_text())
    assert meta["heldout_l1"] == min(scores) and meta["heldout_ids"] == ["c2"]
    assert meta["steps"] == records[scores.index(min(scores))]["step"]
    # The static baseline is the source frame itself: the same at every log step.
    pairs = train_renderer.heldout_pairs(items[2:], 32)
    static = (pairs["source"] - pairs["target"]).abs().mean().item()
    assert all(r["static_l1"] == pytest.approx(static) for r in records)
    assert pairs["target"].shape == (6, 3, 32, 32)  # 6 evenly spaced targets of 8 frames
    model, _, _ = checkpoint.load(tmp_path / "run" / "best.pt", "renderer")
    assert train_renderer.evaluate(model, pairs)["l1"] == pytest.approx(min(scores), rel=1e-5)
    # Resuming goes on with the saved best score.
    train_renderer.train(data, tmp_path / "run", steps=6, heldout_dir=val, resume=True, **kwargs)
    state = torch.load(tmp_path / "run" / "trainer.pt", weights_only=True)
    all_scores = [
        json.loads(x)["heldout_l1"]
        for x in (tmp_path / "run" / "train_log.jsonl").read_text().splitlines()
    ]
    assert state["step"] == 6 and state["best"] == min(all_scores)
