"""Calibrate a trained V2A model's output timing on validation clips (``output_advance``).

A model trained to regress mel frames from video gives speech that lags the real recording:
on GRID s1 validation clips, moving the predicted mel one frame (11.6 ms) earlier raises STOI
from 0.513 to 0.536 for ``v2a-content-grid-s1`` and from 0.507 to 0.525 for ``v2a-grid-s1``,
while Griffin-Lim of the *real* mel scores best unshifted (so the lag is the model's, not the
vocoder's). A plausible cause: under timing uncertainty an L1-optimal envelope rises later
than the real one's sharp onsets. This script measures mean STOI on the validation split for
each advance ``0..max`` (the same Griffin-Lim as ``avtool v2a``) and writes the best into the
model's config JSON, which :func:`avtool.models.v2a.infer` then applies:

    python -m avtool.tasks.calibrate_v2a --cache data/grid_s1_cache \\
        --model runs/content/v2a.pt [--max-advance 3] [--split val]

The test split is never read.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from avtool.datasets.grid import s1_split
from avtool.io.features import MelSpec
from avtool.metrics.speech import stoi
from avtool.models import v2a
from avtool.runtime import write_json
from avtool.tasks.eval.v2a import seen_clips
from avtool.tasks.options.vocode import GRIFFIN_LIM, VocodeOptions
from avtool.tasks.v2a import load_model, speech_from_mel
from avtool.tasks.vocode import load_vocoder


def config_path(model: Path) -> Path:
    """The JSON holding a checkpoint's config: ``<file>.json``, else ``config.json`` beside it
    (the order :func:`avtool.tasks.v2a.load_model` reads them in)."""
    own = model.with_name(model.name + ".json")
    return own if own.is_file() else model.parent / "config.json"


def raw_mels(model: Any, clips: Sequence[Any]) -> list[Any]:
    """The model's log mels ``(n_mels, F)`` for ``clips``, without its ``output_advance``.

    Args:
        model: a loaded V2A or content model.
        clips: :class:`avtool.tasks.eval.v2a.Clip` items (crops, landmarks, audio).
    """

    spec = MelSpec.preset(model.config.mel_preset)
    calibrated = model.config
    model.config = dataclasses.replace(calibrated, output_advance=0)
    try:
        mels = []
        for clip in clips:
            n_mel = spec.frames_for(round(len(clip.crops) * spec.sample_rate / model.config.fps))
            mels.append(v2a.infer(model, clip.crops, n_mel, None, clip.landmarks))
        return mels
    finally:
        model.config = calibrated


def stoi_by_advance(
    mels: Sequence[Any],
    references: Sequence[Any],
    spec: Any,
    max_advance: int,
    iters: int | None = None,
    seed: int = 0,
) -> dict[int, float]:
    """Mean STOI of Griffin-Lim speech from ``mels`` moved ``0..max_advance`` frames earlier.

    Args:
        mels: ``(n_mels, F)`` log-mel tensors in ``spec``'s contract.
        references: the real speech ``(S,)`` of each, at ``spec.sample_rate``.
        spec: the :class:`~avtool.io.features.MelSpec` of the mels.
        max_advance: the largest advance tried, in mel frames.
        iters, seed: Griffin-Lim settings (None: the vocoder's default iterations).

    Returns:
        ``{advance: mean STOI}``.
    """

    # Griffin-Lim, not the default neural vocoder: the timing of the mel is what is measured,
    # and Griffin-Lim is seeded, has no weights to load and costs a fraction of HiFi-GAN here.
    options = VocodeOptions(model=GRIFFIN_LIM, iters=iters, seed=seed)
    vocoder = load_vocoder(options, device="cpu")
    scores: dict[int, list[float]] = {k: [] for k in range(max_advance + 1)}
    for mel, reference in zip(mels, references, strict=True):
        for k in scores:
            wave = speech_from_mel(vocoder, v2a.advance(mel, k), spec)
            scores[k].append(stoi(reference, wave, spec.sample_rate))
    return {k: float(np.mean(v)) for k, v in scores.items()}


def best_advance(means: dict[int, float]) -> int:
    """The advance with the highest mean STOI (to 4 decimals; ties go to the smaller one, so
    the speech moves only for a measured gain)."""
    return max(means, key=lambda k: (round(means[k], 4), -k))


def main(argv: Sequence[str] | None = None) -> int:

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cache", type=Path, required=True, help="GRID s1 cache folder")
    parser.add_argument("--model", type=Path, required=True, help="checkpoint .pt")
    parser.add_argument("--split", default="val", choices=("train", "val"))
    parser.add_argument("--max-advance", type=int, default=3, help="largest advance (frames)")
    parser.add_argument("--iters", type=int, default=None, help="Griffin-Lim iterations")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--limit", type=int, default=None, help="only the split's first N clips (a quick check)"
    )
    args = parser.parse_args(argv)
    if args.max_advance < 0:
        parser.error("--max-advance must be >= 0")
    if args.limit is not None and args.limit < 1:
        parser.error("--limit must be >= 1")

    torch.set_num_threads(args.threads)
    loaded = load_model(str(args.model), device="cpu")
    clips = seen_clips(args.cache, s1_split()[args.split][: args.limit])
    spec = MelSpec.preset(loaded.module.config.mel_preset)
    mels = raw_mels(loaded.module, clips)
    means = stoi_by_advance(
        mels, [c.audio for c in clips], spec, args.max_advance, iters=args.iters
    )
    best = best_advance(means)
    target = config_path(args.model)
    data = json.loads(target.read_text(encoding="utf-8"))
    data["output_advance"] = best
    write_json(target, data)
    by_advance = {str(k): round(v, 4) for k, v in means.items()}
    summary = {"stoi_by_advance": by_advance, "output_advance": best, "clips": len(clips)}
    print(json.dumps({**summary, "config": str(target)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
