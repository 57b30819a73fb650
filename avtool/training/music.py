"""Train and evaluate the symbolic music families on the Bach chorales.

Data: :func:`avtool.datasets.chorales.load_chorales` and its fixed train/valid/test split. Training
pieces are augmented with every transposition of up to ``max_shift`` semitones that keeps
all voices in range (:func:`avtool.datasets.chorales.augment`, about 7 copies per chorale); the
valid and test pieces are scored as written. All figures are negative log-likelihood in nats
per voice token (S, A, T and B of every sixteenth step; BOS, key and EOS are not scored),
micro-averaged over the pieces.

* ``markov``: counts the n-grams of the augmented training pieces (about a second per
  order), and keeps the order and absolute discount (:data:`MARKOV_ORDERS` x
  :data:`MARKOV_DISCOUNTS`) with the lowest valid NLL.
* ``lstm`` and ``transformer``: AdamW on random crops (``BOS KEY`` + ``crop_steps`` steps
  from anywhere in a piece; the Transformer's crops fill its attention window). The learning
  rate warms up linearly, then follows a cosine down to a tenth over the run's progress
  (the larger of the elapsed share of ``minutes`` and of ``max_steps``, so a fixed budget
  is used to the end), and is halved whenever the valid NLL (scored every ``eval_every``
  updates on whole pieces) fails to improve. Training stops after ``patience`` such
  evaluations in a row, at ``max_steps``, or when ``minutes`` run out; the weights with the
  best valid NLL are kept (early stopping).

Output folder (``--out``):

* ``music_markov.npz`` / ``music_lstm.pt`` / ``music_transformer.pt``: the model
  (``{"format", "config", "state_dict", "vocab"}`` for the neural ones);
* ``music_<family>.train.json``: configs, data sizes, the training curve (updates, seconds,
  train loss, valid NLL, learning rate), best valid and final test NLL, library versions;
* ``eval.json`` (``--eval``): test and valid NLL of every model in the folder, scored in one
  run on the same split, plus statistics of pieces each model samples (16 bars, temperature
  1, each in the key of a test chorale; as sampled, and with ``avoid_parallels``) against the
  test chorales (:func:`avtool.metrics.music.compare`), and the time to load a model and sample
  16 bars.

    python -m avtool.training.music --family lstm --preset small --out weights-music \\
        --minutes 5 --seed 0
    python -m avtool.training.music --eval --out weights-music
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import math
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from avtool.datasets.chorales import VOICES, augment, load_chorales, split
from avtool.errors import InputError
from avtool.metrics.music import compare
from avtool.models import checkpoint
from avtool.models.music import lstm as music_lstm
from avtool.models.music import markov as music_markov
from avtool.models.music import transformer as music_transformer
from avtool.models.music.generate import FAMILIES, Score, generate, load_model
from avtool.models.music.options import SamplingOptions
from avtool.models.music.tokens import (
    COND_VOICE,
    NO_BEAT,
    NO_VOICE,
    PAD,
    PREFIX_LENGTH,
    encode,
    parse_time_signature,
    vocabulary,
)
from avtool.runtime import versions, write_json
from avtool.training.command import REQUIRED, add_flags, call_with_flags, run_command

__all__ = [
    "CHECKPOINT_NAMES",
    "LEARNING_RATES",
    "MARKOV_DISCOUNTS",
    "MARKOV_ORDERS",
    "TrainConfig",
    "evaluate",
    "load_data",
    "main",
    "score",
    "train",
]

log = logging.getLogger(__name__)

#: File name of each family's model in the output folder.
CHECKPOINT_NAMES = {
    "markov": "music_markov.npz",
    "lstm": "music_lstm.pt",
    "transformer": "music_transformer.pt",
}
#: Orders and absolute discounts tried for the Markov model (the best on valid is kept).
MARKOV_ORDERS = (1, 2, 3, 4)
MARKOV_DISCOUNTS = (0.5, 0.6, 0.7, 0.8, 0.9)
#: Bars sampled per piece by ``--eval`` (the length ``avtool music`` makes by default).
EVAL_BARS = 16
#: Peak learning rate of each neural family (measured best of a few in 4-minute CPU runs).
LEARNING_RATES = MappingProxyType({"lstm": 4e-3, "transformer": 3e-3})
#: The cosine schedule ends at this fraction of the peak learning rate.
FINAL_LR_FRACTION = 0.1

Piece = tuple[np.ndarray, np.ndarray]  # tokens (N,), cond (N, COND_SIZE)


@dataclass(frozen=True)
class TrainConfig:
    """One training run.

    Attributes:
        family: ``"markov"``, ``"lstm"`` or ``"transformer"``.
        preset: the family's architecture preset (``small`` or ``debug``).
        minutes: wall-clock budget for the updates (evaluation included).
        seed: seeds torch and the crop sampler.
        batch_size: crops per update.
        crop_steps: sixteenth steps per crop; None for the family's choice (the
            Transformer's window, 64 steps for the LSTM).
        learning_rate: peak AdamW learning rate; None for the family's
            (:data:`LEARNING_RATES`).
        weight_decay: AdamW weight decay.
        warmup_steps: updates of linear learning-rate warm-up.
        eval_every: updates between valid-NLL evaluations.
        patience: evaluations without improvement before stopping.
        max_steps: most updates.
        max_shift: largest transposition of the augmentation, in semitones.
        grad_clip: gradient-norm clipping.
        device: ``"cpu"`` or ``"cuda"``.
    """

    family: str
    preset: str = "small"
    minutes: float = 5.0
    seed: int = 0
    batch_size: int = 16
    crop_steps: int | None = None
    learning_rate: float | None = None
    weight_decay: float = 0.01
    warmup_steps: int = 50
    eval_every: int = 50
    patience: int = 4
    max_steps: int = 100_000
    max_shift: int = 6
    grad_clip: float = 1.0
    device: str = "cpu"

    def __post_init__(self) -> None:
        if self.family not in FAMILIES:
            raise InputError(f"unknown family {self.family!r} (known: {', '.join(FAMILIES)})")
        if self.minutes <= 0 or self.batch_size < 1 or self.eval_every < 1:
            raise InputError("minutes, batch_size and eval_every must be positive")


# --------------------------------------------------------------------------- data


def load_data(cache: Path | None = None, max_shift: int = 6) -> dict[str, Any]:
    """Encoded pieces of every split: ``{"train", "valid", "test"}`` lists of ``(tokens,
    cond)`` (train augmented), plus ``"names"`` (chorale names per split) and ``"chorales"``
    (the unaugmented :class:`Chorale` objects per split)."""
    chorales = split(load_chorales(cache))
    data: dict[str, Any] = {"names": {}, "chorales": chorales}
    for name, pieces in chorales.items():
        copies = [t for c in pieces for t in augment(c, max_shift)] if name == "train" else pieces
        data[name] = [encode(c) for c in copies]
        data["names"][name] = [c.name for c in pieces]
    return data


def score(model: Any, pieces: Sequence[Piece]) -> dict[str, Any]:
    """Held-out negative log-likelihood per voice token, in nats.

    Args:
        model: any family (``model.log_probs(tokens, cond)``).
        pieces: encoded pieces.

    Returns:
        ``{"nll": mean over all voice tokens, "tokens": count, "per_voice": {name: nll}}``.
    """
    total = np.zeros(len(VOICES))
    counts = np.zeros(len(VOICES))
    for tokens, cond in pieces:
        logp = model.log_probs(tokens, cond)
        voice = cond[:, COND_VOICE]
        for v in range(len(VOICES)):
            picked = logp[voice == v]
            total[v] -= picked.sum()
            counts[v] += picked.size
    return {
        "nll": float(total.sum() / max(counts.sum(), 1)),
        "tokens": int(counts.sum()),
        "per_voice": {
            name: float(t / max(c, 1)) for name, t, c in zip(VOICES, total, counts, strict=True)
        },
    }


def _crop_batch(
    pieces: Sequence[Piece], rng: np.random.Generator, batch_size: int, crop_steps: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """``BOS KEY`` + ``crop_steps`` steps from random places: ``(B, L)``, ``(B, L, k)``.

    Pieces are drawn in proportion to their number of possible crops, so every step of the
    training data is about equally likely to be seen.
    """
    width = PREFIX_LENGTH + 4 * crop_steps
    steps = np.array([(t.size - PREFIX_LENGTH - 1) // 4 for t, _ in pieces])
    weights = np.maximum(steps - crop_steps, 0) + 1.0
    chosen = rng.choice(len(pieces), size=batch_size, p=weights / weights.sum())
    tokens = np.full((batch_size, width), PAD, dtype=np.int64)
    cond = np.zeros((batch_size, width, pieces[0][1].shape[1]), dtype=np.int64)
    cond[:, :, 0], cond[:, :, COND_VOICE] = NO_BEAT, NO_VOICE
    for row, index in enumerate(chosen):
        piece_tokens, piece_cond = pieces[index]
        start = PREFIX_LENGTH + 4 * int(rng.integers(0, max(steps[index] - crop_steps, 0) + 1))
        body = slice(start, min(start + 4 * crop_steps, piece_tokens.size - 1))  # no EOS
        length = PREFIX_LENGTH + body.stop - body.start
        tokens[row, :PREFIX_LENGTH] = piece_tokens[:PREFIX_LENGTH]
        tokens[row, PREFIX_LENGTH:length] = piece_tokens[body]
        cond[row, :PREFIX_LENGTH] = piece_cond[:PREFIX_LENGTH]
        cond[row, PREFIX_LENGTH:length] = piece_cond[body]
    return torch.from_numpy(tokens), torch.from_numpy(cond)


# --------------------------------------------------------------------------- training


def _build(config: TrainConfig) -> torch.nn.Module:
    if config.family == "lstm":
        return music_lstm.build(music_lstm.MusicLSTMConfig.preset(config.preset))

    return music_transformer.build(music_transformer.MusicTransformerConfig.preset(config.preset))


def _train_markov(config: TrainConfig, data: dict[str, Any], out: Path) -> dict[str, Any]:
    start = time.monotonic()
    # The debug preset keeps its order; otherwise the order is selected on valid too.
    base = music_markov.MarkovConfig.preset(config.preset)
    orders = (base.order,) if config.preset == "debug" else MARKOV_ORDERS
    curve, best, best_model = [], None, None
    for order in orders:
        model = music_markov.fit(data["train"], replace(base, order=order))
        for discount in MARKOV_DISCOUNTS:
            model.config = replace(model.config, discount=discount)
            row = {"order": order, "discount": discount}
            row["valid_nll"] = score(model, data["valid"])["nll"]
            curve.append(row)
            if best is None or row["valid_nll"] < best["valid_nll"]:
                best, best_model = row, model
    model = best_model
    model.config = replace(model.config, discount=best["discount"])
    fit_seconds = time.monotonic() - start
    path = music_markov.save(model, out / CHECKPOINT_NAMES["markov"])
    return {
        "model_config": asdict(model.config),
        "entries": model.num_entries(),
        "fit_seconds": round(fit_seconds, 2),
        "curve": curve,
        "best_valid_nll": best["valid_nll"],
        "path": str(path),
    }


def _train_neural(
    config: TrainConfig,
    data: dict[str, Any],
    out: Path,
    progress: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    device = torch.device(config.device)
    model = _build(config).to(device)
    crop_steps = config.crop_steps
    if crop_steps is None:
        window = getattr(model.config, "window", None)
        crop_steps = window // 4 if window else 64
    peak_lr = config.learning_rate or LEARNING_RATES[config.family]
    optimizer = torch.optim.AdamW(
        model.parameters(),
        lr=peak_lr,
        betas=(0.9, 0.98),
        weight_decay=config.weight_decay,
    )
    curve: list[dict[str, Any]] = []
    best_nll, best_state, best_step, bad = math.inf, None, 0, 0
    factor, losses = 1.0, []
    start = time.monotonic()
    step = 0
    while True:
        tokens, cond = _crop_batch(data["train"], rng, config.batch_size, crop_steps)
        tokens, cond = tokens.to(device), cond.to(device)
        targets = tokens[:, 1:].clone()
        targets[:, 0] = PAD  # the key token is given, never predicted
        model.train()
        logits = model(tokens[:, :-1], cond[:, 1:])
        logits = logits[0] if isinstance(logits, tuple) else logits
        loss = F.cross_entropy(
            logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), ignore_index=PAD
        )
        elapsed = time.monotonic() - start
        done = min(1.0, max(elapsed / (config.minutes * 60), step / config.max_steps))
        cosine = 0.5 * (1 + math.cos(math.pi * done))
        cosine = FINAL_LR_FRACTION + (1 - FINAL_LR_FRACTION) * cosine
        lr = peak_lr * factor * cosine * min(1.0, (step + 1) / config.warmup_steps)
        for group in optimizer.param_groups:
            group["lr"] = lr
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        optimizer.step()
        losses.append(loss.item())
        step += 1
        out_of_time = time.monotonic() - start > config.minutes * 60
        if step % config.eval_every and not out_of_time and step < config.max_steps:
            continue
        model.eval()
        valid = score(model, data["valid"])["nll"]
        row = {
            "step": step,
            "seconds": round(time.monotonic() - start, 1),
            "train_loss": float(np.mean(losses)),
            "valid_nll": valid,
            "lr": lr,
        }
        curve.append(row)
        losses = []
        if progress is not None:
            progress(row)
        if valid < best_nll - 1e-4:
            best_nll, best_step, bad = valid, step, 0
            best_state = copy.deepcopy(model.state_dict())
        else:
            bad += 1
            factor *= 0.5
        if bad >= config.patience or out_of_time or step >= config.max_steps:
            break
    model.load_state_dict(best_state)
    model.eval()
    path = out / CHECKPOINT_NAMES[config.family]
    checkpoint.save(
        path, f"music_{config.family}", asdict(model.config), model.cpu().state_dict(),
        {"vocab": vocabulary()},
    )  # fmt: skip
    return {
        "model_config": asdict(model.config),
        "parameters": sum(p.numel() for p in model.parameters()),
        "crop_steps": crop_steps,
        "steps": step,
        "best_step": best_step,
        "best_valid_nll": best_nll,
        "stopped": "patience" if bad >= config.patience else "time or max_steps",
        "curve": curve,
        "path": str(path),
    }


def train(
    config: TrainConfig,
    out: Path,
    *,
    cache: Path | None = None,
    data: dict[str, Any] | None = None,
    progress: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Train one family, save it in ``out`` and write ``music_<family>.train.json``.

    Args:
        config: what to train.
        out: output folder (created).
        cache: chorale cache folder for :func:`load_chorales`.
        data: :func:`load_data` output, to share one load between runs.
        progress: called with every training-curve row.

    Returns:
        The record written to the JSON file.
    """
    out.mkdir(parents=True, exist_ok=True)
    data = data or load_data(cache, config.max_shift)
    if config.family == "markov":
        result = _train_markov(config, data, out)
    else:
        result = _train_neural(config, data, out, progress)
    model = load_model(out / CHECKPOINT_NAMES[config.family], config.family)
    record = {
        "family": config.family,
        "train_config": asdict(config),
        **result,
        "test": score(model, data["test"]),
        "data": {
            split_name: {"chorales": len(data["names"][split_name]), "pieces": len(pieces)}
            for split_name, pieces in ((s, data[s]) for s in ("train", "valid", "test"))
        },
        "versions": versions(),
    }
    write_json(out / f"music_{config.family}.train.json", record)
    return record


