"""``avtool eval voices``: does the voice chosen for a face fit the person? And is every
Kokoro voice intelligible?

People: the GRID speakers with a face and their own voice, ``../shared/data/grid`` (the five
speakers other than s1; ``bbaf2n`` is s1's clip and is not counted twice), s1 (``grid_s1``)
and s4 (``grid_s4``). For each person, from their real clips:

* **face**: frames of their video, through the face-voice rule (attributes averaged over the
  frames, dlib descriptor averaged) -> a Kokoro blend;
* **voice**: median F0 of their real speech -> gender (female above 165 Hz), and the GE2E
  (resemblyzer) centroid of their clips.

Measures: (a) gender agreement of the chosen voice with the real voice; (b) cosine similarity
of speech synthesised in the chosen voice to the person's real voice, beside baselines: the
fixed default voices (Piper joe, today's ``tts --face`` voice, and Kokoro af_heart), a random
Kokoro voice (the mean over all voices: its expected value), the opposite-gender choice (the
rule with P(female) mirrored), the most typical voice of the face's gender (the rule without
its identity step) and the oracle (the best single Kokoro voice for that person). The rule is
fitted on LibriSpeech only, so nothing here is in sample. (The AnyoneNet face-to-embedding
student, fitted leave-one-speaker-out on the other people, scored below the rule here, 0.580
against 0.626, and was removed; see docs/voices.md.)

Intelligibility: each bundled voice reads GRID sentences; the GRID-grammar recogniser
(pocketsphinx) gives the word error rate per voice.
"""

from __future__ import annotations

import csv
import hashlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from avtool import registry
from avtool.errors import InputError
from avtool.io.audio import load_audio, resample
from avtool.io.files import atomic_output
from avtool.io.video import VideoReader, probe
from avtool.metrics.grid import GridRecognizer, parse_grid_id
from avtool.metrics.speaker import (
    EMBEDDING_SAMPLE_RATE,
    mean_embedding,
    median_f0,
    speaker_embedding,
    voice_gender,
)
from avtool.metrics.wer import word_errors
from avtool.models import kokoro
from avtool.models.face import load_detector
from avtool.models.face_attributes.picker import load_picker
from avtool.models.face_attributes.voice import choose_voice, ranked
from avtool.models.kokoro.voices import blend_packs, check_pack, parse_blend, voice_info
from avtool.models.loading import load
from avtool.tasks.options.tts import TTSOptions
from avtool.tasks.tts import load_voice, plan_chunks, synthesize

log = logging.getLogger(__name__)

#: Frames of each person's first clip that the face is read from (evenly spaced).
FACE_FRAMES = 5
#: Real clips per person for the voice centroid (the five ``grid`` speakers have one each).
VOICE_CLIPS = 3
#: Sentences read per voice for its speaker embedding (the first of the GRID sentences).
EMBEDDING_SENTENCES = 4
FIXED_VOICES = ("piper-joe-medium", "af_heart")
#: Bump when the synthesis changes, so cached audio (``--work``) is not reused.
CACHE_VERSION = 1


@dataclass(frozen=True)
class Person:
    """A GRID speaker with a face and a voice.

    Attributes:
        speaker: the corpus label (``B``, ``s2``, ``s1``, ``s4``).
        clips: their real clips (video + speech).
        transcripts: the GRID sentence of each clip.
    """

    speaker: str
    clips: tuple[Path, ...]
    transcripts: tuple[str, ...]


