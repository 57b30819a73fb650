"""Run plumbing shared by AnyoneNet's trainers (:mod:`.train_predictor`, :mod:`.train_renderer`).

A run folder holds the newest weights (``NAME.pt`` + ``NAME.json``, :mod:`.checkpoint`),
``trainer.pt`` (optimiser states, step and whatever else a trainer needs to resume) and
``train_log.jsonl`` (one JSON record per log step). Both trainers start, resume, log and save
the same way; only their networks, batches and losses differ.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import torch
from torch import nn

from avtool.errors import InputError, ModelError
from avtool.io.files import atomic_output
from avtool.models.anyonenet import checkpoint
from avtool.models.anyonenet.config import PredictorConfig, RendererConfig, preset
from avtool.training.command import REQUIRED, add_flags, call_with_flags, run_command

TRAINER = "trainer.pt"
LOG = "train_log.jsonl"
#: The weights with the best held-out score so far (:func:`keep_best`).
BEST = "best.pt"
#: Key of torch's global random state in ``trainer.pt``.
TORCH_RNG = "torch_rng_state"

_Config = TypeVar("_Config", PredictorConfig, RendererConfig)
_Training = TypeVar("_Training")


def open_run(out_dir: str | os.PathLike[str], resume: bool) -> tuple[Path, Path, bool]:
    """Create the run folder and tell whether this call resumes a run in it.

    Args:
        out_dir: the run folder (created).
        resume: the caller asked to go on from ``trainer.pt``.

    Returns:
        ``(out, trainer_file, resuming)``; ``resuming`` is True only when ``resume`` is set
        and ``trainer.pt`` exists (resuming an empty folder starts a fresh run).

    Raises:
        InputError: the folder already holds a run and ``resume`` is not set (it would be
            overwritten).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    trainer_file = out / TRAINER
    if trainer_file.is_file() and not resume:
        raise InputError(f"{out} already holds a training run; pass --resume to go on")
    return out, trainer_file, resume and trainer_file.is_file()


def start_network(
    kind: str,
    weights: Path,
    resuming: bool,
    *,
    config: _Config,
    training: _Training,
    build: Callable[[_Config], nn.Module],
    device: str,
) -> tuple[nn.Module, _Config, _Training]:
    """The network a run trains: the saved one when resuming, else a freshly seeded one.

    On resume the saved architecture and training settings win over the ones given, so a
    resumed run goes on exactly as it started.

    Args:
        kind: ``"predictor"`` or ``"renderer"`` (:func:`.checkpoint.load`).
        weights: the run's ``NAME.pt``.
        resuming: from :func:`open_run`.
        config: the architecture of a fresh run.
        training: the settings of a fresh run (a dataclass with a ``seed``).
        build: makes a network from a config (torch's global RNG, seeded here first).
        device: torch device.

    Returns:
        ``(network, config, training)`` with the network in training mode on ``device``.

    Raises:
        ModelError: a saved checkpoint that cannot be read.
    """
    if resuming:
        network, config, meta = checkpoint.load(weights, kind, device)
        training = type(training)(**meta["training"])
        return network.train(), config, training
    torch.manual_seed(training.seed)  # type: ignore[attr-defined]
    return build(config).to(device), config, training


def load_trainer_state(trainer_file: Path, parts: Mapping[str, Any]) -> dict[str, Any]:
    """Read ``trainer.pt`` and restore ``parts`` (optimisers, discriminator) from it.

    Args:
        trainer_file: the run's ``trainer.pt``.
        parts: ``{key: object with load_state_dict}``, each restored from ``state[key]``.

    Also restores torch's global random state saved by :func:`save_run`.

    Returns:
        The whole saved dict (``step`` and any other entries the trainer wrote).

    Raises:
        ModelError: a saved state that does not fit the objects (another architecture).
    """
    state = torch.load(trainer_file, map_location="cpu", weights_only=True)
    try:
        for key, part in parts.items():
            part.load_state_dict(state[key])
    except (KeyError, ValueError, RuntimeError) as exc:
        raise ModelError(f"{trainer_file}: does not fit this model ({exc})") from exc
    if TORCH_RNG in state:
        # Dropout draws from torch's global generator: without its state a resumed run
        # would diverge from an uninterrupted one.
        torch.set_rng_state(state[TORCH_RNG])
    return state


