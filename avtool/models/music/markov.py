"""Markov (n-gram) baseline over the chorale token stream of :mod:`avtool.models.music.tokens`.

Each voice token (S, A, T, B of a step) is predicted from a context of

* ``m``: the step's metre, beat position in the bar and fermata flag;
* ``s``: the pitch the voice was sounding at the previous step (HOLDs resolved);
* ``h1 .. h(n-1)``: the voice's own previous ``order - 1`` tokens, as they are (HOLDs kept);
* ``u``: the pitches the upper voices sound at this same step (already known in the S, A, T,
  B order): all of them, then only the nearest one above.

Counts are kept for a chain of ever shorter contexts, from the full one down to the voice's
unigram, and combined by interpolated absolute discounting (Kneser-Ney's interpolation with raw
lower-order counts) ending in a uniform distribution over the 71 voice tokens, so every token
has a non-zero probability and held-out NLL is finite::

    P_l(w | c_l) = (max(C(c_l, w) - D, 0) + D * N1+(c_l) * P_(l+1)(w | c_(l+1))) / C(c_l)

where ``C(c_l) = 0`` skips the level. The chain for the bass with ``order = 3``::

    (m, s, h1, h2, S, A, T) -> (m, s, h1, h2, T) -> (m, s, h1, h2) -> (m, s, h1) -> (m, s)
        -> (s) -> () -> uniform

On the valid chorales orders 1 and 2 score best (longer own-voice histories are mostly HOLDs
and only fragment the counts), so the ``small`` preset is a bigram model.

Counting is vectorised with numpy (a few seconds for the augmented training split); a model is
saved as one ``.npz`` file of sorted count tables plus its config as JSON.

    model = fit(sequences, MarkovConfig.small())    # sequences: [(tokens, cond), ...]
    logp = model.log_probs(tokens, cond)            # (N,), NaN where no voice token
    save(model, "music_markov.npz"); model = load("music_markov.npz")
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from avtool.errors import ModelError
from avtool.io.files import atomic_output
from avtool.models.music.tokens import (
    BOS,
    COND_BEAT,
    COND_FERMATA,
    COND_VOICE,
    HOLD_TOKEN,
    KEY_BASE,
    NO_VOICE,
    NUM_VOICES,
    PREFIX_LENGTH,
    REST_TOKEN,
    VOCAB_SIZE,
    VOICE_TOKENS,
)
from avtool.models.presets import PresetConfig
from avtool.registry import ResolvedModel

__all__ = ["PRESETS", "MarkovConfig", "MarkovModel", "fit", "load", "save"]

#: Preset names accepted by :meth:`MarkovConfig.preset`.
PRESETS = ("small", "debug")
FORMAT = "avtool-music-markov-1"
# Bits per packed context field: tokens are < 128, metre (beat * 2 + fermata) < 64.
_TOKEN_BITS = 7
_METRE_BITS = 6
_TARGET_BITS = 7
_VOICE_TOKENS = np.arange(VOICE_TOKENS.start, VOICE_TOKENS.stop)


@dataclass(frozen=True)
class MarkovConfig(PresetConfig):
    """An n-gram baseline.

    Attributes:
        order: n; the voice's own ``order - 1`` previous tokens are in the context (1..4).
        discount: absolute discount ``D`` in (0, 1).
    """

    presets: ClassVar[tuple[str, ...]] = PRESETS
    family_name: ClassVar[str] = "Markov"

    order: int = 2
    discount: float = 0.7

    def __post_init__(self) -> None:
        if not 1 <= self.order <= 4:
            raise ModelError(f"Markov order must be 1..4, not {self.order}")
        if not 0.0 < self.discount < 1.0:
            raise ModelError(f"Markov discount must be in (0, 1), not {self.discount}")

    @classmethod
    def small(cls) -> MarkovConfig:
        """Bigram contexts, discount 0.7; orders 1 and 2 tie as the best on the valid
        chorales (``music_train`` selects order and discount on valid again when it trains)."""
        return cls()

    @classmethod
    def debug(cls) -> MarkovConfig:
        """Bigram contexts: for tests (training keeps the order)."""
        return cls(order=2)


def _levels(voice: int, order: int) -> list[tuple[str, ...]]:
    """Context fields of each level for ``voice``, most specific first."""
    history = tuple(f"h{k}" for k in range(1, order))
    chain = [("m", "s", *history[:k]) for k in range(len(history), -1, -1)]
    chain += [("s",), ()]
    if voice == 0:
        return chain
    upper = [("m", "s", *history, *(f"u{u}" for u in range(voice)))]
    if voice > 1:
        upper.append(("m", "s", *history, f"u{voice - 1}"))
    return upper + chain


def _field_bits(name: str) -> int:
    return _METRE_BITS if name == "m" else _TOKEN_BITS


def _pack(features: Mapping[str, np.ndarray], names: Sequence[str], size: int) -> np.ndarray:
    """One uint64 key per row from the named feature columns (fixed bit widths)."""
    key = np.zeros(size, dtype=np.uint64)
    for name in names:
        bits = _field_bits(name)
        key = (key << np.uint64(bits)) | features[name].astype(np.uint64)
    return key


def _features(
    steps: np.ndarray, sounding: np.ndarray, metre: np.ndarray, order: int
) -> dict[str, np.ndarray]:
    """Context features of every voice token of a piece.

    Args:
        steps: ``(T, 4)`` voice tokens.
        sounding: ``(T, 4)`` the token each voice sounds at each step (HOLDs resolved to the
            held pitch; BOS before the voice's first token).
        metre: ``(T,)`` ``beat * 2 + fermata``.
        order: the n of the n-gram.

    Returns:
        ``(T, 4)`` arrays named ``m``, ``s``, ``h1``.., ``u0``.. (``u{k}``: voice ``k``'s
        sounding token at the same step; filled for every row, used for voices below ``k``).
    """
    length = steps.shape[0]
    padded_steps = np.concatenate([np.full((order, NUM_VOICES), BOS), steps])
    padded_sound = np.concatenate([np.full((1, NUM_VOICES), BOS), sounding])
    out = {"m": np.repeat(metre[:, None], NUM_VOICES, axis=1), "s": padded_sound[:length]}
    for k in range(1, order):
        out[f"h{k}"] = padded_steps[order - k : order - k + length]
    for u in range(NUM_VOICES - 1):
        out[f"u{u}"] = np.repeat(sounding[:, u : u + 1], NUM_VOICES, axis=1)
    return out


def _sounding(steps: np.ndarray) -> np.ndarray:
    """``(T, 4)``: each voice's last non-HOLD token at or before each step (BOS before any)."""
    length = steps.shape[0]
    index = np.where(steps != HOLD_TOKEN, np.arange(length)[:, None], -1)
    index = np.maximum.accumulate(index, axis=0)
    taken = np.take_along_axis(steps, np.maximum(index, 0), axis=0)
    return np.where(index >= 0, taken, BOS)


def _split_sequence(tokens: np.ndarray, cond: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """Step tokens ``(T, 4)``, metre ``(T,)`` and T of an encoded piece."""
    voice = cond[:, COND_VOICE]
    positions = np.flatnonzero(voice != NO_VOICE)
    if positions.size % NUM_VOICES:
        raise ModelError("a sequence whose voice tokens are not whole 4-voice steps")
    steps = tokens[positions].reshape(-1, NUM_VOICES)
    first = cond[positions[::NUM_VOICES]]
    metre = first[:, COND_BEAT] * 2 + first[:, COND_FERMATA]
    return steps, metre, positions


class MarkovModel:
    """Count tables of a fitted n-gram model (see the module docstring).

    Attributes:
        config: the model's :class:`MarkovConfig`.
        tables: per ``(voice, level)``: ``ctx`` (sorted context keys), ``ctx_count``
            (tokens seen after the context), ``ctx_types`` (distinct tokens seen), ``pair``
            (sorted ``context << 7 | token`` keys) and ``pair_count``.
    """

    def __init__(self, config: MarkovConfig, tables: Mapping[tuple[int, int], dict[str, Any]]):
        self.config = config
        self.tables = dict(tables)

    def _probabilities(
        self, voice: int, features: Mapping[str, np.ndarray], candidates: np.ndarray
    ) -> np.ndarray:
        """P(candidate | context) for rows of one voice.

        Args:
            features: context feature columns, each ``(R,)``.
            candidates: ``(R, K)`` tokens whose probability is wanted.

        Returns:
            ``(R, K)`` float64 probabilities.
        """
        rows, width = candidates.shape
        discount = self.config.discount
        prob = np.full((rows, width), 1.0 / len(_VOICE_TOKENS))
        levels = _levels(voice, self.config.order)
        for index in range(len(levels) - 1, -1, -1):
            table = self.tables[(voice, index)]
            ctx = _pack(features, levels[index], rows)
            found, where = _lookup(table["ctx"], ctx)
            total = np.where(found, table["ctx_count"][where], 0).astype(np.float64)
            types = np.where(found, table["ctx_types"][where], 0).astype(np.float64)
            pair = (ctx[:, None] << np.uint64(_TARGET_BITS)) | candidates.astype(np.uint64)
            pair_found, pair_where = _lookup(table["pair"], pair.reshape(-1))
            count = np.where(pair_found, table["pair_count"][pair_where], 0).reshape(rows, width)
            mixed = (np.maximum(count - discount, 0.0) + discount * types[:, None] * prob) / (
                np.maximum(total[:, None], 1.0)
            )
            prob = np.where(total[:, None] > 0, mixed, prob)
        return prob

    def log_probs(self, tokens: np.ndarray, cond: np.ndarray) -> np.ndarray:
        """Log-probability of every voice token given the tokens before it.

        Args:
            tokens: ``(N,)`` an encoded piece (:func:`music_tokens.encode`).
            cond: ``(N, COND_SIZE)`` its conditioning.

        Returns:
            ``(N,)`` float64 natural-log probabilities; NaN at BOS, key, EOS and PAD.
        """
        tokens = np.asarray(tokens, dtype=np.int64)
        cond = np.asarray(cond, dtype=np.int64)
        steps, metre, positions = _split_sequence(tokens, cond)
        features = _features(steps, _sounding(steps), metre, self.config.order)
        out = np.full(tokens.shape[0], np.nan)
        for voice in range(NUM_VOICES):
            column = {name: value[:, voice] for name, value in features.items()}
            prob = self._probabilities(voice, column, steps[:, voice : voice + 1])
            out[positions[voice::NUM_VOICES]] = np.log(prob[:, 0])
        return out

    def decoder(self, batch: int) -> _MarkovDecoder:
        """A step-by-step decoder for ``batch`` pieces (see :mod:`music_generate`)."""
        return _MarkovDecoder(self, batch)

    def num_entries(self) -> int:
        """Number of stored (context, token) counts."""
        return sum(int(t["pair"].size) for t in self.tables.values())


def _lookup(keys: np.ndarray, queries: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Whether each query is in the sorted ``keys`` and its index there (0 when absent)."""
    if keys.size == 0:
        zeros = np.zeros(queries.shape, dtype=np.int64)
        return zeros.astype(bool), zeros
    where = np.searchsorted(keys, queries)
    where = np.minimum(where, keys.size - 1)
    return keys[where] == queries, where


class _MarkovDecoder:
    """Feeds one token per call and returns next-token log-probabilities (as logits)."""

    def __init__(self, model: MarkovModel, batch: int):
        self.model = model
        self.batch = batch
        self.position = 0
        # Grown one step at a time: (batch, 4) voice tokens and sounding tokens per step.
        self.steps: list[np.ndarray] = []
        self.sounding: list[np.ndarray] = []

    def _record(self, tokens: np.ndarray) -> None:
        step, voice = divmod(self.position - PREFIX_LENGTH, NUM_VOICES)
        if voice == 0:
            self.steps.append(np.full((self.batch, NUM_VOICES), BOS, dtype=np.int64))
            self.sounding.append(self.steps[-1].copy())
        self.steps[step][:, voice] = tokens
        held = self.sounding[step - 1][:, voice] if step else np.full(self.batch, BOS)
        self.sounding[step][:, voice] = np.where(tokens == HOLD_TOKEN, held, tokens)

    def _context(self, step: int, voice: int) -> dict[str, np.ndarray]:
        """The features of :func:`_features` for the token ``(step, voice)``, per row."""
        boundary = np.full(self.batch, BOS, dtype=np.int64)
        out = {"s": self.sounding[step - 1][:, voice] if step else boundary}
        for k in range(1, self.model.config.order):
            out[f"h{k}"] = self.steps[step - k][:, voice] if step >= k else boundary
        for u in range(voice):
            out[f"u{u}"] = self.sounding[step][:, u]
        return out

    def feed(self, tokens: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """Take the token at the current position; predict the next one.

        Args:
            tokens: ``(B,)`` the tokens at the current position.
            cond: ``(B, COND_SIZE)`` conditioning of the next position.

        Returns:
            ``(B, VOCAB_SIZE)`` float32 log-probabilities (``-inf`` outside the voice tokens;
            uniform over the voice tokens where the next position is not a voice token).
        """
        tokens_np = np.asarray(tokens.cpu(), dtype=np.int64)
        cond_np = np.asarray(cond.cpu(), dtype=np.int64)
        if self.position >= PREFIX_LENGTH and REST_TOKEN <= tokens_np.min() < KEY_BASE:
            self._record(tokens_np)
        self.position += 1
        logits = torch.full((self.batch, VOCAB_SIZE), -torch.inf)
        if self.position < PREFIX_LENGTH or cond_np[0, COND_VOICE] == NO_VOICE:
            logits[:, _VOICE_TOKENS] = 0.0
            return logits
        step, voice = divmod(self.position - PREFIX_LENGTH, NUM_VOICES)
        features = self._context(step, voice)
        features["m"] = cond_np[:, COND_BEAT] * 2 + cond_np[:, COND_FERMATA]
        candidates = np.broadcast_to(_VOICE_TOKENS, (self.batch, _VOICE_TOKENS.size))
        prob = self.model._probabilities(voice, features, candidates)
        logits[:, _VOICE_TOKENS] = torch.from_numpy(np.log(prob)).float()
        return logits


def fit(
    sequences: Iterable[tuple[np.ndarray, np.ndarray]], config: MarkovConfig | None = None
) -> MarkovModel:
    """Count the n-grams of encoded pieces.

    Args:
        sequences: ``(tokens (N,), cond (N, COND_SIZE))`` pairs from
            :func:`music_tokens.encode`.
        config: order and discount; :meth:`MarkovConfig.small` when None.

    Returns:
        The fitted model.
    """
    config = config or MarkovConfig.small()
    per_voice: list[dict[str, list[np.ndarray]]] = [{} for _ in range(NUM_VOICES)]
    for tokens, cond in sequences:
        steps, metre, _ = _split_sequence(np.asarray(tokens), np.asarray(cond))
        features = _features(steps, _sounding(steps), metre, config.order)
        for voice in range(NUM_VOICES):
            bucket = per_voice[voice]
            bucket.setdefault("target", []).append(steps[:, voice])
            for name, value in features.items():
                bucket.setdefault(name, []).append(value[:, voice])
    tables = {}
    for voice in range(NUM_VOICES):
        columns = {name: np.concatenate(parts) for name, parts in per_voice[voice].items()}
        size = columns["target"].size if columns else 0
        for index, names in enumerate(_levels(voice, config.order)):
            tables[(voice, index)] = _count(
                _pack(columns, names, size) if size else np.zeros(0, np.uint64),
                columns.get("target", np.zeros(0, np.int64)),
            )
    return MarkovModel(config, tables)


def _count(ctx: np.ndarray, target: np.ndarray) -> dict[str, np.ndarray]:
    pair = (ctx << np.uint64(_TARGET_BITS)) | target.astype(np.uint64)
    pair_keys, pair_count = np.unique(pair, return_counts=True)
    ctx_keys, ctx_count = np.unique(ctx, return_counts=True)
    # Distinct successors of a context = distinct pairs sharing its prefix.
    pair_ctx = pair_keys >> np.uint64(_TARGET_BITS)
    ctx_of_pair, types = np.unique(pair_ctx, return_counts=True)
    assert np.array_equal(ctx_of_pair, ctx_keys)
    return {
        "ctx": ctx_keys,
        "ctx_count": ctx_count.astype(np.uint32),
        "ctx_types": types.astype(np.uint16),
        "pair": pair_keys,
        "pair_count": pair_count.astype(np.uint32),
    }


def save(model: MarkovModel, path: str | os.PathLike[str]) -> Path:
    """Write ``model`` as one ``.npz`` (the config and format tag as JSON inside), atomically."""
    arrays = {
        f"v{voice}_l{level}_{name}": value
        for (voice, level), table in model.tables.items()
        for name, value in table.items()
    }
    meta = {"format": FORMAT, "config": asdict(model.config), "vocab_size": VOCAB_SIZE}
    path = Path(path)
    # A file object, not a name, stops numpy appending ".npz" to the temporary name.
    with atomic_output(path) as tmp, open(tmp, "wb") as f:
        np.savez_compressed(f, meta=np.array(json.dumps(meta)), **arrays)
    return path


def load(path: str | os.PathLike[str]) -> MarkovModel:
    """Read a model written by :func:`save`.

    Raises:
        ModelError: unreadable file, another format, or a vocabulary of another size.
    """
    try:
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(str(data["meta"]))
            arrays = {name: data[name] for name in data.files if name != "meta"}
    except (OSError, ValueError, KeyError) as exc:
        raise ModelError(f"{path}: not a Markov music model ({exc})") from exc
    if meta.get("format") != FORMAT or meta.get("vocab_size") != VOCAB_SIZE:
        raise ModelError(f"{path}: format {meta.get('format')!r}, expected {FORMAT!r}")
    config = MarkovConfig.from_dict(meta["config"])
    tables: dict[tuple[int, int], dict[str, np.ndarray]] = {}
    for name, value in arrays.items():
        voice, level, field = name.split("_", 2)
        tables.setdefault((int(voice[1:]), int(level[1:])), {})[field] = value
    expected = {(v, i) for v in range(NUM_VOICES) for i in range(len(_levels(v, config.order)))}
    if set(tables) != expected:
        raise ModelError(f"{path}: count tables do not match order {config.order}")
    return MarkovModel(config, tables)


def load_entry(resolved: ResolvedModel, device: str = "cpu") -> MarkovModel:
    """The front door's hook (:func:`avtool.models.loading.load`); a table model, so the
    device is not used."""
    return load(resolved.path)
