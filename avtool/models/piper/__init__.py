"""Piper voices: VITS exported to ONNX, espeak-ng phonemes (rhasspy/piper's format).

A voice is ``NAME.onnx`` with its config ``NAME.onnx.json`` beside it (sample rate, espeak
voice, phoneme id map, inference scales). We run the graph ourselves, after making it
seedable (see :mod:`avtool.models.piper.graph`), and use piper's espeak-ng phonemizer.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.random import Generator

from avtool.errors import ModelError
from avtool.io.files import atomic_output
from avtool.models.piper.graph import NOISE_INPUT_PREFIX, PATCH_VERSION, make_seedable
from avtool.models.text import ChunkAudio, Delivery, SpeechChunk, SpeechModel
from avtool.registry import ResolvedModel, cache_dir, sha256_file
from avtool.runtime import resolve_device

log = logging.getLogger(__name__)

#: Longest chunk fed to the graph. VITS attention is quadratic in length and its
#: duration noise is per phoneme, so long inputs are cut at clause/word boundaries.
MAX_PHONEMES = 400
_CLAUSE_MARKS = frozenset(",;:")
# Stress and length marks get their own ids but are not sounds: fold them into neighbours.
_PREFIX_MARKS = frozenset("ˈˌ")
_SUFFIX_MARKS = frozenset("ːˑ")


def split_phonemes(phonemes: list[str], limit: int = MAX_PHONEMES) -> list[list[str]]:
    """Cut a phoneme sequence into pieces of at most ``limit`` symbols at word boundaries.

    Prefers a cut after a clause mark (, ; :), then after any word; a single word longer
    than ``limit`` is cut where it must. Nothing is dropped: the pieces concatenate back
    to ``phonemes``.
    """
    pieces: list[list[str]] = []
    rest = list(phonemes)
    while len(rest) > limit:
        window = rest[: limit + 1]
        spaces = [i for i, p in enumerate(window) if p == " " and i > 0]
        clause = [i for i in spaces if window[i - 1] in _CLAUSE_MARKS]
        cut = (clause or spaces or [limit])[-1]
        pieces.append(rest[:cut])
        rest = rest[cut + 1 :] if rest[cut : cut + 1] == [" "] else rest[cut:]
    if rest:
        pieces.append(rest)
    return pieces


@dataclass
class PiperModel(SpeechModel):
    """A loaded Piper voice.

    Attributes:
        session: onnxruntime session over the seedable graph.
        config: piper's ``PiperConfig`` read from the voice's JSON.
        noise_inputs: names of the noise-bank inputs added by the graph patch.
    """

    session: object
    config: object
    noise_inputs: tuple[str, ...]

    @property
    def sample_rate(self) -> int:
        return int(self.config.sample_rate)

    def _phonemizer(self):
        from piper import PiperVoice

        # PiperVoice is only used for its espeak-ng phonemizer; our session runs the graph.
        return PiperVoice(session=self.session, config=self.config)

    def chunks(self, text: str, sentence_index: int = 0) -> list[SpeechChunk]:
        """Phonemize one sentence of text into chunks no longer than :data:`MAX_PHONEMES`."""
        out = []
        for phonemes in self._phonemizer().phonemize(text):
            known = [p for p in phonemes if p in self.config.phoneme_id_map]
            if len(known) != len(phonemes):
                dropped = sorted(set(phonemes) - set(known))
                log.warning("phonemes missing from the voice's map, skipped: %s", dropped)
            for piece in split_phonemes(known):
                if any(p.strip() for p in piece):
                    out.append(SpeechChunk(text, sentence_index, tuple(piece)))
        return out

    def pronounce(self, word: str) -> str:
        """The word's phonemes when said on its own (for aligning words to the audio)."""
        return "".join("".join(s) for s in self._phonemizer().phonemize(word))

    def phoneme_ids(self, phonemes: tuple[str, ...]) -> list[int]:
        """Ids as piper's training saw them: BOS, PAD, then each phoneme followed by PAD, EOS."""
        id_map = self.config.phoneme_id_map
        ids = [*id_map["^"], *id_map["_"]]
        for p in phonemes:
            ids.extend(id_map[p])
            ids.extend(id_map["_"])
        ids.extend(id_map["$"])
        return ids

    def _render(self, chunk: SpeechChunk, rng: Generator, delivery: Delivery) -> ChunkAudio:
        """Peak-normalised audio and per-phoneme samples; ``rng`` fills the graph's noise
        banks, ``noise_scale`` / ``noise_w`` default to the voice's."""
        cfg = self.config
        ids = self.phoneme_ids(chunk.phonemes)
        length_scale = cfg.length_scale / delivery.speed
        scales = np.array(
            [
                cfg.noise_scale if delivery.noise_scale is None else delivery.noise_scale,
                length_scale,
                cfg.noise_w_scale if delivery.noise_w is None else delivery.noise_w,
            ],
            dtype=np.float32,
        )
        # Bank sizes are estimates (2 x ids for durations, 192 channels x ~8 frames per id
        # for the prior); the graph tiles a bank that falls short, so they only cost time.
        sizes = [4 * len(ids), int(192 * 8 * len(ids) * max(1.0, length_scale))]
        feeds = {
            "input": np.array([ids], dtype=np.int64),
            "input_lengths": np.array([len(ids)], dtype=np.int64),
            "scales": scales,
        }
        for name, size in zip(self.noise_inputs, sizes, strict=False):
            feeds[name] = rng.standard_normal(size, dtype=np.float32)
        if cfg.num_speakers > 1:
            feeds["sid"] = np.array([cfg.default_speaker_id], dtype=np.int64)
        audio, frames = self.session.run(None, feeds)
        audio = audio.reshape(-1).astype(np.float32)
        peak = float(np.max(np.abs(audio))) if audio.size else 0.0
        # Piper normalises each sentence to full scale; we do the same so levels match it.
        audio = audio / peak if peak > 1e-8 else np.zeros_like(audio)
        samples = frames.reshape(-1).astype(np.int64) * int(cfg.hop_length)
        return ChunkAudio(np.clip(audio, -1.0, 1.0), self._align(chunk.phonemes, samples))

    @staticmethod
    def _align(
        phonemes: tuple[str, ...], id_samples: np.ndarray
    ) -> tuple[tuple[str, int], ...] | None:
        """Samples per phoneme from samples per id (each phoneme owns its following PAD)."""
        if len(id_samples) != 2 * len(phonemes) + 3:
            return None
        spans = [("^", int(id_samples[0] + id_samples[1]))]
        for k, p in enumerate(phonemes):
            spans.append((p, int(id_samples[2 + 2 * k] + id_samples[3 + 2 * k])))
        spans.append(("$", int(id_samples[-1])))
        merged: list[list] = []
        carry = ("", 0)
        for p, n in spans:
            if p in _PREFIX_MARKS:
                carry = (carry[0] + p, carry[1] + n)
                continue
            if p in _SUFFIX_MARKS and merged:
                merged[-1][0] += p
                merged[-1][1] += n
                continue
            merged.append([carry[0] + p, carry[1] + n])
            carry = ("", 0)
        if carry[1] and merged:
            merged[-1][1] += carry[1]
        return tuple((p, n) for p, n in merged)


