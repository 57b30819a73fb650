"""The token stream shared by the symbolic music models (Markov, LSTM, Transformer).

A four-voice chorale on the sixteenth-note grid of :mod:`avtool.datasets.chorales` becomes one flat
sequence, DeepBach-like: every step contributes four tokens in the order soprano, alto, tenor,
bass, so a model predicting the bass of step ``t`` has already seen the soprano, alto and tenor
of that step (which is what makes soprano-given harmonisation possible left to right)::

    BOS  KEY  S0 A0 T0 B0  S1 A1 T1 B1  ...  S(T-1) A(T-1) T(T-1) B(T-1)  EOS

Vocabulary (fixed, :data:`VOCAB_SIZE` = 98 tokens)::

    0        PAD     padding, never predicted
    1        BOS     start of a piece
    2        EOS     end of a piece
    3        REST    the voice is silent at this step
    4        HOLD    the voice holds the note it sounded at the previous step
    5..73    pitch   a note onset, MIDI 28..96 (token = 5 + midi - 28)
    74..97   key     tonic pitch class + 12 for minor (C major 74, A minor 74 + 9 + 12 = 95)

The pitch range (E1..C7) is wider than every voice's range in :data:`VOICE_RANGES` so that
transposed training copies and user prompts fit; samplers mask each voice to its own range.
Models see pieces transposed to all keys, so the key token after BOS tells them which one.

Each token also carries a conditioning row of :data:`COND_SIZE` small integers, embedded by the
neural models and used as context by the Markov model. The first three are the score's
metadata, known before a note is chosen:

    COND_BEAT      position in the bar in sixteenths (0..23), NO_BEAT on BOS/KEY/EOS/PAD
    COND_FERMATA   1 on the steps the chorale marks with a fermata, else 0
    COND_VOICE     0..3 for S, A, T, B, NO_VOICE on BOS/KEY/EOS/PAD

The other five summarise the tokens *before* this one (the voice state a harmony teacher would
read off the score so far), so a model need not dig each held pitch out of a run of HOLDs:

    COND_SOUNDING  4 columns, S, A, T, B: the token each voice is sounding just before this
                   position (its last pitch token, REST while silent; PAD before its first
                   token). Voices above this one already have this step's token.
    COND_PREVIOUS  this voice's own token at the previous step, as written (pitch, HOLD or
                   REST; PAD at the first step)

Being functions of the prefix, they leave the model a proper autoregressive one (the NLL is
that of the token stream); :class:`VoiceState` updates them while sampling, and
:func:`condition` computes them for a whole piece.

    tokens, cond = encode(chorale)        # (N,), (N, COND_SIZE = 8); N = 2 + 4 * T + 1
    voices = decode(tokens)               # (4, T) MIDI / HOLD / REST, as in the Chorale
"""

from __future__ import annotations

import abc
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Generic, TypeVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from avtool.datasets.chorales import HOLD, REST, STEPS_PER_QUARTER, VOICE_RANGES, VOICES
from avtool.errors import InputError, ModelError
from avtool.models import checkpoint as avtool_checkpoint
from avtool.models.weightnorm import load_weights, open_checkpoint
from avtool.registry import ResolvedModel

ConfigT = TypeVar("ConfigT")
ModelT = TypeVar("ModelT", bound=nn.Module)

__all__ = [
    "BOS",
    "COND_BEAT",
    "COND_CLASSES",
    "COND_FERMATA",
    "COND_PREVIOUS",
    "COND_SIZE",
    "COND_SOUNDING",
    "COND_VOICE",
    "EOS",
    "HOLD_TOKEN",
    "KEY_BASE",
    "MAX_BEATS",
    "NO_BEAT",
    "NO_VOICE",
    "NUM_VOICES",
    "PAD",
    "PITCH_BASE",
    "PITCH_HIGH",
    "PITCH_LOW",
    "PREFIX_LENGTH",
    "REST_TOKEN",
    "VOCAB_SIZE",
    "VOICE_TOKENS",
    "ConditionEmbedding",
    "NeuralFamily",
    "StepDecoder",
    "TokenLanguageModel",
    "VoiceState",
    "check_vocabulary",
    "condition",
    "decode",
    "encode",
    "encode_voices",
    "key_from_token",
    "key_token",
    "next_token_log_probs",
    "parse_time_signature",
    "pitch_tokens",
    "score_sequence",
    "sequence",
    "step_positions",
    "token_values",
    "vocabulary",
    "voice_masks",
]

