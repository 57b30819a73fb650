"""Word and character error rates of a lip reader on real GRID clips (``avtool eval lipread``).

Each clip is read once (face stage + network, or the cached crops of
:mod:`avtool.datasets.grid`, which are made by the same code) and decoded with every decoder
asked for; errors are summed over the corpus (total edits / total reference words or
characters), as LipNet reports them. The reference of a clip is, in order: the ``transcript`` of
its row in a ``manifest.csv`` beside it (``file,transcript,...``), its GRID ``.align`` file, or
the sentence its GRID file name encodes.
"""

from __future__ import annotations

import csv
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from avtool.datasets.grid import align_for, read_align, s1_split, sentence_from_id
from avtool.errors import AvtoolError, InputError
from avtool.io.formats import MODEL_FPS
from avtool.metrics.wer import character_errors, word_errors
from avtool.models.lipnet import ctc
from avtool.tasks.lipread import clip_log_probs, load_reader
from avtool.tasks.options.lipread import DEFAULT_MODEL, LipreadOptions

DECODERS = ("greedy", "beam", "grid")
#: LipNet's published figure on GRID (overlapped speakers, Assael et al. 2016), for context.
LIPNET_PAPER_WER = 0.048
#: This project's target on the held-out s1 test split.
TARGET_WER = 0.10


def reference_text(clip: Path) -> str:
    """The true transcript of a clip (manifest row, ``.align`` file or GRID file name).

    Raises:
        InputError: none of the three is available.
    """
    manifest = clip.parent / "manifest.csv"
    if manifest.is_file():
        with open(manifest, newline="", encoding="utf-8") as handle:
            for row in csv.DictReader(handle):
                if row.get("file") == clip.name and row.get("transcript"):
                    return row["transcript"].strip().lower()
    align = align_for(clip)
    if align is not None:
        return " ".join(w.word for w in read_align(align))
    try:
        return sentence_from_id(clip.stem)
    except InputError:
        raise InputError(
            f"{clip}: no reference transcript (no manifest.csv row, .align file or GRID name)"
        ) from None


def select_split(clips: Sequence[Path], split: str | None) -> list[Path]:
    """Keep the clips of an s1 split (``train``/``val``/``test``); None keeps all.

    Raises:
        InputError: unknown split name, or no clip belongs to it.
    """
    if split is None:
        return list(clips)

    splits = s1_split()
    if split not in splits:
        raise InputError(f"--split {split!r}: choose from {', '.join(splits)}")
    wanted = set(splits[split])
    chosen = [c for c in clips if c.stem in wanted]
    if not chosen:
        raise InputError(f"--split {split}: none of the {len(clips)} clips is in the s1 split")
    return chosen


def evaluate_lipread(
    clips: Sequence[Path],
    *,
    model: str = DEFAULT_MODEL,
    decoders: Sequence[str] = DECODERS,
    beam: int = 16,
    cache_dir: Path | None = None,
    device: str = "auto",
    accept_license: bool = False,
    on_clip: Callable[[Path], None] | None = None,
) -> dict[str, Any]:
    """Read every clip and score each decoder's transcripts.

    Args:
        clips: GRID videos.
        model: registry name or checkpoint path.
        decoders: any of ``greedy``, ``beam``, ``grid``.
        beam: prefix beam width.
        cache_dir: a GRID cache (:mod:`avtool.datasets.grid`); clips found there use their
            cached crops instead of running the face stage again.
        device, accept_license: as for ``avtool lipread``.
        on_clip: called before each clip (progress).

    Returns:
        ``{"model", "n_clips", "decoders": {name: {"wer", "cer", "word_edits", "words",
        "char_edits", "chars"}}, "clips": [{"clip", "reference", name: hypothesis, ...}],
        "failed": [{"clip", "error"}], "speed": {...}}``.
    """

    for name in decoders:
        if name not in DECODERS:
            raise InputError(f"decoder {name!r}: choose from {', '.join(DECODERS)}")
    reader = load_reader(LipreadOptions(model=model), device=device, accept_license=accept_license)
    totals = {d: {"word_edits": 0, "words": 0, "char_edits": 0, "chars": 0} for d in decoders}
    rows: list[dict[str, Any]] = []
    failed: list[dict[str, str]] = []
    speed = {"video_s": 0.0, "face_s": 0.0, "network_s": 0.0, "cached_clips": 0}
    decode_s = dict.fromkeys(decoders, 0.0)
    for clip in clips:
        if on_clip is not None:
            on_clip(clip)
        try:
            reference = reference_text(clip)
            cached = cache_dir / f"{clip.stem}.npz" if cache_dir else None
            if cached is not None and cached.is_file():
                with np.load(cached) as data:
                    crops = data[reader.crop_preset]  # cache keys are the crop preset names
                    if reader.needs_landmarks and "landmarks" not in data.files:
                        raise InputError(f"{cached}: no 'landmarks' (the model reads them)")
                    landmarks = data["landmarks"] if reader.needs_landmarks else None
                start = time.perf_counter()
                log_probs = reader.log_probs(crops, landmarks)
                speed["network_s"] += time.perf_counter() - start
                speed["cached_clips"] += 1
            else:
                result = clip_log_probs(reader, clip, LipreadOptions(model=model))
                log_probs = result["log_probs"]
                speed["face_s"] += result["timings"]["face_s"]
                speed["network_s"] += result["timings"]["network_s"]
            speed["video_s"] += len(log_probs) / MODEL_FPS
        except AvtoolError as exc:
            failed.append({"clip": str(clip), "error": str(exc)})
            continue
        row: dict[str, Any] = {"clip": clip.name, "reference": reference}
        for name in decoders:
            start = time.perf_counter()
            hypothesis = ctc.decode(log_probs, name, beam=beam, fps=MODEL_FPS).text
            decode_s[name] += time.perf_counter() - start
            row[name] = hypothesis
            edits, count = word_errors(reference, hypothesis)
            totals[name]["word_edits"] += edits
            totals[name]["words"] += count
            edits, count = character_errors(reference, hypothesis)
            totals[name]["char_edits"] += edits
            totals[name]["chars"] += count
        rows.append(row)
    summary = {
        name: {
            "wer": round(t["word_edits"] / t["words"], 4) if t["words"] else None,
            "cer": round(t["char_edits"] / t["chars"], 4) if t["chars"] else None,
            **t,
            "decode_s": round(decode_s[name], 3),
        }
        for name, t in totals.items()
    }
    busy = speed["face_s"] + speed["network_s"]
    return {
        "model": reader.facts["name"],
        "model_sha256": reader.facts["sha256"],
        "n_clips": len(rows),
        "decoders": summary,
        "clips": rows,
        "failed": failed,
        "speed": {
            **{k: round(v, 3) if isinstance(v, float) else v for k, v in speed.items()},
            "x_real_time": round(speed["video_s"] / busy, 2) if busy else None,
        },
        "anchors": {"lipnet_paper_wer_overlapped": LIPNET_PAPER_WER, "target_wer_s1": TARGET_WER},
    }