# --------------------------------------------------------------------------- evaluation


def _generation_stats(
    model: Any, chorales: Sequence[Any], count: int, seed: int, avoid_parallels: bool = False
) -> tuple[list[np.ndarray], list[int]]:
    """``count`` 16-bar 4/4 pieces, each in the key of a test chorale (cycled)."""
    pieces, tonics = [], []
    steps = EVAL_BARS * parse_time_signature("4/4")
    for index in range(count):
        chorale = chorales[index % len(chorales)]
        score = Score(chorale.key_tonic, chorale.mode, steps)
        sampling = SamplingOptions(seed=seed + index, avoid_parallels=avoid_parallels)
        voices = generate(model, score, sampling)
        pieces.append(voices)
        tonics.append(chorale.key_tonic)
    return pieces, tonics


def evaluate(
    out: Path, *, cache: Path | None = None, pieces: int = 20, seed: int = 0
) -> dict[str, Any]:
    """Score every model in ``out`` on the same split in one run; write ``eval.json``.

    Args:
        out: folder holding the checkpoints (:data:`CHECKPOINT_NAMES`).
        cache: chorale cache folder.
        pieces: pieces each model samples for the statistics (0 skips them).
        seed: sampling seed of the first piece.

    Returns:
        ``{"split", "models": {family: {"test", "valid", "file_bytes", "generation"}}}``.

    Raises:
        InputError: no checkpoint in ``out``.
    """
    found = {f: out / name for f, name in CHECKPOINT_NAMES.items() if (out / name).is_file()}
    if not found:
        raise InputError(f"{out}: no music checkpoints ({', '.join(CHECKPOINT_NAMES.values())})")
    data = load_data(cache, max_shift=0)  # the training copies are not needed here
    test_chorales = data["chorales"]["test"]
    reference = [c.voices for c in test_chorales]
    result: dict[str, Any] = {
        "unit": "nats per voice token (S, A, T, B of each sixteenth step)",
        "split": {name: len(data["names"][name]) for name in ("train", "valid", "test")},
        "test_tokens": score_tokens(data["test"]),
        "models": {},
        "versions": versions(),
    }
    for family, path in found.items():
        start = time.perf_counter()
        model = load_model(path, family)
        steps = EVAL_BARS * parse_time_signature("4/4")
        generate(model, Score(7, "major", steps), SamplingOptions(seed=seed))
        seconds = time.perf_counter() - start
        entry: dict[str, Any] = {
            "file": path.name,
            "file_bytes": path.stat().st_size,
            "test": score(model, data["test"]),
            "valid": score(model, data["valid"]),
            "seconds_load_and_sample_16_bars": round(seconds, 3),
        }
        if isinstance(model, torch.nn.Module):
            entry["parameters"] = sum(p.numel() for p in model.parameters())
        for name, avoid in (("generation", False), ("generation_avoid_parallels", True)):
            if not pieces:
                break
            sampled, tonics = _generation_stats(model, test_chorales, pieces, seed, avoid)
            entry[name] = compare(
                sampled,
                reference,
                generated_tonics=tonics,
                reference_tonics=[c.key_tonic for c in test_chorales],
            )
        result["models"][family] = entry
        log.info("%s: test NLL %.4f", family, entry["test"]["nll"])
    write_json(out / "eval.json", result)
    return result


