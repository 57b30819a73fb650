"""Bach chorales from music21's corpus as four-voice (SATB) grids on a sixteenth-note clock.

Representation (DeepBach's, with pitches as MIDI numbers instead of note names):

* ``voices`` is ``(4, T)`` int16, rows soprano, alto, tenor, bass, one column per sixteenth
  note. A column holds the MIDI pitch where a note starts, :data:`HOLD` where the voice
  continues the note it had in the previous column (ties are merged into one held note),
  and :data:`REST` in every column a rest covers. :data:`HOLD` only ever follows a pitch or
  another :data:`HOLD`.
* ``fermata`` is ``(T,)`` bool, true in every column covered by a note (or rest) that bears
  a fermata in any voice.
* ``beat`` is ``(T,)`` int8, the position in the bar in sixteenths (0 = downbeat), taken
  from the written bars, so pickups and the half-bars either side of a repeat sign are
  right (a 4/4 chorale with a one-crotchet pickup starts at beat 12); see ``_beats``
  for how incomplete bars are placed.
* the key is music21's Krumhansl-Schmuckler estimate (``Score.analyze("key")``) over the
  whole chorale: it labels the pitch content, which is what a key-conditioned model learns
  from. The MusicXML files' own ``<mode>`` is unreliable (parts of one file disagree).

Parsing rules: only scores with exactly four parts are kept (the instrumental versions
with horns, trumpets or continuo are dropped, as DeepBach does); when a chorale exists as
both ``.mxl`` and ``.krn`` the MusicXML copy is used. Onsets and ends are rounded to the
nearest sixteenth; notes that round to nothing (the second of a pair of ornamental
thirty-seconds, in 3 chorales) are dropped, grace notes are dropped, a chord within a part
keeps its top note, two notes starting together in one part keep the higher, and repeats
are not expanded. Every drop is counted and logged.

The train/valid/test split is the committed file ``chorale_split.json`` beside this
module, made once by :func:`make_split` (see there for the rule) and never recomputed, so
every figure uses the same split whatever music21 version is installed.
"""

from __future__ import annotations

import contextlib
import difflib
import hashlib
import itertools
import json
import logging
import re
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from types import MappingProxyType

import numpy as np

from avtool.errors import InputError
from avtool.io.files import atomic_output
from avtool.io.voice_grid import HOLD as HOLD
from avtool.io.voice_grid import REST as REST
from avtool.io.voice_grid import STEPS_PER_QUARTER as STEPS_PER_QUARTER
from avtool.io.voice_grid import VOICE_RANGES as VOICE_RANGES
from avtool.io.voice_grid import VOICES as VOICES
from avtool.io.voice_grid import notes_to_row as notes_to_row
from avtool.io.voice_grid import row_to_notes as row_to_notes

logger = logging.getLogger("avtool.datasets.chorales")


SPLIT_FILE = Path(__file__).with_name("chorale_split.json")
SPLITS = ("train", "valid", "test")
# Bump when the parsing rules change so old caches are rebuilt rather than reused.
_CACHE_FORMAT = 2
_SPLIT_SALT = "avtool-chorales-v1"
_SPLIT_FRACTIONS = MappingProxyType({"train": 0.8, "valid": 0.1, "test": 0.1})
# Soprano lines at least this similar (difflib ratio over the transposition-free interval
# sequence) count as one melody for the split: variant harmonisations and the corpus's
# duplicate copies differ by a passing note or an ornament, distinct tunes by far more.
_SAME_MELODY_RATIO = 0.9