def grid_people(data: Path) -> list[Person]:
    """The people of ``data/grid`` (non-s1), ``data/grid_s1`` and ``data/grid_s4``.

    Raises:
        InputError: ``data/grid`` is missing.
    """
    manifest = data / "grid" / "manifest.csv"
    if not manifest.is_file():
        raise InputError(f"{manifest}: not found (the GRID clips are needed)")
    people = []
    with manifest.open(encoding="utf-8", newline="") as f:
        for row in csv.DictReader(f):
            if row["speaker"] == "s1":  # bbaf2n: s1 comes from grid_s1 below
                continue
            people.append(
                Person(row["speaker"], (data / "grid" / row["file"],), (row["transcript"],))
            )
    s1 = sorted((data / "grid_s1" / "clips").glob("*.mkv"))[:VOICE_CLIPS]
    if s1:
        people.append(Person("s1", tuple(s1), tuple(parse_grid_id(p.stem) for p in s1)))
    s4_manifest = data / "grid_s4" / "manifest.csv"
    if s4_manifest.is_file():
        with s4_manifest.open(encoding="utf-8", newline="") as f:
            rows = list(csv.DictReader(f))[:VOICE_CLIPS]
        people.append(
            Person(
                "s4",
                tuple(data / "grid_s4" / r["file"] for r in rows),
                tuple(r["transcript"] for r in rows),
            )
        )
    return people


def grid_sentences(data: Path, count: int) -> list[str]:
    """``count`` GRID sentences: the ``grid`` transcripts, then s4's (text only)."""
    texts = []
    for manifest in (data / "grid" / "manifest.csv", data / "grid_s4" / "manifest.csv"):
        if manifest.is_file():
            with manifest.open(encoding="utf-8", newline="") as f:
                texts += [r["transcript"] for r in csv.DictReader(f)]
    if len(texts) < count:
        raise InputError(f"{data}: only {len(texts)} GRID sentences, {count} asked for")
    return texts[:count]


def face_views(clip: Path, detector: Any, frames: int = FACE_FRAMES) -> tuple[list, list, list]:
    """``frames`` evenly spaced frames of ``clip`` with the face box and descriptor in each.

    Returns:
        ``(images, boxes, descriptors)``, frames without a face left out.

    Raises:
        InputError: no face in any of them.
    """
    total = max(probe(clip).n_frames, 1)
    wanted = {round(i * (total - 1) / max(frames - 1, 1)) for i in range(frames)}
    images, boxes, descriptors = [], [], []
    with VideoReader(clip) as reader:
        for index, frame in enumerate(reader):
            if index not in wanted:
                continue
            found = detector.detect(frame, exhaustive=False)
            if found:
                images.append(frame)
                boxes.append(found[0])
                descriptors.append(detector.descriptor(frame, found[0]))
    if not images:
        raise InputError(f"{clip}: no face found in {frames} frames")
    return images, boxes, descriptors


def real_voice(person: Person) -> dict[str, Any]:
    """Median F0, gender and GE2E centroid of the person's real speech."""
    clips = [load_audio(c, EMBEDDING_SAMPLE_RATE)[0] for c in person.clips]
    f0 = median_f0(np.concatenate(clips), EMBEDDING_SAMPLE_RATE)
    embedding = mean_embedding([speaker_embedding(c, EMBEDDING_SAMPLE_RATE) for c in clips])
    return {"median_f0_hz": round(f0, 1), "gender": voice_gender(f0), "embedding": embedding}