def score_tokens(pieces: Sequence[Piece]) -> int:
    """Number of voice tokens (the NLL denominator) in encoded pieces."""
    return int(sum(np.sum(cond[:, COND_VOICE] != NO_VOICE) for _, cond in pieces))


def _table(result: dict[str, Any]) -> str:
    """The NLL table and sample statistics of :func:`evaluate` as text."""
    header = (
        f"{'model':<12} {'test NLL':>8} {'valid':>7} {'/markov':>7} {'MB':>5} {'s/16bar':>7} "
        f"{'valid%':>6} {'pc JS':>6} {'int JS':>6} {'par/bar':>7} {'(avoid)':>7}"
    )
    lines = [header]
    base = result["models"].get("markov", {}).get("test", {}).get("nll")
    reference = None
    for family, entry in result["models"].items():
        nll = entry["test"]["nll"]
        ratio = f"{nll / base:7.3f}" if base else f"{'-':>7}"
        line = (
            f"{family:<12} {nll:8.4f} {entry['valid']['nll']:7.4f} {ratio} "
            f"{entry['file_bytes'] / 1e6:5.2f} {entry['seconds_load_and_sample_16_bars']:7.2f}"
        )
        stats, avoided = entry.get("generation"), entry.get("generation_avoid_parallels")
        if stats and avoided:
            reference = stats["reference"]
            line += (
                f" {100 * stats['generated']['valid_fraction']:6.0f}"
                f" {stats['pitch_class']['js']:6.3f} {stats['interval']['js']:6.3f}"
                f" {stats['generated']['parallels_per_bar']['total']:7.3f}"
                f" {avoided['generated']['parallels_per_bar']['total']:7.3f}"
            )
        lines.append(line)
    if reference:
        lines.append(
            f"{'Bach (test)':<12} {'':>8} {'':>7} {'':>7} {'':>5} {'':>7} "
            f"{100 * reference['valid_fraction']:6.0f} {0:6.3f} {0:6.3f} "
            f"{reference['parallels_per_bar']['total']:7.3f}"
        )
    lines.append(f"NLL in {result['unit']}; {result['test_tokens']} test tokens")
    return "\n".join(lines)


