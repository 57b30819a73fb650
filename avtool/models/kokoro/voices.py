"""Kokoro voice names, blend strings and voice packs (the 256-d style space).

A Kokoro voice is a *pack*: ``(510, 1, 256)`` float32 style vectors, row ``n`` for an input of
``n`` phoneme tokens. Names follow Kokoro's convention ``<accent><gender>_<name>``: ``a`` = US,
``b`` = GB English; ``f`` = female, ``m`` = male (``am_adam``: US male).

A blend is ``"af_heart:0.6,am_adam:0.4"``: the weighted sum of the packs (weights normalised to
sum to 1), which is how Kokoro voices are mixed upstream; ``"am_adam"`` alone is weight 1.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from avtool.errors import InputError, ModelError

#: Rows of a pack (one per token count, 0..509) and the style width.
PACK_ROWS = 510
STYLE_DIM = 256
PACK_SHAPE = (PACK_ROWS, 1, STYLE_DIM)
PACK_BYTES = PACK_ROWS * STYLE_DIM * 4
#: Registry entries of the voices are ``kokoro-<voice>``; the engine is ``kokoro-v1.0``.
ENTRY_PREFIX = "kokoro-"
ENGINE_ENTRY = "kokoro-v1.0"
DEFAULT_VOICE = "af_heart"
_NAME = re.compile(r"[ab][fm]_[a-z]+")
_ACCENTS = {"a": "us", "b": "gb"}
_GENDERS = {"f": "female", "m": "male"}


@dataclass(frozen=True)
class VoiceInfo:
    """What a Kokoro voice name says about the voice."""

    name: str
    gender: str
    accent: str

    @property
    def british(self) -> bool:
        """British English spelling-to-sound rules."""
        return self.accent == "gb"


def voice_info(name: str) -> VoiceInfo:
    """Gender and accent of a Kokoro English voice, from its name.

    Raises:
        InputError: not a Kokoro English voice name.
    """
    if not _NAME.fullmatch(name):
        raise InputError(f"{name!r} is not a Kokoro English voice name (like af_heart, bm_george)")
    return VoiceInfo(name, _GENDERS[name[1]], _ACCENTS[name[0]])


def looks_like_kokoro(spec: str) -> bool:
    """Whether ``--voice`` means Kokoro: ``am_adam``, ``kokoro-am_adam``, ``kokoro-v1.0``, or a
    blend (a ``,`` or ``:`` in something that is not an existing file)."""
    if spec == ENGINE_ENTRY:
        return True
    if Path(spec).exists():
        return False
    if "," in spec or ":" in spec:
        return True
    return bool(_NAME.fullmatch(spec.strip().removeprefix(ENTRY_PREFIX)))


def parse_blend(spec: str, known: list[str]) -> tuple[tuple[str, float], ...]:
    """``"af_heart:0.6,am_adam:0.4"`` -> ``(("af_heart", 0.6), ("am_adam", 0.4))``.

    Names may carry the registry prefix (``kokoro-am_adam``); a name without a weight gets 1;
    weights are normalised to sum to 1; a repeated name adds up.

    Args:
        spec: the ``--voice`` string.
        known: the voice names that exist (for the error's suggestions).

    Raises:
        InputError: an empty part, a weight that is not a non-negative number, all weights
            zero, or an unknown voice (the message lists close names).
    """
    if spec == ENGINE_ENTRY:
        spec = DEFAULT_VOICE
    weights: dict[str, float] = {}
    for part in spec.split(","):
        name, sep, value = part.strip().partition(":")
        name = name.strip().removeprefix(ENTRY_PREFIX)
        if not name:
            raise InputError(f"--voice {spec!r}: empty voice in the blend (use a:0.6,b:0.4)")
        if sep:
            try:
                weight = float(value)
            except ValueError:
                raise InputError(
                    f"--voice {spec!r}: weight {value.strip()!r} of {name} is not a number"
                ) from None
        else:
            weight = 1.0
        if not np.isfinite(weight) or weight < 0:
            raise InputError(f"--voice {spec!r}: weight of {name} must be a number >= 0")
        if name not in known:
            close = difflib.get_close_matches(name, known, n=4, cutoff=0.4)
            hint = f"; close names: {', '.join(close)}" if close else ""
            raise InputError(
                f"--voice {spec!r}: unknown Kokoro voice {name!r}{hint} "
                "(all voices: avtool tts --list-voices)"
            )
        weights[name] = weights.get(name, 0.0) + weight
    total = sum(weights.values())
    if total <= 0:
        raise InputError(f"--voice {spec!r}: the weights add up to 0")
    return tuple((name, w / total) for name, w in weights.items() if w > 0)


def blend_label(blend: tuple[tuple[str, float], ...]) -> str:
    """The canonical string of a blend (``am_adam`` for one voice, else ``a:0.6,b:0.4``)."""
    if len(blend) == 1:
        return blend[0][0]
    return ",".join(f"{name}:{weight:.4g}" for name, weight in blend)


def check_pack(data: bytes, source: str) -> np.ndarray:
    """A voice pack from its raw bytes, refused unless it is ``(510, 1, 256)`` finite float32.

    Args:
        data: the ``.bin`` file's bytes (little-endian float32, row-major).
        source: the file name for the error message.

    Returns:
        ``(510, 1, 256)`` float32.

    Raises:
        ModelError: wrong size or non-finite values.
    """
    if len(data) != PACK_BYTES:
        raise ModelError(
            f"{source}: a Kokoro voice pack is {PACK_BYTES} bytes ({PACK_SHAPE} float32), "
            f"got {len(data)}"
        )
    pack = np.frombuffer(data, dtype="<f4").reshape(PACK_SHAPE).astype(np.float32)
    if not np.isfinite(pack).all():
        raise ModelError(f"{source}: the voice pack holds non-finite values")
    return pack


def blend_packs(packs: dict[str, np.ndarray], blend: tuple[tuple[str, float], ...]) -> np.ndarray:
    """The weighted sum of packs: ``(510, 1, 256)`` float32 (float64 sums, so order is exact)."""
    total = np.zeros(PACK_SHAPE, np.float64)
    for name, weight in blend:
        total += weight * packs[name].astype(np.float64)
    return total.astype(np.float32)