def _patched_graph(model_path: Path, sha256: str, derived_dir: Path) -> Path:
    """The seedable graph for ``model_path``, built once and cached by the weights' sha256."""

    target = derived_dir / f"piper-{sha256[:16]}-seedable-v{PATCH_VERSION}.onnx"
    # The derived graph is hashed when built and checked on every use: a corrupted or
    # truncated copy in the cache is rebuilt, never run (it once gave other audio, exit 0).
    stamp = target.with_name(target.name + ".sha256")
    if target.is_file() and stamp.is_file():
        if sha256_file(target) == stamp.read_text().strip():
            return target
        log.warning("%s: the prepared voice does not match its hash; rebuilding it", target)
    import onnx
    from google.protobuf.message import DecodeError

    log.info("preparing a seedable copy of %s (once per voice)", model_path.name)
    try:
        model = onnx.load(str(model_path))
        make_seedable(model)
    except (ValueError, DecodeError, onnx.onnx_cpp2py_export.checker.ValidationError,
            OSError) as exc:  # fmt: skip
        raise ModelError(f"{model_path}: not a readable Piper voice graph ({exc})") from exc
    with atomic_output(target) as tmp:
        onnx.save(model, str(tmp))
    with atomic_output(stamp) as tmp:
        tmp.write_text(sha256_file(target) + "\n")
    return target


def load(
    model_path: str | Path,
    config_path: str | Path | None = None,
    *,
    sha256: str,
    derived_dir: Path,
    device: str = "cpu",
) -> PiperModel:
    """Load a Piper voice.

    Args:
        model_path: the voice's ``.onnx`` file.
        config_path: its JSON config (default: ``model_path`` + ``.json``).
        sha256: hash of ``model_path``, keying the cached seedable graph.
        derived_dir: folder for derived files (the seedable graph).
        device: "cpu" or "cuda" (onnxruntime's CUDA provider).

    Raises:
        ModelError: config missing or unreadable, or the graph is not a Piper VITS export.
    """
    import onnxruntime as ort
    from piper.config import PiperConfig

    model_path = Path(model_path)
    config_path = Path(config_path) if config_path else Path(f"{model_path}.json")
    try:
        config = PiperConfig.from_dict(json.loads(config_path.read_text(encoding="utf-8")))
    except (OSError, ValueError, KeyError) as exc:
        raise ModelError(f"{config_path}: not a readable Piper voice config ({exc})") from exc
    graph_path = _patched_graph(model_path, sha256, derived_dir)
    options = ort.SessionOptions()
    options.log_severity_level = 3
    providers = ["CUDAExecutionProvider"] if device == "cuda" else []
    session = ort.InferenceSession(
        str(graph_path), options, providers=[*providers, "CPUExecutionProvider"]
    )
    banks = tuple(i.name for i in session.get_inputs() if i.name.startswith(NOISE_INPUT_PREFIX))
    return PiperModel(session=session, config=config, noise_inputs=banks)


def load_entry(resolved: ResolvedModel, device: str = "cpu") -> PiperModel:
    """The front door's hook (:func:`avtool.models.loading.load`): a verified voice, its
    config the entry's ``.json`` companion (else ``NAME.onnx.json`` beside it).

    Args:
        resolved: the entry (or a local ``.onnx``).
        device: ``auto``, ``cpu`` or ``cuda``, resolved for onnxruntime.

    Raises:
        ModelError: config missing or unreadable, or not a Piper VITS export.
        SetupError: ``cuda`` and onnxruntime has no CUDA provider.
    """

    config = next((p for n, p in resolved.files.items() if n.endswith(".json")), None)
    return load(
        resolved.path,
        config,
        sha256=resolved.entry.main.sha256,
        derived_dir=cache_dir() / "derived",
        device=resolve_device(device, engine="onnx"),
    )