# --------------------------------------------------------------------------- command line


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m avtool.training.music``; see the module docstring."""
    parser = argparse.ArgumentParser(
        prog="python -m avtool.training.music", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--family", choices=FAMILIES, help="what to train")
    parser.add_argument("--preset", default=TrainConfig.preset)
    add_flags(parser, out=REQUIRED)
    parser.add_argument("--minutes", type=float, default=TrainConfig.minutes)
    add_flags(parser, seed=TrainConfig.seed, batch_size=TrainConfig.batch_size)
    parser.add_argument("--lr", type=float, help="peak learning rate (default: the family's)")
    parser.add_argument("--eval-every", type=int, default=TrainConfig.eval_every)
    parser.add_argument("--max-steps", type=int, default=TrainConfig.max_steps)
    add_flags(parser, device=TrainConfig.device, threads=None)
    parser.add_argument("--cache", type=Path, help="chorale cache folder")
    parser.add_argument("--eval", action="store_true", help="score every model in --out")
    parser.add_argument("--pieces", type=int, default=20, help="--eval: pieces per model")
    args = parser.parse_args(argv)

    def work() -> None:
        if args.eval:
            result = evaluate(args.out, cache=args.cache, pieces=args.pieces, seed=args.seed)
            print(_table(result))
            return
        if args.family is None:
            parser.error("give --family (or --eval)")
        config = call_with_flags(TrainConfig, args, learning_rate=args.lr)
        record = train(
            config, args.out, cache=args.cache, progress=lambda row: log.info(json.dumps(row))
        )
        log.info(
            "%s: best valid NLL %.4f, test NLL %.4f",
            args.family,
            record["best_valid_nll"],
            record["test"]["nll"],
        )

    return run_command(work, threads=args.threads)


if __name__ == "__main__":
    sys.exit(main())
