"""Options of ``avtool vocode`` and the vocoder names it defaults to: the CLI builds its flags
from these, and :mod:`avtool.tasks.vocode` runs them.
"""

from __future__ import annotations

from dataclasses import dataclass

GRIFFIN_LIM = "griffin-lim"
#: The default neural vocoder, used wherever a mel has its contract (``hifigan-22k``).
DEFAULT_NEURAL = "hifigan-v1-universal"


@dataclass(frozen=True)
class VocodeOptions:
    """Run-time options of ``avtool vocode``; the CLI reads its defaults from here.

    Attributes:
        model: ``griffin-lim``, a registry name, or a checkpoint path (HiFi-GAN generator
            ``{"generator": ...}`` with its ``config.json`` beside it, or a MelGAN state dict);
            None = :data:`DEFAULT_NEURAL` for inputs of its mel contract, else Griffin-Lim
            (:func:`default_vocoder`).
        iters: Griffin-Lim iterations; None = the Griffin-Lim module's default (32).
        momentum: fast Griffin-Lim momentum; None = its default (0.99).
        mel_preset: contract for ``.npy`` mels without one, and for analysing audio with
            Griffin-Lim (default ``hifigan-22k``).
        sample_rate: output rate in Hz; None keeps the contract's.
        seed: initial-phase seed for Griffin-Lim.
    """

    model: str | None = None
    iters: int | None = None
    momentum: float | None = None
    mel_preset: str | None = None
    sample_rate: int | None = None
    seed: int = 0
