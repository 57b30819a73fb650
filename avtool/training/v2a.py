"""Train V2A (stage ``v2a``) and AV2A (stage ``av2a``) on a cache of :mod:`avtool.datasets.grid`.

    python -m avtool.training.v2a --cache data/grid_s1_cache --out runs/v2a \\
        --config reduced --epochs 24 --max-minutes 35
    python -m avtool.training.v2a --cache data/grid_s1_cache --out runs/av2a \\
        --stage av2a --init runs/v2a/best.pt --epochs 6 --max-minutes 10

The train/val split is :func:`avtool.datasets.grid.s1_split` (the test ids are never read).
The loss is L1 between normalised log mels (plus an optional spectral-convergence term on the
linear mel), masked to each clip's true length. Training is deterministic for a given seed and
thread count (shuffles and noise come from seeded generators) and resumable: ``last.pt`` holds
model, optimiser, epoch and best val loss, and a rerun with the same ``--out`` continues from it.
``best.pt`` (an avtool checkpoint, :func:`avtool.models.v2a.save_checkpoint`: weights and config
in one file) and ``config.json`` (the same config, where :mod:`avtool.tasks.calibrate_v2a` writes
the calibrated ``output_advance`` and recipes copy it from) are written whenever the val loss
improves. ``--init`` reads any V2A layout (:func:`avtool.models.v2a.read_checkpoint`).

AV2A: the model gains an audio encoder; each step uses one modality combination (modality
dropout: video 25%, audio 25%, both 50%) and its own batch-norm statistics; the noisy input is
the clip's audio plus white noise at a random SNR (-5..20 dB), sometimes with a silenced gap
(inpainting).
"""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from avtool.datasets.grid import s1_split
from avtool.errors import InputError
from avtool.io.features import MelSpec, mel_spectrogram
from avtool.models.state_dict import save_atomic
from avtool.models.v2a import read_checkpoint, save_checkpoint
from avtool.models.v2a.model import AUDIO, BOTH, VIDEO, V2AConfig, V2AModel, build
from avtool.models.visual import LIP_DIM, lip_features, prepare_crops
from avtool.training.command import REQUIRED, RunLog, add_flags, run_command

MODE_PROBS = (0.25, 0.25, 0.5)  # video, audio, both
#: State-dict prefixes a ``--init`` checkpoint may lack (input streams added after it was trained).
NEW_MODULES = ("lips.",)


def load_split(
    cache: Path, ids: Sequence[str], crop_size: int, *, with_audio: bool, with_lips: bool = False
) -> list[dict[str, Any]]:
    """Cache items as tensors: ``crops`` (T, S, S) float16, ``mel`` (80, F), ``audio`` (N,)
    (``with_audio``), ``landmarks`` (T, 68, 2) float32 pixels (``with_lips``).

    Items missing from the cache are skipped (the caller reports the count).
    """
    items = []
    for clip_id in ids:
        path = cache / f"{clip_id}.npz"
        if not path.is_file():
            continue
        with np.load(path) as data:
            crops = prepare_crops(torch.from_numpy(data["gray88"])[None], crop_size)[0]
            item = {"id": clip_id, "crops": crops.half(), "mel": torch.from_numpy(data["mel"])}
            if with_lips:
                item["landmarks"] = torch.from_numpy(data["landmarks"].astype(np.float32))
            if with_audio:
                item["audio"] = torch.from_numpy(data["audio"].astype(np.float32) / 32768.0)
        items.append(item)
    return items


def mel_stats(items: list[dict[str, Any]]) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-band mean and std ``(n_mels,)`` over all frames of the items."""
    mels = torch.cat([it["mel"] for it in items], dim=1)
    return mels.mean(dim=1), mels.std(dim=1).clamp_min(1e-3)


def lip_stats(items: list[dict[str, Any]]) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-coordinate mean and std ``(40,)`` of the lip features over all frames of the items."""
    feats = torch.cat([lip_features(it["landmarks"]) for it in items])
    return feats.mean(dim=0), feats.std(dim=0).clamp_min(1e-4)


def noisy_mels(
    batch: list[dict[str, Any]], generator: torch.Generator, snr_range: tuple[float, float]
) -> list[torch.Tensor]:
    """Log mels of each clip's audio plus white noise at a random SNR; 30% get a silenced gap."""
    spec = MelSpec.hifigan_22k()
    out = []
    for item in batch:
        audio = item["audio"]
        snr = snr_range[0] + (snr_range[1] - snr_range[0]) * torch.rand((), generator=generator)
        noisy = add_noise(audio, float(snr), generator)
        if torch.rand((), generator=generator) < 0.3:
            length = int(spec.sample_rate * (0.3 + 0.7 * torch.rand((), generator=generator)))
            start = int(torch.randint(0, max(1, audio.numel() - length), (), generator=generator))
            noisy[start : start + length] = 0.0
        mel = mel_spectrogram(noisy, spec)[0]
        out.append(mel[:, : item["mel"].shape[1]])
    return out


