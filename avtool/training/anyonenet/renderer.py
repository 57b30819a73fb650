"""Train AnyoneNet's landmark-to-image renderer (UNet + patch discriminator).

Items come from ``python -m avtool.models.anyonenet.data ... --frame-size S`` (face crops and
their landmarks). Each step takes ``batch_size`` (target frame, source frame) pairs from random
clips: the UNet sees the target's landmark sketch beside the source frame and must draw the
target. Generator loss: ``l1_weight`` x L1 + ``perceptual_weight`` x perceptual + adversarial
(least squares). The perceptual term is VGG-19's (pass ``--vgg vgg19-dcbb9e9d.pth``, the
torchvision ImageNet weights); without it the discriminator feature-matching loss takes its
place and the log says so.

Output folder: ``renderer.pt`` + ``renderer.json`` (the UNet), ``trainer.pt`` (discriminator,
optimisers, step, best held-out score; for ``--resume``) and ``train_log.jsonl``. With held-out
items (``--heldout-data``, e.g. the val split) every log step also measures the held-out L1 of
whole-frame reconstructions, the source being each clip's first crop (as at inference), beside
the static baseline (the source itself), and keeps the lowest as ``best.pt`` + ``best.json``.

    python -m avtool.training.anyonenet.renderer --data data/anyonenet/grid --out runs/r
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from avtool.errors import InputError
from avtool.io.face import resize_image
from avtool.models.anyonenet import discriminator, unet
from avtool.models.anyonenet.config import RendererConfig
from avtool.models.anyonenet.data import load_items
from avtool.models.anyonenet.losses import (
    VGG19Features,
    adversarial_d_loss,
    adversarial_g_loss,
    feature_matching_loss,
    perceptual_loss,
)
from avtool.models.anyonenet.sketch import draw_sketch, to_tensor_image
from avtool.training.anyonenet import common as run
from avtool.training.loop import Cadence, run_steps

log = logging.getLogger(__name__)

WEIGHTS = "renderer.pt"
#: The held-out measure ``best.pt`` minimises (mean absolute error, images in [-1, 1]).
BEST_KEY = "heldout_l1"
#: Held-out target frames per clip (evenly spaced after the source), to bound the cost.
HELDOUT_TARGETS = 6
TRAINER = run.TRAINER
LOG = run.LOG


@dataclass(frozen=True)
class RendererTraining:
    """Training settings (saved in ``renderer.json`` under ``training``).

    Attributes:
        batch_size: frame pairs per step.
        learning_rate: Adam's step size for both networks (betas 0.5, 0.999 as pix2pix).
        l1_weight: weight of the L1 term (pix2pix's 100).
        perceptual_weight: weight of the VGG (or feature-matching fallback) term.
        seed: seeds the weights and the pairs.
    """

    batch_size: int = 4
    learning_rate: float = 2e-4
    l1_weight: float = 100.0
    perceptual_weight: float = 10.0
    seed: int = 0


def _resized(item: dict[str, Any], size: int) -> tuple[np.ndarray, np.ndarray]:
    frames, points = item["frames"], item["frame_landmarks"]
    have = frames.shape[1]
    if have == size:
        return frames, points

    scaled = np.stack([resize_image(f, (size, size)) for f in frames])
    return scaled, points * (size / have)


def make_batch(
    items: Sequence[dict[str, Any]], step: int, training: RendererTraining, size: int
) -> dict[str, torch.Tensor]:
    """The frame pairs of ``step`` (a function of ``(seed, step)`` only).

    Returns:
        ``sketch``, ``source``, ``target``: ``(B, 3, size, size)`` float32 in [-1, 1].
    """
    rng = np.random.default_rng([training.seed, step])
    out: dict[str, list[torch.Tensor]] = {"sketch": [], "source": [], "target": []}
    for _ in range(training.batch_size):
        item = items[int(rng.integers(len(items)))]
        frames, points = item["_frames"], item["_points"]
        target, source = (int(v) for v in rng.integers(len(frames), size=2))
        out["sketch"].append(to_tensor_image(draw_sketch(points[target], size)))
        out["source"].append(to_tensor_image(frames[source]))
        out["target"].append(to_tensor_image(frames[target]))
    return {k: torch.stack(v) for k, v in out.items()}


def heldout_pairs(
    items: Sequence[dict[str, Any]], size: int, per_item: int = HELDOUT_TARGETS
) -> dict[str, torch.Tensor]:
    """Fixed held-out pairs: each clip's first crop as the source, ``per_item`` later targets.

    Returns:
        ``sketch``, ``source``, ``target``: ``(N, 3, size, size)`` float32 in [-1, 1].
    """
    out: dict[str, list[torch.Tensor]] = {"sketch": [], "source": [], "target": []}
    for item in items:
        frames, points = _resized(item, size)
        if len(frames) < 2:
            continue
        picks = np.unique(np.linspace(1, len(frames) - 1, per_item).round().astype(int))
        for target in picks:
            out["sketch"].append(to_tensor_image(draw_sketch(points[target], size)))
            out["source"].append(to_tensor_image(frames[0]))
            out["target"].append(to_tensor_image(frames[target]))
    if not out["target"]:
        raise InputError("held-out items need at least two face frames each")
    return {k: torch.stack(v) for k, v in out.items()}


@torch.no_grad()
def evaluate(
    generator: torch.nn.Module, pairs: dict[str, torch.Tensor], batch_size: int = 8
) -> dict[str, float]:
    """Held-out reconstruction error of :func:`heldout_pairs`.

    Returns:
        ``l1`` (the UNet's mean absolute error, images in [-1, 1]) and ``static_l1`` (the
        source frame as the guess: what a renderer that ignores the landmarks would score).
    """
    generator.eval()
    device = next(generator.parameters()).device
    total = 0.0
    for first in range(0, len(pairs["target"]), batch_size):
        part = {k: v[first : first + batch_size].to(device) for k, v in pairs.items()}
        fake = generator(torch.cat([part["sketch"], part["source"]], dim=1))
        total += (fake - part["target"]).abs().mean(dim=(1, 2, 3)).sum().item()
    generator.train()
    count = len(pairs["target"])
    static = (pairs["source"] - pairs["target"]).abs().mean().item()
    return {"l1": total / count, "static_l1": static}


def train(
    data_dir: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    config: RendererConfig | None = None,
    training: RendererTraining | None = None,
    steps: int = 1000,
    resume: bool = False,
    vgg_path: str | os.PathLike[str] | None = None,
    log_every: int = 50,
    checkpoint_every: int = 500,
    device: str = "cpu",
    heldout_dir: str | os.PathLike[str] | None = None,
    max_seconds: float | None = None,
) -> dict[str, Any]:
    """Train (or resume) the renderer up to ``steps`` updates in total.

    Args:
        data_dir: extracted items with frames.
        out_dir: checkpoint folder (created).
        config: architecture (default paper); on resume the saved one is used.
        training: settings (default :class:`RendererTraining`).
        steps: total updates to reach.
        resume: go on from ``trainer.pt``.
        vgg_path: torchvision VGG-19 state dict for the perceptual loss; None falls back
            to discriminator feature matching.
        log_every, checkpoint_every: in steps (a checkpoint is also written at the end).
        device: torch device.
        heldout_dir: items with frames to measure at each log step (``heldout_l1``,
            ``static_l1``); the best weights are kept as ``best.pt``.
        max_seconds: stop (with a checkpoint) after this much training time.

    Returns:
        The last log record (``loss_d``, ``loss_g``, ``l1``, ``perceptual``, ``adversarial``,
        ``perceptual_kind``, and ``heldout_l1`` / ``static_l1`` with held-out items).

    Raises:
        InputError: no items with frames, or an existing run without ``resume``.
        ModelError: bad checkpoint or VGG file, or a non-finite loss.
    """
    out, trainer_file, resuming = run.open_run(out_dir, resume)
    items = [i for i in load_items(data_dir) if "frames" in i]
    if not items:
        raise InputError(f"{data_dir}: no items with face frames; extract with --frame-size")
    generator, config, training = run.start_network(
        "renderer",
        out / WEIGHTS,
        resuming,
        config=config or RendererConfig.paper(),
        training=training or RendererTraining(),
        build=unet.build,
        device=device,
    )
    disc = discriminator.build(config).to(device)
    betas = (0.5, 0.999)
    optim_g = torch.optim.Adam(generator.parameters(), lr=training.learning_rate, betas=betas)
    optim_d = torch.optim.Adam(disc.parameters(), lr=training.learning_rate, betas=betas)
    start_step = 0
    best = float("inf")
    if resuming:
        parts = {"discriminator": disc, "optim_g": optim_g, "optim_d": optim_d}
        state = run.load_trainer_state(trainer_file, parts)
        start_step = int(state["step"])
        best = float(state.get("best", best))
    held = None
    held_ids: list[str] = []
    if heldout_dir is not None:
        held_items = [i for i in load_items(heldout_dir) if "frames" in i]
        held_ids = [i["id"] for i in held_items]
        held = heldout_pairs(held_items, config.image_size)
    vgg = VGG19Features.load(vgg_path).to(device) if vgg_path else None
    kind = "vgg19" if vgg is not None else "feature-matching"
    if vgg is None:
        log.warning(
            "no VGG-19 weights given (--vgg): the perceptual loss falls back to the "
            "discriminator feature-matching loss"
        )
    for item in items:
        item["_frames"], item["_points"] = _resized(item, config.image_size)
    extra = {
        "training": asdict(training),
        "data": str(data_dir),
        "perceptual": kind,
        "train_ids": [i["id"] for i in items],
        "heldout_ids": held_ids,
    }
    record: dict[str, Any] = {"step": start_step}

    def update(step: int) -> dict[str, float]:
        batch = {
            k: v.to(device) for k, v in make_batch(items, step, training, config.image_size).items()
        }
        fake = generator(torch.cat([batch["sketch"], batch["source"]], dim=1))
        # Discriminator: real (sketch, target) vs fake (sketch, generated).
        real_logits, real_features = disc(batch["sketch"], batch["target"])
        fake_logits, _ = disc(batch["sketch"], fake.detach())
        loss_d = adversarial_d_loss(real_logits, fake_logits)
        optim_d.zero_grad(set_to_none=True)
        loss_d.backward()
        optim_d.step()
        # Generator.
        fake_logits, fake_features = disc(batch["sketch"], fake)
        l1 = F.l1_loss(fake, batch["target"])
        if vgg is not None:
            perceptual = perceptual_loss(vgg, fake, batch["target"])
        else:
            perceptual = feature_matching_loss(fake_features, real_features)
        adversarial = adversarial_g_loss(fake_logits)
        loss_g = training.l1_weight * l1 + training.perceptual_weight * perceptual + adversarial
        optim_g.zero_grad(set_to_none=True)
        loss_g.backward()
        optim_g.step()
        names = ("loss_d", "loss_g", "l1", "perceptual", "adversarial")
        # One device-to-host copy per step.
        values = torch.stack([loss_d, loss_g, l1, perceptual, adversarial]).detach().tolist()
        return dict(zip(names, values, strict=True))

    def report(step: int, losses: Mapping[str, float], seconds: float) -> None:
        nonlocal record, best
        record = {"step": step, **losses, "perceptual_kind": kind, "seconds": round(seconds, 2)}
        if held is not None:
            scores = evaluate(generator, held)
            record.update(heldout_l1=scores["l1"], static_l1=scores["static_l1"])
            best = run.keep_best(out, generator, config, extra, record, BEST_KEY, best)
        run.append_log(out, record)
        log.info("step %d G %.4f D %.4f", step, losses["loss_g"], losses["loss_d"])

    def save(step: int) -> None:
        _checkpoint(out, generator, disc, config, optim_g, optim_d, step, extra, best)

    cadence = Cadence(steps, log_every, checkpoint_every, max_seconds)
    run_steps(start_step, cadence, update, report, save, save_if_idle=True)
    return record


def _checkpoint(
    out: Path,
    generator: torch.nn.Module,
    disc: torch.nn.Module,
    config: RendererConfig,
    optim_g: torch.optim.Optimizer,
    optim_d: torch.optim.Optimizer,
    step: int,
    extra: dict[str, Any],
    best: float = float("inf"),
) -> None:
    state = {
        "discriminator": disc.state_dict(),
        "optim_g": optim_g.state_dict(),
        "optim_d": optim_d.state_dict(),
        "step": step,
        "best": best,
    }
    run.save_run(out, WEIGHTS, generator, config, extra, state)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m avtool.training.anyonenet.renderer``; returns the exit code."""
    parser = run.trainer_parser(
        __doc__.split("\n\n")[0],
        data_help="folder of extracted items with frames",
        config_help="paper, reduced, debug or a config .json",
        defaults=RendererTraining,
    )
    parser.add_argument("--vgg", default=None, help="torchvision VGG-19 state dict (.pth)")
    args = parser.parse_args(argv)
    return run.run_main(args, "renderer", train, RendererTraining, vgg_path=args.vgg)


if __name__ == "__main__":
    raise SystemExit(main())
