"""Text to speech: sentences in, a WAV/FLAC (or a WAV stream on stdout) out.

Text is split into sentences and each sentence into chunks below the voice's limit;
chunks are synthesized one at a time and written as they come, so memory stays flat
for book-length text and ``-o -`` starts playing before the text is done.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import struct
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import soxr
from rich.progress import Progress

from avtool import registry
from avtool.engines import RunSettings, run_items
from avtool.errors import InputError, ModelError, SetupError
from avtool.io.audio import AudioWriter
from avtool.io.console import stderr_console
from avtool.io.subtitles import Interval, format_from_suffix, output_paths, write_timed_text
from avtool.models import kokoro
from avtool.models.align import align_words
from avtool.models.face import load_detector
from avtool.models.face_attributes.picker import load_picker
from avtool.models.loading import Loaded, load
from avtool.models.text import ChunkAudio, SpeechChunk, split_sentences, text_words
from avtool.registry import ResolvedModel, sha256_file
from avtool.runtime import (
    BatchItem,
    BatchSummary,
    bad_item,
    check_outputs,
    expand_paths,
    format_output,
    read_manifest,
    read_text,
    sidecar_path,
    slugify,
    unique_ids,
    versions,
    write_json,
)
from avtool.tasks.options.tts import AUDIO_FORMATS, FaceVideo, TTSOptions
from avtool.tasks.talkinghead import VIDEO_SUFFIXES, find_face, render_file

log = logging.getLogger(__name__)

#: What a folder given to --text-file contributes.
TEXT_EXTENSIONS = (".txt", ".md")
_PUNCTUATION_PHONEMES = frozenset('.,;:!?¡¿—…"()')


def load_voice(name_or_path: str, *, device: str = "auto", accept_license: bool = False) -> Loaded:
    """A voice through the front door (:func:`avtool.models.loading.load`): a registry name,
    a Kokoro voice or blend (``am_adam``, ``af_heart:0.6,am_adam:0.4``), or a local Piper
    ``.onnx`` (its config JSON beside it).

    Args:
        name_or_path: the ``--voice`` value.
        device: ``auto``, ``cpu`` or ``cuda`` (each family resolves it for its engine).
        accept_license: allow non-commercial voices.

    Raises:
        InputError: a malformed Kokoro blend or an unknown Kokoro voice.
        ModelError: unknown, unverifiable or unlicensed voice, or an unknown family.
        SetupError: ``device`` is cuda and CUDA is absent.
    """
    return load(
        name_or_path, task="tts", device=device, accept_license=accept_license, detect=_voice_family
    )


def voice_table() -> list[dict[str, Any]]:
    """Every registered voice: name, family, gender, accent, sample rate, licence, installed.

    Kokoro voices are listed by their ``--voice`` name (``am_adam``); they are installed when
    both the pack and the engine are. Other voices' gender and accent come from their
    registry description ("male US English").
    """

    entries = registry.load_registry()
    engine = entries.get(kokoro.ENGINE_ENTRY)
    engine_ok = engine is not None and registry.model_status(engine) != "missing"
    rows = []
    for name, entry in entries.items():
        if entry.task != "tts" or name == kokoro.ENGINE_ENTRY:
            continue
        words = entry.description.lower().replace(",", " ").split()
        gender = entry.config.get("gender") or next(
            (w for w in words if w in ("female", "male")), "unknown"
        )
        accent = entry.config.get("accent") or (
            "gb" if "british" in words else "us" if "us" in words else "unknown"
        )
        installed = registry.model_status(entry) in ("installed", "verified")
        if entry.family == "kokoro":
            name, installed = name.removeprefix(kokoro.ENTRY_PREFIX), installed and engine_ok
        rows.append(
            {
                "voice": name,
                "family": entry.family,
                "gender": gender,
                "accent": accent,
                "sample_rate": entry.sample_rate,
                "license": entry.license,
                "installed": installed,
            }
        )
    return rows


def print_voices(*, as_json: bool = False) -> None:
    """Print :func:`voice_table` to stdout (one JSON list with ``as_json``)."""
    rows = voice_table()
    if as_json:
        print(json.dumps(rows, indent=1))
        return
    header = ("voice", "family", "gender", "accent", "sample_rate", "license", "installed")
    cells = [header] + [
        tuple("yes" if v is True else "no" if v is False else str(v) for v in row.values())
        for row in rows
    ]
    widths = [max(len(c[i]) for c in cells) for i in range(len(header))]
    for line in cells:
        print("  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip())


def _voice_family(resolved: ResolvedModel) -> str:
    """A local file's family: a Piper voice has its config JSON beside it."""
    path = resolved.path
    if Path(f"{path}.json").is_file():
        return "piper"
    raise ModelError(
        f"{path}: cannot tell the voice family (a Piper voice needs {path.name}.json beside it)"
    )