def add_noise(audio: torch.Tensor, snr_db: float, generator: torch.Generator) -> torch.Tensor:
    """``audio`` (N,) plus white Gaussian noise scaled to ``snr_db`` against the speech power."""
    noise = torch.randn(audio.shape, generator=generator)
    power = audio.pow(2).mean().clamp_min(1e-10)
    noise = noise * torch.sqrt(power / (10 ** (snr_db / 10)) / noise.pow(2).mean())
    return audio + noise


def collate(batch: list[dict[str, Any]], flip: torch.Tensor | None = None):
    """Pad a batch: crops ``(B, T, S, S)``, mels ``(B, 80, F)``, mask ``(B, 1, F)``, F, lip
    features ``(B, T, 40)`` mirrored with the crops (None when the items have no landmarks)."""
    t_max = max(it["crops"].shape[0] for it in batch)
    f_max = max(it["mel"].shape[1] for it in batch)
    crops = torch.zeros(len(batch), t_max, *batch[0]["crops"].shape[1:])
    lips = torch.zeros(len(batch), t_max, LIP_DIM) if "landmarks" in batch[0] else None
    mels = torch.zeros(len(batch), batch[0]["mel"].shape[0], f_max)
    mask = torch.zeros(len(batch), 1, f_max)
    for i, it in enumerate(batch):
        c = it["crops"].float()
        mirror = bool(flip is not None and flip[i])
        if mirror:
            c = c.flip(-1)  # mirror: mouths are near-symmetric, a cheap augmentation
        crops[i, : c.shape[0]] = c
        if lips is not None:
            lips[i, : c.shape[0]] = lip_features(it["landmarks"], mirror=mirror)
        mels[i, :, : it["mel"].shape[1]] = it["mel"]
        mask[i, :, : it["mel"].shape[1]] = 1.0
    return crops, mels, mask, f_max, lips


def pad_mels(mels: list[torch.Tensor], f_max: int) -> torch.Tensor:
    """Stack ``(80, F_i)`` log mels padded (with the log floor) to ``(B, 80, f_max)``."""
    out = torch.full((len(mels), mels[0].shape[0], f_max), math.log(1e-5))
    for i, m in enumerate(mels):
        out[i, :, : m.shape[1]] = m
    return out


def loss_fn(
    model: V2AModel,
    pred: torch.Tensor,
    target: torch.Tensor,
    mask: torch.Tensor,
    sc: float,
    delta: float = 0.0,
) -> torch.Tensor:
    """Masked L1 on normalised log mels (+ ``sc`` x spectral convergence on linear mels, +
    ``delta`` x L1 of the frame-to-frame differences, which penalises over-smoothed onsets)."""
    norm_p, norm_t = model.normalise(pred), model.normalise(target)
    diff = (norm_p - norm_t).abs() * mask
    loss = diff.sum() / (mask.sum() * pred.shape[1])
    if delta > 0:
        pair = mask[..., 1:] * mask[..., :-1]
        d = (norm_p.diff(dim=-1) - norm_t.diff(dim=-1)).abs() * pair
        loss = loss + delta * d.sum() / (pair.sum().clamp_min(1) * pred.shape[1])
    if sc > 0:
        lin_p, lin_t = pred.exp() * mask, target.exp() * mask
        loss = loss + sc * (torch.linalg.norm(lin_t - lin_p) / torch.linalg.norm(lin_t))
    return loss


@torch.no_grad()
def evaluate(
    model: V2AModel, items: list[dict[str, Any]], stage: str, batch_size: int, seed: int
) -> float:
    """Mean masked L1 (log-mel units) on ``items``; AV2A: mean of video-only and both at 0..5 dB."""
    model.eval()
    total, count = 0.0, 0
    modes = (VIDEO, BOTH) if stage == "av2a" else (VIDEO,)
    for mode in modes:
        generator = torch.Generator().manual_seed(seed)
        for start in range(0, len(items), batch_size):
            batch = items[start : start + batch_size]
            crops, mels, mask, f_max, lips = collate(batch)
            noisy = None
            if mode != VIDEO:
                noisy = pad_mels(noisy_mels(batch, generator, (0.0, 5.0)), f_max)
            pred = model(crops, f_max, noisy, mode, lips)
            total += float(((pred - mels).abs() * mask).sum() / pred.shape[1])
            count += int(mask.sum())
    model.train()
    return total / count


