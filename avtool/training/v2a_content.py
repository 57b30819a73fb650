"""Train the decoder of a content V2A model (:mod:`avtool.models.v2a.content`) on a GRID cache.

    python -m avtool.training.v2a_content --cache data/grid_s1_cache --out runs/v2a-content \\
        --acoustic runs/v2a-lips/best.pt --reader avtool/weights/lipread/lipread-grid-s1.pt

``--acoustic`` (a trained V2A model) and ``--reader`` (a trained lip reader) are registry names
or checkpoint files; both must have been trained on the same train split only, so the test
split stays unseen. They are frozen: their features for every train clip (and its mirror
image, the only augmentation) and every val clip are computed once, then the decoder trains
on them alone, which takes minutes on one CPU thread where the networks under it took hours.

The loss is V2A's: L1 between normalised log mels, masked to each clip's length. The best
epoch on the val split (mean L1 in log-mel units, comparable with ``train.py``'s) is written
as ``OUT/v2a.pt`` (the whole model: both parts and the decoder; an avtool checkpoint carrying
its config, :mod:`avtool.models.checkpoint`) + ``OUT/v2a.pt.json`` (the same config, where
calibration writes ``output_advance`` and recipes copy it from), with ``OUT/summary.json``.
Same cache, parts, seed and options → the same weights (one thread; shuffles and mirror choices
come from seeded generators).
"""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Sequence
from typing import Any

import torch

from avtool.datasets.grid import s1_split
from avtool.io.formats import DEFAULT_LIP_READER
from avtool.models import lipread_resnet, state_dict
from avtool.models.loading import load
from avtool.models.v2a.content import ContentV2A, ContentV2AConfig
from avtool.models.visual import lip_features
from avtool.training.command import RunLog, add_flags, run_command
from avtool.training.v2a import cache_parser, load_split, mel_stats, require_clips


def load_parts(acoustic: str, reader: str) -> tuple[Any, Any, dict[str, str]]:
    """The trained V2A model and lip reader (registry names or files) and their identities."""
    loaded = load(acoustic, task="v2a", device="cpu", detect=lambda resolved: "v2a")
    if not hasattr(loaded.module, "encode") or loaded.module.audio is not None:
        raise SystemExit(f"{acoustic}: needs a video-only V2A model")
    lip_reader = load(reader, task="lipread", device="cpu", detect=lambda r: lipread_resnet.FAMILY)
    sources = {
        "acoustic": f"{loaded.name} (sha256 {loaded.sha256})",
        "reader": f"{lip_reader.name} (sha256 {lip_reader.sha256})",
    }
    return loaded.module, lip_reader.module, sources


def clip_features(model: ContentV2A, items: list[dict[str, Any]], mirror: bool) -> list:
    """Per clip ``(T, feature_size)`` features (of the mirrored crops when ``mirror``)."""
    out = []
    for item in items:
        crops = item["crops"].float()[None]
        lips = None
        if model.lips is not None:
            lips = lip_features(item["landmarks"], mirror=mirror)[None]
        if mirror:
            crops = crops.flip(-1)
        out.append(model.features(crops, lips)[0])
    return out


def batch(
    model: ContentV2A, feats: list[torch.Tensor], items: list[dict[str, Any]], idx: list[int]
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, int]:
    """Padded features ``(B, T, C)``, normalised target mels ``(B, 80, F)``, mask ``(B, 1, F)``."""
    t_max = max(feats[i].shape[0] for i in idx)
    f_max = max(items[i]["mel"].shape[1] for i in idx)
    x = torch.zeros(len(idx), t_max, feats[idx[0]].shape[1])
    y = torch.zeros(len(idx), model.config.n_mels, f_max)
    mask = torch.zeros(len(idx), 1, f_max)
    for j, i in enumerate(idx):
        x[j, : feats[i].shape[0]] = feats[i]
        mel = items[i]["mel"]
        y[j, :, : mel.shape[1]] = model.normalise(mel[None])[0]
        mask[j, :, : mel.shape[1]] = 1.0
    return x, y, mask, f_max


def envelope_correlation_loss(
    model: ContentV2A,
    pred: torch.Tensor,
    target: torch.Tensor,
    mask: torch.Tensor,
    window: int = 32,
) -> torch.Tensor:
    """``1 -`` the mean Pearson correlation of predicted and real mel-band amplitude envelopes
    over ``window``-frame segments (hop ``window // 2``; 32 frames ≈ STOI's 384 ms).

    STOI scores intelligibility by exactly such short-time envelope correlations (of 1/3-octave
    bands), which an L1 loss on log mels does not reward: a blurred envelope can be close in L1
    and poorly correlated. ``pred``/``target`` are normalised log mels ``(B, n_mels, F)``,
    ``mask`` ``(B, 1, F)``; segments reaching into padding are left out.
    """
    if pred.shape[-1] < window:
        return pred.new_zeros(())
    scale, shift = model.mel_std[:, None], model.mel_mean[:, None]
    hop = window // 2
    p = (pred * scale + shift).exp().unfold(-1, window, hop)  # (B, M, S, window)
    t = (target * scale + shift).exp().unfold(-1, window, hop)
    valid = mask.unfold(-1, window, hop).amin(-1)  # (B, 1, S)
    p = p - p.mean(-1, keepdim=True)
    t = t - t.mean(-1, keepdim=True)
    corr = (p * t).sum(-1) / (p.norm(dim=-1) * t.norm(dim=-1) + 1e-6)  # (B, M, S)
    weight = valid.expand_as(corr)
    return 1 - (corr * weight).sum() / weight.sum().clamp_min(1)


