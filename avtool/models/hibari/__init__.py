"""hibari voices: Kokoro-distilled ONNX acoustic model + DSP vocoder, 24 kHz (hibari-tts).

The registry resolves the ONNX file (bundled "heart", or a downloaded voice); the hibari
package supplies the G2P (American or British rules, chosen by the voice). The model
gives no phoneme durations, so chunks carry no alignment.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.random import Generator

from avtool.errors import ModelError
from avtool.models.text import ChunkAudio, Delivery, SpeechChunk, SpeechModel
from avtool.registry import ResolvedModel


@dataclass
class HibariModel(SpeechModel):
    """A loaded hibari voice; ``engine`` is a ``hibari.Hibari`` instance."""

    engine: object

    @property
    def sample_rate(self) -> int:
        return int(self.engine.sample_rate)

    def chunks(self, text: str, sentence_index: int = 0) -> list[SpeechChunk]:
        """Phonemize one sentence of text (hibari cuts long ones at clause marks)."""
        return [SpeechChunk(text, sentence_index, tuple(ps)) for ps in self.engine.phonemize(text)]

    def _render(self, chunk: SpeechChunk, rng: Generator, delivery: Delivery) -> ChunkAudio:
        """(T,) float32 at 24 kHz, no alignment; ``noise_scale`` and ``noise_w`` are Piper's
        knobs and do not apply here."""
        ids = self.engine.ids("".join(chunk.phonemes))
        audio = self.engine.from_ids(ids, delivery.speed, rng)
        return ChunkAudio(np.clip(np.asarray(audio, np.float32), -1.0, 1.0), None)


def load(
    model_path: str | Path, *, voice: str = "heart", british: bool = False, device: str = "cpu"
) -> HibariModel:
    """Load a hibari voice from its ONNX file.

    Args:
        model_path: the voice's ONNX graph.
        voice: hibari voice name (selects the G2P variant with ``british``).
        british: British spelling-to-sound rules.
        device: only "cpu" is supported by the hibari engine.

    Raises:
        ModelError: the file cannot be loaded as a hibari voice.
    """
    from hibari import Hibari
    from hibari.g2p import G2P

    if device != "cpu":
        raise ModelError("hibari voices run on the CPU only; use --device cpu or auto")
    try:
        engine = Hibari(
            voice="heart",
            model=str(model_path),
            threads=os.cpu_count() or 1,
            g2p=G2P(british=british),
        )
    except Exception as exc:  # onnxruntime raises its own untyped errors
        raise ModelError(f"{model_path}: cannot load as a hibari voice ({exc})") from exc
    engine.voice = voice
    return HibariModel(engine)


def load_entry(resolved: ResolvedModel, device: str = "cpu") -> HibariModel:
    """The front door's hook (:func:`avtool.models.loading.load`): the entry's ONNX graph with
    the voice and G2P rules of its ``[config]`` (``voice``, ``british``).

    Args:
        resolved: the entry.
        device: ``auto`` (the CPU, hibari's only engine) or ``cpu``.

    Raises:
        ModelError: not a hibari voice, or a device other than the CPU.
    """
    return load(
        resolved.path,
        voice=str(resolved.entry.config.get("voice", "heart")),
        british=bool(resolved.entry.config.get("british", False)),
        device="cpu" if device == "auto" else device,
    )
