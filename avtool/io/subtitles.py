"""Timed text out: SubRip (.srt), WebVTT (.vtt), tab-separated (.tsv), JSON and Praat TextGrid,
the formats whisper's ``--output_format`` writes, from one set of timed tiers.

A transcript is a mapping of tier name -> intervals in seconds (``"sentences"``, ``"words"``,
``"phonemes"``). Subtitle cues (srt, vtt) come from the first tier (sentences); tsv lists the
finest tier given (words, else sentences), one ``start<TAB>end<TAB>text`` line each, in
milliseconds as whisper's tsv; a TextGrid holds every tier, silence as empty intervals.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from avtool.errors import InputError
from avtool.io.files import atomic_output

FORMATS = ("srt", "vtt", "tsv", "json", "textgrid")
SUFFIXES = {"srt": ".srt", "vtt": ".vtt", "tsv": ".tsv", "json": ".json", "textgrid": ".TextGrid"}


@dataclass(frozen=True)
class Interval:
    """A stretch of time with its text: ``start`` and ``end`` in seconds."""

    start: float
    end: float
    text: str


def format_from_suffix(path: str | Path, default: str = "json") -> str:
    """The timed-text format a path's suffix names (``x.srt`` -> ``srt``), else ``default``."""
    suffix = Path(path).suffix.lower()
    for fmt, known in SUFFIXES.items():
        if suffix == known.lower():
            return fmt
    return default


def check_format(fmt: str, allowed: Sequence[str] = (*FORMATS, "all")) -> str:
    """``fmt`` lower-cased if it is one of ``allowed``.

    Raises:
        InputError: an unknown format.
    """
    if fmt.lower() not in allowed:
        raise InputError(f"--format {fmt!r}: choose from {', '.join(allowed)}")
    return fmt.lower()


def output_paths(path: Path, fmt: str) -> dict[str, Path]:
    """Where each format goes: ``fmt`` itself at ``path``, or for ``all`` one file per format
    beside it (``x.srt`` -> ``x.srt``, ``x.vtt``, ``x.tsv``, ``x.json``, ``x.TextGrid``)."""
    if fmt != "all":
        return {fmt: path}
    stem = path.with_suffix("") if format_from_suffix(path, "") else path
    return {f: stem.with_name(stem.name + SUFFIXES[f]) for f in FORMATS}


def write_timed_text(
    path: Path,
    fmt: str,
    tiers: Mapping[str, Sequence[Interval]],
    *,
    duration: float,
    data: Mapping[str, Any] | None = None,
) -> list[Path]:
    """Write ``tiers`` as ``fmt`` (or every format for ``all``), each file atomically.

    Args:
        path: the output (for ``all``: the stem the others are named from).
        fmt: one of :data:`FORMATS` or ``all``.
        tiers: tier name -> intervals in time order; the first tier gives subtitle cues.
        duration: the media's length in seconds (the TextGrid's end).
        data: what the JSON file holds (default: the tiers as lists of dicts).

    Returns:
        The files written.
    """
    written = []
    for one, target in output_paths(path, check_format(fmt)).items():
        body = render(one, tiers, duration=duration, data=data)
        with atomic_output(target) as tmp:
            tmp.write_text(body, encoding="utf-8")
        written.append(target)
    return written


def render(
    fmt: str,
    tiers: Mapping[str, Sequence[Interval]],
    *,
    duration: float,
    data: Mapping[str, Any] | None = None,
) -> str:
    """The text of one format (see :func:`write_timed_text`)."""
    names = list(tiers)
    if fmt == "json":
        payload = data if data is not None else {
            "duration": round(duration, 4),
            **{n: [{"text": i.text, "start": i.start, "end": i.end} for i in tiers[n]]
               for n in names},
        }  # fmt: skip
        return json.dumps(payload, indent=2, ensure_ascii=False, default=str) + "\n"
    cues = [i for i in tiers[names[0]] if i.text.strip()] if names else []
    if fmt == "srt":
        return "".join(
            f"{n}\n{_clock(c.start, ',')} --> {_clock(c.end, ',')}\n{c.text.strip()}\n\n"
            for n, c in enumerate(cues, 1)
        )
    if fmt == "vtt":
        return "WEBVTT\n\n" + "".join(
            f"{_clock(c.start, '.')} --> {_clock(c.end, '.')}\n{c.text.strip()}\n\n" for c in cues
        )
    if fmt == "tsv":
        finest = tiers["words"] if tiers.get("words") else cues
        rows = [f"{round(i.start * 1000)}\t{round(i.end * 1000)}\t{i.text.strip()}"
                for i in finest if i.text.strip()]  # fmt: skip
        return "start\tend\ttext\n" + "".join(row + "\n" for row in rows)
    if fmt == "textgrid":
        return _textgrid(tiers, duration)
    raise InputError(f"--format {fmt!r}: choose from {', '.join(FORMATS)}")


def _clock(seconds: float, separator: str) -> str:
    """``HH:MM:SS,mmm`` (srt) or ``HH:MM:SS.mmm`` (vtt)."""
    millis = max(0, round(seconds * 1000))
    hours, rest = divmod(millis, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    secs, millis = divmod(rest, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{separator}{millis:03d}"


def _filled(intervals: Sequence[Interval], duration: float) -> list[Interval]:
    """Intervals covering ``0..duration`` without overlap: gaps become empty intervals, as
    Praat's interval tiers need."""
    out: list[Interval] = []
    t = 0.0
    for i in sorted(intervals, key=lambda i: i.start):
        start, end = max(i.start, t), min(max(i.end, i.start), duration)
        if end <= start:
            continue
        if start > t:
            out.append(Interval(t, start, ""))
        out.append(Interval(start, end, i.text))
        t = end
    if t < duration:
        out.append(Interval(t, duration, ""))
    return out


def _textgrid(tiers: Mapping[str, Sequence[Interval]], duration: float) -> str:
    """A Praat TextGrid (long text format) with one interval tier per tier."""

    def quoted(text: str) -> str:
        return '"' + text.replace('"', '""') + '"'

    lines = ['File type = "ooTextFile"', 'Object class = "TextGrid"', "",
             "xmin = 0", f"xmax = {duration:.4f}", "tiers? <exists>",
             f"size = {len(tiers)}", "item []:"]  # fmt: skip
    for n, (name, intervals) in enumerate(tiers.items(), 1):
        filled = _filled(intervals, duration)
        lines += [f"    item [{n}]:", '        class = "IntervalTier"',
                  f"        name = {quoted(name)}", "        xmin = 0",
                  f"        xmax = {duration:.4f}",
                  f"        intervals: size = {len(filled)}"]  # fmt: skip
        for k, i in enumerate(filled, 1):
            lines += [f"        intervals [{k}]:", f"            xmin = {i.start:.4f}",
                      f"            xmax = {i.end:.4f}",
                      f"            text = {quoted(i.text)}"]  # fmt: skip
    return "\n".join(lines) + "\n"
