"""Objective evaluation of avtool's models on real recordings (``avtool eval ...``)."""

from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from avtool.io.audio import load_audio
from avtool.io.features import MelSpec, mel_spectrogram
from avtool.metrics import speech
from avtool.tasks.options.vocode import VocodeOptions
from avtool.tasks.vocode import load_vocoder

#: Measures reported for vocoders, as in the HiFi-GAN/Vocos literature.
VOCODER_MEASURES = ("pesq_wb", "stoi", "estoi", "mcd_db", "mrstft")


def evaluate_vocoders(
    clips: list[Path],
    models: list[str],
    *,
    iters: int | None = None,
    seed: int = 0,
    device: str = "auto",
    accept_license: bool = False,
) -> dict[str, Any]:
    """Analysis-resynthesis of each clip by each vocoder, scored against the clip itself.

    Each clip is loaded at the vocoder's contract rate, turned into its mel and vocoded;
    PESQ-WB, STOI, ESTOI, mel-cepstral distortion (dB) and multi-resolution STFT distance
    compare the result with the original samples.

    Returns:
        ``{"clips": [...], "models": {name: {"mean": {...}, "per_clip": [...],
        "x_real_time": float}}}``.
    """

    results: dict[str, Any] = {"clips": [str(c) for c in clips], "models": {}}
    for name in models:
        options = VocodeOptions(model=name, iters=iters, seed=seed)
        vocoder = load_vocoder(options, device=device, accept_license=accept_license)
        spec = vocoder.spec or MelSpec.default()
        rows, audio_seconds, busy = [], 0.0, 0.0
        for clip in clips:
            original, rate = load_audio(clip, sample_rate=spec.sample_rate)
            mel = mel_spectrogram(original, spec)
            start = time.perf_counter()
            with torch.inference_mode():
                wave = vocoder.run(mel, spec).reshape(-1).cpu().numpy().astype(np.float32)
            busy += time.perf_counter() - start
            audio_seconds += wave.size / rate
            rows.append(
                {
                    "clip": clip.name,
                    "pesq_wb": speech.pesq_wb(original, wave, rate),
                    "stoi": speech.stoi(original, wave, rate),
                    "estoi": speech.stoi(original, wave, rate, extended=True),
                    "mcd_db": speech.mel_cepstral_distortion(original, wave, rate),
                    "mrstft": speech.multi_resolution_stft_distance(original, wave),
                }
            )
        results["models"][vocoder.name] = {
            "family": vocoder.family,
            "mean": {m: round(statistics.fmean(r[m] for r in rows), 4) for m in VOCODER_MEASURES},
            "per_clip": rows,
            "x_real_time": round(audio_seconds / busy, 2) if busy else None,
        }
    return results
