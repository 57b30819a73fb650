"""The face → speaker-embedding student, its training and the resemblyzer teacher."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from avtool.errors import ModelError
from avtool.models.face_voice import student
from avtool.models.face_voice.train import train


def _pairs(n_clips=6, per_clip=3, seed=0):
    """Descriptors whose first dimensions decide the voice (a learnable mapping)."""
    rng = np.random.default_rng(seed)
    voices = rng.normal(size=(2, 256))
    descriptors, owner, embeddings = [], [], []
    for c in range(n_clips):
        kind = c % 2
        centre = rng.normal(scale=0.05, size=128) + (1.0 if kind else -1.0)
        descriptors += [centre + rng.normal(scale=0.01, size=128) for _ in range(per_clip)]
        owner += [c] * per_clip
        e = voices[kind] + rng.normal(scale=0.1, size=256)
        embeddings.append(e / np.linalg.norm(e))
    return {
        "descriptors": np.array(descriptors, np.float32),
        "clip": np.array(owner),
        "embeddings": np.array(embeddings, np.float32),
        "ids": np.array([f"c{c}" for c in range(n_clips)]),
    }


def test_student_shapes_and_unit_output():
    model = student.build(student.FaceVoiceConfig()).eval()
    out = model(torch.randn(3, 128))
    assert out.shape == (3, 256)
    torch.testing.assert_close(out.norm(dim=-1), torch.ones(3))
    assert student.infer(model, np.zeros(128, np.float32)).shape == (256,)


def test_training_beats_the_mean_voice_and_round_trips(tmp_path):
    pairs = _pairs()
    record = train(
        pairs, tmp_path, config=student.FaceVoiceConfig.tiny(), heldout=[4, 5], steps=200, seed=0
    )
    assert record["cosine"] > 0.95 and record["cosine"] > record["baseline_cosine"] + 0.2
    _, meta = student.load(tmp_path / "face_voice.pt")
    assert meta["heldout"] == ["c4", "c5"]
    again = train(
        pairs,
        tmp_path / "again",
        config=student.FaceVoiceConfig.tiny(),
        heldout=[4, 5],
        steps=200,
        seed=0,
    )
    assert (tmp_path / "face_voice.pt").read_bytes() == (
        tmp_path / "again" / "face_voice.pt"
    ).read_bytes()
    assert again["cosine"] == record["cosine"]
    with pytest.raises(ModelError):
        student.load(tmp_path / "missing.pt")


def test_teacher_separates_real_speakers(grid_dir):
    pytest.importorskip("resemblyzer")
    from avtool.io.audio import load_audio
    from avtool.models.face_voice.teacher import speaker_embedding

    embeddings = []
    for name in ("bbaf2n.mpg", "lbax4n.mpg"):
        audio, rate = load_audio(grid_dir / name, sample_rate=16000)
        half = len(audio) // 2
        embeddings.append(
            [speaker_embedding(audio[:half], rate), speaker_embedding(audio[half:], rate)]
        )
    (a1, a2), (b1, _) = embeddings
    assert a1.shape == (256,) and abs(np.linalg.norm(a1) - 1) < 1e-5
    assert a1 @ a2 > a1 @ b1  # the same speaker is closer than another one
