"""Kokoro-82M v1.0: a StyleTTS2-style TTS whose voice is a 256-d style vector, 24 kHz (ONNX).

The graph (``kokoro-v1.0.int8.onnx``) takes ``tokens`` ``(1, N+2)`` int64 (Kokoro's phoneme ids
between two 0 pads), ``style`` ``(1, 256)`` float32 (row ``N`` of a voice pack, see
:mod:`.voices`) and ``speed`` ``(1,)`` float32, and returns ``audio`` ``(S,)`` float32 at 24 kHz.
Inside, the duration predictor's rounded frame counts (``/encoder/Clip_output_0``, one per
token, 600 samples a frame) decide the length; :func:`timed_graph` exposes that tensor as a
second output so every phoneme gets its true time span, as Piper's voices give.

Phonemes come from hibari's G2P (misaki conventions: exactly Kokoro's alphabet), with US or
British rules. The model has no noise input: the same text and voice give the same samples.
"""

from __future__ import annotations

import json
import logging
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.random import Generator

from avtool import registry
from avtool.errors import ModelError
from avtool.io.files import atomic_output
from avtool.models.kokoro.voices import (
    DEFAULT_VOICE,
    ENGINE_ENTRY,
    ENTRY_PREFIX,
    PACK_ROWS,
    VoiceInfo,
    blend_label,
    blend_packs,
    check_pack,
    looks_like_kokoro,
    parse_blend,
    voice_info,
)
from avtool.models.piper import split_phonemes
from avtool.models.text import ChunkAudio, Delivery, SpeechChunk, SpeechModel
from avtool.registry import record_derived, usable_derived

__all__ = [
    "DEFAULT_VOICE",
    "ENGINE_ENTRY",
    "ENTRY_PREFIX",
    "SAMPLE_RATE",
    "KokoroModel",
    "VoiceInfo",
    "blend_label",
    "load",
    "looks_like_kokoro",
    "parse_blend",
    "split_unreadable",
    "timed_graph",
    "voice_info",
]

log = logging.getLogger(__name__)

SAMPLE_RATE = 24000
#: Samples per duration frame (hop 300 at 24 kHz, upsampled x2 by the decoder).
SAMPLES_PER_FRAME = 600
#: Longest chunk in phoneme symbols; a pack has rows for up to 509 tokens, and attention cost
#: grows with length, so long sentences are cut at clause/word boundaries like Piper's.
MAX_PHONEMES = 400
DURATION_OUTPUT = "/encoder/Clip_output_0"
GRAPH_VERSION = 1
_PREFIX_MARKS = frozenset("ˈˌ")
_SUFFIX_MARKS = frozenset("ːˑ")
#: Kokoro's (misaki's) one-letter diphthongs and marks in IPA, as espeak-ng (Piper) writes
#: them, so timings read the same for every voice and drive the talking head's visemes;
#: a diphthong's time is shared by its two halves, as Piper gives each symbol its own.
TIMING_IPA = {"A": "eɪ", "I": "aɪ", "O": "oʊ", "W": "aʊ", "Y": "ɔɪ", "Q": "əʊ", "T": "ɾ", "ᵊ": "ə"}


def split_unreadable(text: str) -> tuple[str, list[str]]:
    """Replace characters the English G2P cannot read by spaces.

    Kept: ASCII, Latin letters (café, naïve), punctuation, currency signs and whitespace;
    anything else (CJK, emoji, other scripts) would be dropped silently by the G2P, so it is
    reported instead.

    Returns:
        ``(text with those characters replaced by spaces, the distinct characters in order)``.
    """
    out, skipped = [], []
    for ch in text:
        category = unicodedata.category(ch)
        readable = (
            ch.isascii()
            or ch.isspace()
            or category[0] in "PZ"
            or category == "Sc"
            or unicodedata.name(ch, "").startswith("LATIN")
            or category == "Mn"  # combining accents on Latin letters
        )
        if readable:
            out.append(ch)
        else:
            out.append(" ")
            if ch not in skipped:
                skipped.append(ch)
    return "".join(out), skipped