class Reader:
    """Kokoro (US and British G2P) and Piper joe reading sentences, style swapped per voice."""

    def __init__(self, threads: int = 1, cache: Path | None = None) -> None:

        self._kokoro = kokoro
        self.cache = cache
        # af_heart reads with the US G2P rules, bf_emma with the British ones.
        self.us = load("af_heart", task="tts", options={"threads": threads}).module
        self.gb = load("bf_emma", task="tts", options={"threads": threads}).module
        self.packs = {v: self._pack(v) for v in kokoro.registered_voices()}
        self.piper = load_voice("piper-joe-medium", device="cpu")

    def _pack(self, voice: str) -> np.ndarray:

        path = registry.resolve(self._kokoro.ENTRY_PREFIX + voice, task="tts").path
        return check_pack(path.read_bytes(), str(path))

    def read(self, voice: str, texts: list[str]) -> list[np.ndarray]:
        """Each text read by ``voice`` (a Kokoro voice or blend, or ``piper-joe-medium``).

        Returns:
            ``(S,)`` float32 per text at 16 kHz (kept in :attr:`cache` when set, so a rerun
            does not synthesise again).
        """
        if self.cache is None:
            return self._read(voice, texts)

        key = hashlib.sha256(repr((voice, texts, CACHE_VERSION)).encode()).hexdigest()[:20]
        path = self.cache / f"{key}.npz"
        if path.is_file():
            with np.load(path) as data:
                return [data[f"a{i}"] for i in range(len(texts))]
        audio = self._read(voice, texts)

        with atomic_output(path) as tmp, open(tmp, "wb") as f:
            np.savez(f, **{f"a{i}": a for i, a in enumerate(audio)})
        return audio

    def _read(self, voice: str, texts: list[str]) -> list[np.ndarray]:

        if voice == "piper-joe-medium":
            rate = self.piper.module.sample_rate
            options = TTSOptions(sentence_pause=0.0)
            audio = [
                np.concatenate(list(synthesize(self.piper, plan_chunks(self.piper, t), options)))
                for t in texts
            ]
        else:
            blend = parse_blend(voice, list(self.packs))
            heaviest = max(blend, key=lambda item: item[1])[0]
            model = self.gb if voice_info(heaviest).british else self.us
            model.style = blend_packs(self.packs, blend)
            rate = model.sample_rate
            audio = [
                np.concatenate([model.synthesize(c).audio for c in model.chunks(t)]) for t in texts
            ]
        return [resample(a, rate, EMBEDDING_SAMPLE_RATE) for a in audio]