@dataclass(frozen=True, eq=False)
class Chorale:
    """One chorale on the sixteenth-note grid (see the module docstring for the encoding).

    ``eq=False`` because numpy arrays have no single truth value; compare fields instead.
    Treat the arrays as read-only: they may be views into the shared cache arrays.

    Attributes:
        name: corpus name, e.g. ``"bwv10.7"``; transpositions keep it.
        voices: ``(4, T)`` int16 MIDI pitch at a note onset, :data:`HOLD` or :data:`REST`;
            rows soprano, alto, tenor, bass; one column per sixteenth note.
        fermata: ``(T,)`` bool, a fermata is over this step in some voice.
        beat: ``(T,)`` int8 position in the bar in sixteenths, 0 = downbeat.
        key_tonic: pitch class 0-11 of the tonic (0 = C).
        mode: ``"major"`` or ``"minor"``.
        time_signature: the first time signature, e.g. ``"4/4"``, ``"3/4"``, ``"3/2"``
            (two chorales change metre; ``beat`` follows the written bars throughout).
    """

    name: str
    voices: np.ndarray
    fermata: np.ndarray
    beat: np.ndarray
    key_tonic: int
    mode: str
    time_signature: str

    def __post_init__(self) -> None:
        voices = np.asarray(self.voices, dtype=np.int16)
        fermata = np.asarray(self.fermata, dtype=bool)
        beat = np.asarray(self.beat, dtype=np.int8)
        if voices.ndim != 2 or voices.shape[0] != len(VOICES):
            raise ValueError(f"{self.name}: voices must be (4, T), got {voices.shape}")
        steps = voices.shape[1]
        if fermata.shape != (steps,) or beat.shape != (steps,):
            raise ValueError(
                f"{self.name}: fermata {fermata.shape} and beat {beat.shape} must be ({steps},)"
            )
        if self.mode not in ("major", "minor") or not 0 <= self.key_tonic < 12:
            raise ValueError(f"{self.name}: bad key {self.key_tonic} {self.mode}")
        # Frozen dataclass: normalising dtypes has to bypass __setattr__.
        object.__setattr__(self, "voices", voices)
        object.__setattr__(self, "fermata", fermata)
        object.__setattr__(self, "beat", beat)
        object.__setattr__(self, "key_tonic", int(self.key_tonic))

    @property
    def steps(self) -> int:
        """Length T in sixteenth notes."""
        return int(self.voices.shape[1])

    def transpose(self, semitones: int) -> Chorale:
        """The chorale shifted by ``semitones`` (pitches and key; HOLD/REST unchanged).

        Raises:
            ValueError: a pitch would leave MIDI's 0-127.
        """
        voices = self.voices.copy()
        sounding = voices >= 0
        voices[sounding] += semitones
        if sounding.any() and not (voices[sounding].min() >= 0 and voices.max() <= 127):
            raise ValueError(f"{self.name}: transposing by {semitones} leaves MIDI's range")
        return Chorale(
            self.name,
            voices,
            self.fermata,
            self.beat,
            (self.key_tonic + semitones) % 12,
            self.mode,
            self.time_signature,
        )

    def pitch_bounds(self) -> np.ndarray:
        """``(4, 2)`` int lowest and highest pitch per voice; ``(+big, -big)`` for silent ones."""
        masked = np.ma.masked_less(self.voices.astype(np.int32), 0)
        low = masked.min(axis=1).filled(10_000)
        high = masked.max(axis=1).filled(-10_000)
        return np.stack([low, high], axis=1)

    def in_ranges(self) -> bool:
        """Whether every voice stays inside its :data:`VOICE_RANGES` (inclusive)."""
        return _fits(self.pitch_bounds(), 0)


def _fits(bounds: np.ndarray, shift: int) -> bool:
    limits = np.array([VOICE_RANGES[v] for v in VOICES])
    return bool(
        np.all(bounds[:, 0] + shift >= limits[:, 0])
        and np.all(bounds[:, 1] + shift <= limits[:, 1])
    )