PAD = 0
BOS = 1
EOS = 2
REST_TOKEN = 3
HOLD_TOKEN = 4
#: Lowest and highest MIDI pitch with a token of its own.
PITCH_LOW = 28
PITCH_HIGH = 96
PITCH_BASE = 5
KEY_BASE = PITCH_BASE + PITCH_HIGH - PITCH_LOW + 1
VOCAB_SIZE = KEY_BASE + 24
#: Tokens a voice can take at a step: REST, HOLD and every pitch (``range`` is immutable).
VOICE_TOKENS = range(REST_TOKEN, KEY_BASE)
NUM_VOICES = len(VOICES)
#: Tokens before the first step: BOS and the key.
PREFIX_LENGTH = 2

COND_BEAT = 0
COND_FERMATA = 1
COND_VOICE = 2
#: First of the four sounding-token columns (S, A, T, B).
COND_SOUNDING = 3
COND_PREVIOUS = COND_SOUNDING + 4
COND_SIZE = COND_PREVIOUS + 1
#: Beat positions are sixteenths within a bar; 24 covers every bar up to 3/2 (one chorale).
MAX_BEATS = 24
NO_BEAT = MAX_BEATS
NO_VOICE = NUM_VOICES
#: Number of values of each conditioning column (embedding table sizes).
COND_CLASSES = (MAX_BEATS + 1, 2, NUM_VOICES + 1) + (VOCAB_SIZE,) * (COND_SIZE - COND_SOUNDING)

_MODES = ("major", "minor")


def key_token(tonic: int, mode: str) -> int:
    """The key token for a tonic pitch class (0 = C) and ``"major"``/``"minor"``.

    Raises:
        InputError: unknown mode.
    """
    if mode not in _MODES:
        raise InputError(f"unknown mode {mode!r} (expected 'major' or 'minor')")
    return KEY_BASE + int(tonic) % 12 + 12 * _MODES.index(mode)