# --------------------------------------------------------------------------- synthesis


@dataclass
class Timings:
    """Phoneme, word and sentence timings in seconds, built as chunks are synthesized."""

    phonemes: list[dict[str, Any]] = field(default_factory=list)
    words: list[dict[str, Any]] = field(default_factory=list)
    sentences: list[dict[str, Any]] = field(default_factory=list)
    aligned: bool = True

    def add_chunk(self, chunk: SpeechChunk, result: ChunkAudio, start: float, rate: int) -> None:
        """Record one chunk that starts at ``start`` seconds."""
        end = start + len(result.audio) / rate
        if self.sentences and self.sentences[-1]["index"] == chunk.sentence_index:
            self.sentences[-1]["end"] = round(end, 4)
        else:
            self.sentences.append(
                {
                    "index": chunk.sentence_index,
                    "text": chunk.text,
                    "start": round(start, 4),
                    "end": round(end, 4),
                }
            )
        if result.phoneme_samples is None:
            self.aligned = False
            return
        t = start
        word: dict[str, Any] | None = None
        for phoneme, samples in result.phoneme_samples:
            t_end = t + samples / rate
            if phoneme not in ("^", "$"):
                self.phonemes.append(
                    {"phoneme": phoneme, "start": round(t, 4), "end": round(t_end, 4)}
                )
            if phoneme in (" ", "^", "$") or phoneme in _PUNCTUATION_PHONEMES:
                word = None
            else:
                if word is None:
                    word = {
                        "word": None,
                        "phonemes": "",
                        "start": round(t, 4),
                        "sentence": chunk.sentence_index,
                    }
                    self.words.append(word)
                word["phonemes"] += phoneme
                word["end"] = round(t_end, 4)
            t = t_end

    def label_words(self, pronounce: Callable[[str], str] | None) -> None:
        """Turn phoneme words into text words with times.

        espeak-ng merges some words ("on the") and expands others ("2000"), so text words
        are aligned to phoneme words (:func:`avtool.models.align.align_words`); a phoneme
        word carrying several text words is shared in proportion to their pronunciations.
        """
        if pronounce is None:
            return
        labelled: list[dict[str, Any]] = []
        for sentence in self.sentences:
            spoken = [w for w in self.words if w["sentence"] == sentence["index"]]
            names = text_words(sentence["text"])
            # Function words alone are pronounced in their strong form ("a" -> "ˈeɪ"); in
            # running speech espeak says the weak one and glues it to a neighbour ("with a" ->
            # "wɪðɐ"), so the weak form is what they are aligned by.
            own = [_WEAK_FORMS.get(name.lower()) or pronounce(name) for name in names]
            for w0, w1, s0, s1 in align_words(own, [w["phonemes"] for w in spoken]):
                if w0 == w1:
                    continue
                if s0 == s1:
                    labelled.extend(
                        {
                            "word": names[k],
                            "phonemes": "",
                            "start": None,
                            "end": None,
                            "sentence": sentence["index"],
                        }
                        for k in range(w0, w1)
                    )
                    continue
                start, end = spoken[s0]["start"], spoken[s1 - 1]["end"]
                weights = [max(len(own[k]), 1) for k in range(w0, w1)]
                merged = self._phonemes_between(start, end)
                if w1 - w0 > 1 and len(merged) >= w1 - w0:
                    # espeak merged several words ("a neural"): each word gets its own share of
                    # the spoken phonemes, cut in proportion to its own pronunciation, and the
                    # times of those phonemes (not the whole group's phonemes and times).
                    labelled.extend(
                        {"word": names[k], "phonemes": "".join(p["phoneme"] for p in piece),
                         "start": piece[0]["start"], "end": piece[-1]["end"],
                         "sentence": sentence["index"]}
                        for k, piece in zip(range(w0, w1), _split(merged, weights), strict=True)
                    )  # fmt: skip
                    continue
                t = start
                for k, weight in zip(range(w0, w1), weights, strict=True):
                    t_end = end if k == w1 - 1 else t + (end - start) * weight / sum(weights)
                    labelled.append(
                        {
                            "word": names[k],
                            "phonemes": "".join(w["phonemes"] for w in spoken[s0:s1]),
                            "start": round(t, 4),
                            "end": round(t_end, 4),
                            "sentence": sentence["index"],
                        }
                    )
                    t = t_end
        self.words = labelled

    def _phonemes_between(self, start: float, end: float) -> list[dict[str, Any]]:
        """The spoken phonemes (no word breaks or punctuation) from ``start`` to ``end``."""
        return [p for p in self.phonemes
                if p["start"] >= start - 1e-4 and p["end"] <= end + 1e-4
                and p["phoneme"] not in (" ", "^", "$")
                and p["phoneme"] not in _PUNCTUATION_PHONEMES]  # fmt: skip

    def to_json(
        self, sample_rate: int, duration: float, pronounce: Callable[[str], str] | None = None
    ) -> dict[str, Any]:
        self.label_words(pronounce)
        return {
            "sample_rate": sample_rate,
            "duration": round(duration, 4),
            "aligned": self.aligned,
            "sentences": self.sentences,
            "words": self.words if self.aligned else [],
            "phonemes": self.phonemes if self.aligned else [],
        }