def augment(chorale: Chorale, max_shift: int = 6) -> list[Chorale]:
    """Every transposition in ``[-max_shift, max_shift]`` that keeps all voices in range.

    The untransposed chorale is included (shift 0) when it is itself in range, which holds
    for all kept chorales but one. Order is by ascending shift.

    Args:
        chorale: the chorale to transpose.
        max_shift: largest shift in semitones, either way.
    """
    bounds = chorale.pitch_bounds()
    return [
        chorale if shift == 0 else chorale.transpose(shift)
        for shift in range(-max_shift, max_shift + 1)
        if _fits(bounds, shift)
    ]


# --- keys -------------------------------------------------------------------------------

_LETTER_PC = MappingProxyType({"c": 0, "d": 2, "e": 4, "f": 5, "g": 7, "a": 9, "b": 11})
_KEY_RE = re.compile(
    r"""^\s*(?P<letter>[A-Ga-g])
        \s*(?P<acc>-?\s*sharp|-?\s*flat|\#|♯|b|♭|-)?
        \s*(?P<mode>major|minor|maj|min|dur|moll|m)?\s*$""",
    re.IGNORECASE | re.VERBOSE,
)
KEY_FORMAT = (
    "a tonic A-G, optionally followed by # / b / -sharp / -flat, then 'major' or 'minor' "
    "(e.g. 'G major', 'f# minor', 'Bb', 'E-flat minor', 'Am'); without a mode word an "
    "upper-case tonic means major and a lower-case one minor"
)


def parse_key(text: str) -> tuple[int, str]:
    """Parse a key name into ``(tonic pitch class, mode)``.

    Accepted: a letter A-G; an optional accidental ``#``, ``♯``, ``b``, ``♭``, ``-``
    (music21's flat), ``sharp``/``flat`` (also ``-sharp``, `` flat``); an optional mode
    ``major``/``maj``/``minor``/``min``/``m``. Without a mode, music21's convention: an
    upper-case tonic is major, lower-case minor (``"Bb"`` is B-flat major, ``"a"`` A minor).

    Returns:
        ``(pc, mode)`` with ``pc`` in 0-11 and ``mode`` ``"major"`` or ``"minor"``.

    Raises:
        InputError: the text is not a key in that form.
    """
    match = _KEY_RE.match(text or "")
    mode_word = (match["mode"] or "") if match else ""
    # "m" alone is only minor in lower case ("Am"); "AM" is ambiguous, so refuse it.
    if match is None or mode_word == "M":
        raise InputError(f"unknown key {text!r}: use {KEY_FORMAT}")
    letter, acc = match["letter"], (match["acc"] or "").replace(" ", "").lower()
    pc = _LETTER_PC[letter.lower()]
    if acc in ("#", "♯", "sharp", "-sharp"):
        pc += 1
    elif acc in ("b", "♭", "-", "flat", "-flat"):
        pc -= 1
    mode_word = mode_word.lower()
    if mode_word in ("major", "maj", "dur"):
        mode = "major"
    elif mode_word in ("minor", "min", "moll", "m"):
        mode = "minor"
    else:
        mode = "major" if letter.isupper() else "minor"
    return pc % 12, mode


# --- parsing ------------------------------------------------------------------------------


def _step(quarters: float | Fraction) -> int:
    # Round half up: a note at an odd thirty-second goes to the later sixteenth.
    return int(np.floor(float(quarters) * STEPS_PER_QUARTER + 0.5))


def _part_notes(part, stats: Counter) -> tuple[list[tuple[int, int, int]], set[int]]:
    """``(onset, end, pitch)`` notes of one part (ties merged) and its fermata steps."""
    from music21 import chord, expressions, note

    notes: list[list[int]] = []
    fermata_steps: set[int] = set()
    for element in part.flatten().notesAndRests:
        if element.duration.isGrace:
            stats["grace notes dropped"] += 1
            continue
        onset, end = _step(element.offset), _step(element.offset + element.quarterLength)
        if end <= onset:
            stats["notes shorter than a sixteenth dropped"] += 1
            continue
        if any(isinstance(e, expressions.Fermata) for e in element.expressions):
            fermata_steps.update(range(onset, end))
        if isinstance(element, note.Rest):
            continue
        if isinstance(element, chord.Chord):
            stats["chords reduced to their top note"] += 1
            pitch = max(p.midi for p in element.pitches)
        else:
            pitch = element.pitch.midi
        tied = element.tie is not None and element.tie.type in ("stop", "continue")
        if tied and notes and notes[-1][2] == pitch and notes[-1][1] == onset:
            notes[-1][1] = end
            continue
        notes.append([onset, end, pitch])
    return [(a, b, c) for a, b, c in notes], fermata_steps