def key_from_token(token: int) -> tuple[int, str]:
    """``(tonic, mode)`` of a key token.

    Raises:
        InputError: ``token`` is not a key token.
    """
    if not KEY_BASE <= token < VOCAB_SIZE:
        raise InputError(f"token {token} is not a key token ({KEY_BASE}..{VOCAB_SIZE - 1})")
    offset = token - KEY_BASE
    return offset % 12, _MODES[offset // 12]


def vocabulary() -> list[str]:
    """A readable name for every token id (``"PAD"``, ``"C4"``, ``"key:G major"``, ...)."""
    names = ["PAD", "BOS", "EOS", "REST", "HOLD"]
    pitch_names = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
    names += [f"{pitch_names[p % 12]}{p // 12 - 1}" for p in range(PITCH_LOW, PITCH_HIGH + 1)]
    names += [f"key:{pitch_names[t % 12]} {_MODES[t // 12]}" for t in range(24)]
    return names


def pitch_tokens(values: np.ndarray | Sequence[int]) -> np.ndarray:
    """Tokens of chorale values (MIDI pitch, ``HOLD`` or ``REST``), any shape.

    Raises:
        InputError: a pitch outside MIDI 28..96 or a value that is none of these.
    """
    values = np.asarray(values, dtype=np.int64)
    tokens = np.where(values == HOLD, HOLD_TOKEN, np.where(values == REST, REST_TOKEN, 0))
    is_pitch = (values != HOLD) & (values != REST)
    bad = is_pitch & ((values < PITCH_LOW) | (values > PITCH_HIGH))
    if bad.any():
        raise InputError(
            f"value {int(values[bad].flat[0])} is neither HOLD, REST nor a pitch in MIDI "
            f"{PITCH_LOW}..{PITCH_HIGH}"
        )
    return np.where(is_pitch, values - PITCH_LOW + PITCH_BASE, tokens).astype(np.int64)


def token_values(tokens: np.ndarray | Sequence[int]) -> np.ndarray:
    """Chorale values (MIDI pitch, ``HOLD``, ``REST``) of voice tokens, any shape.

    Raises:
        InputError: a token that is not REST, HOLD or a pitch.
    """
    tokens = np.asarray(tokens, dtype=np.int64)
    bad = (tokens < REST_TOKEN) | (tokens >= KEY_BASE)
    if bad.any():
        raise InputError(f"token {int(tokens[bad].flat[0])} is not a voice token")
    values = np.where(tokens == HOLD_TOKEN, HOLD, np.where(tokens == REST_TOKEN, REST, 0))
    is_pitch = tokens >= PITCH_BASE
    return np.where(is_pitch, tokens - PITCH_BASE + PITCH_LOW, values).astype(np.int64)


def encode_voices(voices: np.ndarray) -> np.ndarray:
    """The interleaved step tokens of a ``(4, T)`` voice array: ``(4 * T,)`` S, A, T, B per step.

    Raises:
        InputError: not four voices, or a value without a token.
    """
    voices = np.asarray(voices)
    if voices.ndim != 2 or voices.shape[0] != NUM_VOICES:
        raise InputError(f"expected voices of shape (4, steps), got {voices.shape}")
    # Transposing to (T, 4) and flattening puts the four voices of a step side by side.
    return pitch_tokens(voices).T.reshape(-1)


def condition(step_tokens: np.ndarray, beat: np.ndarray, fermata: np.ndarray) -> np.ndarray:
    """The conditioning rows of the step tokens: ``(4 * T, COND_SIZE)`` int64.

    Args:
        step_tokens: ``(4 * T,)`` the interleaved step tokens (:func:`encode_voices`).
        beat: ``(T,)`` position in the bar in sixteenths, 0..MAX_BEATS - 1.
        fermata: ``(T,)`` bool.

    Raises:
        InputError: mismatched lengths or a beat outside 0..MAX_BEATS - 1.
    """
    beat = np.asarray(beat, dtype=np.int64).reshape(-1)
    fermata = np.asarray(fermata).astype(np.int64).reshape(-1)
    if beat.shape != fermata.shape or np.size(step_tokens) != NUM_VOICES * beat.size:
        raise InputError(
            f"{np.size(step_tokens) // NUM_VOICES} steps of tokens, {beat.size} beats and "
            f"{fermata.size} fermata flags"
        )
    if beat.size and (beat.min() < 0 or beat.max() >= MAX_BEATS):
        raise InputError(f"beat positions must be 0..{MAX_BEATS - 1} sixteenths")
    steps = beat.size
    grid = np.asarray(step_tokens, dtype=np.int64).reshape(steps, NUM_VOICES)
    # The token each voice sounds after each step: HOLDs take the last non-HOLD token.
    index = np.where(grid != HOLD_TOKEN, np.arange(steps)[:, None], -1)
    index = np.maximum.accumulate(index, axis=0) if steps else index
    sounding = np.where(index >= 0, np.take_along_axis(grid, np.maximum(index, 0), 0), PAD)
    before = np.concatenate([np.full((1, NUM_VOICES), PAD), sounding[:-1]])
    previous = np.concatenate([np.full((1, NUM_VOICES), PAD), grid[:-1]])
    cond = np.empty((steps, NUM_VOICES, COND_SIZE), dtype=np.int64)
    cond[:, :, COND_BEAT] = beat[:, None]
    cond[:, :, COND_FERMATA] = fermata[:, None]
    cond[:, :, COND_VOICE] = np.arange(NUM_VOICES)
    upper = np.tril(np.ones((NUM_VOICES, NUM_VOICES), dtype=bool), -1)  # [v, u]: u above v
    cond[:, :, COND_SOUNDING:COND_PREVIOUS] = np.where(
        upper[None], sounding[:, None, :], before[:, None, :]
    )
    cond[:, :, COND_PREVIOUS] = previous
    return cond.reshape(-1, COND_SIZE)


class VoiceState:
    """The voice-state columns of :func:`condition`, kept up to date token by token.

    Used while sampling, where the conditioning of the next position depends on the tokens
    just chosen; ``columns`` then equals what :func:`condition` computes for the finished
    piece.

    Attributes:
        sounding: ``(B, 4)`` int64 token each voice sounds (PAD before its first token).
        last: ``(B, 4)`` int64 each voice's latest token as written.
    """

    def __init__(self, batch: int):
        self.sounding = torch.full((batch, NUM_VOICES), PAD, dtype=torch.long)
        self.last = torch.full((batch, NUM_VOICES), PAD, dtype=torch.long)

    def update(self, voice: int, tokens: torch.Tensor) -> None:
        """Record ``(B,)`` tokens placed for ``voice``."""
        held = tokens == HOLD_TOKEN
        self.sounding[:, voice] = torch.where(held, self.sounding[:, voice], tokens)
        self.last[:, voice] = tokens

    def columns(self, voice: int) -> torch.Tensor:
        """``(B, COND_SIZE - COND_SOUNDING)`` state columns of the next token, of ``voice``."""
        return torch.cat([self.sounding, self.last[:, voice : voice + 1]], dim=1)

    def can_hold(self, voice: int) -> torch.Tensor:
        """``(B,)`` bool: the voice sounds a note it could HOLD."""
        return self.sounding[:, voice] >= PITCH_BASE


def _special_cond(count: int) -> np.ndarray:
    cond = np.full((count, COND_SIZE), PAD, dtype=np.int64)
    cond[:, COND_FERMATA] = 0
    cond[:, COND_BEAT] = NO_BEAT
    cond[:, COND_VOICE] = NO_VOICE
    return cond


def sequence(
    voices: np.ndarray,
    beat: np.ndarray,
    fermata: np.ndarray,
    key_tonic: int,
    mode: str,
    *,
    eos: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """The full token sequence and conditioning of a piece given as arrays.

    Args:
        voices: ``(4, T)`` MIDI pitch / HOLD / REST, rows S, A, T, B.
        beat: ``(T,)`` position in the bar in sixteenths.
        fermata: ``(T,)`` bool.
        key_tonic: pitch class of the tonic (0 = C).
        mode: ``"major"`` or ``"minor"``.
        eos: end with EOS (a complete piece) or not (a prompt to continue).

    Returns:
        ``tokens`` ``(N,)`` and ``cond`` ``(N, COND_SIZE)``, both int64, with
        ``N = PREFIX_LENGTH + 4 * T + eos``.
    """
    steps = encode_voices(voices)
    if steps.size != NUM_VOICES * np.asarray(beat).size:
        raise InputError(f"voices have {steps.size // 4} steps but beat has {np.size(beat)}")
    tokens = np.concatenate(
        [[BOS, key_token(key_tonic, mode)], steps, [EOS] if eos else []]
    ).astype(np.int64)
    cond = np.concatenate(
        [_special_cond(PREFIX_LENGTH), condition(steps, beat, fermata), _special_cond(int(eos))]
    )
    return tokens, cond


def encode(chorale: Any, *, eos: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Tokens and conditioning of a :class:`avtool.datasets.chorales.Chorale`.

    Returns:
        ``tokens`` ``(N,)`` and ``cond`` ``(N, COND_SIZE)``, int64; see :func:`sequence`.

    Raises:
        InputError: a pitch outside MIDI 28..96, a beat outside 0..23, an unknown mode.
    """
    return sequence(
        chorale.voices,
        chorale.beat,
        chorale.fermata,
        chorale.key_tonic,
        chorale.mode,
        eos=eos,
    )


def decode(tokens: np.ndarray | Sequence[int]) -> np.ndarray:
    """The ``(4, T)`` int16 voices of a token sequence (the inverse of :func:`encode`).

    Leading PAD/BOS/key tokens are skipped and the sequence ends at the first EOS or PAD;
    bare step tokens (``encode_voices`` output) decode too.

    Raises:
        InputError: a special token among the steps, or a step count that is not whole.
    """
    tokens = np.asarray(tokens, dtype=np.int64).reshape(-1)
    start = 0
    while start < tokens.size and (tokens[start] in (PAD, BOS) or tokens[start] >= KEY_BASE):
        start += 1
    body = tokens[start:]
    ends = np.flatnonzero((body == EOS) | (body == PAD))
    if ends.size:
        body = body[: ends[0]]
    if body.size % NUM_VOICES:
        raise InputError(f"{body.size} step tokens is not a whole number of 4-voice steps")
    return token_values(body).reshape(-1, NUM_VOICES).T.astype(np.int16)


def step_positions(steps: int) -> np.ndarray:
    """``(steps, 4)`` sequence positions of each step's S, A, T, B tokens (after the prefix)."""
    return PREFIX_LENGTH + np.arange(steps * NUM_VOICES).reshape(steps, NUM_VOICES)


def voice_masks(
    ranges: Mapping[str, tuple[int, int]] = VOICE_RANGES,
) -> np.ndarray:
    """Tokens each voice may take: ``(4, VOCAB_SIZE)`` bool, rows S, A, T, B.

    REST, HOLD and the pitches inside the voice's inclusive MIDI range (clipped to the
    vocabulary's 28..96); special and key tokens never.
    """
    masks = np.zeros((NUM_VOICES, VOCAB_SIZE), dtype=bool)
    masks[:, REST_TOKEN] = masks[:, HOLD_TOKEN] = True
    for row, name in enumerate(VOICES):
        low, high = ranges[name]
        low, high = max(int(low), PITCH_LOW), min(int(high), PITCH_HIGH)
        masks[row, PITCH_BASE + low - PITCH_LOW : PITCH_BASE + high - PITCH_LOW + 1] = True
    return masks


def parse_time_signature(text: str) -> int:
    """Sixteenth steps per bar of a time signature such as ``"4/4"`` or ``"3/4"``.

    Raises:
        InputError: not ``N/D``, or a bar that is not a whole number of 1..24 sixteenths.
    """
    try:
        numerator, denominator = (int(part) for part in str(text).split("/"))
    except ValueError:
        raise InputError(f"time signature {text!r}: expected N/D such as 4/4") from None
    quarters_per_whole = 4
    sixteenths = numerator * quarters_per_whole * STEPS_PER_QUARTER
    if numerator < 1 or denominator < 1 or sixteenths % denominator:
        raise InputError(f"time signature {text!r}: not a whole number of sixteenths per bar")
    steps = sixteenths // denominator
    if steps > MAX_BEATS:
        raise InputError(
            f"time signature {text!r}: {steps} sixteenths per bar; at most {MAX_BEATS} "
            "(the beat conditioning covers bars up to 3/2)"
        )
    return steps


# --------------------------------------------------------------------------- neural side


class ConditionEmbedding(nn.Module):
    """Sum of one learned embedding per conditioning column.

    The neural families add it to the token embedding of the *previous* token, so each
    position knows where in the bar, under which fermata and in which voice the token it
    predicts lies, and what every voice is sounding at that moment.
    """

    def __init__(self, dim: int):
        super().__init__()
        # PAD in a token column means "nothing yet": a zero vector.
        self.tables = nn.ModuleList(
            nn.Embedding(n, dim, padding_idx=PAD if i >= COND_SOUNDING else None)
            for i, n in enumerate(COND_CLASSES)
        )

    def forward(self, cond: torch.Tensor) -> torch.Tensor:
        """``(..., COND_SIZE)`` int64 -> ``(..., dim)``."""
        return sum(table(cond[..., i]) for i, table in enumerate(self.tables))


def check_vocabulary(vocab: Any, source: str) -> None:
    """Refuse a checkpoint trained on another token vocabulary.

    Raises:
        ModelError: ``vocab`` is not :func:`vocabulary` (naming ``source``).
    """
    if list(vocab or []) != vocabulary():
        raise ModelError(
            f"{source}: the checkpoint's token vocabulary differs from this avtool's "
            f"({len(vocab or [])} tokens, expected {VOCAB_SIZE}); retrain it"
        )


def next_token_log_probs(
    model: nn.Module, tokens: torch.Tensor, next_cond: torch.Tensor
) -> torch.Tensor:
    """Log-softmax of a neural family's logits, without gradients.

    Args:
        model: called as ``model(tokens, next_cond)``, returning logits (or a tuple
            starting with them).
        tokens: ``(B, L)`` int64 input tokens.
        next_cond: ``(B, L, COND_SIZE)`` conditioning of the predicted positions.

    Returns:
        ``(B, L, VOCAB_SIZE)`` float32 log-probabilities.
    """
    with torch.inference_mode():
        logits = model(tokens, next_cond)
        logits = logits[0] if isinstance(logits, tuple) else logits
        return F.log_softmax(logits.float(), dim=-1)


def score_sequence(model: nn.Module, tokens: Any, cond: Any) -> np.ndarray:
    """Log-likelihood of each token of one piece given the ones before it.

    Args:
        model: a neural family (see :func:`next_token_log_probs`).
        tokens: ``(N,)`` an encoded piece (:func:`encode`).
        cond: ``(N, COND_SIZE)`` its conditioning.

    Returns:
        ``(N,)`` float64 natural-log probabilities; NaN at position 0 and at PAD.

    Raises:
        InputError: shapes that do not match.
    """
    tokens_np = np.asarray(tokens, dtype=np.int64)
    cond_np = np.asarray(cond, dtype=np.int64)
    if tokens_np.ndim != 1 or cond_np.shape != (tokens_np.size, COND_SIZE):
        raise InputError(
            f"expected tokens (N,) and cond (N, {COND_SIZE}), got {tokens_np.shape}, "
            f"{cond_np.shape}"
        )
    out = np.full(tokens_np.size, np.nan)
    if tokens_np.size < 2:
        return out
    device = next(model.parameters()).device
    inputs = torch.from_numpy(tokens_np).to(device)
    conds = torch.from_numpy(cond_np).to(device)
    logp = next_token_log_probs(model, inputs[None, :-1], conds[None, 1:])[0]
    picked = logp.gather(-1, inputs[1:, None])[:, 0].double().cpu().numpy()
    out[1:] = np.where(tokens_np[1:] == PAD, np.nan, picked)
    return out


@dataclass(frozen=True)
class NeuralFamily(Generic[ConfigT, ModelT]):
    """The one build / save / load path of a neural music family (LSTM, Transformer).

    Checkpoints are ``{"format", "config", "state_dict", "vocab"}`` dicts (:meth:`to_checkpoint`,
    saved with ``torch.save``): the vocabulary travels with the weights so a mismatch is caught
    on load. :meth:`load` also reads an avtool checkpoint (:mod:`avtool.models.checkpoint`, the
    vocabulary in its ``extra``).

    Attributes:
        family: the front door's family name (``music_lstm``), checked in an avtool checkpoint.
        format_tag: the family's own checkpoint tag (``avtool-music-lstm-1``).
        what: the family's name for messages (``music LSTM``).
        config_type: its config dataclass (with ``from_dict``).
        model_type: its network, built as ``model_type(config)``.
    """

    family: str
    format_tag: str
    what: str
    config_type: type[ConfigT]
    model_type: Callable[[ConfigT], ModelT]

    def build(self, config: ConfigT) -> ModelT:
        """A randomly initialised model (training mode; torch's global RNG)."""
        return self.model_type(config)

    def to_checkpoint(self, model: ModelT) -> dict[str, Any]:
        """``{"format", "config", "state_dict", "vocab"}``; save with ``torch.save``."""
        return {
            "format": self.format_tag,
            "config": asdict(model.config),
            "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
            "vocab": vocabulary(),
        }

    def load(
        self,
        checkpoint: str | os.PathLike[str] | Mapping[str, Any],
        device: str | torch.device = "cpu",
    ) -> ModelT:
        """A model from a :meth:`to_checkpoint` file (read with ``weights_only=True``) or dict,
        or from an avtool checkpoint.

        Returns:
            The model in eval mode on ``device``.

        Raises:
            ModelError: unreadable file, another family or vocabulary, mismatching weights.
        """
        data, source = open_checkpoint(checkpoint, f"{self.what} checkpoint")
        if isinstance(data, Mapping) and data.get("format") == avtool_checkpoint.FORMAT:
            stored = avtool_checkpoint.from_dict(data, source, self.family)
            data = {**stored.extra, "format": self.format_tag, "config": stored.config,
                    "state_dict": stored.state_dict}  # fmt: skip
        if not isinstance(data, Mapping) or data.get("format") != self.format_tag:
            found = data.get("format") if isinstance(data, Mapping) else type(data).__name__
            raise ModelError(f"{source}: not a {self.what} checkpoint (format {found!r})")
        check_vocabulary(data.get("vocab"), source)
        model = self.build(self.config_type.from_dict(data.get("config") or {}))
        load_weights(model, data["state_dict"], source=source, what=self.what)
        return model.to(device).eval()

    def infer(self, model: ModelT, tokens: torch.Tensor, next_cond: torch.Tensor) -> torch.Tensor:
        """Next-token log-probabilities without gradients (:func:`next_token_log_probs`).

        Args:
            model: one of this family's networks.
            tokens: ``(B, L)`` int64 input tokens.
            next_cond: ``(B, L, COND_SIZE)`` conditioning of the predicted positions.

        Returns:
            ``(B, L, VOCAB_SIZE)`` float32 log-probabilities.
        """
        return next_token_log_probs(model, tokens, next_cond)

    def load_entry(self, resolved: ResolvedModel, device: str = "cpu") -> ModelT:
        """The front door's hook (:func:`avtool.models.loading.load`): the checkpoint carries
        its config."""
        return self.load(resolved.path, device)


class TokenLanguageModel(nn.Module):
    """Base of the neural families (LSTM, Transformer): scoring a whole piece.

    A subclass is called as ``model(tokens (B, L), next_cond (B, L, COND_SIZE))`` and returns
    ``(B, L, VOCAB_SIZE)`` logits (or a tuple starting with them).
    """

    def log_probs(self, tokens: np.ndarray | torch.Tensor, cond: np.ndarray | torch.Tensor):
        """Log-likelihood of each token of one piece given the ones before it.

        Args:
            tokens: ``(N,)`` an encoded piece (:func:`encode`).
            cond: ``(N, COND_SIZE)`` its conditioning.

        Returns:
            ``(N,)`` float64 numpy natural-log probabilities; NaN at position 0 and at PAD.
        """
        return score_sequence(self, tokens, cond)


class StepDecoder(abc.ABC):
    """Base of the neural families' step-by-step decoders (see :mod:`music_generate`).

    Feeds one token per call (all rows at once) and returns next-token logits; a subclass
    implements :meth:`_step` and keeps whatever state carries over between positions.

    Attributes:
        model: the network.
        batch: rows decoded together.
    """

    def __init__(self, model: nn.Module, batch: int):
        self.model = model
        self.batch = batch

    def feed(self, tokens: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """Take the tokens at the current position; predict the next ones.

        Args:
            tokens: ``(B,)`` int64.
            cond: ``(B, COND_SIZE)`` conditioning of the next position.

        Returns:
            ``(B, VOCAB_SIZE)`` float32 logits on the CPU.
        """
        device = next(self.model.parameters()).device
        with torch.inference_mode():
            logits = self._step(tokens.to(device)[:, None], cond.to(device)[:, None])
        return logits[:, 0].float().cpu()

    @abc.abstractmethod
    def _step(self, tokens: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """``(B, 1)`` tokens and ``(B, 1, COND_SIZE)`` conditioning on the model's device ->
        ``(B, 1, VOCAB_SIZE)`` logits, advancing the decoder by one position."""