#: espeak-ng's (en-us) unstressed forms of English function words, as it speaks them in context.
_WEAK_FORMS = {"a": "ɐ", "an": "ɐn", "the": "ðə", "to": "tə", "of": "ʌv", "and": "ænd",
               "for": "fɔːɹ", "at": "æt", "as": "æz", "or": "ɔːɹ"}  # fmt: skip


def _split(items: list[Any], weights: list[int]) -> list[list[Any]]:
    """Cut ``items`` into ``len(weights)`` consecutive non-empty pieces sized like ``weights``."""
    total, n, pieces, at = sum(weights), len(items), [], 0
    for k, weight in enumerate(weights):
        left = len(weights) - k - 1  # pieces still to come, each needing one item
        size = round(n * weight / total) if left else n - at
        size = max(1, min(size, n - at - left))
        pieces.append(items[at : at + size])
        at += size
    return pieces


def timings_format(path: Path) -> str:
    """The timings format ``--timings`` names by its suffix: ``.srt``, ``.vtt``, ``.tsv``,
    ``.TextGrid``, ``.json`` (and any other suffix), or ``.all`` for every one of them."""
    return "all" if path.suffix.lower() == ".all" else format_from_suffix(path)


def timings_files(path: Path | None) -> list[Path]:
    """The files ``--timings path`` writes (five for ``x.all``)."""
    if path is None:
        return []
    stem = path.with_suffix("") if path.suffix.lower() == ".all" else path
    return list(output_paths(stem, timings_format(path)).values())


def write_timings(path: Path, data: dict[str, Any]) -> list[Path]:
    """Write the timings JSON ``data`` (:meth:`Timings.to_json`) as ``path``'s format: cues per
    sentence (srt, vtt), words (tsv), sentence/word/phoneme tiers (TextGrid), or the JSON."""

    def tier(rows: list[dict[str, Any]], key: str) -> list[Interval]:
        return [Interval(r["start"], r["end"], str(r[key])) for r in rows
                if r.get("start") is not None and r.get("end") is not None]  # fmt: skip

    tiers = {"sentences": tier(data["sentences"], "text")}
    if data.get("words"):
        tiers["words"] = tier(data["words"], "word")
    if data.get("phonemes"):
        spoken = [p for p in data["phonemes"] if p["phoneme"] not in (" ", "^", "$")]
        tiers["phonemes"] = tier(spoken, "phoneme")
    stem = path.with_suffix("") if path.suffix.lower() == ".all" else path
    return write_timed_text(stem, timings_format(path), tiers, duration=data["duration"],
                            data=data)  # fmt: skip


def plan_chunks(voice: Loaded, text: str) -> list[SpeechChunk]:
    """All chunks of ``text`` in order.

    Raises:
        InputError: the text has nothing to say.
    """
    sentences = split_sentences(text)
    chunks = [c for i, s in enumerate(sentences) for c in voice.module.chunks(s, i)]
    if not chunks:
        raise InputError("the text is empty or has nothing to pronounce")
    return chunks


