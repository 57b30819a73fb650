"""Train LipNet on a GRID cache (:mod:`avtool.datasets.grid`) with CTC.

    python -m avtool.training.lipnet --cache data/grid_s1_cache --out runs/lipnet \\
        --config reduced --max-minutes 40

Splits come from :func:`avtool.datasets.grid.s1_split` when the cache holds GRID s1 (any clip
outside it is ignored), else from :func:`avtool.datasets.grid.split_ids`. Augmentation follows
LipNet: horizontal flips (p=0.5) and temporal jitter (each frame dropped or duplicated with
p=0.05), plus its curriculum: with ``--word-prob`` a clip is replaced by a run of 1-3 of its
aligned words, which cannot be read from the sentence prior alone. Every epoch the model is
scored on the validation split (greedy CER); the best one is written as ``lipnet.pt`` (an avtool
checkpoint) + ``lipnet.pt.json`` (its config); ``state.pt`` holds model, optimiser, epoch and
best score so an interrupted run resumes where it stopped (``--resume``).
The cache may still be filling while training runs: each epoch uses the items present then.

Same cache, seed and options → the same weights (single-threaded, deterministic algorithms).
"""

from __future__ import annotations

import argparse
import json
import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from avtool.datasets.grid import s1_split, split_ids
from avtool.metrics.wer import character_errors, word_errors
from avtool.models import state_dict
from avtool.models.lipnet.ctc import greedy
from avtool.models.lipnet.model import LipNet, LipNetConfig, build, encode_text, prepare_input
from avtool.training.command import REQUIRED, add_flags, call_with_flags, defaults_of
from avtool.training.schedule import cosine_lr, optimizer_step


class ClipStore:
    """Cached clips as model inputs, loaded once.

    ``items``: ``id -> ((C, T, H, W) float16, text)``; ``words``: ``id -> [(first frame,
    end frame, word), ...]`` from the cache's alignment (for sub-sentence training).
    """

    def __init__(self, cache_dir: Path, config: LipNetConfig) -> None:
        self.cache_dir = cache_dir
        self.config = config
        self.items: dict[str, tuple[torch.Tensor, str]] = {}
        self.words: dict[str, list[tuple[int, int, str]]] = {}

    def refresh(self, ids: Sequence[str]) -> list[str]:
        """Load the listed ids that are in the cache now; returns those available, sorted."""
        for clip_id in ids:
            if clip_id in self.items:
                continue
            path = self.cache_dir / f"{clip_id}.npz"
            if not path.is_file():
                continue
            with np.load(path) as data:
                crops, text = data["lipnet"], str(data["text"])
                times = data["words"] if "words" in data.files else np.zeros((0, 2))
                labels = [str(w) for w in data["word_labels"]] if "word_labels" in data else []
            fps = 25.0
            # GRID alignments fall on frame boundaries: round, so float32 noise adds no frame.
            spans = [(round(float(a) * fps), round(float(b) * fps)) for a, b in times]
            self.words[clip_id] = [
                (a, max(a + 1, b), word) for (a, b), word in zip(spans, labels, strict=True)
            ]
            # float16 halves the memory of a whole split held in RAM; precision is ample.
            self.items[clip_id] = (prepare_input(crops, self.config).half(), text)
        return sorted(i for i in ids if i in self.items)


def cache_ids(cache_dir: Path) -> list[str]:
    """Finished items of a cache (``<id>.npz``; ``.part.npz`` files are in progress)."""
    return sorted(p.stem for p in cache_dir.glob("*.npz") if not p.name.endswith(".part.npz"))


def splits_for(cache_dir: Path) -> dict[str, list[str]]:
    """The s1 split when the cache is GRID s1, else a hash split of what the cache holds."""
    split = s1_split()
    present = set(cache_ids(cache_dir))
    if present and present <= set().union(*split.values()):
        return split
    return split_ids(sorted(present))


def augment(video: torch.Tensor, generator: torch.Generator, jitter: float = 0.05) -> torch.Tensor:
    """LipNet's augmentation of one ``(C, T, H, W)`` clip: flip, frame drop/duplication."""
    if torch.rand((), generator=generator) < 0.5:
        video = video.flip(-1)
    if jitter > 0:
        draw = torch.rand(video.shape[1], generator=generator)
        repeats = torch.ones(video.shape[1], dtype=torch.long)
        repeats[draw < jitter] = 0
        repeats[draw > 1 - jitter] = 2
        video = video.repeat_interleave(repeats, dim=1)
    return video


