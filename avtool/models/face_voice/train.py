"""Train and evaluate the face → speaker-embedding student on talking-face videos.

1. :func:`extract_pairs`: per clip, dlib descriptors of ``frames_per_clip`` evenly spaced
   frames and the teacher's embedding of the clip's speech (written to ``pairs.npz``);
2. :func:`train`: the MLP with the loss ``1 - cos(student, teacher)``, held-out clips by
   speaker (``--heldout-speakers``, or the last clips);
3. :func:`evaluate`: held-out mean cosine similarity of the student vs the baseline that
   predicts the training set's mean embedding (a model that learned nothing from faces
   scores that baseline).

    python -m avtool.models.face_voice.train --data VIDEOS --out runs/face-voice
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from avtool.errors import AvtoolError, InputError
from avtool.models.face_voice.student import FaceVoiceConfig, build, save


def extract_pairs(
    folder: str | os.PathLike[str], frames_per_clip: int = 5, limit: int | None = None
) -> dict[str, np.ndarray]:
    """Descriptors and teacher embeddings of every clip in ``folder``.

    Clips without a face or speech are skipped with a message.

    Returns:
        ``descriptors (N, 128)``, ``clip (N,)`` clip index of each descriptor, ``embeddings
        (C, 256)`` one per clip, ``ids (C,)`` clip ids.
    """
    from avtool.datasets.grid import find_clips
    from avtool.io.audio import load_audio
    from avtool.io.video import VideoReader
    from avtool.models.face import FaceDetector, choose_box
    from avtool.models.face_voice.teacher import TEACHER_SAMPLE_RATE, speaker_embedding

    detector = FaceDetector()
    descriptors, owners, embeddings, ids = [], [], [], []
    for clip in find_clips(folder)[:limit]:
        try:
            audio, rate = load_audio(clip, sample_rate=TEACHER_SAMPLE_RATE)
            embedding = speaker_embedding(audio, rate)
            with VideoReader(clip) as reader:
                frames = list(reader)
            picks = np.linspace(0, len(frames) - 1, frames_per_clip).round().astype(int)
            found = []
            for i in picks:
                boxes = detector.detect(frames[i])
                if boxes:
                    box = choose_box(boxes, 0, f"{clip} frame {i}")
                    found.append(detector.descriptor(frames[i], box))
            if not found:
                raise InputError(f"{clip}: no face in the sampled frames")
        except InputError as exc:
            print(f"skipped: {exc}")
            continue
        descriptors += found
        owners += [len(ids)] * len(found)
        embeddings.append(embedding)
        ids.append(clip.stem)
    if not ids:
        raise InputError(f"{folder}: no usable clips")
    return {
        "descriptors": np.stack(descriptors).astype(np.float32),
        "clip": np.array(owners, dtype=np.int64),
        "embeddings": np.stack(embeddings).astype(np.float32),
        "ids": np.array(ids),
    }


def evaluate(
    model: torch.nn.Module, pairs: dict[str, np.ndarray], clips: Sequence[int], mean: np.ndarray
) -> dict[str, float]:
    """Held-out mean cosine similarity: ``cosine`` (student) and ``baseline_cosine``.

    Args:
        clips: indices of the held-out clips; mean: ``(256,)`` training mean embedding.
    """
    from avtool.models.face_voice.student import infer

    unit = mean / max(float(np.linalg.norm(mean)), 1e-8)
    scores, baseline = [], []
    for c in clips:
        target = pairs["embeddings"][c]
        predicted = infer(model, pairs["descriptors"][pairs["clip"] == c])
        scores.append(float(predicted @ target))
        baseline.append(float(unit @ target))
    return {"cosine": float(np.mean(scores)), "baseline_cosine": float(np.mean(baseline))}


def train(
    pairs: dict[str, np.ndarray],
    out_dir: str | os.PathLike[str],
    *,
    config: FaceVoiceConfig | None = None,
    heldout: Sequence[int] = (),
    steps: int = 2000,
    learning_rate: float = 1e-3,
    seed: int = 0,
) -> dict[str, Any]:
    """Fit the student on all descriptors of the non-held-out clips (full batch, Adam).

    Returns:
        ``{"steps", "train_loss", "cosine", "baseline_cosine"}`` (the last two on the
        held-out clips; absent without any).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    model = build(config or FaceVoiceConfig())
    keep = ~np.isin(pairs["clip"], list(heldout))
    x = torch.from_numpy(pairs["descriptors"][keep])
    y = torch.from_numpy(pairs["embeddings"][pairs["clip"][keep]])
    if len(x) == 0:
        raise InputError("no training descriptors left after holding out")
    optimizer = torch.optim.Adam(model.parameters(), lr=learning_rate)
    loss = torch.zeros(())
    for _ in range(steps):
        loss = 1.0 - (model(x) * y).sum(dim=-1).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    model.eval()
    record: dict[str, Any] = {"steps": steps, "train_loss": float(loss.item())}
    if len(heldout):
        train_clips = sorted(set(pairs["clip"][keep].tolist()))
        mean = pairs["embeddings"][train_clips].mean(axis=0)
        record.update(evaluate(model, pairs, heldout, mean))
    heldout_ids = [str(pairs["ids"][c]) for c in heldout]
    save(out / "face_voice.pt", model, {"seed": seed, "heldout": heldout_ids, **record})
    return record


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m avtool.models.face_voice.train``; returns the exit code."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, help="folder of talking-face videos")
    parser.add_argument("--out", required=True)
    parser.add_argument("--frames-per-clip", type=int, default=5)
    parser.add_argument("--heldout", type=int, default=1, help="last N clips held out")
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tiny", action="store_true", help="debug-size MLP")
    args = parser.parse_args(argv)
    out = Path(args.out)
    cache = out / "pairs.npz"
    try:
        if cache.is_file():
            with np.load(cache) as data:
                pairs = {k: data[k] for k in data.files}
        else:
            pairs = extract_pairs(args.data, args.frames_per_clip)
            out.mkdir(parents=True, exist_ok=True)
            np.savez(cache, **pairs)
        n = len(pairs["ids"])
        heldout = list(range(max(0, n - args.heldout), n)) if n > 1 else []
        record = train(
            pairs,
            out,
            config=FaceVoiceConfig.tiny() if args.tiny else None,
            heldout=heldout,
            steps=args.steps,
            seed=args.seed,
        )
    except AvtoolError as exc:
        print(f"error: {exc}")
        return int(exc.exit_code)
    print(json.dumps(record))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
