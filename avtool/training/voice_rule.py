"""Fit the face-voice rule's table: how typical each Kokoro voice is of real speakers.

For every bundled Kokoro voice, the GE2E embedding of four Harvard sentences it reads is
compared (cosine) with the embedding of each LibriSpeech speaker of the voice's gender
(``../shared/data/librispeech``: 261 speakers, genders from the corpus). The mean is the
voice's *typicality*; :mod:`avtool.models.face_attributes.voice` draws a face's voice from the
most typical voices of its gender. No GRID face or voice is used, so the evaluation on GRID
(``avtool eval voices``) stays out of sample. One thread, about 5 minutes on a laptop core.

    python -m avtool.training.voice_rule --librispeech ../shared/data/librispeech \
        --out avtool/weights/face_voice_rule/typicality.json
"""

from __future__ import annotations

import argparse
import ast
import csv
import json
import sys
import time
from pathlib import Path

import numpy as np

from avtool import registry
from avtool.errors import AvtoolError, InputError
from avtool.io.audio import load_audio, resample
from avtool.io.files import atomic_output
from avtool.metrics.speaker import mean_embedding, median_f0, speaker_embedding
from avtool.models import kokoro, loading
from avtool.models.kokoro.voices import ENTRY_PREFIX, check_pack, voice_info
from avtool.models.text import split_sentences

#: Harvard sentences (IEEE 1969, list 1): phonetically balanced, public domain.
TEXTS = (
    "The birch canoe slid on the smooth planks.",
    "Glue the sheet to the dark blue background.",
    "It's easy to tell the depth of a well.",
    "These days a chicken leg is a rare dish.",
)


def voice_audio(model: kokoro.KokoroModel, pack: np.ndarray, texts: tuple[str, ...]) -> np.ndarray:
    """``texts`` read by the voice ``pack`` ``(510, 1, 256)``: ``(S,)`` float32 at 24 kHz."""
    model.style = pack
    pieces = []
    for text in texts:
        for sentence in split_sentences(text):
            for chunk in model.chunks(sentence):
                pieces.append(model.synthesize(chunk).audio)
                pieces.append(np.zeros(kokoro.SAMPLE_RATE // 10, np.float32))
    return np.concatenate(pieces)


def librispeech_speakers(root: Path) -> dict[str, tuple[str, np.ndarray]]:
    """Speaker id -> (gender "female"/"male", centroid embedding of their clips here)."""
    genders = {}
    with open(root / "speakers.csv", newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            genders[row["speaker_id"]] = "female" if row["gender"] == "F" else "male"
    clips: dict[str, list[Path]] = {}
    for path in sorted(root.rglob("*.flac")):
        clips.setdefault(path.name.split("-")[0], []).append(path)
    if not clips:
        raise InputError(f"{root}: no LibriSpeech .flac files")
    out = {}
    for speaker, paths in clips.items():
        embeddings = [speaker_embedding(load_audio(p, 16000)[0], 16000) for p in paths[:3]]
        out[speaker] = (genders[speaker], mean_embedding(embeddings))
    return out


def fit(librispeech: Path, done: dict[str, dict] | None = None) -> dict:
    """The table: typicality and median F0 of every registered Kokoro voice.

    Args:
        librispeech: the LibriSpeech sample folder.
        done: rows already fitted by an interrupted run (voice -> row), kept as they are.
    """
    start = time.perf_counter()
    speakers = librispeech_speakers(librispeech)
    voices = kokoro.registered_voices()
    loaded = loading.load(voices[0], task="tts", options={"threads": 1})
    table: dict[str, dict] = dict(done or {})
    for voice in voices:
        if voice in table:
            continue
        path = registry.resolve(ENTRY_PREFIX + voice, task="tts").path
        audio = voice_audio(loaded.module, check_pack(path.read_bytes(), str(path)), TEXTS)
        embedding = speaker_embedding(resample(audio, kokoro.SAMPLE_RATE, 16000), 16000)
        gender = voice_info(voice).gender
        same = [float(embedding @ e) for g, e in speakers.values() if g == gender]
        other = [float(embedding @ e) for g, e in speakers.values() if g != gender]
        table[voice] = {
            "typicality": round(float(np.mean(same)), 5),
            "other_gender": round(float(np.mean(other)), 5),
            "median_f0_hz": round(median_f0(audio, kokoro.SAMPLE_RATE), 1),
        }
        print(voice, table[voice], flush=True)
    return {
        "rule": "face-voice-rule-v1",
        "fitted_on": "LibriSpeech sample (../shared/data/librispeech), no GRID speaker",
        "speakers": {
            "female": sum(g == "female" for g, _ in speakers.values()),
            "male": sum(g == "male" for g, _ in speakers.values()),
        },
        "texts": list(TEXTS),
        "seconds": round(time.perf_counter() - start, 1),
        "voices": table,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--librispeech", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument(
        "--resume", type=Path, help="the log of an interrupted run: its voice rows are kept"
    )
    args = parser.parse_args(argv)
    done = {}
    if args.resume:
        for line in args.resume.read_text(encoding="utf-8").splitlines():
            voice, _, row = line.partition(" ")
            if row.startswith("{"):
                done[voice] = ast.literal_eval(row)
    try:
        table = fit(args.librispeech, done)
    except AvtoolError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return int(exc.exit_code)
    with atomic_output(args.out) as tmp:
        tmp.write_text(json.dumps(table, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