def sub_sentence(
    video: torch.Tensor, words: Sequence[tuple[int, int, str]], generator: torch.Generator
) -> tuple[torch.Tensor, str]:
    """A random run of 1-3 aligned words of a clip and its text (LipNet's curriculum).

    Short pieces cannot be transcribed from the sentence prior alone, which pushes the network
    to use the lips early in training. Two frames of context are kept on each side.
    """
    count = int(torch.randint(1, min(3, len(words)) + 1, (), generator=generator))
    first = int(torch.randint(0, len(words) - count + 1, (), generator=generator))
    chosen = words[first : first + count]
    start = max(0, chosen[0][0] - 2)
    stop = min(video.shape[1], chosen[-1][1] + 2)
    return video[:, start:stop], " ".join(w for _, _, w in chosen)


def collate(videos: Sequence[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Zero-pad clips in time: ``(B, C, T_max, H, W)`` float32 and lengths ``(B,)``."""
    lengths = torch.tensor([v.shape[1] for v in videos])
    c, _, h, w = videos[0].shape
    batch = torch.zeros(len(videos), c, int(lengths.max()), h, w)
    for index, video in enumerate(videos):
        batch[index, :, : video.shape[1]] = video.float()
    return batch, lengths


def evaluate(model: LipNet, store: ClipStore, ids: Sequence[str]) -> dict[str, float]:
    """Greedy CER and WER of ``model`` on ``ids`` (eval mode, no augmentation)."""
    model.eval()
    chars = words = char_total = word_total = 0
    with torch.no_grad():
        for clip_id in ids:
            video, text = store.items[clip_id]
            log_probs = model(video.float().unsqueeze(0))[0].numpy()
            hyp = greedy(log_probs)
            edits, total = character_errors(text, hyp)
            chars, char_total = chars + edits, char_total + total
            edits, total = word_errors(text, hyp)
            words, word_total = words + edits, word_total + total
    return {"cer": chars / max(1, char_total), "wer": words / max(1, word_total)}


def train(
    cache_dir: Path,
    out_dir: Path,
    *,
    config: LipNetConfig,
    max_minutes: float = 40.0,
    epochs: int = 15,
    batch_size: int = 4,
    lr: float = 2e-3,
    seed: int = 0,
    threads: int = 1,
    resume: bool = False,
    limit: int | None = None,
    word_prob: float = 0.5,
    log: bool = True,
) -> dict[str, float]:
    """Train, validating and checkpointing every epoch, until ``epochs`` or the time limit.

    Args:
        cache_dir: a GRID cache folder.
        out_dir: where ``lipnet.pt``, ``lipnet.pt.json``, ``state.pt`` and ``log.jsonl`` go.
        config: architecture (ignored on resume: the saved one is used).
        max_minutes: wall-clock budget of this invocation; the epoch in progress stops there
            (a safety stop: size ``epochs`` so the run ends by itself).
        epochs: epochs in total; the learning rate follows a cosine over them (to 2% of ``lr``).
        batch_size, lr: Adam mini-batches and peak learning rate.
        seed: seeds weights, shuffling, dropout and augmentation.
        threads: torch CPU threads.
        resume: continue from ``out_dir/state.pt`` when present.
        limit: use at most this many train/val clips (smoke runs).
        word_prob: chance that a training clip is replaced by 1-3 of its aligned words
            (:func:`sub_sentence`); needs ``words``/``word_labels`` in the cache.
        log: print one line per epoch.

    Returns:
        The best validation metrics ``{"cer", "wer", "epoch"}``.
    """
    state, start = begin_run(out_dir, threads, resume)
    if state is not None:
        config = LipNetConfig.from_dict(state["config"])
    torch.manual_seed(seed)
    model = build(config)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    first_epoch, best = 0, {"cer": math.inf, "wer": math.inf, "epoch": -1}
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        first_epoch, best = state["epoch"] + 1, state["best"]
    ctc = torch.nn.CTCLoss(blank=0, zero_infinity=True)
    splits = splits_for(cache_dir)
    train_ids, val_ids = splits["train"][:limit], splits["val"][:limit]
    store = ClipStore(cache_dir, config)
    total_steps = epochs * math.ceil(len(train_ids) / batch_size)
    step = first_epoch * math.ceil(len(train_ids) / batch_size)
    epoch_seconds: list[float] = []
    for epoch in range(first_epoch, epochs):
        epoch_start = time.monotonic()
        available = store.refresh(train_ids)
        val_available = store.refresh(val_ids)
        generator = torch.Generator().manual_seed(seed * 100_003 + epoch)
        order = [available[i] for i in torch.randperm(len(available), generator=generator)]
        torch.manual_seed(seed * 7919 + epoch)  # dropout masks
        model.train()
        total_loss, batches = 0.0, 0
        out_of_time = False
        for first in range(0, len(order), batch_size):
            chunk = order[first : first + batch_size]
            videos, texts = [], []
            for clip_id in chunk:
                video, text = store.items[clip_id]
                words = store.words.get(clip_id, [])
                if words and float(torch.rand((), generator=generator)) < word_prob:
                    video, text = sub_sentence(video, words, generator)
                videos.append(augment(video, generator))
                texts.append(text)
            batch, lengths = collate(videos)
            targets = [torch.tensor(encode_text(text)) for text in texts]
            log_probs = model(batch).transpose(0, 1)  # (T, B, V)
            loss = ctc(
                log_probs, torch.cat(targets), lengths, torch.tensor([len(t) for t in targets])
            )
            optimizer_step(optimizer, loss, cosine_lr(lr, step, total_steps, floor=0.02),
                           model.parameters())  # fmt: skip
            step += 1
            total_loss, batches = total_loss + float(loss.detach()), batches + 1
            if time.monotonic() - start > max_minutes * 60:
                out_of_time = True
                break
        # A cache too small to have a validation split is scored on its training clips.
        metrics = evaluate(model, store, val_available or available)
        epoch_seconds.append(time.monotonic() - epoch_start)
        record = {
            "epoch": epoch, "loss": total_loss / max(1, batches), **metrics,
            "train_clips": len(available), "val_clips": len(val_available),
            "seconds": round(epoch_seconds[-1], 1), "lr": optimizer.param_groups[0]["lr"],
        }  # fmt: skip
        best = end_epoch(out_dir, "lipnet.pt", record, metrics, best, model, optimizer, config,
                         log=log, family="lipnet")  # fmt: skip
        remaining = max_minutes * 60 - (time.monotonic() - start)
        if out_of_time or remaining < 0.5 * epoch_seconds[-1]:
            break
    return best


def begin_run(out_dir: Path, threads: int, resume: bool) -> tuple[dict | None, float]:
    """Start a lip-reader run (LipNet and the ResNet/BiGRU reader share this): ``threads``
    torch threads, deterministic algorithms, ``out_dir`` created.

    Returns:
        ``out_dir/state.pt`` as saved by :func:`end_epoch` when ``resume`` and it exists (else
        None), and the start time (``time.monotonic()``) for the run's time limit.
    """
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True)
    out_dir.mkdir(parents=True, exist_ok=True)
    start = time.monotonic()
    state_path = out_dir / "state.pt"
    state = torch.load(state_path, weights_only=False) if resume and state_path.is_file() else None
    return state, start


def end_epoch(
    out_dir: Path,
    weights: str,
    record: dict,
    metrics: dict[str, float],
    best: dict[str, float],
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    config: Any,
    *,
    log: bool,
    family: str | None = None,
) -> dict[str, float]:
    """Close an epoch of a lip-reader run (LipNet and the ResNet/BiGRU reader share this).

    Keeps the weights as ``out_dir/weights`` (+ config JSON) when the validation CER improved:
    an avtool checkpoint of ``family`` (:mod:`avtool.models.checkpoint`; both readers pass
    theirs), or a bare state dict when None,
    appends ``record`` to ``log.jsonl`` (and prints it with ``log``) and checkpoints model,
    optimizer, epoch and best metrics in ``state.pt`` for ``--resume``.

    Returns:
        The best metrics so far (``metrics`` plus ``epoch`` when they improved).
    """
    epoch = record["epoch"]
    if metrics["cer"] < best["cer"]:
        best = {**metrics, "epoch": epoch}
        state_dict.save(model.state_dict(), config.to_json(), out_dir / weights, family=family)
    with open(out_dir / "log.jsonl", "a", encoding="utf-8") as handle:
        handle.write(json.dumps(record) + "\n")
    if log:
        print(json.dumps(record), flush=True)
    state_dict.save_atomic(
        {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "epoch": epoch,
         "best": best, "config": config.to_dict()},
        out_dir / "state.pt",
    )  # fmt: skip
    return best


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: see the module docstring."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_flags(parser, cache=REQUIRED, out=REQUIRED)
    parser.add_argument("--config", default="reduced", help="paper, reduced or debug")
    shared = ("max_minutes", "epochs", "batch_size", "lr", "seed", "threads", "limit")
    add_flags(parser, **defaults_of(train, *shared))
    parser.add_argument(
        "--word-prob", type=float, default=defaults_of(train, "word_prob")["word_prob"]
    )
    parser.add_argument("--resume", action="store_true")
    args = parser.parse_args(argv)
    config = LipNetConfig.preset(args.config)
    print(json.dumps({"best": call_with_flags(train, args, args.cache, args.out, config=config)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