def _section_end(measure) -> bool:
    """Whether a measure closes a section: a repeat, double or final bar line."""
    from music21 import bar

    line = measure.rightBarline
    if isinstance(line, bar.Repeat):
        return line.direction == "end"
    return line is not None and line.type in ("final", "double", "light-heavy", "heavy")


def _beats(part, fermata: np.ndarray) -> np.ndarray:
    """``(T,)`` bar positions in sixteenths from the written measures of ``part``.

    A full measure starts on its downbeat. An incomplete one is placed by context, not by
    music21's ``paddingLeft``, which gets split bars backwards in a few files:

    * the first measure is a pickup (it ends on the bar line);
    * a measure finishing a bar that the previous incomplete measure left open continues
      it (the second half of a bar split by a repeat sign or a section break);
    * the last measure, one ending at a repeat/double/final bar line or under a fermata
      (a phrase's last bar), or the first half of a split bar starts on the downbeat;
    * any other short measure is an upbeat into the next bar.
    """
    steps = len(fermata)
    beat = np.zeros(steps, dtype=np.int8)
    measures = list(part.getElementsByClass("Measure"))
    spans = []
    for i, measure in enumerate(measures):
        start = _step(measure.offset)
        stop = _step(measures[i + 1].offset) if i + 1 < len(measures) else steps
        bar = max(_step(measure.barDuration.quarterLength), 1)
        spans.append((start, max(stop - start, 0), bar))
    firsts: list[int] = []
    for i, (start, length, bar) in enumerate(spans):
        if length >= bar:
            first = 0
        elif i == 0:
            first = bar - length
        else:
            _, previous_length, previous_bar = spans[i - 1]
            open_end = firsts[-1] + previous_length
            following = spans[i + 1] if i + 1 < len(spans) else None
            if previous_bar == bar and open_end < bar and open_end + length <= bar:
                first = open_end
            elif (
                following is None
                or _section_end(measures[i])
                or (length > 0 and fermata[min(start + length, steps) - 1])
                or (following[2] == bar and length + following[1] == bar)
            ):
                first = 0
            else:
                first = bar - length
        firsts.append(first)
        beat[start : start + length] = (first + np.arange(length)) % bar
    return beat


def _parse_score(name: str, score) -> tuple[Chorale | None, str, Counter]:
    """One corpus score -> a :class:`Chorale`, or ``None`` and why it was dropped."""
    stats: Counter = Counter()
    parts = list(score.parts)
    if len(parts) != len(VOICES):
        return None, f"{len(parts)} parts, not 4", stats
    steps = max(_step(part.flatten().highestTime) for part in parts)
    if steps <= 0:
        return None, "empty", stats
    voices = np.full((len(VOICES), steps), REST, dtype=np.int16)
    fermata = np.zeros(steps, dtype=bool)
    for v, part in enumerate(parts):
        notes, fermata_steps = _part_notes(part, stats)
        if not notes:
            return None, f"the {VOICES[v]} part has no notes", stats
        starts = Counter(onset for onset, _, _ in notes)
        stats["simultaneous notes in one part (kept the higher)"] += sum(
            n - 1 for n in starts.values()
        )
        voices[v] = notes_to_row(notes, steps)
        fermata[[s for s in fermata_steps if s < steps]] = True
    signatures = list(score.recurse().getElementsByClass("TimeSignature"))
    time_signature = signatures[0].ratioString if signatures else "4/4"
    key = score.analyze("key")
    chorale = Chorale(
        name=name,
        voices=voices,
        fermata=fermata,
        beat=_beats(parts[0], fermata),
        key_tonic=key.tonic.pitchClass,
        mode=key.mode if key.mode in ("major", "minor") else "major",
        time_signature=time_signature,
    )
    return chorale, "", stats


