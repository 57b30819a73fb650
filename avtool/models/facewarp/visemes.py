"""Phonemes to visemes: mouth-shape targets per phone, blended over time by dominance.

A viseme here is four numbers in ``[0, 1]``: ``open`` (jaw and lip opening), ``width`` (lip
spreading, as in "ee"), ``round`` (rounding/protrusion, as in "oo") and ``close`` (lips pressed
shut, as in p/b/m). Phones come either as espeak-ng IPA symbols (Piper's phoneme timings, one
code point each) or as CMU/ARPAbet phones (pocketsphinx's phone recogniser).

Coarticulation follows Cohen and Massaro's dominance model for ``open``, ``width`` and
``round``: each phone pulls every parameter towards its target with a weight that decays
exponentially away from the phone's centre, and a frame's value is the dominance-weighted mean of
all targets, so vowels lend their rounding to neighbouring consonants ("s" in "soon" is rounded).

Lip closure is not blended: a weighted mean can only approach a closure that is short and sits
between open vowels (the "m" in "ama" stayed visibly open), yet speakers always bring the lips
together for p/b/m, however fast they talk (the closure is what makes the sound). ``close`` is
therefore a hard constraint: the maximum, over the closing phones, of the phone's closure
strength (1 for p/b/m, less for f/v and w, whose inner lips almost meet) over the whole phone and
at least the frame nearest its centre, released over :data:`CLOSURE_RAMP` either side.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np

N_PARAMS = 4
OPEN, WIDTH, ROUND, CLOSE = range(N_PARAMS)
SILENCE = "sil"
SPEECH_POSTURE = 0.3
"""Jaw opening (``open``) held through continuous speech: talking, the jaw stays lowered between
vowels (alveolars, velars and sibilants part the lips too); only closures and pauses shut it."""
SPEECH_BRIDGE = 0.25
"""Pauses shorter than this (seconds) do not interrupt a run of speech."""
SPEECH_RAMP = 0.1
"""Seconds over which the jaw leaves rest before speech and returns after it."""
CLOSURE_RAMP = 0.04
"""Seconds over which a lip closure forms before its phone and releases after it (about one
video frame at 25 fps: lips close and open in 40-60 ms)."""


@dataclass(frozen=True)
class Phone:
    """One timed phone.

    Attributes:
        label: IPA symbol (espeak-ng) or ARPAbet phone (``AA``, ``B``, ``SIL``...).
        start: start time in seconds.
        end: end time in seconds.
    """

    label: str
    start: float
    end: float


@dataclass(frozen=True)
class Viseme:
    """Mouth target of a phone class and how strongly it dominates its neighbours.

    Attributes:
        open, width, round: targets in ``[0, 1]``, blended with the neighbours' by dominance.
        close: lip-closure strength in ``[0, 1]`` imposed during the phone (not blended).
        dominance: weight of this target against overlapping phones.
    """

    open: float = 0.0
    width: float = 0.0
    round: float = 0.0
    close: float = 0.0
    dominance: float = 1.0

    @property
    def target(self) -> np.ndarray:
        return np.array([self.open, self.width, self.round, self.close], dtype=np.float64)


# Classes follow the usual English viseme groups; the numbers were set by eye on the
# astronaut photo and checked against GRID mouth-opening traces (see the tests).
_REST = Viseme(0.0, 0.0, 0.0, 0.0, 0.35)
_CLASSES = MappingProxyType(
    {
        "rest": _REST,
        # Closing phones need no extra dominance: ``close`` is imposed, not blended.
        "bilabial": Viseme(0.0, 0.0, 0.0, 1.0, 1.5),  # p b m
        "labiodental": Viseme(0.08, 0.1, 0.0, 0.85, 1.2),  # f v: lower lip on upper teeth
        "dental": Viseme(0.22, 0.1, 0.0, 0.0, 1.0),  # th dh
        "alveolar": Viseme(0.2, 0.15, 0.0, 0.0, 0.6),  # t d n l
        "sibilant": Viseme(0.1, 0.3, 0.0, 0.0, 1.2),  # s z
        "postalveolar": Viseme(0.18, 0.0, 0.55, 0.0, 1.2),  # sh zh ch jh
        "velar": Viseme(0.3, 0.1, 0.0, 0.0, 0.5),  # k g ng h
        "rhotic": Viseme(0.2, 0.0, 0.45, 0.0, 0.9),  # r
        "w": Viseme(0.08, 0.0, 0.95, 0.6, 1.8),  # a tight rounded aperture
        "y": Viseme(0.15, 0.4, 0.0, 0.0, 0.8),
        "aa": Viseme(1.0, 0.15, 0.0, 0.0, 1.0),  # father, cot
        "ae": Viseme(0.8, 0.35, 0.0, 0.0, 1.0),  # cat
        "ah": Viseme(0.6, 0.1, 0.0, 0.0, 0.8),  # cut, schwa
        "ao": Viseme(0.75, 0.0, 0.5, 0.0, 1.0),  # caught
        "eh": Viseme(0.6, 0.35, 0.0, 0.0, 0.9),  # bet
        "er": Viseme(0.4, 0.0, 0.35, 0.0, 0.9),  # bird
        "ih": Viseme(0.42, 0.4, 0.0, 0.0, 0.8),  # bit
        "iy": Viseme(0.3, 0.6, 0.0, 0.0, 1.0),  # beet
        "uh": Viseme(0.38, 0.0, 0.6, 0.0, 0.9),  # book
        "uw": Viseme(0.25, 0.0, 1.0, 0.0, 1.3),  # boot
        "ow": Viseme(0.55, 0.0, 0.75, 0.0, 1.1),  # boat
    }
)

# espeak-ng IPA (en-us) code points. Stress and length marks are not phones: they extend the
# previous phone (see merge_modifiers).
IPA_CLASSES = MappingProxyType(
    {
        **dict.fromkeys("pbm", "bilabial"),
        **dict.fromkeys("fv", "labiodental"),
        **dict.fromkeys("θð", "dental"),
        **dict.fromkeys("tdnlɾɫ", "alveolar"),
        **dict.fromkeys("sz", "sibilant"),
        **dict.fromkeys("ʃʒʧʤ", "postalveolar"),
        **dict.fromkeys("kgɡŋhxʔç", "velar"),
        **dict.fromkeys("ɹrɻ", "rhotic"),
        "w": "w",
        "ʍ": "w",
        "j": "y",
        **dict.fromkeys("aɑɒ", "aa"),
        "æ": "ae",
        **dict.fromkeys("ʌəɐ", "ah"),
        "ɔ": "ao",
        **dict.fromkeys("ɛe", "eh"),
        **dict.fromkeys("ɚɜ", "er"),
        **dict.fromkeys("ɪᵻɨ", "ih"),
        "i": "iy",
        "ʊ": "uh",
        "u": "uw",
        "o": "ow",
    }
)
IPA_MODIFIERS = frozenset("ˈˌːˑ̩̃")

# CMU phones as pocketsphinx's en-US model names them; diphthongs are two halves.
ARPABET_CLASSES = MappingProxyType(
    {
        **dict.fromkeys(("P", "B", "M"), "bilabial"),
        **dict.fromkeys(("F", "V"), "labiodental"),
        **dict.fromkeys(("TH", "DH"), "dental"),
        **dict.fromkeys(("T", "D", "N", "L"), "alveolar"),
        **dict.fromkeys(("S", "Z"), "sibilant"),
        **dict.fromkeys(("SH", "ZH", "CH", "JH"), "postalveolar"),
        **dict.fromkeys(("K", "G", "NG", "HH"), "velar"),
        "R": "rhotic",
        "W": "w",
        "Y": "y",
        "AA": "aa",
        "AE": "ae",
        "AH": "ah",
        "AO": "ao",
        "EH": "eh",
        "ER": "er",
        "IH": "ih",
        "IY": "iy",
        "UH": "uh",
        "UW": "uw",
        "AW": ("aa", "uh"),
        "AY": ("aa", "ih"),
        "EY": ("eh", "ih"),
        "OW": ("ow", "uh"),
        "OY": ("ao", "ih"),
    }
)


def viseme_class(label: str) -> str | tuple[str, str]:
    """The viseme class name(s) of a phone label; unknown labels (silence, noise) are rest."""
    if label in ARPABET_CLASSES:
        return ARPABET_CLASSES[label]
    stripped = "".join(ch for ch in label if ch not in IPA_MODIFIERS)
    if len(stripped) == 1 and stripped in IPA_CLASSES:
        return IPA_CLASSES[stripped]
    return "rest"


def expand_phones(phones: Sequence[Phone]) -> list[tuple[Viseme, float, float]]:
    """``(viseme, start, end)`` per phone; diphthongs become two halves, modifiers merge back.

    espeak-ng writes stress and length marks as their own symbols with their own duration;
    their time belongs to the neighbouring phone (the vowel being lengthened or stressed), so
    a modifier extends the previous segment (or the next, at the start).
    """
    segments: list[list] = []
    pending_start: float | None = None
    for phone in phones:
        if phone.end <= phone.start:
            continue
        if phone.label and all(ch in IPA_MODIFIERS for ch in phone.label):
            if segments:
                segments[-1][2] = max(segments[-1][2], phone.end)
            elif pending_start is None:
                pending_start = phone.start
            continue
        start = pending_start if pending_start is not None else phone.start
        pending_start = None
        kind = viseme_class(phone.label.strip())
        if isinstance(kind, tuple):
            middle = (start + phone.end) / 2.0
            segments.append([_CLASSES[kind[0]], start, middle])
            segments.append([_CLASSES[kind[1]], middle, phone.end])
        else:
            segments.append([_CLASSES[kind], start, phone.end])
    return [(v, float(s), float(e)) for v, s, e in segments]


def viseme_track(
    phones: Sequence[Phone],
    n_frames: int,
    fps: float,
    *,
    spread: float = 0.045,
    window: float = 0.35,
    posture: float = SPEECH_POSTURE,
) -> np.ndarray:
    """Per-frame mouth parameters from timed phones, with coarticulation.

    ``open``, ``width`` and ``round`` are dominance-blended; ``close`` is the hard closure
    constraint (see the module docstring), so a p/b/m reaches ``close = 1`` at its centre even
    when it is shorter than a frame and sits between two open vowels.

    Args:
        phones: timed phones in seconds (any order; gaps are rest).
        n_frames: frames to produce.
        fps: frame rate in frames/s; frame ``f`` samples time ``f / fps``.
        spread: seconds added to each phone's half-duration in its dominance decay constant
            (larger = more anticipation and carry-over).
        window: seconds either side of a phone beyond which its dominance is ignored.
        posture: the jaw opening held through continuous speech (see :func:`speech_envelope`);
            phones open further, closures still close.

    Returns:
        ``(n_frames, 4)`` float32 ``open, width, round, close`` in ``[0, 1]``.
    """
    times = np.arange(n_frames, dtype=np.float64) / fps
    weighted = np.zeros((n_frames, N_PARAMS))
    total = np.full((n_frames, N_PARAMS), 1e-6)
    # A weak rest target everywhere: frames far from any phone settle to a closed mouth.
    weighted += 1e-3 * _REST.target
    total += 1e-3
    closure = np.zeros(n_frames)
    for viseme, start, end in expand_phones(phones):
        centre, half = (start + end) / 2.0, (end - start) / 2.0
        lo = max(0, int(np.floor((start - window) * fps)))
        hi = min(n_frames, int(np.ceil((end + window) * fps)) + 1)
        if lo >= hi:
            continue
        offset = np.abs(times[lo:hi] - centre)
        distance = np.maximum(offset - half, 0.0)
        dominance = viseme.dominance * np.exp(-distance / spread)
        # Inside the phone the dominance is flat (distance 0).
        weighted[lo:hi] += dominance[:, None] * viseme.target
        total[lo:hi] += dominance[:, None]
        if viseme.close > 0.0:
            # Held over the phone, and over at least half a frame either side of its centre
            # so that a closure shorter than a frame still closes the nearest frame fully.
            core = max(half, 0.5 / fps)
            ramp = np.clip(1.0 - (offset - core) / CLOSURE_RAMP, 0.0, 1.0)
            closure[lo:hi] = np.maximum(closure[lo:hi], viseme.close * ramp)
    out = weighted / total
    out[:, OPEN] = np.maximum(out[:, OPEN], posture * speech_envelope(phones, n_frames, fps))
    out[:, CLOSE] = closure
    return out.clip(0.0, 1.0).astype(np.float32)


def speech_envelope(
    phones: Sequence[Phone],
    n_frames: int,
    fps: float,
    *,
    bridge: float = SPEECH_BRIDGE,
    ramp: float = SPEECH_RAMP,
) -> np.ndarray:
    """Where the speaker is talking: 1 inside runs of speech phones, 0 in pauses.

    Gaps shorter than ``bridge`` (stop closures, short pauses between words) are part of the
    run; the envelope rises over ``ramp`` before a run's first phone and falls over ``ramp``
    after its last (the jaw leaves and returns to rest over about 100 ms).

    Args:
        phones: timed phones (silence labelled :data:`SILENCE` or unknown labels are pauses).
        n_frames: frames to produce.
        fps: frame rate in frames/s.

    Returns:
        ``(n_frames,)`` float64 in ``[0, 1]``.
    """
    spans = sorted(
        (p.start, p.end) for p in phones if p.end > p.start and viseme_class(p.label) != "rest"
    )
    runs: list[list[float]] = []
    for start, end in spans:
        if runs and start - runs[-1][1] < bridge:
            runs[-1][1] = max(runs[-1][1], end)
        else:
            runs.append([start, end])
    times = np.arange(n_frames, dtype=np.float64) / fps
    out = np.zeros(n_frames)
    for start, end in runs:
        outside = np.maximum(np.maximum(start - times, times - end), 0.0)
        out = np.maximum(out, np.clip(1.0 - outside / ramp, 0.0, 1.0))
    return out


def lead_in(phones: Sequence[Phone], n_frames: int, fps: float) -> np.ndarray:
    """How much of the photo's own mouth to keep per frame: 1 until speech starts, then 0.

    The video opens on the photo as given (no jump from the still to a re-posed mouth), and the
    mouth leaves the photo's expression as the jaw moves into the first speech run
    (:func:`speech_envelope`'s ramp); after that, pauses rest on closed lips.

    Returns:
        ``(n_frames,)`` float64 in ``[0, 1]`` (all ones when there is no speech at all).
    """
    envelope = speech_envelope(phones, n_frames, fps)
    out = 1.0 - envelope
    started = np.flatnonzero(envelope >= 1.0)
    if started.size:
        out[started[0] :] = 0.0
    return out


def apply_energy(track: np.ndarray, loudness: np.ndarray, voiced: np.ndarray) -> np.ndarray:
    """Scale mouth opening by loudness and close the mouth where there is no speech.

    Args:
        track: ``(T, 4)`` from :func:`viseme_track`.
        loudness: ``(T,)`` in ``[0, 1]`` (0 = floor, 1 = the loud end of this recording).
        voiced: ``(T,)`` bool, frames with sound above the silence floor.

    Returns:
        ``(T, 4)`` float32 with ``open`` scaled by ``0.45 + 0.55 * sqrt(loudness)`` and set
        to 0 (``close`` kept) on silent frames, smoothed over a frame either side so the jaw
        does not jump at speech onsets.
    """
    out = track.astype(np.float32).copy()
    n = len(out)
    if n == 0:
        return out
    gain = 0.45 + 0.55 * np.sqrt(np.clip(loudness, 0.0, 1.0))
    gain = np.where(voiced, gain, 0.0).astype(np.float32)
    if n >= 3:  # a short [1, 2, 1] / 4 blur: removes single-frame jumps, keeps closures
        padded = np.pad(gain, 1, mode="edge")
        gain = 0.25 * padded[:-2] + 0.5 * padded[1:-1] + 0.25 * padded[2:]
    out[:, OPEN] *= gain
    out[:, WIDTH] *= np.minimum(1.0, gain + 0.3)
    out[:, ROUND] *= np.minimum(1.0, gain + 0.3)
    return out