def save_run(
    out: Path,
    weights_name: str,
    network: nn.Module,
    config: PredictorConfig | RendererConfig,
    extra: Mapping[str, Any],
    trainer_state: Mapping[str, Any],
) -> None:
    """Write the newest weights (with ``steps``) and ``trainer.pt``, each atomically.

    Args:
        out: the run folder.
        weights_name: ``predictor.pt`` or ``renderer.pt``.
        network: the trained network.
        config: its architecture.
        extra: JSON keys for the weights' config file (``training``, ``data``...).
        trainer_state: what resuming needs; must hold ``step``.
    """
    step = trainer_state["step"]
    checkpoint.save(out / weights_name, network, config, {**extra, "steps": step})
    with atomic_output(out / TRAINER) as tmp, open(tmp, "wb") as f:
        # A file object: torch would name the archive after the temporary file.
        torch.save({**trainer_state, TORCH_RNG: torch.get_rng_state()}, f)


def keep_best(
    out: Path,
    network: nn.Module,
    config: PredictorConfig | RendererConfig,
    extra: Mapping[str, Any],
    record: dict[str, Any],
    key: str,
    best: float,
) -> float:
    """Save ``network`` as ``out/best.pt`` when the log ``record``'s held-out ``key`` beats
    ``best`` (lower is better); such a record gets ``"best": True``.

    Returns:
        The best score so far.
    """
    if not record[key] < best:
        return best
    meta = {**extra, "steps": record["step"], key: record[key]}
    checkpoint.save(out / BEST, network, config, meta)
    record["best"] = True
    return record[key]


def append_log(out: Path, record: Mapping[str, Any]) -> None:
    """Add one JSON line to the run's ``train_log.jsonl``."""
    with open(out / LOG, "a", encoding="utf-8") as f:
        f.write(json.dumps(record) + "\n")


def trainer_parser(
    description: str, *, data_help: str, config_help: str, defaults: Any
) -> argparse.ArgumentParser:
    """The command-line options both trainers take; a trainer adds its own after them.

    Args:
        description: the ``--help`` headline.
        data_help: what ``--data`` holds.
        config_help: the presets ``--config`` accepts.
        defaults: the trainer's settings dataclass (``batch_size``, ``learning_rate`` and
            ``seed`` defaults are read from it, so they have one definition).
    """
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--data", required=True, help=data_help)
    add_flags(parser, out=REQUIRED)
    parser.add_argument("--config", default="paper", help=config_help)
    add_flags(
        parser,
        steps=1000,
        batch_size=defaults.batch_size,
        lr=defaults.learning_rate,
        seed=defaults.seed,
        log_every=50,
        checkpoint_every=500,
        threads=None,
        device="cpu",
    )
    parser.add_argument("--resume", action="store_true")
    parser.add_argument(
        "--heldout-data", default=None, help="folder of held-out items (keeps best.pt)"
    )
    add_flags(parser, max_minutes=None)
    return parser


def run_main(
    args: argparse.Namespace,
    kind: str,
    train: Callable[..., Mapping[str, Any]],
    settings: Callable[..., Any],
    **given: Any,
) -> int:
    """Run a trainer from the command line (:func:`avtool.training.command.run_command`).

    Args:
        args: the options of :func:`trainer_parser` and the trainer's own.
        kind: ``"predictor"`` or ``"renderer"`` (the ``--config`` preset's network).
        train: the trainer's ``train``; its parameters named as options are taken from them.
        settings: its settings dataclass, built from the options of its field names (and
            ``--lr`` as ``learning_rate``).
        **given: ``train``'s arguments that are not an option of the same name.

    Returns:
        The exit code: 0 (the last log record is printed as JSON), an :class:`AvtoolError`'s
        code, or 2 for a bad value.
    """

    def work() -> int:
        try:
            record = call_with_flags(
                train, args, args.data, args.out,
                config=preset(kind, args.config),
                training=call_with_flags(settings, args, learning_rate=args.lr),
                heldout_dir=args.heldout_data,
                max_seconds=args.max_minutes * 60 if args.max_minutes else None,
                **given,
            )  # fmt: skip
        except ValueError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        print(json.dumps(record))
        return 0

    return run_command(work, threads=args.threads)
