"""Train the ResNet/BiGRU lip reader on a GRID s1 cache: CTC + per-frame word cross-entropy.

    python -m avtool.training.lipread_resnet --cache data/grid_s1_cache --out runs/lipread \\
        --init-v2a avtool/weights/v2a/v2a-grid-s1.pt --epochs 12

Splits: :func:`avtool.datasets.grid.s1_split` for a GRID s1 cache (train for training, val to pick
the best epoch; the test ids are never read). The video encoder starts from a V2A checkpoint
(``--init-v2a``; v2a-grid-s1 was trained on the same train split only, so the test split stays
unseen).

Objective: CTC over characters plus ``--word-weight`` x the cross-entropy of the auxiliary
head's per-frame GRID word classes (51 words + silence, from the cache's ``words`` /
``word_labels`` alignment). CTC alone gives a sparse signal that first settles on the sentence
prior; the frame labels tell every frame what is being said, as v2a's dense mel targets do.
Decoding uses the CTC output only. Augmentation: horizontal flips (p=0.5), frame drop /
duplication (p=0.05 each, labels follow), and with ``--word-prob`` a clip is replaced by a run
of 1-3 of its aligned words. The learning rate follows a cosine over a fixed step count, so
the same cache, seed and options give the same weights (1 thread, deterministic algorithms).
Outputs in ``--out``: ``lipread.pt`` (best val CER; an avtool checkpoint carrying its config,
:mod:`avtool.models.checkpoint`) + ``lipread.pt.json`` (the same config), ``state.pt``
(last epoch, for ``--resume``), ``log.jsonl``.

Lip-landmark stream (``--lip-landmarks``): the cache's ``landmarks`` are read with the crops,
turned into :func:`~avtool.models.v2a.model.lip_features` (mirrored with mirrored crops, sliced
and frame-dropped/duplicated with them) and the stream's ``lips.mean``/``lips.std`` are set from
the training clips. ``--init-reader PATH`` warm-starts from a trained lip reader (its config from
``PATH.json``): every tensor is loaded, only the new ``lips.*`` may be missing, and the
optimizer and learning-rate schedule start afresh:

    python -m avtool.training.lipread_resnet --cache data/grid_s1_cache --out runs/lips \
        --init-reader runs/lipread/lipread.pt --lip-landmarks --lr 1e-3 --epochs 14
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from avtool.errors import ModelError
from avtool.metrics.wer import character_errors, word_errors
from avtool.models import checkpoint, state_dict
from avtool.models.lipnet.ctc import greedy
from avtool.models.lipnet.model import encode_text
from avtool.models.lipread_resnet import FAMILY
from avtool.models.lipread_resnet.model import (
    GRID_VOCAB,
    LipReader,
    LipReaderConfig,
    build,
    transfer_encoder,
)
from avtool.models.v2a import read_checkpoint
from avtool.models.visual import LIP_DIM, lip_features, prepare_crops
from avtool.training.command import REQUIRED, add_flags, call_with_flags, defaults_of
from avtool.training.lipnet import begin_run, end_epoch, splits_for
from avtool.training.schedule import cosine_lr, optimizer_step

#: ``(crops (T, S, S) float16, frame classes (T,), text, word spans, landmarks (T, 68, 2)
#: float32 pixels or None)``.
Clip = tuple[torch.Tensor, torch.Tensor, str, list[tuple[int, int, str]], torch.Tensor | None]


def frame_labels(
    n_frames: int, times: np.ndarray, labels: Sequence[str], fps: float = 25.0
) -> tuple[torch.Tensor, list[tuple[int, int, str]]]:
    """Per-frame word classes ``(T,)`` int64 and word spans ``[(first, end, word)]``.

    Class ``GRID_VOCAB.index(word) + 1`` inside a word's span, 0 elsewhere (silence). GRID
    alignments fall on frame boundaries, so times are rounded (float32 noise adds no frame).
    """
    classes = torch.zeros(n_frames, dtype=torch.long)
    spans: list[tuple[int, int, str]] = []
    for (a, b), word in zip(times, labels, strict=True):
        first = min(n_frames - 1, round(float(a) * fps))
        end = min(n_frames, max(first + 1, round(float(b) * fps)))
        if word in GRID_VOCAB:
            classes[first:end] = GRID_VOCAB.index(word) + 1
        spans.append((first, end, word))
    return classes, spans


def load_clips(
    cache_dir: Path, ids: Sequence[str], crop_size: int, with_lips: bool = False
) -> dict[str, Clip]:
    """Cached clips present in ``cache_dir``: ``id -> (crops (T, S, S) float16, frame classes
    (T,), text, word spans, landmarks (T, 68, 2) float32 or None)``.

    Raises:
        ModelError: ``with_lips`` and a clip without ``landmarks`` (file named).
    """
    clips: dict[str, Clip] = {}
    for clip_id in ids:
        path = cache_dir / f"{clip_id}.npz"
        if not path.is_file():
            continue
        with np.load(path) as data:
            gray = torch.from_numpy(data["gray88"])
            marks = None
            if with_lips:
                if "landmarks" not in data.files:
                    raise ModelError(f"{path}: no 'landmarks' for the lip-landmark stream")
                marks = torch.from_numpy(data["landmarks"].astype(np.float32))
            text = str(data["text"])
            times = data["words"] if "words" in data.files else np.zeros((0, 2))
            labels = [str(w) for w in data["word_labels"]] if "word_labels" in data.files else []
        crops = prepare_crops(gray[None], crop_size)[0].half()  # float16 halves the RAM
        classes, spans = frame_labels(len(crops), times, labels)
        clips[clip_id] = (crops, classes, text, spans, marks)
    return clips


def lip_stats(clips: dict[str, Clip]) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-coordinate mean and std ``(40,)`` of the lip features over all frames of the clips."""
    feats = torch.cat([lip_features(clip[4]) for clip in clips.values() if clip[4] is not None])
    return feats.mean(0), feats.std(0).clamp_min(1e-4)