@torch.no_grad()
def val_l1(model: ContentV2A, feats: list, items: list[dict[str, Any]], batch_size: int) -> float:
    """Mean masked L1 in log-mel units over ``items``."""
    model.eval()
    total, count = 0.0, 0.0
    for start in range(0, len(items), batch_size):
        idx = list(range(start, min(len(items), start + batch_size)))
        x, y, mask, f_max = batch(model, feats, items, idx)
        diff = (model.decode(x, f_max) - y).abs() * model.mel_std[:, None] * mask
        total += float(diff.sum() / model.config.n_mels)
        count += float(mask.sum())
    model.train()
    return total / count


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point (see the module docstring)."""
    p = cache_parser(__doc__)
    p.add_argument("--acoustic", default="v2a-grid-s1", help="trained V2A model (name or .pt)")
    p.add_argument("--reader", default=DEFAULT_LIP_READER, help="trained lip reader (name or .pt)")
    p.add_argument("--channels", type=int, default=256)
    p.add_argument("--layers", type=int, default=4)
    p.add_argument(
        "--corr-weight", type=float, default=0.0,
        help="weight of the short-time envelope-correlation loss (STOI's measure) added to L1",
    )  # fmt: skip
    add_flags(p, epochs=40, max_minutes=60.0, batch_size=8, lr=2e-3, seed=0, threads=1, limit=None)
    args = p.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    return run_command(lambda: train_decoder(args), threads=args.threads)


def train_decoder(args: argparse.Namespace) -> int:
    """Train the content decoder over the frozen parts (the options of :func:`main`).

    Returns:
        0; the best-on-validation model is ``OUT/v2a.pt``, the record ``OUT/summary.json``.

    Raises:
        InputError: the cache has no train or no val clip (exit 2).
    """
    log = RunLog(args.out / "train.log")
    acoustic, reader, sources = load_parts(args.acoustic, args.reader)
    config = ContentV2AConfig(acoustic.config, reader.config, args.channels, args.layers)
    torch.manual_seed(args.seed)
    model = ContentV2A(config)
    model.acoustic.load_state_dict(acoustic.state_dict())
    model.reader.load_state_dict(reader.state_dict())
    split = s1_split()
    lips = config.lip_landmarks
    train = load_split(args.cache, split["train"][: args.limit], config.crop_size,
                       with_audio=False, with_lips=lips)  # fmt: skip
    val = load_split(args.cache, split["val"], config.crop_size, with_audio=False, with_lips=lips)
    require_clips(args.cache, train=train, val=val)
    mean, std = mel_stats(train)
    model.mel_mean.copy_(mean)
    model.mel_std.copy_(std)
    train_feats = (clip_features(model, train, False), clip_features(model, train, True))
    val_feats = clip_features(model, val, False)
    log(f"{len(train)} train / {len(val)} val clips; features {config.feature_size} per frame; "
        f"parts {sources}")  # fmt: skip

    decoder = [p for p in model.parameters() if p.requires_grad]
    optimiser = torch.optim.AdamW(decoder, lr=args.lr, weight_decay=1e-2)
    steps_per_epoch = math.ceil(len(train) / args.batch_size)
    total_steps = steps_per_epoch * args.epochs
    best, best_epoch, history, step = math.inf, 0, [], 0
    model.train()
    for epoch in range(args.epochs):
        generator = torch.Generator().manual_seed(args.seed * 1000 + epoch)
        torch.manual_seed(args.seed * 1000 + epoch)  # dropout
        order = torch.randperm(len(train), generator=generator).tolist()
        mirrored = (torch.rand(len(train), generator=generator) < 0.5).tolist()
        epoch_loss = 0.0
        for b in range(steps_per_epoch):
            idx = order[b * args.batch_size : (b + 1) * args.batch_size]
            # Each clip in its own or its mirrored version (index into the doubled list).
            feats = [train_feats[int(mirrored[i])][i] for i in idx]
            x, y, mask, f_max = batch(model, feats, [train[i] for i in idx], list(range(len(idx))))
            for group in optimiser.param_groups:
                group["lr"] = args.lr * 0.5 * (1 + math.cos(math.pi * step / total_steps))
            pred = model.decode(x, f_max)
            loss = ((pred - y).abs() * mask).sum() / (mask.sum() * config.n_mels)
            if args.corr_weight > 0:
                loss = loss + args.corr_weight * envelope_correlation_loss(model, pred, y, mask)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            epoch_loss += float(loss.detach())
            step += 1
        score = val_l1(model, val_feats, val, args.batch_size)
        history.append({"epoch": epoch + 1, "train": epoch_loss / steps_per_epoch, "val_l1": score})
        if score < best:
            best, best_epoch = score, epoch + 1
            state_dict.save(model.state_dict(), config.to_json(), args.out / "v2a.pt", "v2a")
        log(f"epoch {epoch + 1}/{args.epochs} train {epoch_loss / steps_per_epoch:.4f} "
            f"val L1 {score:.4f}{' (best)' if best_epoch == epoch + 1 else ''}")  # fmt: skip
        if log.minutes > args.max_minutes:
            log(f"wall-clock limit ({args.max_minutes} min) reached")
            break
    (args.out / "summary.json").write_text(json.dumps(
        {"stage": "content decoder", "best_val_l1": best, "best_epoch": best_epoch,
         "epochs": len(history), "epochs_planned": args.epochs, "train_clips": len(train),
         "val_clips": len(val), "parts": sources, "seed": args.seed, "threads": args.threads,
         "lr": args.lr, "batch_size": args.batch_size, "corr_weight": args.corr_weight,
         "config": config.to_dict(),
         "minutes": round(log.minutes, 2), "history": history,
         "f_loss": "masked L1 on normalised log mel"}, indent=1))  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
