"""Score a landmark predictor on held-out extracted clips, without rendering.

For each clip (an item of :mod:`.data`, e.g. the GRID s1 test split) the source face is the
clip's first video frame and the drive its own audio. The predicted track is put on that face
the way the warping renderer does (the predicted change added to the face's own landmarks,
:func:`avtool.models.facewarp.motion.project`) and compared with the clip's real 25 fps track by
:func:`avtool.metrics.landmarks.lip_sync_metrics` (D-LL, D-VL, D-A in inter-ocular distances, and
the inner-mouth area correlation), next to the static baseline (the first frame held still).
``frontal_*`` are the trainer's held-out measures (:func:`.train_predictor.evaluate`, 80 Hz,
template units, all 68 points and the 20 lip points).

    python -m avtool.training.anyonenet.evaluate --model runs/p/best.pt \\
        --data data/anyonenet/s1_test --out bench-results/anyonenet_s1_test.json
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from avtool.errors import AvtoolError
from avtool.io.face import estimate_pose, register
from avtool.metrics.landmarks import MEASURES, lip_sync_metrics
from avtool.models.anyonenet import checkpoint
from avtool.models.anyonenet.config import MEL_RATE
from avtool.models.anyonenet.data import load_items, resample_quaternions, resample_track
from avtool.models.anyonenet.infer import predict
from avtool.models.anyonenet.predictor import LandmarkPredictor
from avtool.models.facewarp.motion import FaceMotion, project
from avtool.runtime import write_json
from avtool.training.anyonenet.predictor import evaluate as frontal_evaluate

SYSTEMS = ("predictor", "static")


def clip_tracks(
    model: LandmarkPredictor, item: dict[str, Any], fps: float = 25.0
) -> tuple[np.ndarray, np.ndarray]:
    """The predicted and the real pixel tracks of one extracted clip.

    Args:
        model: a loaded predictor (eval mode).
        item: an extracted clip (``mel`` ``(F, 80)``, ``landmarks`` ``(T, 68, 2)`` pixels).
        fps: the track's frame rate.

    Returns:
        ``(predicted (T, 68, 2), real (T, 68, 2))`` float32 pixels.
    """

    real = np.asarray(item["landmarks"], dtype=np.float32)
    face = real[0]
    frontal, quaternion = register(face)
    pose = estimate_pose(face)
    track, quats = predict(model, item["mel"], frontal, quaternion)
    frames = len(real)
    motion = FaceMotion(
        resample_track(track, MEL_RATE, frames, fps),
        resample_quaternions(quats, MEL_RATE, frames, fps),
        fps,
        units="frontal",
    )
    predicted = project(motion, face, frontal, pose.quaternion, pose.scale)
    return predicted, real


def _mean(values: Sequence[float]) -> float | None:
    finite = [v for v in values if math.isfinite(v)]
    return round(statistics.fmean(finite), 5) if finite else None


def evaluate_items(model: LandmarkPredictor, items: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Mean lip-sync measures of the predictor and the static face over clips.

    Returns:
        ``{"n_clips", "mean": {system: {d_ll, d_vl, d_a, area_corr}}, "d_a_ratio",
        "d_ll_ratio", "frontal": {...}}`` (ratios: predictor over static).
    """

    scores: dict[str, list[dict[str, float]]] = {s: [] for s in SYSTEMS}
    for item in items:
        predicted, real = clip_tracks(model, item)
        static = np.repeat(real[:1], len(real), axis=0)
        scores["predictor"].append(lip_sync_metrics(predicted, real, real[0]))
        scores["static"].append(lip_sync_metrics(static, real, real[0]))
    mean = {s: {m: _mean([row[m] for row in rows]) for m in MEASURES} for s, rows in scores.items()}

    def ratio(measure: str) -> float | None:
        a, b = mean["predictor"][measure], mean["static"][measure]
        return round(a / b, 4) if a is not None and b else None

    frontal = {k: round(v, 5) for k, v in frontal_evaluate(model, items).items()}
    return {
        "n_clips": len(items),
        "mean": mean,
        "d_a_ratio": ratio("d_a"),
        "d_ll_ratio": ratio("d_ll"),
        "frontal": frontal,
    }


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m avtool.training.anyonenet.evaluate --model CKPT --data ITEMS [--out JSON]``."""

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="predictor .pt or registry name")
    parser.add_argument("--data", required=True, help="folder of extracted items")
    parser.add_argument("--limit", type=int, default=None, help="first N items only")
    parser.add_argument("--out", type=Path, default=None, help="also write the JSON here")
    parser.add_argument(
        "--accept-license", action="store_true", help="accept a registry entry's licence"
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(1)  # shared 2-core machines
    try:
        model, _, meta = checkpoint.load(
            args.model, "predictor", accept_license=args.accept_license
        )
        items = load_items(args.data)[: args.limit]
    except AvtoolError as exc:
        print(f"error: {exc}")
        return int(exc.exit_code)
    result = {
        "model": str(args.model),
        "steps": meta.get("steps"),
        "data": str(args.data),
        **evaluate_items(model, items),  # type: ignore[arg-type]
    }
    if args.out:
        write_json(args.out, result)
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