def start_av2a(model: V2AModel, state: dict[str, torch.Tensor], source: object) -> None:
    """Load trained V2A weights into an AV2A ``model`` (only its ``audio.*`` may be missing)
    and start the audio and both-modality batch-norm statistics from the video ones.

    Raises:
        SystemExit: the weights do not fit (naming ``source``).
    """
    missing, unexpected = model.load_state_dict(state, strict=False)
    if unexpected or any(not k.startswith("audio.") for k in missing):
        raise SystemExit(f"{source}: does not match the config ({missing}, {unexpected})")
    for module in model.modules():
        if hasattr(module, "copy_stats"):
            module.copy_stats(VIDEO, (AUDIO, BOTH))


def cache_parser(description: str | None) -> argparse.ArgumentParser:
    """The command line of a trainer over a GRID cache: ``--cache`` and ``--out`` (required)."""
    p = argparse.ArgumentParser(
        description=description, formatter_class=argparse.RawTextHelpFormatter
    )
    return add_flags(p, cache=REQUIRED, out=REQUIRED)


def require_clips(cache: Path, **splits: Sequence[Any]) -> None:
    """Refuse to train when a split has no usable clip.

    Args:
        cache: the GRID cache folder (named in the error).
        **splits: ``name=items`` of each split (``train=..., val=...``).

    Raises:
        InputError: naming the cache and the empty splits.
    """
    empty = [name for name, items in splits.items() if not items]
    if empty:
        raise InputError(f"{cache}: no usable cached clips for the {' and '.join(empty)} split")


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point (see the module docstring)."""
    p = cache_parser(__doc__)
    p.add_argument("--config", default="reduced", help="paper, reduced or debug")
    p.add_argument("--stage", choices=("v2a", "av2a"), default="v2a")
    p.add_argument(
        "--init", type=Path, help="V2A state dict to start from (AV2A: required; V2A: warm restart)"
    )
    add_flags(p, epochs=24, max_minutes=35.0, batch_size=8, lr=1.5e-3)
    p.add_argument("--sc-weight", type=float, default=0.0, help="spectral convergence weight")
    p.add_argument(
        "--delta-weight",
        type=float,
        default=0.0,
        help="weight of the L1 on frame-to-frame mel differences",
    )
    p.add_argument(
        "--lip-landmarks", action="store_true", help="add the lip-landmark input stream (V2A stage)"
    )
    add_flags(p, seed=0, threads=1, limit=None)
    p.add_argument("--stop-after", type=int, help="stop after N epochs in this run (resumable)")
    args = p.parse_args(argv)
    if args.stage == "av2a" and args.init is None:
        p.error("--stage av2a needs --init (the trained V2A weights)")
    return run_command(lambda: _train(args), threads=args.threads)


def _train(args: argparse.Namespace) -> int:
    """One stage's bounded, resumable training run (the options of :func:`main`)."""
    torch.manual_seed(args.seed)
    args.out.mkdir(parents=True, exist_ok=True)
    log = RunLog(args.out / "train.log")
    av = args.stage == "av2a"
    base = V2AConfig.preset(args.config)
    init = read_checkpoint(args.init) if args.init is not None else None
    if av and init is not None and init.config:
        base = V2AConfig.from_dict(init.config)
    config = V2AConfig.from_dict({**base.to_dict(), "audio_encoder": av})
    if args.lip_landmarks:
        config = V2AConfig.from_dict({**config.to_dict(), "lip_landmarks": True})
    split = s1_split()
    train_ids = split["train"][: args.limit]
    lips_in = config.lip_landmarks
    train = load_split(args.cache, train_ids, config.crop_size, with_audio=av, with_lips=lips_in)
    val = load_split(args.cache, split["val"], config.crop_size, with_audio=av, with_lips=lips_in)
    log(f"stage {args.stage}: {len(train)}/{len(train_ids)} train, {len(val)}/{len(split['val'])} "
        f"val clips from {args.cache}; config {config.to_dict()}")  # fmt: skip
    require_clips(args.cache, train=train, val=val)

    model = build(config)
    missing: list[str] = []
    if not av and init is not None:
        # Warm restart from trained V2A weights; the mel statistics come with them. Modules the
        # checkpoint lacks (a new input stream) keep their fresh initialisation.
        missing, unexpected = model.load_state_dict(init.state_dict, strict=False)
        if unexpected or any(not k.startswith(NEW_MODULES) for k in missing):
            raise SystemExit(f"{args.init}: does not match the config ({missing}, {unexpected})")
        log(f"initialised from {args.init} (fresh: {sorted(missing) or 'none'})")
    elif not av:
        mean, std = mel_stats(train)
        model.mel_mean.copy_(mean)
        model.mel_std.copy_(std)
    if model.lips is not None and (args.init is None or "lips.mean" in missing):
        mean, std = lip_stats(train)
        model.lips.mean.copy_(mean)
        model.lips.std.copy_(std)
    if av:
        start_av2a(model, init.state_dict, args.init)
    optimiser = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-2)
    steps_per_epoch = math.ceil(len(train) / args.batch_size)
    total_steps = steps_per_epoch * args.epochs
    warmup = min(200, total_steps // 10)

    def lr_at(step: int) -> float:
        if step < warmup:
            return args.lr * (step + 1) / warmup
        return args.lr * 0.5 * (1 + math.cos(math.pi * (step - warmup) / (total_steps - warmup)))

    epoch, best = 0, math.inf
    last_path = args.out / "last.pt"
    if last_path.is_file():
        ckpt = torch.load(last_path, map_location="cpu", weights_only=False)
        model.load_state_dict(ckpt["model"])
        optimiser.load_state_dict(ckpt["optimiser"])
        epoch, best = ckpt["epoch"], ckpt["best"]
        log(f"resumed from {last_path} after epoch {epoch} (best val {best:.4f})")
    (args.out / "config.json").write_text(config.to_json())

    model.train()
    stopped = False
    last_epoch = args.epochs if args.stop_after is None else epoch + args.stop_after
    last_epoch = min(last_epoch, args.epochs)
    while epoch < last_epoch and not stopped:
        # Per-epoch generators: a resumed run replays exactly the epochs it had not finished.
        generator = torch.Generator().manual_seed(args.seed * 1000 + epoch)
        torch.manual_seed(args.seed * 1000 + epoch)  # dropout draws from the global generator
        order = torch.randperm(len(train), generator=generator).tolist()
        epoch_loss, n = 0.0, 0
        for b in range(steps_per_epoch):
            step = epoch * steps_per_epoch + b
            for group in optimiser.param_groups:
                group["lr"] = lr_at(step)
            batch = [train[i] for i in order[b * args.batch_size : (b + 1) * args.batch_size]]
            flip = torch.rand(len(batch), generator=generator) < 0.5
            crops, mels, mask, f_max, lips = collate(batch, flip)
            mode, noisy = VIDEO, None
            if av:
                mode = int(torch.multinomial(torch.tensor(MODE_PROBS), 1, generator=generator))
                if mode != VIDEO:
                    noisy = pad_mels(noisy_mels(batch, generator, (-5.0, 20.0)), f_max)
            pred = model(crops, f_max, noisy, mode, lips)
            loss = loss_fn(model, pred, mels, mask, args.sc_weight, args.delta_weight)
            optimiser.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimiser.step()
            epoch_loss += float(loss.detach())
            n += 1
            if log.minutes > args.max_minutes:
                log(f"wall-clock limit ({args.max_minutes} min) reached in epoch {epoch + 1}")
                stopped = True
                break
        if stopped and n < steps_per_epoch:
            break  # a partial epoch is not checkpointed: resuming redoes it from its start
        epoch += 1
        val_loss = evaluate(model, val, args.stage, args.batch_size, args.seed)
        improved = val_loss < best
        if improved:
            best = val_loss
            save_checkpoint(args.out / "best.pt", model.state_dict(), config,
                            {"stage": args.stage, "epoch": epoch, "val_l1": best})  # fmt: skip
        save_atomic({"model": model.state_dict(), "optimiser": optimiser.state_dict(),
                     "epoch": epoch, "best": best}, last_path)  # fmt: skip
        log(f"epoch {epoch}/{args.epochs} train {epoch_loss / max(n, 1):.4f} val L1 {val_loss:.4f}"
            f"{' (best)' if improved else ''} lr {lr_at(step):.2e}")  # fmt: skip
    (args.out / "summary.json").write_text(json.dumps(
        {"stage": args.stage, "epochs": epoch, "best_val_l1": best, "train_clips": len(train),
         "val_clips": len(val), "minutes": round(log.minutes, 2),
         "threads": args.threads, "seed": args.seed, "config": config.to_dict(),
         "epochs_planned": args.epochs, "batch_size": args.batch_size, "lr": args.lr,
         "sc_weight": args.sc_weight, "delta_weight": args.delta_weight,
         "init": str(args.init) if args.init else None,
         "f_loss": "masked L1 on normalised log mel"},
        indent=1))  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