def synthesize(
    voice: Loaded, chunks: list[SpeechChunk], options: TTSOptions, timings: Timings | None = None
) -> Iterator[np.ndarray]:
    """Yield the audio of each chunk, with sentence pauses, at the voice's sample rate.

    Args:
        voice: a loaded voice.
        chunks: from :func:`plan_chunks`.
        options: speed, noise, seed, pause.
        timings: filled in as chunks are synthesized, when given.

    Yields:
        (T,) float32 blocks in [-1, 1] at ``voice.module.sample_rate``.
    """
    rate = voice.module.sample_rate
    pause = np.zeros(round(options.sentence_pause * rate), np.float32)
    position = 0
    for index, chunk in enumerate(chunks):
        if index and chunk.sentence_index != chunks[index - 1].sentence_index and pause.size:
            yield pause
            position += pause.size
        result = voice.module.synthesize(
            chunk,
            seed=options.seed,
            chunk_index=index,
            speed=options.speed,
            noise_scale=options.noise_scale,
            noise_w=options.noise_w,
        )
        if timings is not None:
            timings.add_chunk(chunk, result, position / rate, rate)
        position += result.audio.size
        yield result.audio


def _resampled(blocks: Iterator[np.ndarray], rate_in: int, rate_out: int) -> Iterator[np.ndarray]:
    """Resample a stream of blocks with one soxr state, so block edges leave no seams."""
    if rate_in == rate_out:
        yield from blocks
        return

    stream = soxr.ResampleStream(rate_in, rate_out, 1, dtype="float32", quality="VHQ")
    for block in blocks:
        yield stream.resample_chunk(block)
    yield stream.resample_chunk(np.zeros(0, np.float32), last=True)


def _wav_stream_header(sample_rate: int) -> bytes:
    """A 16-bit mono WAV header with unknown length (0xFFFFFFFF), as sox/ffmpeg write to pipes."""
    unknown = 0xFFFFFFFF
    fmt = struct.pack("<HHIIHH", 1, 1, sample_rate, sample_rate * 2, 2, 16)
    return (
        b"RIFF"
        + struct.pack("<I", unknown)
        + b"WAVEfmt "
        + struct.pack("<I", 16)
        + fmt
        + b"data"
        + struct.pack("<I", unknown)
    )


def _with_progress(
    blocks: Iterator[np.ndarray], chunks: int, output: Path | None
) -> Iterator[np.ndarray]:
    """Pass blocks through while a progress bar on stderr counts synthesized chunks."""
    with Progress(console=stderr_console(), transient=True) as bar:
        task = bar.add_task(f"tts {output or 'stdout'}", total=chunks)
        for block in blocks:
            yield block
            if block.any():  # sentence pauses are all zeros and are not chunks
                bar.advance(task)


def _silence_stdout() -> None:
    """Point stdout at /dev/null so Python's exit-time flush does not fail a second time."""
    with contextlib.suppress(OSError, ValueError, AttributeError):
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def _to_int16(block: np.ndarray) -> bytes:

    return (np.clip(block, -1.0, 1.0) * 32767.0).round().astype("<i2").tobytes()


