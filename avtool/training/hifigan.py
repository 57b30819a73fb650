"""Train a HiFi-GAN vocoder from a folder of audio (the recipe of jik876/hifi-gan ``train.py``).

Each step takes ``batch_size`` random crops of ``segment_size`` samples, computes their mel with
the generator's contract (:attr:`HiFiGANConfig.mel`), vocodes it, and makes one update of the
discriminators (MPD + MSD, least squares) and then one of the generator
(adversarial + 2 x feature matching + 45 x L1 distance of the mels up to Nyquist). AdamW with
lr 2e-4, betas (0.8, 0.99), the learning rate multiplied by 0.999 after every epoch (a pass over
the training files), batch 16 and 8192-sample crops, as in the paper. The ``debug`` preset
trains with batch 2 and discriminators 8x narrower (see :class:`TrainConfig`) so that a CPU
step takes about half a second.

The output folder keeps the official file names; the generators are avtool checkpoints, read
by the front door (``avtool vocode --model OUT/g_XXXXXXXX``) and :func:`hifigan.load`:

* ``config.json``: the official keys (architecture, audio and training), so the file works with
  jik876's code and with :meth:`HiFiGANConfig.from_dict`;
* ``g_XXXXXXXX``: the generator after XXXXXXXX updates, in the one checkpoint format
  (:mod:`avtool.models.checkpoint`, family ``hifigan``: the architecture inside, the published
  ``weight_g``/``weight_v`` key names, ``extra`` ``{"steps", "epoch"}``); the
  ``{"generator"}`` files of earlier runs still resume and warm-start (:func:`read_generator`);
* ``do_XXXXXXXX``: ``{"mpd", "msd", "optim_g", "optim_d", "steps", "epoch"}``, to resume (the
  reference's layout of the training state);
* ``train_log.jsonl``: one JSON record per logged step: ``step``, ``epoch``, ``lr``,
  ``loss_disc`` (D total), ``loss_gen`` (G total), ``loss_adv``, ``loss_fm``, ``loss_mel``
  (unweighted mel L1 of the batch), ``heldout_mel_l1`` (the same on the held-out file),
  ``seconds`` (since this process started training) and ``seconds_per_step``;
* ``run.json``: the held-out file, the training files and the library versions.

    python -m avtool.training.hifigan --data LJSpeech-1.1/wavs --out runs/lj --config v1

Fine-tuning a published generator on one speaker (``--init``: a registry name or a ``g_``
file; the discriminators start from random weights, since no published ``do_`` file ships),
on a list of files, for a bounded time (``--max-minutes``: the run stops and checkpoints after
the step that passes it)::

    python -m avtool.training.hifigan --data s1_train.txt --out runs/s1 --config v1 \
        --init hifigan-v1-universal --learning-rate 1e-4 --disc-width-divisor 4 \
        --batch-size 8 --steps 400 --max-minutes 40

On the CPU, runs are bit-for-bit reproducible for a given seed and thread count, resumed or
not: the crops of step ``s`` depend only on ``(seed, s)``. On a GPU they are not (cuDNN's
autotuned kernels are enabled for speed).
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import logging
import os
import re
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from avtool.errors import InputError, ModelError
from avtool.io.audio import load_audio
from avtool.io.features import MelSpec, mel_spectrogram
from avtool.models import checkpoint
from avtool.models.hifigan import PRESETS, HiFiGANConfig, build, to_checkpoint
from avtool.models.hifigan.discriminators import (
    MultiPeriodDiscriminator,
    MultiScaleDiscriminator,
    discriminator_loss,
    feature_loss,
    generator_loss,
)
from avtool.models.state_dict import save_atomic
from avtool.models.weightnorm import load_weights, read_checkpoint
from avtool.registry import resolve
from avtool.runtime import resolve_device, versions, write_json
from avtool.training.command import REQUIRED, add_flags, call_with_flags, run_command
from avtool.training.loop import Cadence, run_steps

__all__ = [
    "AUDIO_SUFFIXES",
    "TrainConfig",
    "TrainResult",
    "export_generator",
    "find_audio_files",
    "main",
    "read_generator",
    "train",
]

log = logging.getLogger(__name__)

#: File types taken from the data folder (searched recursively).
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3", ".mkv", ".mp4", ".mpg", ".mpeg")
#: Loss weights of the paper (the feature-matching factor 2 is inside ``feature_loss``).
MEL_LOSS_WEIGHT = 45.0
#: Peak level the training audio is normalised to (the reference's ``normalize(x) * 0.95``).
PEAK_LEVEL = 0.95
#: Longest stretch of the held-out file that is vocoded for the validation mel L1, in seconds.
HELDOUT_SECONDS = 10.0
LOG_NAME = "train_log.jsonl"
#: The front door's family of the generators written here.
FAMILY = "hifigan"
_CHECKPOINT = re.compile(r"^(g|do)_(\d{8})$")


@dataclass(frozen=True)
class TrainConfig:
    """Training hyper-parameters under the official ``config.json`` names.

    Attributes:
        batch_size: crops per step.
        learning_rate: AdamW learning rate at step 0 (both optimisers).
        adam_b1: AdamW beta 1.
        adam_b2: AdamW beta 2.
        lr_decay: factor applied to the learning rate after every epoch.
        seed: seeds the weights and the crops.
        segment_size: crop length in samples; a multiple of the hop length.
        fmax_for_loss: top of the loss mel in Hz; None is Nyquist (the paper's choice: the
            generator is also judged above the input mel's 8 kHz).
        discriminator_width_divisor: divides every discriminator width (ours, not official).
            1 is the paper's (70 M parameters, needed to use published ``do_`` files); the
            debug preset uses 8 so that CPU steps take a fraction of a second.
    """

    batch_size: int = 16
    learning_rate: float = 2e-4
    adam_b1: float = 0.8
    adam_b2: float = 0.99
    lr_decay: float = 0.999
    seed: int = 1234
    segment_size: int = 8192
    fmax_for_loss: float | None = None
    discriminator_width_divisor: int = 1

    def __post_init__(self) -> None:
        if self.batch_size < 1 or self.segment_size < 1:
            raise InputError(
                f"batch_size and segment_size must be positive, got {self.batch_size} and "
                f"{self.segment_size}"
            )
        if self.discriminator_width_divisor not in (1, 2, 4, 8):
            raise InputError(
                f"discriminator_width_divisor must be 1, 2, 4 or 8, got "
                f"{self.discriminator_width_divisor}"
            )

    @classmethod
    def for_preset(cls, name: str) -> TrainConfig:
        """The paper's settings; for ``debug``, batch 2 and discriminators 8x narrower."""
        if name == "debug":
            return cls(batch_size=2, discriminator_width_divisor=8)
        return cls()

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TrainConfig:
        """The training keys of an official ``config.json`` (other keys are ignored)."""
        return cls(**{f.name: data[f.name] for f in fields(cls) if f.name in data})


@dataclass(frozen=True)
class TrainResult:
    """What :func:`train` left behind.

    Attributes:
        step: updates done in total (resumed runs count the earlier ones).
        generator: path of the last ``g_XXXXXXXX``.
        discriminators: path of the last ``do_XXXXXXXX``.
        log: path of the JSONL training log.
        last: the last log record (empty when no step ran).
    """

    step: int
    generator: Path
    discriminators: Path
    log: Path
    last: dict[str, Any]


# --------------------------------------------------------------------------- config.json


def official_config(config: HiFiGANConfig, training: TrainConfig) -> dict[str, Any]:
    """``config.json`` for jik876's code and ours: architecture, audio and training keys.

    A ``mel`` entry (our full contract) is added only when the official audio keys cannot
    describe the mel (e.g. a log10 mel); :meth:`HiFiGANConfig.from_dict` then prefers it.
    """
    mel = config.mel
    data: dict[str, Any] = {
        "resblock": config.resblock,
        "num_gpus": 0,
        **asdict(training),
        "upsample_rates": list(config.upsample_rates),
        "upsample_kernel_sizes": list(config.upsample_kernel_sizes),
        "upsample_initial_channel": config.upsample_initial_channel,
        "resblock_kernel_sizes": list(config.resblock_kernel_sizes),
        "resblock_dilation_sizes": [list(d) for d in config.resblock_dilation_sizes],
        "num_mels": config.num_mels,
        "num_freq": mel.n_bins,
        "n_fft": mel.n_fft,
        "hop_size": mel.hop_length,
        "win_size": mel.win_length,
        "sampling_rate": mel.sample_rate,
        "fmin": mel.fmin,
        "fmax": mel.fmax,
        # Read by the reference's train.py (its DataLoader workers, multi-GPU set-up).
        "num_workers": 4,
        "dist_config": {
            "dist_backend": "nccl",
            "dist_url": "tcp://localhost:54321",
            "world_size": 1,
        },
    }
    if HiFiGANConfig.from_dict(data).mel != mel:
        data["mel"] = mel.to_dict()
    return data


def _read_config(
    config: str | os.PathLike[str] | HiFiGANConfig,
) -> tuple[HiFiGANConfig, TrainConfig]:
    """A preset name, an official ``config.json`` path, or a generator config (paper training)."""
    if isinstance(config, HiFiGANConfig):
        return config, TrainConfig()
    if isinstance(config, str) and config in PRESETS:
        return HiFiGANConfig.preset(config), TrainConfig.for_preset(config)
    path = Path(config)
    if not path.is_file():
        raise InputError(f"--config {config}: neither a preset ({', '.join(PRESETS)}) nor a file")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputError(f"{path}: unreadable config ({exc})") from exc
    return HiFiGANConfig.from_dict(data), TrainConfig.from_dict(data)


# --------------------------------------------------------------------------- data


def find_audio_files(data_dir: str | os.PathLike[str]) -> list[Path]:
    """Audio and video files under ``data_dir`` (recursively, sorted by path), or listed in it.

    ``data_dir`` may be a ``.txt`` file with one path a line (relative paths are taken from
    the list's folder; blank lines and ``#`` comments are skipped), kept in the listed order,
    so that a split's training files plus one held-out file last can be given exactly.

    Raises:
        InputError: not a folder or list, a listed file that does not exist, or fewer than
            two files (one is held out).
    """
    root = Path(data_dir)
    if root.is_file() and root.suffix == ".txt":
        try:
            lines = root.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError(f"{root}: unreadable file list ({exc})") from exc
        files = []
        for number, line in enumerate(lines, 1):
            text = line.strip()
            if not text or text.startswith("#"):
                continue
            path = Path(text) if Path(text).is_absolute() else root.parent / text
            if not path.is_file():
                raise InputError(f"{root}:{number}: {path} does not exist")
            files.append(path)
    elif root.is_dir():
        files = sorted(p for p in root.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES)
    else:
        raise InputError(f"{root}: not a folder or a .txt list of files")
    if len(files) < 2:
        raise InputError(
            f"{root}: found {len(files)} audio files ({', '.join(AUDIO_SUFFIXES)}); training "
            "needs at least two (one is held out for validation)"
        )
    return files


class AudioCrops:
    """Random ``segment_size`` crops of a list of files, decoded once and kept in memory.

    The memory grows to the decoded size of the set (float32: 24 h of 22.05 kHz audio is
    7.6 GB). Crops of step ``s`` depend only on ``(seed, s)``, so a resumed run sees the same
    batches as an uninterrupted one.

    Args:
        files: the training files.
        sample_rate: rate the audio is decoded at, in Hz.
        segment_size: crop length in samples (shorter files are zero-padded).
        seed: seeds the order of the files and the crop offsets.
    """

    def __init__(
        self, files: Sequence[Path], sample_rate: int, segment_size: int, seed: int
    ) -> None:
        self.files = list(files)
        self.sample_rate = sample_rate
        self.segment_size = segment_size
        self.seed = seed
        self._cache: dict[int, np.ndarray] = {}

    def audio(self, index: int) -> np.ndarray:
        """File ``index`` as ``(T,)`` float32 mono, peak-normalised to :data:`PEAK_LEVEL`."""
        if index not in self._cache:
            audio, _ = load_audio(self.files[index], self.sample_rate)
            self._cache[index] = normalize_peak(audio)
        return self._cache[index]

    def epoch_of(self, step: int, batch_size: int) -> int:
        """Whole passes over the files done before step ``step`` (0-based)."""
        return step * batch_size // len(self.files)

    def batch(self, step: int, batch_size: int) -> torch.Tensor:
        """The crops of step ``step`` (0-based): ``(batch_size, 1, segment_size)`` float32."""
        crops = []
        for sample in range(step * batch_size, (step + 1) * batch_size):
            # Every epoch visits each file once, in its own seeded order.
            epoch, position = divmod(sample, len(self.files))
            order = np.random.default_rng([self.seed, 0, epoch]).permutation(len(self.files))
            audio = self.audio(int(order[position]))
            spare = len(audio) - self.segment_size
            if spare >= 0:
                start = int(np.random.default_rng([self.seed, 1, sample]).integers(spare + 1))
                crops.append(audio[start : start + self.segment_size])
            else:
                crops.append(np.pad(audio, (0, -spare)))
        return torch.from_numpy(np.stack(crops)).unsqueeze(1)


def normalize_peak(audio: np.ndarray, level: float = PEAK_LEVEL) -> np.ndarray:
    """``audio`` scaled so its largest absolute sample is ``level`` (silence is left as is)."""
    peak = float(np.max(np.abs(audio), initial=0.0))
    return audio if peak == 0 else (audio * (level / peak)).astype(np.float32)


# --------------------------------------------------------------------------- checkpoints


def checkpoint_steps(out_dir: Path) -> list[int]:
    """Steps that have both a ``g_`` and a ``do_`` file in ``out_dir``, ascending."""
    found: dict[str, set[int]] = {"g": set(), "do": set()}
    if out_dir.is_dir():
        for path in out_dir.iterdir():
            match = _CHECKPOINT.match(path.name)
            if match:
                found[match[1]].add(int(match[2]))
    return sorted(found["g"] & found["do"])


def save_generator(
    generator: nn.Module,
    path: Path,
    extra: Mapping[str, Any] | None = None,
    *,
    half: bool = False,
) -> Path:
    """Write a generator as an avtool checkpoint (family ``hifigan``), atomically.

    Args:
        generator: the network (its ``config`` goes inside; weight norm as published).
        path: the file (``g_XXXXXXXX`` or a shipped ``.pt``).
        extra: training facts (``steps``, ``epoch``).
        half: store floating-point tensors as float16 (half the size; widened on loading).
    """
    data = to_checkpoint(generator)  # the published weight_g / weight_v key names
    state = {
        k: v.half() if half and v.is_floating_point() else v for k, v in data["generator"].items()
    }
    return checkpoint.save(path, FAMILY, data["config"], state, extra)


def read_generator(path: str | os.PathLike[str]) -> checkpoint.Checkpoint:
    """A generator file: this format, or the published ``{"generator"}`` layout (with the
    ``config`` earlier runs of this trainer stored beside it, if any; other keys go to
    ``extra``). Registry files and ``g_`` files of earlier runs read the same way.

    Raises:
        ModelError: unreadable, another family's checkpoint, or no generator inside.
    """
    if checkpoint.is_checkpoint(path):
        return checkpoint.read(path, FAMILY)
    data = read_checkpoint(path)
    if not isinstance(data, Mapping) or not isinstance(data.get("generator"), Mapping):
        raise ModelError(f"{path}: no 'generator' state dict in the checkpoint")
    rest = {k: v for k, v in data.items() if k not in ("generator", "config")}
    return checkpoint.Checkpoint(
        FAMILY, dict(data.get("config") or {}), dict(data["generator"]), rest
    )


@contextlib.contextmanager
def _frozen(*modules: nn.Module) -> Iterator[None]:
    """No parameter gradients for ``modules`` (inputs still get theirs)."""
    params = [p for m in modules for p in m.parameters()]
    for p in params:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p in params:
            p.requires_grad_(True)


# --------------------------------------------------------------------------- training


def train(
    data_dir: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    config: str | os.PathLike[str] | HiFiGANConfig | None = None,
    steps: int = 1000,
    batch_size: int | None = None,
    seed: int | None = None,
    device: str = "auto",
    log_every: int = 100,
    checkpoint_every: int = 5000,
    resume: bool = False,
    *,
    training: TrainConfig | None = None,
    keep_optimizer_states: int = 2,
    init: str | os.PathLike[str] | None = None,
    max_seconds: float | None = None,
) -> TrainResult:
    """Train (or go on training) a HiFi-GAN generator and its discriminators.

    Args:
        data_dir: folder of audio or video files (searched recursively, see
            :data:`AUDIO_SUFFIXES`), or a ``.txt`` list of them (:func:`find_audio_files`),
            decoded at the config's sample rate, mono. The last file (by path; for a list, the
            last listed) is held out for the validation mel L1; the others are trained on.
        out_dir: where checkpoints, ``config.json`` and the log go (created).
        config: a preset name (``debug``, ``v1``, ``v2``, ``v3``; training settings from
            :meth:`TrainConfig.for_preset`), the path of an official ``config.json`` (its
            training keys are used too), or a generator config (paper training settings).
            None: ``out_dir``'s ``config.json`` when resuming, else ``v1``.
        steps: total updates to reach; a run resumed at step ``k`` makes ``steps - k`` more.
        batch_size: overrides the config's ``batch_size``.
        seed: overrides the config's ``seed``.
        device: ``auto``, ``cpu`` or ``cuda``.
        log_every: append a record to ``train_log.jsonl`` every this many steps (also after
            the first and the last step).
        checkpoint_every: write ``g_``/``do_`` files every this many steps (and at the end).
        resume: go on from the latest ``g_``/``do_`` pair in ``out_dir``, if any.
        training: overrides every training setting (then ``batch_size``/``seed`` still apply).
        keep_optimizer_states: older ``do_`` files beyond this many are deleted (a V1 one is
            about 1 GB); every ``g_`` file is kept.
        init: generator weights to start a new run from (fine-tuning): a registry name
            (e.g. ``hifigan-v1-universal``) or a ``g_`` file of the same architecture. The
            discriminators and optimisers start fresh. Ignored when resuming.
        max_seconds: stop after the first step that ends this many seconds after training
            began (the checkpoint is written there); None runs to ``steps``. The step count
            reached is in the log, so the run can be repeated exactly with ``steps``.

    Returns:
        The last step, checkpoint paths and log record.

    Raises:
        InputError: bad data folder or settings, ``out_dir`` already holding checkpoints
            without ``resume``, or a ``config`` that disagrees with the one being resumed.
        ModelError: a checkpoint (or ``init``) that does not fit, or a loss that became
            NaN/infinite.
        SetupError: cuda asked for and absent, or ``out_dir`` not writable.
    """
    cadence = Cadence(steps, log_every, checkpoint_every, max_seconds)
    out = Path(out_dir)
    done = checkpoint_steps(out)
    if done and not resume:
        raise InputError(
            f"{out} already holds checkpoints up to step {done[-1]}; pass --resume to go on "
            "training, or choose another folder"
        )
    start_step = done[-1] if done else 0
    stored = out / "config.json"
    if config is None:
        config = stored if resume and stored.is_file() else "v1"
    generator_config, train_config = _read_config(config)
    if done:
        previous = _read_config(stored)[0] if stored.is_file() else None
        if previous is not None and previous != generator_config:
            raise InputError(f"{stored} describes another generator than --config {config}")
    train_config = training or train_config
    train_config = replace(
        train_config,
        batch_size=train_config.batch_size if batch_size is None else batch_size,
        seed=train_config.seed if seed is None else seed,
    )
    mel_spec = generator_config.mel
    if train_config.segment_size % mel_spec.hop_length:
        raise InputError(
            f"segment_size {train_config.segment_size} must be a multiple of the hop length "
            f"{mel_spec.hop_length}"
        )
    loss_spec = replace(mel_spec, fmax=train_config.fmax_for_loss)
    run_on = torch.device(resolve_device(device))
    if run_on.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed crop shapes: the autotuned kernels pay

    files = find_audio_files(data_dir)
    heldout_file, train_files = files[-1], files[:-1]
    out.mkdir(parents=True, exist_ok=True)
    write_json(stored, official_config(generator_config, train_config))
    write_json(
        out / "run.json",
        {
            "data_dir": str(Path(data_dir)),
            "heldout": [str(heldout_file)],
            "train": [str(p) for p in train_files],
            "device": str(run_on),
            "init": None if init is None else str(init),
            "versions": versions(),
        },
    )

    # Weights are drawn on the CPU, so they depend on the seed only, not on the device.
    torch.manual_seed(train_config.seed)
    generator = build(generator_config)
    divisor = train_config.discriminator_width_divisor
    mpd = MultiPeriodDiscriminator(width_divisor=divisor)
    msd = MultiScaleDiscriminator(width_divisor=divisor)
    for module in (generator, mpd, msd):
        module.to(run_on).train()
    betas = (train_config.adam_b1, train_config.adam_b2)
    optim_g = torch.optim.AdamW(generator.parameters(), train_config.learning_rate, betas=betas)
    # MSD first, then MPD: the reference's parameter order, so its do_ files load.
    optim_d = torch.optim.AdamW(
        itertools.chain(msd.parameters(), mpd.parameters()), train_config.learning_rate, betas=betas
    )
    if done:
        _resume(out, start_step, generator, mpd, msd, optim_g, optim_d)
        log.info("resuming %s at step %d", out, start_step)
    elif init is not None:
        _init_generator(generator, init)
        log.info("generator initialised from %s", init)

    crops = AudioCrops(
        train_files, mel_spec.sample_rate, train_config.segment_size, train_config.seed
    )
    heldout = torch.from_numpy(_heldout_audio(heldout_file, mel_spec.sample_rate)).to(run_on)
    log_path = out / LOG_NAME
    g_path, do_path = out / f"g_{start_step:08d}", out / f"do_{start_step:08d}"
    record: dict[str, Any] = {}
    last_logged = (start_step, 0.0)
    batch = train_config.batch_size

    def update(step: int) -> dict[str, float]:
        lr = train_config.learning_rate * train_config.lr_decay ** crops.epoch_of(step, batch)
        for group in itertools.chain(optim_g.param_groups, optim_d.param_groups):
            group["lr"] = lr
            group["initial_lr"] = train_config.learning_rate  # what the reference's scheduler reads
        audio = crops.batch(step, batch).to(run_on, non_blocking=True)
        return _update(audio, generator, mpd, msd, optim_g, optim_d, mel_spec, loss_spec)

    def report(done: int, losses: Mapping[str, float], seconds: float) -> None:
        nonlocal record, last_logged
        epoch = crops.epoch_of(done - 1, batch)
        record = {
            "step": done,
            "epoch": epoch,
            "lr": train_config.learning_rate * train_config.lr_decay**epoch,
            **{k: round(v, 6) for k, v in losses.items()},
            "heldout_mel_l1": round(_heldout_mel_l1(generator, heldout, mel_spec, loss_spec), 6),
            "seconds": round(seconds, 3),
            "seconds_per_step": round((seconds - last_logged[1]) / (done - last_logged[0]), 4),
        }
        last_logged = (done, seconds)
        with open(log_path, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")
        log.info(
            "step %d  D %.3f  G %.3f  mel %.3f  held-out mel %.3f  %.2f s/step",
            done,
            record["loss_disc"],
            record["loss_gen"],
            record["loss_mel"],
            record["heldout_mel_l1"],
            record["seconds_per_step"],
        )

    def save(done: int) -> None:
        nonlocal g_path, do_path
        epoch = crops.epoch_of(done - 1, batch)
        g_path, do_path = _checkpoint(out, done, epoch, generator, mpd, msd, optim_g, optim_d)
        _prune(out, keep_optimizer_states)

    done = run_steps(start_step, cadence, update, report, save, report_first=True)
    return TrainResult(done, g_path, do_path, log_path, record)


def _update(
    audio: torch.Tensor,
    generator: nn.Module,
    mpd: MultiPeriodDiscriminator,
    msd: MultiScaleDiscriminator,
    optim_g: torch.optim.Optimizer,
    optim_d: torch.optim.Optimizer,
    mel_spec: MelSpec,
    loss_spec: MelSpec,
) -> dict[str, float]:
    """One discriminator update then one generator update on ``(B, 1, T)`` real audio.

    Returns:
        ``loss_disc`` (D total), ``loss_gen`` (G total), ``loss_adv``, ``loss_fm`` and
        ``loss_mel`` (the unweighted L1 between the loss mels) as floats.
    """
    real = audio
    with torch.no_grad():
        mel_in = mel_spectrogram(real.squeeze(1), mel_spec)
        mel_real = mel_spectrogram(real.squeeze(1), loss_spec)
    fake = generator(mel_in)

    optim_d.zero_grad(set_to_none=True)
    real_mpd, fake_mpd, _, _ = mpd(real, fake.detach())
    real_msd, fake_msd, _, _ = msd(real, fake.detach())
    loss_disc = (
        discriminator_loss(real_mpd, fake_mpd)[0] + discriminator_loss(real_msd, fake_msd)[0]
    )
    loss_disc.backward()
    optim_d.step()

    optim_g.zero_grad(set_to_none=True)
    mel_l1 = F.l1_loss(mel_spectrogram(fake.squeeze(1), loss_spec), mel_real)
    # The discriminators only pass gradients through here: freezing their weights skips
    # the weight gradients the reference computes and then discards.
    with _frozen(mpd, msd):
        loss_adv, loss_fm = torch.zeros((), device=real.device), torch.zeros((), device=real.device)
        for disc in (mpd, msd):
            _, fake_logits, real_maps, fake_maps = disc(real, fake)
            loss_adv = loss_adv + generator_loss(fake_logits)[0]
            loss_fm = loss_fm + feature_loss(real_maps, fake_maps)
        loss_gen = loss_adv + loss_fm + MEL_LOSS_WEIGHT * mel_l1
        loss_gen.backward()
    optim_g.step()
    names = ("loss_disc", "loss_gen", "loss_adv", "loss_fm", "loss_mel")
    # One device-to-host copy per step (a GPU waits for its queue only once).
    values = torch.stack([loss_disc, loss_gen, loss_adv, loss_fm, mel_l1]).detach().tolist()
    return dict(zip(names, values, strict=True))


def _init_generator(generator: nn.Module, init: str | os.PathLike[str]) -> None:
    """Load a registry entry's (or a ``g_`` file's) weights into the fresh ``generator``."""
    path = Path(init)
    if not path.is_file():
        path = resolve(str(init), task="vocode", quiet=True).path
    stored = read_generator(path)
    load_weights(generator, stored.state_dict, source=str(path), what="HiFi-GAN generator")


def export_generator(
    checkpoint_file: str | os.PathLike[str], out: str | os.PathLike[str], *, half: bool = True
) -> Path:
    """Write a ``g_`` file's generator for shipping: float16 tensors (half the size) by default.

    The file is an avtool checkpoint (family ``hifigan``, :func:`save_generator`), read by the
    front door and :func:`hifigan.load` (the weights become float32 again when loaded); weight
    norm is kept, as published. The shipped files written before keep their layout.

    Args:
        checkpoint_file: a ``g_XXXXXXXX`` file from :func:`train` (either layout).
        out: the file to write (atomically).
        half: store floating-point tensors as float16.

    Returns:
        ``out`` as a path.

    Raises:
        ModelError: ``checkpoint_file`` holds no generator, or no config to rebuild it.
    """
    stored = read_generator(checkpoint_file)
    if not stored.config:
        raise ModelError(f"{checkpoint_file}: no generator config inside (not a g_ file of train)")
    with torch.device("meta"):
        generator = build(HiFiGANConfig.from_dict(stored.config))
    load_weights(
        generator, stored.state_dict, source=str(checkpoint_file), what="HiFi-GAN generator"
    )
    return save_generator(generator, Path(out), stored.extra, half=half)


def _heldout_audio(path: Path, sample_rate: int) -> np.ndarray:
    audio, _ = load_audio(path, sample_rate, duration=HELDOUT_SECONDS)
    return normalize_peak(audio)


def _heldout_mel_l1(
    generator: nn.Module, audio: torch.Tensor, mel_spec: MelSpec, loss_spec: MelSpec
) -> float:
    """L1 between the loss mels of ``(T,)`` held-out audio and of its vocoded mel."""
    generator.eval()
    try:
        with torch.no_grad():
            fake = generator(mel_spectrogram(audio, mel_spec)).squeeze(1)
            real = audio[: fake.shape[-1]].unsqueeze(0)  # the generator gives whole hops only
            return F.l1_loss(
                mel_spectrogram(fake, loss_spec), mel_spectrogram(real, loss_spec)
            ).item()
    finally:
        generator.train()


def _checkpoint(
    out: Path,
    step: int,
    epoch: int,
    generator: nn.Module,
    mpd: nn.Module,
    msd: nn.Module,
    optim_g: torch.optim.Optimizer,
    optim_d: torch.optim.Optimizer,
) -> tuple[Path, Path]:
    g_path = save_generator(generator, out / f"g_{step:08d}", {"steps": step, "epoch": epoch})
    # "steps" counts updates done; the reference reads it as the index of the last one and
    # would resume at steps + 1 (its file names are one lower than ours for the same weights).
    states = {
        "mpd": mpd.state_dict(),
        "msd": msd.state_dict(),
        "optim_g": optim_g.state_dict(),
        "optim_d": optim_d.state_dict(),
        "steps": step,
        "epoch": epoch,
    }
    do_path = out / f"do_{step:08d}"
    # Written to a temporary name first: an interrupted save never leaves a truncated
    # checkpoint that a later --resume would pick up.
    save_atomic(states, do_path)
    return g_path, do_path


def _resume(
    out: Path,
    step: int,
    generator: nn.Module,
    mpd: nn.Module,
    msd: nn.Module,
    optim_g: torch.optim.Optimizer,
    optim_d: torch.optim.Optimizer,
) -> None:
    g_file, do_file = out / f"g_{step:08d}", out / f"do_{step:08d}"
    stored = read_generator(g_file)
    load_weights(generator, stored.state_dict, source=str(g_file), what="HiFi-GAN generator")
    states = read_checkpoint(do_file)
    try:  # optimisers move the loaded moments to their parameters' device themselves
        mpd.load_state_dict(states["mpd"])
        msd.load_state_dict(states["msd"])
        optim_g.load_state_dict(states["optim_g"])
        optim_d.load_state_dict(states["optim_d"])
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        raise ModelError(
            f"{do_file}: does not fit these discriminators/optimisers (another "
            f"discriminator_width_divisor?): {str(exc).splitlines()[0]}"
        ) from exc


def _prune(out: Path, keep: int) -> None:
    for step in checkpoint_steps(out)[:-keep] if keep > 0 else []:
        (out / f"do_{step:08d}").unlink(missing_ok=True)


# --------------------------------------------------------------------------- command line


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m avtool.training.hifigan``; returns the exit code."""
    parser = argparse.ArgumentParser(
        prog="python -m avtool.training.hifigan", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--data", required=True, help="folder of audio/video files, or a .txt list of them"
    )
    add_flags(parser, out=REQUIRED)
    parser.add_argument(
        "--config",
        default=None,
        help="debug, v1, v2, v3 or a config.json (default: the resumed run's, else v1)",
    )
    add_flags(parser, steps=1000, batch_size=None, seed=None)
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    add_flags(parser, log_every=100, checkpoint_every=5000)
    parser.add_argument("--resume", action="store_true", help="go on from the last checkpoint")
    parser.add_argument(
        "--init", default=None, help="start the generator from this registry name or g_ file"
    )
    parser.add_argument("--learning-rate", type=float, default=None, help="overrides the config's")
    parser.add_argument(
        "--disc-width-divisor", type=int, default=None, choices=(1, 2, 4, 8),
        help="narrower discriminators (overrides the config's)",
    )  # fmt: skip
    add_flags(parser, max_minutes=None)
    args = parser.parse_args(argv)

    def work() -> None:
        training = None
        if args.learning_rate is not None or args.disc_width_divisor is not None:
            config = args.config
            if config is None and args.resume and (args.out / "config.json").is_file():
                config = args.out / "config.json"
            base = _read_config(config or "v1")[1]
            training = replace(
                base,
                learning_rate=args.learning_rate or base.learning_rate,
                discriminator_width_divisor=(
                    args.disc_width_divisor or base.discriminator_width_divisor
                ),
            )
        max_seconds = None if args.max_minutes is None else args.max_minutes * 60
        result = call_with_flags(
            train, args, args.data, args.out, args.config, training=training,
            max_seconds=max_seconds,
        )  # fmt: skip
        log.info("step %d: %s, %s", result.step, result.generator, result.discriminators)

    return run_command(work)


if __name__ == "__main__":
    sys.exit(main())