def augment(
    crops: torch.Tensor, classes: torch.Tensor, generator: torch.Generator, jitter: float = 0.05
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mirror (p=0.5) and drop/duplicate frames (p=``jitter`` each); labels follow frames."""
    crops, classes, _ = augment_clip(crops, classes, None, generator, jitter)
    return crops, classes


def augment_clip(
    crops: torch.Tensor,
    classes: torch.Tensor,
    landmarks: torch.Tensor | None,
    generator: torch.Generator,
    jitter: float = 0.05,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """:func:`augment` that also carries the landmarks ``(T, 68, 2)``: returns the crops, the
    classes and the lip features ``(T', 40)`` of the same frames, mirrored with the crops
    (None without landmarks). Draws the same random numbers as :func:`augment`."""
    mirror = bool(torch.rand((), generator=generator) < 0.5)
    if mirror:
        crops = crops.flip(-1)
    draw = torch.rand(len(crops), generator=generator)
    repeats = torch.ones(len(crops), dtype=torch.long)
    repeats[draw < jitter] = 0
    repeats[draw > 1 - jitter] = 2
    lips = None
    if landmarks is not None:
        lips = lip_features(landmarks, mirror=mirror).repeat_interleave(repeats, 0)
    return crops.repeat_interleave(repeats, 0), classes.repeat_interleave(repeats, 0), lips


def sub_sentence(
    clip: Clip, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor, str, torch.Tensor | None]:
    """A random run of 1-3 aligned words (2 frames of context each side): crops, classes, its
    text and the same frames' landmarks (None when the clip has none)."""
    crops, classes, _, spans, marks = clip
    count = int(torch.randint(1, min(3, len(spans)) + 1, (), generator=generator))
    first = int(torch.randint(0, len(spans) - count + 1, (), generator=generator))
    chosen = spans[first : first + count]
    start, stop = max(0, chosen[0][0] - 2), min(len(crops), chosen[-1][1] + 2)
    text = " ".join(w for _, _, w in chosen)
    piece = None if marks is None else marks[start:stop]
    return crops[start:stop], classes[start:stop], text, piece


def collate(
    crops: Sequence[torch.Tensor], classes: Sequence[torch.Tensor]
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Zero-pad in time: crops ``(B, T_max, S, S)`` float32, classes ``(B, T_max)`` (-100 on
    padding, ignored by the loss) and lengths ``(B,)``."""
    lengths = torch.tensor([len(c) for c in crops])
    t_max = int(lengths.max())
    batch = torch.zeros(len(crops), t_max, *crops[0].shape[1:])
    labels = torch.full((len(crops), t_max), -100, dtype=torch.long)
    for i, (c, k) in enumerate(zip(crops, classes, strict=True)):
        batch[i, : len(c)] = c.float()
        labels[i, : len(k)] = k
    return batch, labels, lengths


def collate_lips(lips: Sequence[torch.Tensor]) -> torch.Tensor:
    """Zero-pad lip features ``(T_i, 40)`` in time to ``(B, T_max, 40)`` (as :func:`collate`)."""
    batch = torch.zeros(len(lips), max(len(x) for x in lips), LIP_DIM)
    for i, x in enumerate(lips):
        batch[i, : len(x)] = x
    return batch


def evaluate(model: LipReader, clips: dict[str, Clip], ids: Sequence[str]) -> dict[str, float]:
    """Greedy CER/WER and frame word accuracy on ``ids`` (eval mode, no augmentation)."""

    model.eval()
    chars = words = char_total = word_total = correct = frames = 0
    with torch.no_grad():
        for clip_id in ids:
            crops, classes, text, _, marks = clips[clip_id]
            lips = lip_features(marks)[None] if model.lips is not None else None
            log_probs, word_logits = model(crops.float()[None], lips)
            hyp = greedy(log_probs[0].numpy())
            edits, total = character_errors(text, hyp)
            chars, char_total = chars + edits, char_total + total
            edits, total = word_errors(text, hyp)
            words, word_total = words + edits, word_total + total
            if word_logits is not None:
                correct += int((word_logits[0].argmax(-1) == classes).sum())
                frames += len(classes)
    return {
        "cer": chars / max(1, char_total),
        "wer": words / max(1, word_total),
        "frame_acc": correct / max(1, frames),
    }


def train(
    cache_dir: Path,
    out_dir: Path,
    *,
    config: LipReaderConfig,
    init_v2a: Path | None = None,
    init_reader: Path | None = None,
    epochs: int = 12,
    batch_size: int = 8,
    lr: float = 1e-3,
    word_weight: float = 0.5,
    word_prob: float = 0.2,
    seed: int = 0,
    threads: int = 1,
    max_minutes: float = 35.0,
    resume: bool = False,
    limit: int | None = None,
    max_steps: int | None = None,
    log: bool = True,
) -> dict[str, float]:
    """Train with a fixed step schedule, validating and checkpointing every epoch.

    Args:
        cache_dir: a GRID s1 cache (:mod:`avtool.datasets.grid`).
        out_dir: where ``lipread.pt`` (+ ``.json``), ``state.pt`` and ``log.jsonl`` go.
        config: architecture (ignored on resume: the saved one is used).
        init_v2a: V2A weights (any layout :func:`avtool.models.v2a.read_checkpoint` reads) whose
            video encoder initialises the front-end.
        init_reader: a trained lip reader to start from (an avtool checkpoint, or a state dict
            with its ``.pt.json``: :func:`avtool.models.checkpoint.read_any`) (warm start: every
            tensor must fit ``config``; only the lip stream's ``lips.*`` may be missing).
            Ignored on resume.
        epochs: epochs in total; the learning rate follows a cosine over them (to 2% of ``lr``).
        batch_size, lr: AdamW mini-batches and peak learning rate.
        word_weight: weight of the per-frame word cross-entropy added to CTC (0 = CTC only).
        word_prob: chance a training clip is replaced by 1-3 of its aligned words.
        seed: seeds weights, shuffling, dropout and augmentation.
        threads: torch CPU threads.
        max_minutes: safety stop of this invocation (size ``epochs`` to end by itself).
        resume: continue from ``out_dir/state.pt``.
        limit: use at most this many train/val clips (smoke runs and tests).
        max_steps: stop each epoch after this many steps (tests).
        log: print one JSON line per epoch.

    Returns:
        The best validation metrics ``{"cer", "wer", "frame_acc", "epoch"}`` plus
        ``first_loss``/``last_loss`` (mean training loss of the first and last epoch run).
    """
    state, start = begin_run(out_dir, threads, resume)
    if state is not None:
        config = LipReaderConfig.from_dict(state["config"])
    torch.manual_seed(seed)
    model = build(config)
    if init_v2a is not None and state is None and init_reader is None:
        transfer_encoder(model, read_checkpoint(init_v2a).state_dict)
    missing: list[str] = []
    if init_reader is not None and state is None:
        missing = warm_start(model, checkpoint.read_any(init_reader, FAMILY).state_dict)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    first_epoch = 0
    best: dict[str, float] = {"cer": math.inf, "wer": math.inf, "frame_acc": 0.0, "epoch": -1}
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        first_epoch, best = state["epoch"] + 1, state["best"]
    split = splits_for(cache_dir)  # the s1 split for a GRID s1 cache, else a hash split
    train_ids, val_ids = split["train"][:limit], split["val"][:limit]
    with_lips = config.lip_landmarks
    clips = load_clips(cache_dir, train_ids, config.crop_size, with_lips)
    val = load_clips(cache_dir, val_ids, config.crop_size, with_lips)
    if model.lips is not None and state is None and (init_reader is None or "lips.mean" in missing):
        mean, std = lip_stats(clips)
        model.lips.mean.copy_(mean)
        model.lips.std.copy_(std)
    available = sorted(clips)
    val_available = sorted(val) or available  # a tiny cache is scored on its training clips
    val_clips = val or clips
    steps_per_epoch = math.ceil(len(available) / batch_size)
    total_steps = epochs * steps_per_epoch
    step = first_epoch * steps_per_epoch
    losses: list[float] = []
    for epoch in range(first_epoch, epochs):
        epoch_start = time.monotonic()
        generator = torch.Generator().manual_seed(seed * 100_003 + epoch)
        order = [available[i] for i in torch.randperm(len(available), generator=generator)]
        torch.manual_seed(seed * 7919 + epoch)  # dropout masks
        model.train()
        total_loss = total_ctc = total_word = 0.0
        batches = 0
        out_of_time = False
        for first in range(0, len(order), batch_size):
            crops_list, classes_list, texts, lips_list = [], [], [], []
            for clip_id in order[first : first + batch_size]:
                clip = clips[clip_id]
                crops, classes, text, marks = clip[0], clip[1], clip[2], clip[4]
                if clip[3] and float(torch.rand((), generator=generator)) < word_prob:
                    crops, classes, text, marks = sub_sentence(clip, generator)
                crops, classes, lips = augment_clip(crops, classes, marks, generator)
                crops_list.append(crops)
                classes_list.append(classes)
                texts.append(text)
                if lips is not None:
                    lips_list.append(lips)
            batch, labels, lengths = collate(crops_list, classes_list)
            lip_batch = collate_lips(lips_list) if model.lips is not None else None
            targets = [torch.tensor(encode_text(t)) for t in texts]
            log_probs, word_logits = model(batch, lip_batch)
            ctc = F.ctc_loss(
                log_probs.transpose(0, 1), torch.cat(targets), lengths,
                torch.tensor([len(t) for t in targets]), blank=0, zero_infinity=True,
            )  # fmt: skip
            loss = ctc
            word = torch.zeros(())
            if word_logits is not None and word_weight > 0:
                word = F.cross_entropy(word_logits.transpose(1, 2), labels, ignore_index=-100)
                loss = ctc + word_weight * word
            optimizer_step(optimizer, loss, cosine_lr(lr, step, total_steps, floor=0.02),
                           model.parameters())  # fmt: skip
            step += 1
            total_loss += float(loss.detach())
            total_ctc += float(ctc.detach())
            total_word += float(word.detach())
            batches += 1
            if max_steps is not None and batches >= max_steps:
                break
            if time.monotonic() - start > max_minutes * 60:
                out_of_time = True
                break
        losses.append(total_loss / max(1, batches))
        metrics = evaluate(model, val_clips, val_available)
        seconds = time.monotonic() - epoch_start
        record = {
            "epoch": epoch, "loss": losses[-1], "ctc": total_ctc / max(1, batches),
            "word_ce": total_word / max(1, batches), **metrics, "steps": step,
            "train_clips": len(available), "val_clips": len(val),
            "seconds": round(seconds, 1), "lr": optimizer.param_groups[0]["lr"],
        }  # fmt: skip
        best = end_epoch(out_dir, "lipread.pt", record, metrics, best, model, optimizer, config,
                         log=log, family=FAMILY)  # fmt: skip
        if out_of_time:
            break
    return {**best, "first_loss": losses[0] if losses else math.nan,
            "last_loss": losses[-1] if losses else math.nan}  # fmt: skip


def warm_start(model: LipReader, state: dict[str, torch.Tensor]) -> list[str]:
    """Load a trained lip reader's weights into ``model``, which may add the lip stream.

    Returns:
        The keys ``model`` has that ``state`` lacks (all ``lips.*``).

    Raises:
        ModelError: a tensor that does not fit, an unexpected key, or a missing one outside
            the lip stream.
    """
    try:
        result = model.load_state_dict(state, strict=False)
    except RuntimeError as exc:
        raise ModelError(f"the lip reader weights do not fit the config ({exc})") from exc
    other = [k for k in result.missing_keys if not k.startswith("lips.")]
    if other or result.unexpected_keys:
        raise ModelError(
            f"the lip reader weights do not fit the config (missing {other}, unexpected "
            f"{list(result.unexpected_keys)})"
        )
    return list(result.missing_keys)


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: see the module docstring."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_flags(parser, cache=REQUIRED, out=REQUIRED)
    parser.add_argument("--config", default="reduced", help="reduced or debug")
    parser.add_argument("--init-v2a", type=Path, help="V2A state dict for the video encoder")
    parser.add_argument(
        "--init-reader", type=Path,
        help="warm start from a lip reader .pt (its .pt.json config; overrides --config)",
    )  # fmt: skip
    parser.add_argument(
        "--lip-landmarks", action="store_true", help="add the lip-landmark input stream"
    )
    shared = ("epochs", "batch_size", "lr", "seed", "threads", "max_minutes", "limit")
    add_flags(parser, **defaults_of(train, *shared))
    weights = defaults_of(train, "word_weight", "word_prob")
    parser.add_argument("--word-weight", type=float, default=weights["word_weight"])
    parser.add_argument("--word-prob", type=float, default=weights["word_prob"])
    parser.add_argument("--max-steps", type=int, help="steps per epoch at most (smoke runs)")
    parser.add_argument("--resume", action="store_true")
    args = parser.parse_args(argv)
    config = LipReaderConfig.preset(args.config)
    if args.init_reader is not None:
        config = LipReaderConfig.from_dict(state_dict.read_config(args.init_reader, "lip reader"))
    if args.lip_landmarks:
        config = dataclasses.replace(config, lip_landmarks=True)
    print(json.dumps({"best": call_with_flags(train, args, args.cache, args.out, config=config)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