def _corpus_files() -> list[tuple[str, Path]]:
    """``(name, path)`` of music21's Bach scores, one per name (MusicXML over Humdrum)."""
    from music21 import corpus

    preference = {".mxl": 0, ".xml": 1, ".musicxml": 1, ".krn": 2}
    chosen: dict[str, Path] = {}
    for path in map(Path, corpus.getComposer("bach")):
        rank = preference.get(path.suffix.lower())
        if rank is None:  # .rntxt analyses, folders
            continue
        old = chosen.get(path.stem)
        if old is None or rank < preference[old.suffix.lower()]:
            chosen[path.stem] = path
    return sorted(chosen.items())


def parse_chorales(
    names: Sequence[str] | None = None, progress: bool = False
) -> tuple[list[Chorale], dict[str, str]]:
    """Parse chorales from music21's corpus (slow: about 0.3 s each).

    Args:
        names: corpus names such as ``"bwv10.7"``; None parses every Bach score.
        progress: show a progress bar on stderr.

    Returns:
        ``(kept, dropped)``: the chorales in name order and ``{name: reason}`` for the
        scores that are not four-part chorales or could not be read.

    Raises:
        InputError: a name in ``names`` is not in the corpus.
    """
    files = _corpus_files()
    if names is not None:
        available = dict(files)
        missing = [n for n in names if n not in available]
        if missing:
            raise InputError(f"not in music21's Bach corpus: {', '.join(missing)}")
        files = [(n, available[n]) for n in names]
    from music21 import converter

    kept: list[Chorale] = []
    dropped: dict[str, str] = {}
    stats: Counter = Counter()
    with _progress_bar(progress, "Parsing Bach chorales", len(files)) as advance:
        for name, path in files:
            try:
                # From source: our cache makes music21's own pickles (in its scratch dir) moot.
                score = converter.parse(path, forceSource=True)
                chorale, reason, counts = _parse_score(name, score)
            except Exception as exc:  # music21 raises all sorts on odd files
                chorale, reason, counts = None, f"unreadable ({type(exc).__name__}: {exc})", {}
            stats.update({k: n for k, n in counts.items() if n})
            if chorale is None:
                dropped[name] = reason
                logger.debug("%s: dropped, %s", name, reason)
            else:
                kept.append(chorale)
            advance()
    for what, count in sorted(stats.items()):
        logger.info("chorales: %d %s", count, what)
    if dropped:
        logger.info(
            "chorales: dropped %d of %d scores (%s)",
            len(dropped),
            len(files),
            ", ".join(
                f"{n} {r}" for r, n in Counter(_reason_kind(r) for r in dropped.values()).items()
            ),
        )
    return kept, dropped


def _reason_kind(reason: str) -> str:
    return "not 4 parts" if reason.endswith("not 4") else reason.split(" (")[0]


@contextlib.contextmanager
def _progress_bar(enabled: bool, label: str, total: int):
    if not enabled:
        yield lambda: None
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=True,
    ) as bar:
        task = bar.add_task(label, total=total)
        yield lambda: bar.advance(task)


# --- cache ----------------------------------------------------------------------------------


def _cache_paths(folder: Path) -> tuple[Path, Path]:
    import music21

    stem = f"bach-chorales-m21-{music21.__version__}-v{_CACHE_FORMAT}"
    return folder / f"{stem}.npz", folder / f"{stem}.json"