@dataclass
class KokoroModel(SpeechModel):
    """A loaded Kokoro engine with one voice (a pack or a blend of packs).

    Attributes:
        session: onnxruntime session over :func:`timed_graph`'s graph (or the plain one).
        vocab: phoneme symbol -> token id.
        g2p: hibari's ``G2P`` (US or British rules).
        style: ``(510, 1, 256)`` float32, the voice's pack (blended).
        blend: ``((voice, weight), ...)``, weights summing to 1.
        british: whether ``g2p`` uses British rules.
        warnings: things the user should be told (unreadable characters), appended as text
            is phonemized.
    """

    session: Any
    vocab: Mapping[str, int]
    g2p: Any
    style: np.ndarray
    blend: tuple[tuple[str, float], ...]
    british: bool
    warnings: list[str] = field(default_factory=list)

    sample_rate: int = SAMPLE_RATE

    @property
    def voice(self) -> str:
        """The voice as a ``--voice`` string (``am_adam`` or ``af_heart:0.6,am_adam:0.4``)."""
        return blend_label(self.blend)

    @property
    def timed(self) -> bool:
        """Whether the graph gives per-token durations."""
        return any(o.name == DURATION_OUTPUT for o in self.session.get_outputs())

    def _phonemes(self, text: str, report: bool = True) -> str:
        clean, skipped = split_unreadable(text)
        if skipped and report:
            message = (
                f"skipped characters the English G2P cannot read: {' '.join(skipped)} "
                f"(in {text[:40]!r})"
            )
            log.warning("%s", message)
            self.warnings.append(message)
        phonemes = self.g2p(clean) if clean.strip() else ""
        unknown = sorted({p for p in phonemes if p not in self.vocab})
        if unknown and report:
            log.warning("phonemes missing from Kokoro's vocabulary, skipped: %s", unknown)
        return "".join(p for p in phonemes if p in self.vocab)

    def chunks(self, text: str, sentence_index: int = 0) -> list[SpeechChunk]:
        """Phonemize one sentence into chunks of at most :data:`MAX_PHONEMES` symbols."""
        pieces = split_phonemes(list(self._phonemes(text)), MAX_PHONEMES)
        return [
            SpeechChunk(text, sentence_index, tuple(piece))
            for piece in pieces
            if any(p.strip() for p in piece)
        ]

    def pronounce(self, word: str) -> str:
        """The word's phonemes said on its own, written as the timings write them (IPA)."""
        return "".join(TIMING_IPA.get(p, p) for p in self._phonemes(word, report=False))

    def token_ids(self, phonemes: tuple[str, ...]) -> list[int]:
        """Kokoro's ids between two 0 pads."""
        return [0, *(self.vocab[p] for p in phonemes), 0]

    def _render(self, chunk: SpeechChunk, rng: Generator, delivery: Delivery) -> ChunkAudio:
        """``(S,)`` float32 in [-1, 1] at 24 kHz, and samples per phoneme when timed.

        Kokoro has no noise input, so ``rng`` (the seed and chunk index) does not change the
        output and Piper's ``noise_scale``/``noise_w`` do not apply.
        """
        ids = self.token_ids(chunk.phonemes)
        tokens = len(ids) - 2
        if tokens >= PACK_ROWS:
            raise ModelError(f"a Kokoro chunk holds at most {PACK_ROWS - 1} phonemes, got {tokens}")
        feeds = {
            "tokens": np.asarray([ids], np.int64),
            "style": self.style[tokens],
            "speed": np.asarray([delivery.speed], np.float32),
        }
        outputs = self.session.run(None, feeds)
        audio = np.clip(np.asarray(outputs[0], np.float32).reshape(-1), -1.0, 1.0)
        spans = None
        if len(outputs) > 1:
            frames = np.asarray(outputs[1]).reshape(-1).astype(np.int64)
            spans = _align(chunk.phonemes, frames * SAMPLES_PER_FRAME, audio.size)
        return ChunkAudio(audio, spans)


def _align(
    phonemes: tuple[str, ...], token_samples: np.ndarray, total: int
) -> tuple[tuple[str, int], ...] | None:
    """Samples per phoneme from samples per token (pads become "^" and "$").

    Stress marks join the phoneme after them and length marks the one before, since they
    are not sounds of their own. None when the durations do not account for the audio.
    """
    if len(token_samples) != len(phonemes) + 2 or int(token_samples.sum()) != total:
        return None
    spans: list[list[Any]] = [["^", int(token_samples[0])]]
    carry = ("", 0)
    for p, n in zip(phonemes, token_samples[1:-1], strict=True):
        if p in _PREFIX_MARKS:
            carry = (carry[0] + p, carry[1] + int(n))
            continue
        if p in _SUFFIX_MARKS and len(spans) > 1:
            spans[-1][0] += p
            spans[-1][1] += int(n)
            continue
        spans.append([carry[0] + p, carry[1] + int(n)])
        carry = ("", 0)
    spans[-1][1] += carry[1]
    spans.append(["$", int(token_samples[-1])])
    out: list[tuple[str, int]] = []
    for p, n in spans:
        core = p.lstrip("".join(_PREFIX_MARKS))
        ipa = TIMING_IPA.get(core[:1], "") + core[1:] if core[:1] in TIMING_IPA else core
        stress = p[: len(p) - len(core)]
        if core[:1] in TIMING_IPA and len(TIMING_IPA[core[:1]]) == 2:
            first = n // 2
            out += [(stress + ipa[0], first), (ipa[1:], n - first)]
        else:
            out.append((stress + ipa, n))
    return tuple(out)