def _embed(audio: list[np.ndarray]) -> np.ndarray:
    gap = np.zeros(EMBEDDING_SAMPLE_RATE // 10, np.float32)
    joined = np.concatenate([x for a in audio for x in (a, gap)])
    return speaker_embedding(joined, EMBEDDING_SAMPLE_RATE)


def voice_wer(
    reader: Reader,
    voices: list[str],
    sentences: list[str],
    progress: Callable[[str], None] | None = None,
) -> dict[str, dict[str, Any]]:
    """GRID-grammar word error rate of each voice reading ``sentences``.

    Returns:
        voice -> ``{"wer", "words", "errors"}``; the audio is kept in ``reader`` for reuse
        under ``"_audio"``.
    """

    recogniser = GridRecognizer()
    out: dict[str, dict[str, Any]] = {}
    for voice in voices:
        audio = reader.read(voice, sentences)
        errors = words = 0
        for text, clip in zip(sentences, audio, strict=True):
            e, n = word_errors(text, recogniser.recognize(clip, EMBEDDING_SAMPLE_RATE))
            errors, words = errors + e, words + n
        out[voice] = {"wer": round(errors / words, 4), "words": words, "errors": errors}
        out[voice]["_audio"] = audio
        if progress:
            progress(f"{voice}: WER {out[voice]['wer']:.3f}")
    return out


def evaluate_voices(
    data: Path,
    *,
    accent: str = "us",
    sentences: int = 10,
    wer: bool = True,
    accept_license: bool = False,
    work: Path | None = None,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Run the evaluation (see the module docstring).

    Args:
        data: the shared data folder (``grid``, ``grid_s1``, ``grid_s4`` inside).
        accent: accent of the chosen voices.
        sentences: GRID sentences each voice reads (the first :data:`EMBEDDING_SENTENCES`
            give its speaker embedding; all of them its WER).
        wer: also score every voice's WER (the audio is synthesised anyway).
        accept_license: accept the dlib 68-point model's licence (face boxes, descriptors).
        work: keep synthesised audio here and reuse it on a rerun.
        progress: called with a line of progress now and then.

    Returns:
        The report: per person, per method, summaries, per-voice WER.
    """

    say = progress or (lambda line: log.info("%s", line))
    start = time.perf_counter()
    people = grid_people(data)
    texts = grid_sentences(data, max(sentences, EMBEDDING_SENTENCES))
    detector = load_detector(accept_license)
    if work is not None:
        work.mkdir(parents=True, exist_ok=True)
    reader = Reader(cache=work)
    voices = sorted(reader.packs)
    # Every voice reads the sentences once: the audio gives both its WER and its embedding.
    if wer:
        quality = voice_wer(reader, voices, texts, say)
    else:
        quality = {v: {"_audio": reader.read(v, texts[:EMBEDDING_SENTENCES])} for v in voices}
    voice_embeddings = {v: _embed(q["_audio"][:EMBEDDING_SENTENCES]) for v, q in quality.items()}
    cache: dict[str, np.ndarray] = dict(voice_embeddings)
    picker = load_picker()

    def embedding_of(voice: str) -> np.ndarray:
        if voice not in cache:
            cache[voice] = _embed(reader.read(voice, texts[:EMBEDDING_SENTENCES]))
        return cache[voice]

    rows: list[dict[str, Any]] = []
    for person in people:
        images, boxes, descriptors = face_views(person.clips[0], detector)
        chosen = picker.choose(images, boxes, descriptors, accent)
        descriptor = np.mean(np.stack(descriptors), axis=0)
        flipped = choose_voice(
            1.0 - chosen.attributes.p_female, descriptor, picker.typicality, accent
        )
        gender = chosen.choice.gender
        typical = (
            ranked(picker.typicality, gender, accent)[0]
            if gender != "uncertain"
            else chosen.choice.voice
        )
        rows.append(
            {
                "speaker": person.speaker,
                "clips": [str(c) for c in person.clips],
                "face": chosen.to_json(),
                "_descriptors": descriptors,
                "_real": real_voice(person),
                "_choices": {
                    "rule": chosen.choice.voice,
                    "opposite_gender": flipped.voice,
                    "typical_of_gender": typical,
                    **{f"fixed_{v}": v for v in FIXED_VOICES},
                },
            }
        )
        say(f"{person.speaker}: {chosen.choice.voice} (P(female) {chosen.attributes.p_female:.2f})")
    for row in rows:
        real = row["_real"]["embedding"]
        similarity = {
            m: round(float(real @ embedding_of(v)), 4) for m, v in row["_choices"].items()
        }
        per_voice = {v: float(real @ e) for v, e in voice_embeddings.items()}
        best = max(per_voice, key=per_voice.get)
        similarity["random_voice_mean"] = round(float(np.mean(list(per_voice.values()))), 4)
        similarity["oracle"] = round(per_voice[best], 4)
        row.update(
            real_voice={k: v for k, v in row["_real"].items() if k != "embedding"},
            choices={**row["_choices"], "oracle": best},
            similarity=similarity,
            gender_agrees=row["face"]["gender"] == row["_real"]["gender"],
        )
        say(f"{row['speaker']}: similarity {similarity}")
    for row in rows:
        for key in ("_descriptors", "_real", "_choices"):
            row.pop(key)
    methods = list(rows[0]["similarity"]) if rows else []
    summary = {
        "people": len(rows),
        "gender_agreement": round(float(np.mean([r["gender_agrees"] for r in rows])), 4),
        "mean_similarity": {
            m: round(float(np.mean([r["similarity"][m] for r in rows])), 4) for m in methods
        },
    }
    mean = summary["mean_similarity"]
    if rows:
        summary["rule_minus_fixed"] = {
            v: round(mean["rule"] - mean[f"fixed_{v}"], 4) for v in FIXED_VOICES
        }
        summary["oracle_minus_rule"] = round(mean["oracle"] - mean["rule"], 4)
    report: dict[str, Any] = {
        "task": "eval voices",
        "accent": accent,
        "sentences": texts[:EMBEDDING_SENTENCES],
        "summary": summary,
        "people": rows,
        "seconds": round(time.perf_counter() - start, 1),
    }
    if wer:
        report["wer"] = {
            "sentences": len(texts),
            "voices": {
                v: {k: x for k, x in q.items() if k != "_audio"} for v, q in quality.items()
            },
            "max": max(q["wer"] for q in quality.values()),
            "target_max": 0.10,
        }
    return report