def synthesize_to_file(
    voice: Loaded,
    text: str,
    options: TTSOptions,
    output: Path | None,
    *,
    timings_path: Path | None = None,
    stdout: BinaryIO | None = None,
    progress: bool = False,
) -> dict[str, Any]:
    """Synthesize ``text`` into ``output`` (or stream WAV to stdout when None).

    The file is written under a temporary name and renamed when complete; its JSON
    sidecar (``output`` + ``.json``) names the model, hash, licence, seed, options,
    versions and timings.

    Returns:
        The sidecar's content.

    Raises:
        InputError: empty text or bad options.
    """
    options = options.validated()
    start = time.perf_counter()
    warned = len(getattr(voice.module, "warnings", ()))  # a Kokoro model collects warnings
    chunks = plan_chunks(voice, text)
    rate_out = options.sample_rate or voice.module.sample_rate
    timings = Timings() if timings_path is not None else None
    chunk_audio = synthesize(voice, chunks, options, timings)
    if progress and len(chunks) > 1:
        chunk_audio = _with_progress(chunk_audio, len(chunks), output)
    blocks = _resampled(chunk_audio, voice.module.sample_rate, rate_out)
    frames = 0
    if output is None:
        sink = stdout or sys.stdout.buffer
        try:
            sink.write(_wav_stream_header(rate_out))
            for block in blocks:
                sink.write(_to_int16(block))
                frames += block.size
            sink.flush()
        except BrokenPipeError as exc:
            _silence_stdout()
            raise SetupError("stdout: the reader closed the pipe before the audio ended") from exc
    else:
        fmt = options.format or (output.suffix.lower().lstrip(".") or "wav")
        if fmt not in AUDIO_FORMATS:
            raise InputError(
                f"{output}: unknown audio format {fmt!r}; use one of {', '.join(AUDIO_FORMATS)}"
            )
        with AudioWriter(output, rate_out, channels=1, subtype="PCM_16", format=fmt) as writer:
            for block in blocks:
                writer.write(block)
            frames = writer.frames_written
    seconds = time.perf_counter() - start
    duration = frames / rate_out
    meta: dict[str, Any] = {
        "task": "tts",
        "output": str(output) if output else "-",
        "model": voice.facts(),
        "seed": options.seed,
        "options": asdict(options),
        "input": {
            "characters": len(text),
            "words": len(text.split()),
            "sentences": len({c.sentence_index for c in chunks}),
            "chunks": len(chunks),
            "text_sha256": hashlib.sha256(text.encode("utf-8")).hexdigest(),
        },
        "audio": {"sample_rate": rate_out, "samples": frames, "duration": round(duration, 4)},
        "timings": {
            "load_s": round(voice.load_seconds, 4),
            "synthesis_s": round(seconds, 4),
            "real_time_factor": round(seconds / duration, 4) if duration else None,
        },
        "versions": versions(),
    }
    if getattr(voice.module, "warnings", ())[warned:]:
        meta["warnings"] = list(voice.module.warnings[warned:])
    if timings is not None and timings_path is not None:
        if not timings.aligned:
            log.warning("%s: voice %s gives sentence timings only", timings_path, voice.name)
        pronounce = getattr(voice.module, "pronounce", None)
        files = write_timings(
            timings_path, timings.to_json(voice.module.sample_rate, duration, pronounce)
        )
        meta["timings_file"] = str(files[0]) if len(files) == 1 else [str(f) for f in files]
    if output is not None:
        meta["audio"]["sha256"] = sha256_file(output)
        write_json(sidecar_path(output), meta)
    return meta


def with_overrides(options: TTSOptions, overrides: dict[str, Any], origin: str) -> TTSOptions:
    """Options with a manifest row's per-item values applied, converted to their types.

    Raises:
        InputError: a value that does not convert, naming ``origin`` (file:line).
    """
    types = {
        "speed": float,
        "sample_rate": int,
        "sentence_pause": float,
        "noise_scale": float,
        "noise_w": float,
        "seed": int,
        "voice": str,
        "format": str,
    }
    values = {}
    for key, value in overrides.items():
        try:
            values[key] = types[key](value)
        except (TypeError, ValueError) as exc:
            raise InputError(f"{origin}: {key}={value!r} is not a valid value") from exc
    return replace(options, **values).validated()


# --------------------------------------------------------------------------- talking head


def choose_face_voice(face: FaceVideo, detector: Any) -> dict[str, Any]:
    """The voice for ``face.face`` by the face-voice rule (:mod:`avtool.models.face_attributes`).

    Returns:
        The sidecar record: attributes, rule, gender decision, accent, blend (``voice``).
    """

    image, found, _ = find_face(face.face, face.options, detector)
    descriptor = detector.descriptor(image, found.box)
    return load_picker().choose([image], [found.box], [descriptor], face.accent).to_json()