def timed_graph(model_path: Path, sha256: str, derived_dir: Path) -> Path:
    """The graph with the duration tensor as a second output, built once per model hash.

    Falls back to ``model_path`` itself (sentence timings only) when the tensor is absent,
    as in a different export. The copy's sha256 is recorded when it is built and checked on
    every use (:func:`avtool.registry.usable_derived`): a corrupted or truncated copy in the
    cache is rebuilt, never run.
    """

    target = derived_dir / f"kokoro-{sha256[:16]}-timed-v{GRAPH_VERSION}.onnx"
    if usable_derived(target):
        return target
    import onnx

    try:
        model = onnx.load(str(model_path))
    except (OSError, ValueError, onnx.onnx_cpp2py_export.checker.ValidationError) as exc:
        raise ModelError(f"{model_path}: not a readable ONNX graph ({exc})") from exc
    if not any(DURATION_OUTPUT in node.output for node in model.graph.node):
        log.warning("%s: no duration tensor; Kokoro timings will be per sentence", model_path)
        return Path(model_path)
    log.info("preparing a timed copy of %s (once per model)", Path(model_path).name)
    model.graph.output.append(
        onnx.helper.make_tensor_value_info(DURATION_OUTPUT, onnx.TensorProto.FLOAT, None)
    )
    with atomic_output(target) as tmp:
        onnx.save(model, str(tmp))
    record_derived(target)
    return target


def read_vocab(data: bytes, source: str) -> dict[str, int]:
    """Kokoro's phoneme vocabulary from ``vocab.json`` (``{"vocab": {symbol: id}}``).

    Raises:
        ModelError: not that layout.
    """
    try:
        vocab = json.loads(data.decode("utf-8"))["vocab"]
        if not vocab or not all(isinstance(v, int) for v in vocab.values()):
            raise ValueError("ids must be integers")
    except (ValueError, KeyError, TypeError, UnicodeDecodeError) as exc:
        raise ModelError(f"{source}: not a Kokoro vocabulary ({exc})") from exc
    return dict(vocab)


def load(
    model_path: str | Path,
    vocab_path: str | Path,
    packs: Mapping[str, str | Path],
    blend: tuple[tuple[str, float], ...],
    *,
    british: bool | None = None,
    device: str = "cpu",
    graph_path: str | Path | None = None,
    threads: int = 0,
) -> KokoroModel:
    """Load the engine with a voice.

    Args:
        model_path: ``kokoro-v1.0.int8.onnx`` (verified by the registry).
        vocab_path: ``vocab.json``.
        packs: voice name -> ``.bin`` pack, for every voice in ``blend``.
        blend: from :func:`~.voices.parse_blend`.
        british: G2P rules; None follows the heaviest voice's accent.
        device: "cpu" or "cuda".
        graph_path: the graph to run (e.g. :func:`timed_graph`'s); default ``model_path``.
        threads: onnxruntime intra-op threads; 0 = onnxruntime's default (all cores).

    Raises:
        ModelError: a pack of the wrong shape, an unreadable vocabulary or graph.
    """
    import onnxruntime as ort
    from hibari.g2p import G2P

    loaded = {n: check_pack(Path(packs[n]).read_bytes(), str(packs[n])) for n, _ in blend}
    style = blend_packs(loaded, blend)
    vocab = read_vocab(Path(vocab_path).read_bytes(), str(vocab_path))
    if british is None:
        heaviest = max(blend, key=lambda item: item[1])[0]
        british = voice_info(heaviest).british
    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.intra_op_num_threads = threads
    providers = ["CUDAExecutionProvider"] if device == "cuda" else []
    try:
        session = ort.InferenceSession(
            str(graph_path or model_path), options, providers=[*providers, "CPUExecutionProvider"]
        )
    except Exception as exc:  # onnxruntime raises its own untyped errors
        raise ModelError(f"{model_path}: cannot load as the Kokoro graph ({exc})") from exc
    names = {i.name for i in session.get_inputs()}
    if names != {"tokens", "style", "speed"}:
        raise ModelError(f"{model_path}: inputs {sorted(names)} are not Kokoro's")
    return KokoroModel(session, vocab, G2P(british=british), style, blend, british)


def registered_voices() -> list[str]:
    """The Kokoro voices in the registry (``af_heart``, ...), sorted."""
    return sorted(
        name.removeprefix(ENTRY_PREFIX)
        for name, entry in registry.load_registry().items()
        if entry.family == "kokoro" and name != ENGINE_ENTRY
    )
