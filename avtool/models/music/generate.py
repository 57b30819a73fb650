"""Sampling four-voice chorales from any symbolic music family (Markov, LSTM, Transformer).

A family only has to provide ``model.decoder(batch)``, an object whose
``feed(tokens (B,), next_cond (B, COND_SIZE)) -> logits (B, VOCAB_SIZE)`` takes the tokens at
one position and returns the scores of the next one. :func:`generate` walks the token layout of
:mod:`avtool.models.music.tokens` (``BOS KEY S0 A0 T0 B0 S1 ...``) and at every position either
forces a token (BOS, the key, a prompt step, a given soprano note) or samples one:

* the key is the conditioning token after BOS (pieces are sampled in the asked key);
* each step carries its beat position (from the time signature, bar lines every
  ``steps_per_bar`` sixteenths from the first step, shifted by ``start_beat`` for pickups)
  and a fermata flag, from :func:`phrase_fermatas` unless given;
* the voice-state conditioning columns (what each voice sounds) are updated as tokens are
  placed (:class:`~avtool.models.music.tokens.VoiceState`), exactly as ``encode`` computes
  them for the finished piece;
* tokens outside the voice's range (:data:`avtool.datasets.chorales.VOICE_RANGES`), special and key
  tokens are masked to ``-inf``; HOLD is allowed only while the voice sounds a note; with
  ``avoid_parallels``, so are notes that would move in parallel fifths or octaves with a
  voice above (already placed in this step);
* ``temperature`` divides the logits (0 takes the most likely token) and ``top_k`` keeps the k
  best tokens before sampling;
* piece ``i`` of a batch is drawn with its own ``torch.Generator`` seeded ``seed + i``, so
  results depend only on the seed, and piece 0 of a batch is :func:`generate`'s piece.

Continuation: ``prompt_voices`` (4, P) are forced verbatim as the first P steps (starting on
``start_beat``), and ``steps`` more are sampled after them. Harmonisation: ``fixed_soprano``
(the soprano of the sampled steps) is forced at every step, and the model samples alto, tenor
and bass, each after the soprano of its step (the S, A, T, B order lets every step's lower
voices depend on its soprano; unlike DeepBach's Gibbs sampling, a left-to-right model cannot
look ahead at the soprano's later notes).

Decoding runs with one torch thread (restored afterwards): per-token work is too small to gain
from more, and on a busy machine threads waiting on each other cost several times the work.

    model = load_model("weights-music/music_transformer.pt")      # or .npz for the Markov
    voices = generate(model, Score(7, "major", steps=16 * 16), SamplingOptions(seed=3))  # (4, 256)
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Protocol

import numpy as np
import torch

from avtool.datasets.chorales import REST, STEPS_PER_QUARTER, VOICE_RANGES
from avtool.errors import InputError, ModelError
from avtool.metrics.music import perfect_parallel
from avtool.models.checkpoint import FORMAT as CHECKPOINT_FORMAT
from avtool.models.music import lstm as music_lstm
from avtool.models.music import markov as music_markov
from avtool.models.music import transformer as music_transformer
from avtool.models.music.options import SamplingOptions
from avtool.models.music.tokens import (
    BOS,
    COND_SOUNDING,
    HOLD_TOKEN,
    KEY_BASE,
    NUM_VOICES,
    PITCH_BASE,
    PITCH_LOW,
    PREFIX_LENGTH,
    VOCAB_SIZE,
    NeuralFamily,
    VoiceState,
    decode,
    encode_voices,
    parse_time_signature,
    pitch_tokens,
    sequence,
    voice_masks,
)
from avtool.models.weightnorm import read_checkpoint

__all__ = [
    "FAMILIES",
    "Decoder",
    "SamplingOptions",
    "TokenModel",
    "detect_family",
    "generate",
    "generate_batch",
    "load_model",
    "phrase_fermatas",
]

#: The symbolic music families, by the name ``load_model`` and the training script use.
FAMILIES = ("markov", "lstm", "transformer")
#: The neural ones among them and their one build / save / load path.
NEURAL_FAMILIES: Mapping[str, NeuralFamily[Any, Any]] = MappingProxyType(
    {"lstm": music_lstm.FAMILY, "transformer": music_transformer.FAMILY}
)


class Decoder(Protocol):
    """Step-by-step next-token scorer of one model for a batch of pieces."""

    def feed(self, tokens: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """``(B,)`` tokens at the current position, ``(B, COND_SIZE)`` conditioning of the
        next -> ``(B, VOCAB_SIZE)`` logits of the next position."""
        ...


class TokenModel(Protocol):
    """What :func:`generate` needs of a family."""

    def decoder(self, batch: int) -> Decoder: ...


def detect_family(path: str | os.PathLike[str]) -> str:
    """The family of a checkpoint file: ``"markov"`` (``.npz``), ``"lstm"`` or
    ``"transformer"`` (the ``format`` tag inside a torch checkpoint, or the ``family`` of an
    avtool checkpoint, :mod:`avtool.models.checkpoint`).

    Raises:
        ModelError: unreadable, or not a music checkpoint.
    """
    path = Path(path)
    if path.suffix == ".npz":
        return "markov"
    data = read_checkpoint(path)
    tag = data.get("format", "") if isinstance(data, Mapping) else ""
    for name, neural in NEURAL_FAMILIES.items():
        if tag == neural.format_tag or (
            tag == CHECKPOINT_FORMAT and data.get("family") == neural.family
        ):
            return name
    raise ModelError(f"{path}: not a music model checkpoint (format {tag!r})")


def load_model(
    path: str | os.PathLike[str], family: str | None = None, device: str = "cpu"
) -> TokenModel:
    """Load any symbolic music model file, ready for :func:`generate`.

    Args:
        path: a ``music_markov.npz`` or an LSTM / Transformer ``.pt`` checkpoint.
        family: one of :data:`FAMILIES`; detected from the file when None.
        device: where a neural model goes.

    Raises:
        ModelError: unknown family, unreadable or mismatching file.
    """
    family = family or detect_family(path)
    if family == "markov":
        return music_markov.load(path)
    if family in NEURAL_FAMILIES:
        return NEURAL_FAMILIES[family].load(path, device)
    raise ModelError(f"unknown music family {family!r} (known: {', '.join(FAMILIES)})")


@contextlib.contextmanager
def _one_thread() -> Iterator[None]:
    # Decoding runs thousands of tiny per-token ops: splitting each across threads costs
    # more in synchronisation than it saves (several times more on a busy machine).
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def phrase_fermatas(
    steps: int,
    steps_per_bar: int,
    *,
    start_beat: int = 0,
    phrase_bars: int | None = None,
) -> np.ndarray:
    """The chorale norm: a fermata closing every phrase.

    Measured on the corpus: in 4/4 the fermatas fall on the third quarter (beat 8) of every
    second bar, counting full bars from the first downbeat after any pickup (two thirds of
    them; a quarter long, or a half); in 3/4 on the downbeat, every four bars. The rule marks
    one quarter at that position in every ``phrase_bars``-th bar (2 in 4/4, 4 otherwise,
    unless given) and, so the piece ends on a fermata, the last bar from that position on.
    Other metres use the downbeat.

    Args:
        steps: length in sixteenth steps.
        steps_per_bar: sixteenths per bar.
        start_beat: the first step's position in its bar (a pickup starts after 0); the
            partial first bar is not counted.
        phrase_bars: bars per phrase; None for the metre's norm.

    Returns:
        ``(steps,)`` bool.
    """
    common_time = steps_per_bar == 4 * STEPS_PER_QUARTER
    if phrase_bars is None:
        phrase_bars = 2 if common_time else 4
    fermata_beat = 2 * STEPS_PER_QUARTER if common_time else 0
    position = start_beat + np.arange(steps)
    bar, beat = np.divmod(position, steps_per_bar)
    bar -= int(start_beat > 0)  # the pickup's bar is bar -1
    at_beat = (beat >= fermata_beat) & (beat < fermata_beat + STEPS_PER_QUARTER)
    phrase_end = (bar >= 0) & ((bar + 1) % max(1, phrase_bars) == 0) & at_beat
    last_bar = bar == (bar[-1] if steps else 0)
    return phrase_end | (last_bar & (beat >= fermata_beat))


def _as_voices(prompt: Any) -> np.ndarray:
    prompt = np.asarray(prompt, dtype=np.int64)
    if prompt.ndim != 2 or prompt.shape[0] != NUM_VOICES:
        raise InputError(f"prompt_voices must have shape (4, steps), got {prompt.shape}")
    pitch_tokens(prompt)  # raises on values without a token
    return prompt


def _sample(
    logits: torch.Tensor,
    allowed: torch.Tensor,
    temperature: float,
    top_k: int,
    generators: Sequence[torch.Generator],
) -> torch.Tensor:
    """One token per row from masked, tempered, top-k filtered logits: ``(B,)`` int64."""
    logits = logits.masked_fill(~allowed, -torch.inf)
    if temperature <= 0:
        return logits.argmax(dim=-1)
    logits = logits / temperature
    if top_k > 0:
        kth = torch.topk(logits, min(top_k, logits.shape[-1]), dim=-1).values[:, -1:]
        logits = logits.masked_fill(logits < kth, -torch.inf)
    probs = torch.softmax(logits.double(), dim=-1)
    rows = zip(probs, generators, strict=True)
    return torch.stack([torch.multinomial(row, 1, generator=gen)[0] for row, gen in rows])


@dataclass(frozen=True)
class Score:
    """What to sample (the key, the length, what is given), as opposed to how
    (:class:`~avtool.models.music.options.SamplingOptions`).

    Attributes:
        key_tonic: pitch class of the tonic (0 = C).
        mode: ``"major"`` or ``"minor"``.
        steps: sixteenth steps to sample after the prompt; with ``fixed_soprano`` it may be
            left out (the soprano's length).
        prompt_voices: ``(4, P)`` MIDI / HOLD / REST steps kept verbatim in front.
        fixed_soprano: ``(steps,)`` MIDI / HOLD / REST soprano of the sampled steps.
        fermata: ``(P + steps,)`` bool fermata flags; :func:`phrase_fermatas` when None.
        start_beat: position of the first step in its bar, in sixteenths.
        voice_ranges: inclusive MIDI range of each voice for the sampled notes.
    """

    key_tonic: int
    mode: str
    steps: int | None = None
    prompt_voices: np.ndarray | None = None
    fixed_soprano: np.ndarray | Sequence[int] | None = None
    fermata: np.ndarray | None = None
    start_beat: int = 0
    voice_ranges: Mapping[str, tuple[int, int]] = field(default_factory=lambda: VOICE_RANGES)


def generate_batch(
    model: TokenModel,
    count: int,
    score: Score,
    sampling: SamplingOptions = SamplingOptions(),
    progress: Callable[[int, int], None] | None = None,
) -> np.ndarray:
    """Sample ``count`` pieces at once.

    Args:
        model: a family with ``decoder(batch)`` (Markov, LSTM, Transformer).
        count: pieces to sample.
        score: the key, length, prompt and melody (see :class:`Score`).
        sampling: ``time_signature`` (for the beat positions), ``temperature`` (0 is
            greedy), ``top_k`` (0 keeps all), ``seed`` (piece ``i`` uses a generator seeded
            ``seed + i``), ``phrase_bars`` (the fermata rule) and ``avoid_parallels``
            (never sample a note making parallel fifths or octaves with a voice above it;
            forced notes are kept as given). ``bars`` and ``key`` are the caller's: the
            score already holds the length and key.
        progress: called as ``progress(done, total)`` in bars of the whole piece (prompt
            included; a partial last bar counts as one): once with ``done = 0`` before
            decoding, then each time a bar is finished, ending with ``done == total``. It
            only observes: the result is the same with or without it.

    Returns:
        ``(count, 4, P + steps)`` int16 voices (MIDI / HOLD / REST), rows S, A, T, B.

    Raises:
        InputError: inconsistent lengths, values without a token, bad key or time signature.
    """
    steps, prompt_voices, fixed_soprano = score.steps, score.prompt_voices, score.fixed_soprano
    fermata, start_beat = score.fermata, score.start_beat
    steps_per_bar = parse_time_signature(sampling.time_signature)
    if count < 1:
        raise InputError(f"count must be at least 1, not {count}")
    prompt = _as_voices(prompt_voices) if prompt_voices is not None else None
    prompt_steps = 0 if prompt is None else prompt.shape[1]
    soprano = None
    if fixed_soprano is not None:
        soprano = np.asarray(fixed_soprano, dtype=np.int64).reshape(-1)
        pitch_tokens(soprano)
        if steps is None:
            steps = soprano.size
        elif steps != soprano.size:
            raise InputError(f"fixed_soprano has {soprano.size} steps but steps={steps}")
    if steps is None or steps < 1:
        raise InputError("give the number of steps to sample (at least 1)")
    if not 0 <= start_beat < steps_per_bar:
        raise InputError(f"start_beat must be in 0..{steps_per_bar - 1}, not {start_beat}")
    total = prompt_steps + steps
    if fermata is None:
        fermata = phrase_fermatas(
            total, steps_per_bar, start_beat=start_beat, phrase_bars=sampling.phrase_bars
        )
    fermata = np.asarray(fermata, dtype=bool).reshape(-1)
    if fermata.size != total:
        raise InputError(f"fermata has {fermata.size} steps, the piece {total}")
    beat = (start_beat + np.arange(total)) % steps_per_bar

    # Conditioning does not depend on the notes: an all-rest grid gives the whole layout.
    silent = np.full((NUM_VOICES, total), REST)
    prefix, cond_np = sequence(silent, beat, fermata, score.key_tonic, score.mode, eos=False)
    length = prefix.size
    forced = np.full(length, -1, dtype=np.int64)
    forced[:PREFIX_LENGTH] = prefix[:PREFIX_LENGTH]
    if prompt is not None:
        forced[PREFIX_LENGTH : PREFIX_LENGTH + NUM_VOICES * prompt_steps] = encode_voices(prompt)
    if soprano is not None:
        first = PREFIX_LENGTH + NUM_VOICES * prompt_steps
        forced[first::NUM_VOICES] = pitch_tokens(soprano)

    masks = torch.from_numpy(voice_masks(score.voice_ranges))
    cond = torch.from_numpy(cond_np)
    generators = [torch.Generator().manual_seed(int(sampling.seed) + i) for i in range(count)]
    tokens = torch.zeros(count, length, dtype=torch.long)
    tokens[:, 0] = BOS
    with _one_thread():
        _decode(
            model.decoder(count),
            tokens,
            cond,
            forced,
            masks,
            _Sampling(sampling.temperature, sampling.top_k, generators, sampling.avoid_parallels),
            None if progress is None else _BarCounter(progress, total, steps_per_bar),
        )
    return np.stack([decode(row) for row in tokens.numpy()])


class _BarCounter:
    """Turns finished steps into ``progress(bars done, bars total)`` calls, one per bar."""

    def __init__(self, progress: Callable[[int, int], None], steps: int, steps_per_bar: int):
        self.progress, self.steps, self.steps_per_bar = progress, steps, steps_per_bar
        self.total = -(-steps // steps_per_bar)  # a partial last bar counts
        self.done = 0
        progress(0, self.total)

    def step_done(self, steps_done: int) -> None:
        """Note that the first ``steps_done`` steps (all four voices) are placed."""
        bars = self.total if steps_done >= self.steps else steps_done // self.steps_per_bar
        if bars > self.done:
            self.done = bars
            self.progress(bars, self.total)


@dataclass(frozen=True)
class _Sampling:
    temperature: float
    top_k: int
    generators: Sequence[torch.Generator]
    avoid_parallels: bool


def _parallel_notes(before: torch.Tensor, now: torch.Tensor, voice: int) -> torch.Tensor:
    """``(B, VOCAB_SIZE)`` bool: pitch tokens that would move ``voice`` in parallel fifths
    or octaves with a voice above it.

    Args:
        before: ``(B, 4)`` tokens each voice sounded at the end of the previous step.
        now: ``(B, 4)`` tokens each voice sounds now (the voices above ``voice`` are placed).
    """
    token = torch.arange(VOCAB_SIZE)
    pitch = token - PITCH_BASE + PITCH_LOW  # meaningful for pitch tokens only
    is_pitch = (token >= PITCH_BASE) & (token < KEY_BASE)
    to_pitch = before - PITCH_BASE + PITCH_LOW, now - PITCH_BASE + PITCH_LOW
    forbidden = torch.zeros(before.shape[0], VOCAB_SIZE, dtype=torch.bool)
    for upper in range(voice):
        sounding = (before[:, [upper, voice]] >= PITCH_BASE).all(1) & (now[:, upper] >= PITCH_BASE)
        moves = perfect_parallel(
            to_pitch[0][:, upper, None],
            to_pitch[0][:, voice, None],
            to_pitch[1][:, upper, None],
            pitch[None, :],
        )
        forbidden |= sounding[:, None] & moves & is_pitch[None, :]
    return forbidden


def _decode(
    decoder: Decoder,
    tokens: torch.Tensor,
    cond: torch.Tensor,
    forced: np.ndarray,
    masks: torch.Tensor,
    sampling: _Sampling,
    bars: _BarCounter | None = None,
) -> None:
    """Fill ``tokens`` (B, N) in place from position 1 on: forced tokens or samples.

    ``cond`` (N, COND_SIZE) holds the metadata columns; the voice-state columns are filled
    here as tokens are placed (:class:`music_tokens.VoiceState`). ``bars`` hears of every
    finished step.
    """
    count, length = tokens.shape
    state = VoiceState(count)
    before = state.sounding.clone()
    for position in range(1, length):
        next_cond = cond[position].expand(count, -1)
        voice = (position - PREFIX_LENGTH) % NUM_VOICES
        if position >= PREFIX_LENGTH:
            next_cond = next_cond.clone()
            next_cond[:, COND_SOUNDING:] = state.columns(voice)
            if voice == 0:
                before = state.sounding.clone()
        logits = decoder.feed(tokens[:, position - 1], next_cond)
        if forced[position] >= 0:
            token = torch.full((count,), int(forced[position]), dtype=torch.long)
        else:
            allowed = masks[voice].expand(count, -1).clone()
            allowed[:, HOLD_TOKEN] &= state.can_hold(voice)
            if sampling.avoid_parallels and voice:
                allowed &= ~_parallel_notes(before, state.sounding, voice)
            token = _sample(
                logits, allowed, sampling.temperature, sampling.top_k, sampling.generators
            )
        tokens[:, position] = token
        if position >= PREFIX_LENGTH:
            state.update(voice, token)
            if bars is not None and voice == NUM_VOICES - 1:
                bars.step_done((position - PREFIX_LENGTH) // NUM_VOICES + 1)


def generate(
    model: TokenModel,
    score: Score,
    sampling: SamplingOptions = SamplingOptions(),
    progress: Callable[[int, int], None] | None = None,
) -> np.ndarray:
    """Sample one piece: piece 0 of :func:`generate_batch` (same seed, same result).

    Args:
        progress: ``progress(bars done, bars total)``, as in :func:`generate_batch`.

    Returns:
        ``(4, P + steps)`` int16 voices (MIDI pitch / HOLD / REST), rows S, A, T, B.
    """
    return generate_batch(model, 1, score, sampling, progress)[0]
