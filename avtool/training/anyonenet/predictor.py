"""Train AnyoneNet's landmark predictor on extracted items (:mod:`.data`).

Each step takes ``batch_size`` random segments of ``segment_frames`` mel frames (80 Hz). The
source face of a segment is a random frame of the same clip (its frontal landmarks and head
pose); the targets are the segment's frontal landmarks and quaternions. Loss: L2 + inter-frame
L2 + L1 on quaternions (:func:`.losses.predictor_loss`); Adam.

Output folder:

* ``predictor.pt`` + ``predictor.json``: the newest weights and config (:mod:`.checkpoint`),
  what ``predict_track`` and ``--model`` take;
* ``best.pt`` + ``best.json``: the weights with the lowest held-out lip-landmark distance
  (``heldout_mouth_dist``) seen at a log step so far (only with held-out items);
* ``trainer.pt``: optimiser state, step and best held-out score, for ``--resume``;
* ``train_log.jsonl``: ``step``, losses, held-out ``heldout_l2`` / ``heldout_dist`` /
  ``heldout_mouth_dist`` and the static-face baseline's (``static_*``), ``seconds``.

    python -m avtool.training.anyonenet.predictor --data data/anyonenet/grid --out runs/p

On the CPU a run is bit-for-bit reproducible for a seed and thread count, resumed or not:
the segments of step ``s`` depend only on ``(seed, s)``.
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

from avtool.datasets.grid import s1_split
from avtool.io.face import MOUTH
from avtool.models.anyonenet import predictor
from avtool.models.anyonenet.config import PredictorConfig
from avtool.models.anyonenet.data import load_items
from avtool.models.anyonenet.losses import predictor_loss
from avtool.training.anyonenet import common as run
from avtool.training.loop import Cadence, run_steps

log = logging.getLogger(__name__)

WEIGHTS = "predictor.pt"
TRAINER = run.TRAINER
#: The held-out measure ``best.pt`` minimises: lip points are what the renderer is judged on.
BEST_KEY = "heldout_mouth_dist"
LOG = run.LOG


@dataclass(frozen=True)
class PredictorTraining:
    """Training settings (saved in ``predictor.json`` under ``training``).

    Attributes:
        batch_size: segments per step.
        segment_frames: mel frames per segment (160 = 2 s); shorter clips are padded by
            taking the whole clip and all clips are cut to the shortest one in the batch.
        learning_rate: Adam's step size.
        landmark_weight, interframe_weight, quaternion_weight: loss weights
            (:func:`.losses.predictor_loss`).
        seed: seeds the weights and the segments.
    """

    batch_size: int = 8
    segment_frames: int = 160
    learning_rate: float = 1e-4
    landmark_weight: float = 10.0
    interframe_weight: float = 10.0
    quaternion_weight: float = 1.0
    seed: int = 0


def make_batch(
    items: Sequence[dict[str, Any]], step: int, training: PredictorTraining
) -> dict[str, torch.Tensor]:
    """The segments of ``step`` (a function of ``(seed, step)`` only).

    Returns:
        ``mel (B, F, 80)``, ``source_landmarks (B, 68, 2)``, ``source_quaternion (B, 4)``,
        ``landmarks (B, F, 68, 2)``, ``quaternions (B, F, 4)`` float32 tensors.
    """
    rng = np.random.default_rng([training.seed, step])
    picks = rng.integers(len(items), size=training.batch_size)
    frames = min(training.segment_frames, min(len(items[i]["mel"]) for i in picks))
    out: dict[str, list[np.ndarray]] = {
        k: [] for k in ("mel", "source_landmarks", "source_quaternion", "landmarks", "quaternions")
    }
    for i in picks:
        item = items[i]
        start = int(rng.integers(len(item["mel"]) - frames + 1))
        source = int(rng.integers(len(item["mel"])))
        segment = slice(start, start + frames)
        out["mel"].append(item["mel"][segment])
        out["source_landmarks"].append(item["frontal"][source])
        out["source_quaternion"].append(item["quaternions"][source])
        out["landmarks"].append(item["frontal"][segment])
        out["quaternions"].append(item["quaternions"][segment])
    return {k: torch.from_numpy(np.stack(v).astype(np.float32)) for k, v in out.items()}


@torch.no_grad()
def evaluate(model: predictor.LandmarkPredictor, items: Sequence[dict[str, Any]]) -> dict:
    """Held-out error of whole clips, the source face being each clip's first frame.

    Returns:
        ``l2`` (mean squared error per coordinate, the training L2), ``dist`` (mean distance
        per landmark) and ``mouth_dist`` (the 20 lip points), in inter-ocular distances, for
        the model and for the static baseline (the source face held still) as ``static_*``.
    """
    model.eval()
    sums = {
        k: 0.0
        for k in ("l2", "dist", "mouth_dist", "static_l2", "static_dist", "static_mouth_dist")
    }
    count = 0
    for item in items:
        mel = torch.from_numpy(item["mel"][None].astype(np.float32))
        src = torch.from_numpy(item["frontal"][:1].astype(np.float32))
        srcq = torch.from_numpy(item["quaternions"][:1].astype(np.float32))
        target = torch.from_numpy(item["frontal"].astype(np.float32))
        disp, dq = model(mel, src, srcq)
        pred, _ = predictor.apply(src, srcq, disp, dq)
        static = src.expand_as(target)
        for prefix, guess in (("", pred[0]), ("static_", static)):
            sums[prefix + "l2"] += torch.mean((guess - target) ** 2).item()
            dist = torch.linalg.vector_norm(guess - target, dim=-1)
            sums[prefix + "dist"] += dist.mean().item()
            sums[prefix + "mouth_dist"] += dist[:, MOUTH].mean().item()
        count += 1
    model.train()
    return {k: v / max(count, 1) for k, v in sums.items()}


def train(
    data_dir: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    config: PredictorConfig | None = None,
    training: PredictorTraining | None = None,
    steps: int = 1000,
    resume: bool = False,
    heldout: int = 1,
    train_ids: Sequence[str] | None = None,
    heldout_ids: Sequence[str] | None = None,
    heldout_dir: str | os.PathLike[str] | None = None,
    log_every: int = 50,
    checkpoint_every: int = 500,
    max_seconds: float | None = None,
    device: str = "cpu",
) -> dict[str, Any]:
    """Train (or resume) the predictor up to ``steps`` updates in total.

    Args:
        data_dir: extracted items (:func:`.data.extract_folder`).
        out_dir: checkpoint folder (created).
        config: architecture (default paper); on resume the saved one is used.
        training: settings (default :class:`PredictorTraining`).
        steps: total updates to reach.
        resume: go on from ``out_dir``'s ``trainer.pt``.
        heldout: the last ``heldout`` items (by id) are held out, unless ids are given.
        train_ids, heldout_ids: explicit splits (e.g. ``avtool.datasets.grid.s1_split()``).
        heldout_dir: where the held-out items are, when not in ``data_dir`` (all of its items
            unless ``heldout_ids`` are given).
        log_every, checkpoint_every: in steps (a checkpoint is also written at the end).
        max_seconds: stop (with a checkpoint) after this much training time.
        device: torch device.

    Returns:
        The last log record.

    Raises:
        InputError: no data, or ``out_dir`` already trained without ``resume``.
        ModelError: a checkpoint that does not fit, or a non-finite loss.
    """
    out, trainer_file, resuming = run.open_run(out_dir, resume)
    if heldout_dir is not None:
        train_items = load_items(data_dir, train_ids)
        held = load_items(heldout_dir, heldout_ids)
    elif train_ids is not None:
        train_items = load_items(data_dir, train_ids)
        held = load_items(data_dir, heldout_ids) if heldout_ids else []
    else:
        items = load_items(data_dir)
        if len(items) <= heldout:
            held, train_items = [], items
        else:
            held, train_items = items[len(items) - heldout :], items[: len(items) - heldout]
    model, config, training = run.start_network(
        "predictor",
        out / WEIGHTS,
        resuming,
        config=config or PredictorConfig.paper(),
        training=training or PredictorTraining(),
        build=predictor.build,
        device=device,
    )
    start_step = 0
    best = float("inf")
    optimizer = torch.optim.Adam(model.parameters(), lr=training.learning_rate)
    if resuming:
        state = run.load_trainer_state(trainer_file, {"optimizer": optimizer})
        start_step = int(state["step"])
        best = float(state.get("best", best))
    meta_extra = {
        "training": asdict(training),
        "data": str(data_dir),
        "train_ids": [i["id"] for i in train_items],
        "heldout_ids": [i["id"] for i in held],
    }
    record: dict[str, Any] = {"step": start_step}

    def update(step: int) -> dict[str, float]:
        batch = {k: v.to(device) for k, v in make_batch(train_items, step, training).items()}
        disp, dq = model(batch["mel"], batch["source_landmarks"], batch["source_quaternion"])
        pred, quats = predictor.apply(
            batch["source_landmarks"], batch["source_quaternion"], disp, dq
        )
        loss, parts = predictor_loss(
            pred,
            quats,
            batch["landmarks"],
            batch["quaternions"],
            landmark_weight=training.landmark_weight,
            interframe_weight=training.interframe_weight,
            quaternion_weight=training.quaternion_weight,
        )
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return {"loss": loss.item(), **parts}

    def report(step: int, losses: Mapping[str, float], seconds: float) -> None:
        nonlocal record, best
        record = {"step": step, **losses, "seconds": round(seconds, 2)}
        if held:
            record.update(
                {
                    f"heldout_{k}" if not k.startswith("static") else k: v
                    for k, v in evaluate(model, held).items()
                }
            )
            best = run.keep_best(out, model, config, meta_extra, record, BEST_KEY, best)
        run.append_log(out, record)
        log.info("step %d loss %.5f", step, losses["loss"])

    def save(step: int) -> None:
        _checkpoint(out, model, config, optimizer, step, meta_extra, best)

    cadence = Cadence(steps, log_every, checkpoint_every, max_seconds)
    run_steps(start_step, cadence, update, report, save, save_if_idle=True)
    return record


def _checkpoint(
    out: Path,
    model: torch.nn.Module,
    config: PredictorConfig,
    optimizer: torch.optim.Optimizer,
    step: int,
    extra: dict[str, Any],
    best: float = float("inf"),
) -> None:
    state = {"optimizer": optimizer.state_dict(), "step": step, "best": best}
    run.save_run(out, WEIGHTS, model, config, extra, state)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m avtool.training.anyonenet.predictor``; returns the exit code."""
    parser = run.trainer_parser(
        __doc__.split("\n\n")[0],
        data_help="folder of extracted items",
        config_help="paper, reduced, debug or a config .json",
        defaults=PredictorTraining,
    )
    parser.add_argument("--segment-frames", type=int, default=PredictorTraining.segment_frames)
    parser.add_argument("--heldout", type=int, default=1, help="last N items held out")
    parser.add_argument(
        "--s1-split", action="store_true", help="train/val ids of avtool.datasets.grid.s1_split()"
    )
    args = parser.parse_args(argv)
    train_ids = heldout_ids = None
    if args.s1_split:
        split = s1_split()
        train_ids, heldout_ids = split["train"], split["val"]
    return run.run_main(
        args, "predictor", train, PredictorTraining, train_ids=train_ids, heldout_ids=heldout_ids
    )


if __name__ == "__main__":
    raise SystemExit(main())
