"""Options of ``avtool lipread`` and the default reader's name: the CLI builds its flags from
these, and :mod:`avtool.tasks.lipread` runs them.
"""

from __future__ import annotations

from dataclasses import dataclass

from avtool.errors import InputError
from avtool.io.formats import DEFAULT_LIP_READER

DEFAULT_MODEL = DEFAULT_LIP_READER
DECODERS = ("greedy", "beam", "grid")
FORMATS = ("text", "json", "srt", "vtt", "tsv", "textgrid", "all")
#: Default output suffix per --format ("all" writes x.srt, x.vtt, x.tsv, x.json, x.TextGrid).
FORMAT_SUFFIXES = {"text": ".txt", "json": ".json", "srt": ".srt", "vtt": ".vtt", "tsv": ".tsv",
                   "textgrid": ".TextGrid", "all": ""}  # fmt: skip


@dataclass(frozen=True)
class LipreadOptions:
    """Run-time options of ``avtool lipread``; the CLI reads its defaults from here.

    Attributes:
        model: registry name or a ``.pt`` path (with its ``.pt.json`` config beside it).
        decoder: ``greedy``, ``beam`` or ``grid`` (GRID grammar; ``--grammar grid``).
        beam: prefix beam width.
        format: ``text`` (one line), ``json`` (text, words with timings and confidences),
            ``srt``/``vtt`` (one subtitle cue), ``tsv`` (words), ``textgrid`` (Praat: sentence
            and word tiers) or ``all`` (each of srt, vtt, tsv, json, TextGrid).
        chunk_frames: frames per network window (longer videos are read in windows).
        face_index: which face when several are visible (0 = largest).
        max_gap: longest run of frames without a face that is interpolated.
    """

    model: str = DEFAULT_MODEL
    decoder: str = "beam"
    beam: int = 16
    format: str = "text"
    chunk_frames: int = 750
    face_index: int = 0
    max_gap: int = 12

    def validate(self) -> None:
        """Raises InputError for values out of range."""
        if self.decoder not in DECODERS:
            raise InputError(f"decoder {self.decoder!r}: choose from {', '.join(DECODERS)}")
        if self.format not in FORMATS:
            raise InputError(f"--format {self.format!r}: choose from {', '.join(FORMATS)}")
        if self.beam < 1:
            raise InputError(f"--beam {self.beam}: must be at least 1")
        if self.chunk_frames < 25:
            raise InputError(f"--chunk-frames {self.chunk_frames}: must be at least 25")
        if self.max_gap < 0:
            raise InputError(f"--max-gap {self.max_gap}: must be 0 or more")
