"""AV2A as the seed paper does it (arXiv 2307.16584): audio-visual V2A on *synthesised* audio.

1. ``synth``: the base video-to-speech model (``v2a-content-grid-s1`` by default) makes a mel
   for every cached GRID s1 clip (train, validation and test: at inference the input audio is
   again the base model's own output, so no real audio is ever needed); one ``<id>.npy`` each.
2. ``train``: an AV2A network (:class:`~avtool.models.v2a.V2AModel` with its audio encoder and
   per-modality batch-norm statistics) learns the real mel from video + that synthesised mel,
   with one of the paper's three procedures:

   * ``baseline``: every step sees both modalities;
   * ``dropout``: modality dropout, each step video only (25%), audio only (25%) or both (50%),
     each combination with its own batch-norm statistics;
   * ``dropout-gt``: modality dropout, with the *ground-truth* mel as the audio input in the
     audio-only steps (the synthesised mel in the others).

CPU bound (the development machine has no GPU): the network starts from ``v2a-grid-s1`` (the
base V2A's own acoustic model, GRID s1 train split only) and its video and lip encoders are
frozen, their features computed once per clip (``features.pt``); the audio encoder, fusion
norm, GRU and decoder are trained. That is a deviation from the paper (which trains end to
end), made so each procedure fits a bounded run on one thread. The best epoch on the s1
validation split (masked L1 of the log mel from video + synthesised mel, the inference input)
is kept as ``best.pt`` (an avtool checkpoint, :func:`avtool.models.v2a.save_checkpoint`) with
``config.json`` (the same config, for the recipes that copy it); ``summary.json`` holds the base
model's own validation L1 beside it.

    python -m avtool.training.av2a_synth synth --cache data/grid_s1_cache --out data/av2a/synth
    python -m avtool.training.av2a_synth train --cache data/grid_s1_cache \\
        --synth data/av2a/synth --out data/av2a/dropout --procedure dropout --max-minutes 15

Deterministic for a seed and thread count; the test split is only synthesised, never trained
or selected on.
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
import torch.nn.functional as F

from avtool import registry
from avtool.datasets.grid import s1_split
from avtool.io.features import MelSpec
from avtool.metrics.speech import stoi
from avtool.models import griffinlim, v2a
from avtool.models.loading import load
from avtool.models.v2a import infer, read_checkpoint, save_checkpoint
from avtool.models.v2a.model import AUDIO, BOTH, VIDEO, V2AConfig, V2AModel, build
from avtool.models.visual import lip_features
from avtool.training.command import REQUIRED, RunLog, add_flags, run_command
from avtool.training.v2a import MODE_PROBS, load_split, loss_fn, require_clips, start_av2a

PROCEDURES = ("baseline", "dropout", "dropout-gt")
#: The base model whose output is the synthesised audio, and the AV2A network's initialisation.
BASE_MODEL = "v2a-content-grid-s1"
INIT_MODEL = "v2a-grid-s1"
FLOOR = math.log(1e-5)


def synthesise(cache: Path, out: Path, model_name: str = BASE_MODEL) -> dict[str, Any]:
    """Write ``out/<id>.npy`` ``(80, F)`` float32: the base model's mel of every cached clip
    (the cache's ``F`` frames). Clips already done are skipped."""

    loaded = load(model_name, task="v2a", device="cpu")
    out.mkdir(parents=True, exist_ok=True)
    done = 0
    for path in sorted(cache.glob("*.npz")):
        target = out / f"{path.stem}.npy"
        if target.is_file():
            continue
        with np.load(path) as data:
            n_mel = data["mel"].shape[1]
            mel = v2a.infer(loaded.module, data["gray88"], n_mel, None, data["landmarks"])
        tmp = target.with_suffix(".tmp.npy")
        np.save(tmp, mel.numpy().astype(np.float32))
        tmp.rename(target)
        done += 1
    (out / "model.json").write_text(
        json.dumps({"model": loaded.name, "sha256": loaded.sha256}) + "\n", encoding="utf-8"
    )
    return {"model": loaded.name, "new": done, "total": len(list(out.glob("*.npy")))}


def forward_features(
    model: V2AModel, feats: torch.Tensor, n_frames: int, audio_mel: torch.Tensor | None, mode: int
) -> torch.Tensor:
    """:meth:`V2AModel.forward` from precomputed video (+ lip) features.

    Args:
        model: an AV2A model.
        feats: ``(B, T, hidden)`` ``model.video(crops) (+ model.lips(lips))``.
        n_frames: mel frames ``F``.
        audio_mel: ``(B, n_mels, F)`` input log mel (None for VIDEO).
        mode: VIDEO, AUDIO or BOTH (selects the batch-norm statistics).

    Returns:
        ``(B, n_mels, F)`` log mel, equal to ``model(crops, F, audio_mel, mode, lips)``.
    """
    model.set_mode(mode)
    if mode == AUDIO:
        feats = torch.zeros_like(feats)
    if mode != VIDEO:
        assert model.audio is not None and audio_mel is not None
        audio = model.audio(model.normalise(audio_mel))
        audio = F.adaptive_avg_pool1d(audio.transpose(1, 2), feats.shape[1])
        feats = feats + audio.transpose(1, 2)
    x = model.fuse_norm(feats.transpose(1, 2)).transpose(1, 2)
    x, _ = model.gru(model.dropout(x))
    x = F.interpolate(x.transpose(1, 2), size=n_frames, mode="linear", align_corners=False)
    for i in range(0, len(model.decoder), 2):
        x = model.dropout(F.relu(model.decoder[i + 1](model.decoder[i](x))))
    return model.out(x) * model.mel_std[:, None] + model.mel_mean[:, None]


@torch.no_grad()
def video_features(model: V2AModel, items: list[dict[str, Any]]) -> None:
    """Add ``item["feats"]`` ``(T, hidden)``: the frozen video (+ lip) encoders' output."""
    model.eval()
    for item in items:
        feats = model.video(item["crops"].float()[None])
        if model.lips is not None:
            feats = feats + model.lips(lip_features(item["landmarks"][None]))
        item["feats"] = feats[0]
        del item["crops"]  # the features replace the crops: memory stays small


def _batch(items: list[dict[str, Any]], key: str) -> tuple[torch.Tensor, ...]:
    """Padded ``feats (B, T, H)``, target ``mels (B, 80, F)``, input ``key`` mels, mask, F."""
    t_max = max(it["feats"].shape[0] for it in items)
    f_max = max(it["mel"].shape[1] for it in items)
    feats = torch.zeros(len(items), t_max, items[0]["feats"].shape[1])
    mels = torch.zeros(len(items), items[0]["mel"].shape[0], f_max)
    inputs = torch.full_like(mels, FLOOR)
    mask = torch.zeros(len(items), 1, f_max)
    for i, it in enumerate(items):
        n, f = it["feats"].shape[0], it["mel"].shape[1]
        feats[i, :n] = it["feats"]
        mels[i, :, :f] = it["mel"]
        inputs[i, :, :f] = it[key][:, :f]
        mask[i, :, :f] = 1.0
    return feats, mels, inputs, mask, torch.tensor(f_max)


@torch.no_grad()
def validation_l1(model: V2AModel, items: list[dict[str, Any]], batch_size: int = 8) -> float:
    """Masked L1 (log-mel units) from video + synthesised mel (BOTH), the inference input."""
    model.eval()
    total, count = 0.0, 0
    for start in range(0, len(items), batch_size):
        feats, mels, synth, mask, f_max = _batch(items[start : start + batch_size], "synth")
        pred = forward_features(model, feats, int(f_max), synth, BOTH)
        total += float(((pred - mels).abs() * mask).sum() / pred.shape[1])
        count += int(mask.sum())
    return total / count


def base_l1(items: list[dict[str, Any]]) -> float:
    """The synthesised mels' own masked L1 against the real ones (the base model's error)."""
    total = sum(float((it["synth"] - it["mel"]).abs().sum()) / it["mel"].shape[0] for it in items)
    return total / sum(it["mel"].shape[1] for it in items)


def train(args: argparse.Namespace) -> int:
    """One procedure's bounded, resumable training run (see the module docstring)."""
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    args.out.mkdir(parents=True, exist_ok=True)
    log = RunLog(args.out / "train.log")

    resolved = registry.resolve(args.init, task="v2a")
    init = read_checkpoint(resolved.path, dict(resolved.entry.config) or None)
    base = V2AConfig.from_dict(init.config)
    config = V2AConfig.from_dict({**base.to_dict(), "audio_encoder": True, "output_advance": 0})
    model = build(config)
    start_av2a(model, init.state_dict, resolved.path)

    split = s1_split()
    data = {}
    for name in ("train", "val"):
        ids = split[name][: args.limit] if name == "train" else split[name]
        loaded = load_split(
            args.cache, ids, config.crop_size, with_audio=False, with_lips=config.lip_landmarks
        )
        items = [it for it in loaded if (args.synth / f"{it['id']}.npy").is_file()]
        for it in items:
            it["synth"] = torch.from_numpy(np.load(args.synth / f"{it['id']}.npy"))
        video_features(model, items)
        data[name] = items
    train_items, val_items = data["train"], data["val"]
    log(
        f"{args.procedure}: {len(train_items)}/{len(split['train'])} train, "
        f"{len(val_items)}/{len(split['val'])} val clips; features in {log.seconds:.0f} s"
    )
    require_clips(args.cache, train=train_items, val=val_items)
    reference = base_l1(val_items)
    log(f"base model ({args.synth}) validation L1 {reference:.4f}")

    for p in list(model.video.parameters()) + list(model.lips.parameters() if model.lips else []):
        p.requires_grad_(False)
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimiser = torch.optim.AdamW(trainable, lr=args.lr, weight_decay=1e-2)
    generator = torch.Generator().manual_seed(args.seed)
    history, best, epoch = [], math.inf, 0
    steps_per_epoch = math.ceil(len(train_items) / args.batch_size)
    total_steps = steps_per_epoch * args.epochs
    step = 0
    while epoch < args.epochs and log.minutes < args.max_minutes:
        model.train()
        model.video.eval()  # frozen: its batch norms keep their statistics
        if model.lips is not None:
            model.lips.eval()
        order = torch.randperm(len(train_items), generator=generator).tolist()
        losses = []
        for first in range(0, len(order), args.batch_size):
            batch = [train_items[i] for i in order[first : first + args.batch_size]]
            mode = BOTH
            if args.procedure != "baseline":
                mode = int(torch.multinomial(torch.tensor(MODE_PROBS), 1, generator=generator))
            key = "mel" if (args.procedure == "dropout-gt" and mode == AUDIO) else "synth"
            feats, mels, inputs, mask, f_max = _batch(batch, key)
            lr = args.lr * 0.5 * (1 + math.cos(math.pi * step / max(total_steps, 1)))
            for group in optimiser.param_groups:
                group["lr"] = lr
            pred = forward_features(model, feats, int(f_max), inputs if mode != VIDEO else None,
                                    mode)  # fmt: skip
            loss = loss_fn(model, pred, mels, mask, 0.0)
            optimiser.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(trainable, 1.0)
            optimiser.step()
            losses.append(float(loss))
            step += 1
        epoch += 1
        val = validation_l1(model, val_items)
        history.append({"epoch": epoch, "train_loss": float(np.mean(losses)), "val_l1": val,
                        "minutes": round(log.minutes, 2)})  # fmt: skip
        log(f"epoch {epoch}: train {np.mean(losses):.4f} val L1 {val:.4f} (base {reference:.4f})")
        if val < best:
            best = val
            facts = {"procedure": args.procedure, "epoch": epoch, "val_l1": val}
            save_checkpoint(args.out / "best.pt", model.state_dict(), config, facts)
            (args.out / "config.json").write_text(config.to_json() + "\n", encoding="utf-8")
    summary = {
        "procedure": args.procedure,
        "init": resolved.entry.name,
        "synth": json.loads((args.synth / "model.json").read_text(encoding="utf-8")),
        "train_clips": len(train_items),
        "val_clips": len(val_items),
        "epochs": epoch,
        "best_val_l1": best,
        "base_val_l1": reference,
        "history": history,
        "frozen": ["video", "lips"],
        "minutes": round(log.minutes, 2),
        "threads": args.threads,
        "seed": args.seed,
    }
    (args.out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return 0


def compare(cache: Path, synth: Path, runs: Sequence[Path], threads: int = 1) -> dict[str, Any]:
    """Validation STOI and L1 of the base model's mel and of each AV2A run's ``best.pt`` (video
    + that mel, the inference input), vocoded by Griffin-Lim (32 iterations) against the real
    audio: the ship decision, taken on the s1 validation split only."""

    torch.set_num_threads(threads)
    spec = MelSpec.hifigan_22k()
    ids = [
        i
        for i in s1_split()["val"]
        if (cache / f"{i}.npz").is_file() and (synth / f"{i}.npy").is_file()
    ]
    models = {}
    for run in runs:
        stored = read_checkpoint(run / "best.pt")
        model = build(V2AConfig.from_dict(stored.config))
        model.load_state_dict(stored.state_dict)
        models[run.name] = model.eval()
    rows: dict[str, list[tuple[float, float]]] = {"base": []}
    for clip_id in ids:
        with np.load(cache / f"{clip_id}.npz") as data:
            crops, marks, real = data["gray88"], data["landmarks"], data["mel"]
            audio = data["audio"].astype(np.float32) / 32768.0
        base = torch.from_numpy(np.load(synth / f"{clip_id}.npy"))
        outputs = {"base": base}
        for name, model in models.items():
            outputs[name] = infer(model, crops, real.shape[1], base, marks)
        for name, mel in outputs.items():
            wave = griffinlim.vocode(mel, spec)[0].numpy()
            l1 = float((mel - torch.from_numpy(real)).abs().mean())
            score = stoi(audio, wave[: audio.size], spec.sample_rate)
            rows.setdefault(name, []).append((l1, score))
    means = {name: np.mean(np.array(v), axis=0) for name, v in rows.items()}
    return {
        "clips": len(ids),
        "split": "val",
        "vocoder": "griffin-lim",
        "results": {name: {"l1": float(m[0]), "stoi": float(m[1])} for name, m in means.items()},
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: ``synth`` or ``train`` (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    s = add_flags(sub.add_parser("synth"), cache=REQUIRED, out=REQUIRED)
    s.add_argument("--model", default=BASE_MODEL)
    t = add_flags(sub.add_parser("train"), cache=REQUIRED, out=REQUIRED)
    t.add_argument("--procedure", choices=PROCEDURES, required=True)
    t.add_argument("--init", default=INIT_MODEL)
    add_flags(t, epochs=20, max_minutes=15.0, batch_size=8, lr=1e-3, seed=0, limit=None)
    c = add_flags(sub.add_parser("compare"), cache=REQUIRED)
    c.add_argument("--run", type=Path, action="append", required=True)
    c.add_argument("--out", type=Path, help="JSON file for the results")
    for command in (t, c):
        command.add_argument("--synth", type=Path, required=True, help="synthesised mels")
    for command in (s, t, c):
        add_flags(command, threads=1)
    args = parser.parse_args(argv)
    if args.command == "compare":
        result = compare(args.cache, args.synth, args.run, args.threads)
        if args.out:
            args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
        print(json.dumps(result, indent=2))
        return 0
    if args.command == "synth":
        torch.set_num_threads(args.threads)
        print(json.dumps(synthesise(args.cache, args.out, args.model)))
        return 0
    return run_command(lambda: train(args))


if __name__ == "__main__":
    raise SystemExit(main())