def _save_cache(chorales: list[Chorale], dropped: dict[str, str], folder: Path) -> None:
    import music21

    arrays_path, meta_path = _cache_paths(folder)
    lengths = np.array([c.steps for c in chorales], dtype=np.int64)
    # A file object, not a name, stops numpy appending another ".npz" to the temporary name.
    with atomic_output(arrays_path) as tmp, open(tmp, "wb") as f:
        np.savez(
            f,
            voices=np.concatenate([c.voices for c in chorales], axis=1),
            fermata=np.concatenate([c.fermata for c in chorales]),
            beat=np.concatenate([c.beat for c in chorales]),
            lengths=lengths,
        )
    meta = {
        "format": _CACHE_FORMAT,
        "music21": music21.__version__,
        "total_steps": int(lengths.sum()),
        "chorales": [
            {
                "name": c.name,
                "steps": c.steps,
                "key_tonic": c.key_tonic,
                "mode": c.mode,
                "time_signature": c.time_signature,
            }
            for c in chorales
        ],
        "dropped": dropped,
    }
    # The JSON is written last: a cache counts as complete only when both files exist.
    with atomic_output(meta_path) as tmp:
        tmp.write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")


def _load_cache(folder: Path) -> list[Chorale] | None:
    arrays_path, meta_path = _cache_paths(folder)
    if not (arrays_path.is_file() and meta_path.is_file()):
        return None
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        with np.load(arrays_path) as data:
            voices, fermata, beat = data["voices"], data["fermata"], data["beat"]
            lengths = data["lengths"]
        entries = meta["chorales"]
        if [e["steps"] for e in entries] != lengths.tolist() or voices.shape[1] != lengths.sum():
            raise ValueError("lengths disagree")
        bounds = np.concatenate([[0], np.cumsum(lengths)])
        return [
            Chorale(
                e["name"],
                voices[:, a:b],
                fermata[a:b],
                beat[a:b],
                e["key_tonic"],
                e["mode"],
                e["time_signature"],
            )
            for e, a, b in zip(entries, bounds[:-1], bounds[1:], strict=True)
        ]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        logger.warning("%s: unusable chorale cache (%s); parsing again", arrays_path, exc)
        return None


def load_chorales(cache: Path | None = None, progress: bool = False) -> list[Chorale]:
    """All four-part Bach chorales in music21's corpus, in name order.

    The first call parses the corpus (a few minutes) and caches the result as
    ``bach-chorales-m21-VERSION-vN.npz`` (the arrays) and ``.json`` (names, keys, metres,
    dropped scores) in ``cache``; later calls read the cache in well under a second.

    Args:
        cache: folder for the cache files; default ``cache_dir()/music``.
        progress: show a progress bar on stderr while parsing.

    Returns:
        The chorales (365 with music21 10.5).
    """
    if cache is None:
        from avtool.registry import cache_dir

        cache = cache_dir() / "music"
    cache = Path(cache)
    chorales = _load_cache(cache)
    if chorales is not None:
        return chorales
    start = time.perf_counter()
    chorales, dropped = parse_chorales(progress=progress)
    logger.info(
        "chorales: kept %d (%d sixteenth-note steps) in %.0f s",
        len(chorales),
        sum(c.steps for c in chorales),
        time.perf_counter() - start,
    )
    _save_cache(chorales, dropped, cache)
    return chorales


# --- split --------------------------------------------------------------------------------


def _melody(chorale: Chorale) -> tuple[int, ...]:
    """The soprano's successive intervals: a transposition-free fingerprint of the tune."""
    pitches = [p for _, _, p in row_to_notes(chorale.voices[0])]
    return tuple(int(b - a) for a, b in itertools.pairwise(pitches))


