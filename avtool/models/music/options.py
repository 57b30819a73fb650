"""Sampling options of the symbolic music models, kept free of torch so that the command line
can read their defaults without importing model code."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SamplingOptions:
    """Run-time sampling options; their defaults are the only definition (the CLI reads them).

    Attributes:
        bars: length of a sampled piece in bars.
        key: the key, as :func:`avtool.datasets.chorales.parse_key` reads it.
        time_signature: ``"N/D"``; bars of up to 24 sixteenths.
        temperature: logits are divided by it; 0 picks the most likely token.
        top_k: sample among the k most likely tokens only; 0 keeps all.
        seed: piece ``i`` of a batch uses ``seed + i``.
        phrase_bars: bars per phrase for :func:`phrase_fermatas`; None for the metre's
            norm (2 bars of 4/4, 4 bars of 3/4).
        avoid_parallels: never sample a note that makes parallel fifths or octaves (the
            models write about 0.7 per bar; Bach 0.015).
    """

    bars: int = 16
    key: str = "C major"
    time_signature: str = "4/4"
    temperature: float = 1.0
    top_k: int = 0
    seed: int = 0
    phrase_bars: int | None = None
    avoid_parallels: bool = False
