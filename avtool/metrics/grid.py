"""Speech intelligibility on the GRID corpus grammar: pocketsphinx restricted to GRID sentences.

A GRID sentence is six words, one from each slot of `GRID_WORDS` ("lay blue at x four now"). With
the recogniser restricted to that grammar, word error rate (`avtool.metrics.wer`) on generated
speech is an objective intelligibility score for text-to-speech, video-to-speech and talking heads.

Measured accuracy (pocketsphinx 5.1.1, bundled en-US model, this grammar, one utterance per clip):
real GRID speech scores a corpus WER of about 0.11 (speaker s1: 0.111 on 225 clips, 0.101 on 150
others; the six multi-speaker clips: 0.111). Most errors are with/at/in, lay/place and letters
that sound alike (b/p, d/t). White noise and silence give no sentence (WER 1.0); time-reversed
GRID speech scores about 0.8 (chance level is about 0.8).
"""

from __future__ import annotations

from pathlib import PurePath
from types import MappingProxyType

import numpy as np
import soxr

from avtool.errors import InputError, ModelError
from avtool.metrics.sphinx import SAMPLE_RATE, bundled_decoder

GRID_WORDS = MappingProxyType(
    {
        "command": ("bin", "lay", "place", "set"),
        "colour": ("blue", "green", "red", "white"),
        "preposition": ("at", "by", "in", "with"),
        "letter": tuple("abcdefghijklmnopqrstuvxyz"),
        "digit": ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"),
        "adverb": ("again", "now", "please", "soon"),
    }
)
"""The six slots of a GRID sentence, in order, each with its words."""

# Per slot, file-id code -> word: the word's initial, except digits (1-9, z = zero).
_ID_CODES = tuple(
    MappingProxyType(
        {"z": "zero", **{str(i): w for i, w in enumerate(words) if i}}
        if slot == "digit"
        else {w[0]: w for w in words}
    )
    for slot, words in GRID_WORDS.items()
)

# GRID speakers are British: "z" is "zed", which cmudict lacks (it has only "zee"); adding it
# removed every z error on 225 s1 clips (WER 0.119 -> 0.113).
_EXTRA_PRONUNCIATIONS = (("z(2)", "Z EH D"),)
_PEAK = 0.9


def grid_jsgf() -> str:
    """The GRID grammar in JSGF: one public rule ``<sentence>``, six slots in order.

    Silence and fillers between words are left to the decoder.
    """
    rules = "".join(f"<{slot}> = {' | '.join(words)};\n" for slot, words in GRID_WORDS.items())
    sentence = " ".join(f"<{slot}>" for slot in GRID_WORDS)
    return f"#JSGF V1.0;\ngrammar grid;\n{rules}public <sentence> = {sentence};\n"


def parse_grid_id(stem: str) -> str:
    """The transcript a GRID file id encodes.

    Args:
        stem: A file id (``"lbax4n"``), optionally with a prefix ending in ``_``
            (``"id2_vcd_swwp2s"``), a folder or an extension (``"clips/lbax4n.mkv"``).

    Returns:
        Six space-separated words, e.g. ``"lay blue at x four now"``.

    Raises:
        InputError: The id is not six valid GRID codes.
    """
    code = PurePath(stem).stem.rsplit("_", 1)[-1].lower()
    words = [codes.get(c) for codes, c in zip(_ID_CODES, code, strict=False)]
    if len(code) != len(_ID_CODES) or None in words:
        raise InputError(f"{stem!r} is not a GRID id (six codes like 'lbax4n')")
    return " ".join(words)


class GridRecognizer:
    """Pocketsphinx with its bundled en-US model, restricted to GRID sentences.

    The model loads once; every `recognize` call is an independent utterance (the feature
    normalisation that pocketsphinx otherwise carries over is reset), so results do not depend on
    what was decoded before.

    Raises:
        SetupError: pocketsphinx is not installed (``pip install 'pocketsphinx>=5'``).
        ModelError: The bundled model is missing, or its dictionary lacks a GRID word.
    """

    def __init__(self) -> None:
        # lm=None: the grammar, added below, is the only search.
        self._decoder = bundled_decoder(
            "GRID recognition", "en-US model", {"dict": "cmudict-en-us.dict"}, lm=None
        )
        missing = [w for ws in GRID_WORDS.values() for w in ws if not self._decoder.lookup_word(w)]
        if missing:
            raise ModelError(f"the pocketsphinx dictionary lacks GRID words: {', '.join(missing)}")
        for word, phones in _EXTRA_PRONUNCIATIONS:
            self._decoder.add_word(word, phones, False)
        self._decoder.add_jsgf_string("grid", grid_jsgf())
        self._decoder.activate_search("grid")

    def recognize(self, audio: np.ndarray, sample_rate: int) -> str:
        """Recognises one GRID sentence.

        Args:
            audio: (T,) float mono samples in [-1, 1] at ``sample_rate`` Hz.
            sample_rate: Rate of ``audio``, Hz; resampled to 16 kHz when different.

        Returns:
            The recognised GRID words, space-separated: six for a whole sentence, fewer or ``""``
            when none fits (noise, silence, speech cut short).

        Raises:
            InputError: ``audio`` is not a non-empty, finite, 1-D float array.
        """
        audio = np.asarray(audio)
        if audio.ndim != 1 or audio.size == 0 or not np.issubdtype(audio.dtype, np.floating):
            raise InputError(
                f"expected (T,) float mono audio, got shape {audio.shape} {audio.dtype}"
            )
        if not np.isfinite(audio).all():
            raise InputError("audio contains NaN or infinite samples")
        if sample_rate != SAMPLE_RATE:
            audio = soxr.resample(audio.astype(np.float32), sample_rate, SAMPLE_RATE, "VHQ")
        # A fixed peak makes the score independent of level: int16 would quantise quiet speech away.
        peak = float(np.abs(audio).max())
        audio = audio * (_PEAK / peak) if peak > 0 else audio
        pcm = (np.clip(audio, -1.0, 1.0) * 32767.0).round().astype("<i2")
        decoder = self._decoder
        # Otherwise the cepstral mean of earlier utterances carries over and skews this one.
        decoder.reinit_feat()
        decoder.start_utt()
        decoder.process_raw(pcm.tobytes(), full_utt=True)
        decoder.end_utt()
        hyp = decoder.hyp()
        return hyp.hypstr if hyp is not None else ""