def melody_groups(chorales: Sequence[Chorale]) -> list[list[str]]:
    """Group chorale names whose soprano lines are the same tune.

    Two chorales are linked when their soprano interval sequences are identical or at least
    90 % alike (``difflib`` ratio), i.e. the same melody up to transposition, a passing note
    or an ornament; groups are the connected components. This catches the corpus's
    duplicate copies under different BWV numbers and Bach's several harmonisations of
    one tune.

    Returns:
        Groups of names, each sorted, ordered by their first name.
    """
    names = [c.name for c in chorales]
    tunes = [_melody(c) for c in chorales]
    parent = list(range(len(names)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i in range(len(tunes)):
        matcher = difflib.SequenceMatcher(None, autojunk=False)
        matcher.set_seq2(tunes[i])
        for j in range(i):
            matcher.set_seq1(tunes[j])
            # The two cheap upper bounds skip almost every pair before the full comparison.
            if (
                matcher.real_quick_ratio() >= _SAME_MELODY_RATIO
                and matcher.quick_ratio() >= _SAME_MELODY_RATIO
                and matcher.ratio() >= _SAME_MELODY_RATIO
            ):
                parent[root(i)] = root(j)
    groups: dict[int, list[str]] = {}
    for i, name in enumerate(names):
        groups.setdefault(root(i), []).append(name)
    return sorted((sorted(g) for g in groups.values()), key=lambda g: g[0])


def _unit_hash(text: str) -> float:
    digest = hashlib.sha256(f"{_SPLIT_SALT}:{text}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def make_split(chorales: Sequence[Chorale]) -> dict[str, list[str]]:
    """The rule that made ``chorale_split.json`` (kept to document it; do not re-run).

    Chorales are grouped by melody (:func:`melody_groups`) so one tune never straddles
    splits. Each group is placed by a hash of its first name, SHA-256 of
    ``"avtool-chorales-v1:<name>"`` read as a number u in [0, 1): test if u < 0.1, valid
    if u < 0.2, else train. A group's fate depends only on its own name, never on what
    else is in the corpus.

    Returns:
        ``{"train": [...], "valid": [...], "test": [...]}``, names sorted.
    """
    out: dict[str, list[str]] = {s: [] for s in SPLITS}
    for group in melody_groups(chorales):
        u = _unit_hash(group[0])
        if u < _SPLIT_FRACTIONS["test"]:
            out["test"].extend(group)
        elif u < _SPLIT_FRACTIONS["test"] + _SPLIT_FRACTIONS["valid"]:
            out["valid"].extend(group)
        else:
            out["train"].extend(group)
    return {s: sorted(names) for s, names in out.items()}


def read_split_file(path: Path = SPLIT_FILE) -> dict[str, frozenset[str]]:
    """The committed split: ``{"train"|"valid"|"test": names}``."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    return {s: frozenset(data[s]) for s in SPLITS}


def split(chorales: Iterable[Chorale], path: Path = SPLIT_FILE) -> dict[str, list[Chorale]]:
    """Sort chorales (or their transpositions) into train/valid/test by the committed split.

    Args:
        chorales: chorales, e.g. from :func:`load_chorales` or :func:`augment`.
        path: the split file; the committed ``chorale_split.json`` by default.

    Returns:
        ``{"train": [...], "valid": [...], "test": [...]}`` in input order. Chorales whose
        name the file does not list (pieces a newer music21 adds) are left out, with a
        warning, so that figures stay comparable.
    """
    names = read_split_file(path)
    where = {name: s for s, members in names.items() for name in members}
    out: dict[str, list[Chorale]] = {s: [] for s in SPLITS}
    unlisted = set()
    for chorale in chorales:
        which = where.get(chorale.name)
        if which is None:
            unlisted.add(chorale.name)
        else:
            out[which].append(chorale)
    if unlisted:
        logger.warning(
            "%d chorales are not in %s and were left out: %s",
            len(unlisted),
            Path(path).name,
            ", ".join(sorted(unlisted)),
        )
    return out