def speak_with_face(
    voice: Loaded,
    text: str,
    options: TTSOptions,
    output: Path,
    face: FaceVideo,
    *,
    detector: Any = None,
    timings_path: Path | None = None,
    face_voice: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Synthesize ``text`` and render it on ``face.face`` into the video ``output``.

    The speech goes to a temporary WAV with its phoneme timings, which drive the mouth (no
    phone recognition needed); voices without alignments fall back to pocketsphinx.
    ``face_voice`` (from :func:`choose_face_voice`) is recorded when the voice came from the
    face; otherwise ``voice_from_face`` is False (the voice given with ``--voice``).

    Returns:
        The video's sidecar content (its ``speech`` field is the TTS sidecar).
    """

    with tempfile.TemporaryDirectory(prefix="avtool-tts-face-") as folder:
        wav = Path(folder) / "speech.wav"
        # The mouth reads the JSON timings; the user's file may be another format (srt, ...).
        timings_file = Path(folder) / "timings.json"
        speech = synthesize_to_file(voice, text, options, wav, timings_path=timings_file)
        timings = json.loads(timings_file.read_text(encoding="utf-8"))
        phonemes = timings if timings.get("aligned") and timings.get("phonemes") else None
        speech.pop("output", None)
        speech.pop("timings_file", None)
        if timings_path is not None:
            files = write_timings(timings_path, timings)
            speech["timings_file"] = str(files[0]) if len(files) == 1 else [str(f) for f in files]
        speech["voice_from_face"] = face_voice or False
        result = render_file(
            face.face, wav, output, face.options, detector=detector, phonemes=phonemes,
            metadata={"speech": speech},
            # The WAV is deleted with the folder: record where the sound came from instead.
            audio_label="synthesized by avtool tts (see the speech field)",
        )  # fmt: skip
    return result.metadata


# --------------------------------------------------------------------------- batch

_MANIFEST_FIELDS = frozenset({"id", "text", "text_file", "output", "timings", "_line"})
_OPTION_FIELDS = frozenset(
    {"voice", "speed", "sample_rate", "sentence_pause", "noise_scale", "noise_w", "seed", "format"}
)


def build_items(
    texts: list[str],
    text_files: list[str],
    manifest: Path | None,
    output_template: str,
) -> list[BatchItem]:
    """Items from text arguments, text files (paths, folders, globs; ``-`` = stdin) and a
    CSV/JSONL manifest.

    Manifest columns: ``text`` or ``text_file`` (relative to the manifest), optional
    ``id``, ``output``, ``timings`` and per-item options (voice, speed, sample_rate,
    sentence_pause, noise_scale, noise_w, seed, format).

    Raises:
        InputError: no input, an unknown manifest column, a row with neither text nor file.
    """
    specs: list[dict[str, Any]] = []
    for text in texts:
        specs.append({"id": slugify(text), "text": text, "origin": "argument"})
    for name in text_files:
        if name == "-":
            specs.append({"id": "stdin", "text_file": name, "origin": "<stdin>"})
            continue
        for path in expand_paths([name], TEXT_EXTENSIONS):
            specs.append(
                {"id": path.stem, "text_file": str(path), "origin": str(path), "source": path}
            )
    if manifest is not None:
        for row in read_manifest(manifest):
            origin = f"{manifest}:{row['_line']}"
            # A bad row is a failed item of its own: the other rows still run.
            unknown = set(row) - _MANIFEST_FIELDS - _OPTION_FIELDS - {"_error"}
            if "_error" in row:
                error = row["_error"]
            elif unknown:
                error = f"{origin}: unknown column(s) {', '.join(sorted(unknown))}"
            elif ("text" in row) == ("text_file" in row):
                error = f"{origin}: give exactly one of 'text' or 'text_file'"
            else:
                error = None
            if error is not None:
                specs.append({"origin": origin, "error": error,
                              "id": row.get("id") or f"line-{row['_line']}"})  # fmt: skip
                continue
            spec = {"origin": origin, "options": {k: row[k] for k in _OPTION_FIELDS & set(row)}}
            if "text_file" in row:
                path = Path(row["text_file"])
                path = path if path.is_absolute() else manifest.parent / path
                spec.update(text_file=str(path), source=path, id=row.get("id") or path.stem)
            else:
                spec.update(text=str(row["text"]), id=row.get("id") or slugify(str(row["text"])))
            spec.update({k: row[k] for k in ("output", "timings") if k in row})
            specs.append(spec)
    if not specs:
        raise InputError("nothing to say: give TEXT, --text-file or --manifest")
    ids = unique_ids([str(s["id"]) for s in specs])
    items = []
    for index, (spec, item_id) in enumerate(zip(specs, ids, strict=True)):
        if "error" in spec:
            items.append(bad_item(index, item_id, spec["origin"], spec["error"]))
            continue
        if output_template == "-":
            output = None
        elif "output" in spec:
            output = Path(spec["output"])
        else:
            output = format_output(
                output_template, item_id=item_id, index=index, source=spec.get("source")
            )
        options = dict(spec.get("options", {}))
        if "timings" in spec:
            options["timings"] = spec["timings"]
        items.append(
            BatchItem(
                index=index,
                id=item_id,
                input=spec.get("text_file") or spec["text"],
                output=output,
                options=options,
                origin=spec["origin"],
                source=Path(spec["text_file"]) if "text_file" in spec else None,
            )
        )
    if output_template == "-" and len(items) > 1:
        raise InputError("-o - streams one item to stdout; give one text or an output template")
    return items


def run(
    items: list[BatchItem],
    options: TTSOptions,
    settings: RunSettings | None = None,
    *,
    timings_template: str | None = None,
    face: FaceVideo | None = None,
) -> BatchSummary:
    """Synthesize every item, loading each voice once per worker (``settings.batch``: engine,
    workers).

    With ``face``, every item becomes a talking-head video (``.mp4``/``.mov``/``.mkv``);
    the photo is checked (and its face found) before any voice loads.

    Returns:
        The batch summary (its ``exit_code`` is the process exit code).

    Raises:
        InputError, ModelError, SetupError: before any item runs (bad options, existing
            outputs, the default voice cannot load).
    """
    settings = settings or RunSettings()

    options = options.validated()
    check_outputs(items, settings.policy)
    detector = _check_face(items, face, settings.accept_license) if face is not None else None
    face_voice = None
    if face is not None and face.voice_from_face:
        face_voice = choose_face_voice(face, detector)
        options = replace(options, voice=face_voice["voice"])
    # dlib's objects do not cross processes: a Ray worker loads its own face detector.
    driver_detector = detector if settings.batch.engine == "local" else None

    def worker() -> Callable[[Any], list[Path]]:  # once per worker: load, then items
        voices: dict[str, Loaded] = {}
        face_detector = driver_detector
        if face is not None and face_detector is None:
            face_detector = load_detector(settings.accept_license, landmarks=face.options.landmarks)

        def voice_for(name: str) -> Loaded:
            if name not in voices:
                voices[name] = load_voice(
                    name, device=settings.device, accept_license=settings.accept_license
                )
            return voices[name]

        voice_for(options.voice)  # a broken default voice fails the run before any item

        def process(item: BatchItem) -> list[Path]:
            overrides = {k: v for k, v in item.options.items() if k in _OPTION_FIELDS}
            item_options = with_overrides(options, overrides, item.origin)
            text = read_text(item.source) if item.source is not None else item.input
            if not text.strip():
                where = item.origin if item.origin != "argument" else "text"
                raise InputError(f"{where}: empty text")
            timings_path = None
            if "timings" in item.options:
                timings_path = Path(item.options["timings"])
            elif timings_template:
                file_source = item.source if item.source != Path("-") else None
                timings_path = format_output(
                    timings_template, item_id=item.id, index=item.index, source=file_source
                )
            if face is not None:
                chosen = face_voice if item_options.voice == options.voice else None
                speak_with_face(voice_for(item_options.voice), text, item_options, item.output,
                                face, detector=face_detector, timings_path=timings_path,
                                face_voice=chosen)  # fmt: skip
                return [item.output, *timings_files(timings_path)]
            synthesize_to_file(
                voice_for(item_options.voice),
                text,
                item_options,
                item.output,
                timings_path=timings_path,
                progress=not settings.quiet and len(items) == 1,
            )
            written = [item.output] if item.output is not None else []
            return written + timings_files(timings_path)

        return process

    return run_items(items, worker, settings, label="tts")


def _check_face(items: list[BatchItem], face: FaceVideo, accept_license: bool) -> Any:
    """Refuse non-video outputs and a photo without a face before any synthesis.

    Returns:
        The loaded face detector, reused for every item.
    """

    for item in items:
        if item.error is not None:  # a bad manifest row: reported as failed, never run
            continue
        if item.output is None or item.output.suffix.lower() not in VIDEO_SUFFIXES:
            raise InputError(
                f"{item.output or '-'}: with --face the output is a video; "
                f"use one of {', '.join(VIDEO_SUFFIXES)}"
            )
    face.options.validated()
    detector = load_detector(accept_license, landmarks=face.options.landmarks)
    find_face(face.face, face.options, detector)
    return detector
