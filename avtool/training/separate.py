"""Train the separation mask networks by dynamic mixing on real speech (CPU, bounded time).

    python -m avtool.training.separate audio ../shared/data data/separate/audio.npz
    python -m avtool.training.separate visual data/grid_s1_cache data/separate/visual.npz
    python -m avtool.training.separate train blind data/separate OUT.pt --minutes 60
    python -m avtool.training.separate train av data/separate OUT.pt --minutes 60

Targets are GRID s1's *training split* (``avtool/datasets/grid_s1_split.json``); interferers are
LibriSpeech train-clean-100 utterances (test-other is never read here: it is the evaluation's)
and, for a few percent of the mixtures, another s1 training clip (which forces the audio-visual
model to use the lips). grid_s4 and the five non-s1 clips of grid/ are never read. The blind
model also sees LibriSpeech + LibriSpeech mixtures so it does not learn "s1 is always one of
them". Each batch is mixed afresh at a random target-to-interferer ratio in [-6, 6] dB.

Model selection: SI-SDR improvement on fixed 0 dB mixtures of s1's *validation* split with
LibriSpeech train-clean-100 interferers (with ``--grid-val``, the mean of that and s1 val clips
over other s1 val clips at other playback rates); the best checkpoint is kept, written in the
one avtool format (:mod:`avtool.models.checkpoint`, family ``masknet``; the shipped legacy
state dicts with ``NAME.pt.json`` are still read, by ``--init`` and ``interpolate`` too). A
state file beside the output lets a killed run resume.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from avtool.datasets.grid import load_item, s1_split
from avtool.io.audio import load_audio
from avtool.io.files import write_json
from avtool.io.formats import DEFAULT_LIP_READER
from avtool.metrics.separation import si_sdr_torch
from avtool.models import checkpoint, lipread_resnet, loading, state_dict
from avtool.models.separate.masknet import MaskNet, MaskNetConfig, build
from avtool.models.separate.visual import lip_reader_features
from avtool.registry import sha256_file

SAMPLE_RATE = 16000
#: The front door's family of the weights written here (``avtool-checkpoint-1`` files).
FAMILY = "masknet"
SEGMENT_SECONDS = 2.0
#: Samples of 16 kHz audio per 25 fps video frame.
FRAME_SAMPLES = SAMPLE_RATE // 25
#: Share of mixtures whose interferer is another s1 clip.
S1_INTERFERER = 0.08
#: Share of blind-model mixtures with a LibriSpeech target instead of s1.
LIBRI_TARGET = 0.3
SNR_RANGE = (-6.0, 6.0)
#: Share of blind-model examples with one voice only (the other source silent): the model
#: learns to leave the second stem empty instead of splitting one voice in two.
SINGLE_SPEAKER = 0.08
#: Ceiling of the thresholded SNR loss of one-voice examples (dB).
SNR_CEILING_DB = 30.0
#: Range of the playback-rate factor that turns an s1 interferer into a pseudo-speaker
#: (pitch, formants and tempo all scale by it; 1.0 everywhere disables it).
PSEUDO_SPEAKER_RATE = (0.8, 1.25)
#: Playback rates of the validation set's s1-interferer mixtures (cycled over the clips).
VAL_PSEUDO_RATES = (0.85, 1.15, 1.25)


def change_rate(audio: np.ndarray, rate: float) -> np.ndarray:
    """``audio`` played ``rate`` times faster (linear interpolation): ``(T,)`` -> ``(T / rate,)``.

    A cheap pseudo-speaker: every frequency is multiplied by ``rate``, so an s1 clip at 1.2
    sounds like a higher-pitched talker with a shorter vocal tract saying the same grammar.
    """
    if rate == 1.0 or len(audio) < 2:
        return audio
    positions = np.arange(0.0, len(audio) - 1, rate)
    return np.interp(positions, np.arange(len(audio)), audio).astype(audio.dtype)


def _to_int16(audio: np.ndarray) -> np.ndarray:
    return (np.clip(audio, -1.0, 1.0) * 32767.0).round().astype(np.int16)


def prepare_audio(data_root: str | Path, out: str | Path) -> Path:
    """Decode every clip the trainer and the evaluation mix, once, to 16 kHz int16.

    Keys: ``s1/<id>`` (all 900 s1 clips; the split decides who may train), ``train/<utt>``
    (LibriSpeech train-clean-100), ``other/<utt>`` (test-other: evaluation only),
    ``s4/<id>`` and ``grid/<id>`` (unseen GRID speakers: evaluation only).
    """
    root = Path(data_root)
    arrays: dict[str, np.ndarray] = {}
    sources = [
        ("s1", sorted((root / "grid_s1" / "clips").glob("*.mkv"))),
        ("train", sorted((root / "librispeech" / "train-clean-100").glob("*.flac"))),
        ("other", sorted((root / "librispeech" / "test-other").glob("*/*.flac"))),
        ("s4", sorted((root / "grid_s4" / "clips").glob("*.mkv"))),
        ("grid", sorted(p for p in (root / "grid").glob("*.mpg") if p.stem != "bbaf2n")),
    ]
    for prefix, paths in sources:
        for path in paths:
            audio, _ = load_audio(path, sample_rate=SAMPLE_RATE)
            arrays[f"{prefix}/{path.stem}"] = _to_int16(audio)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_suffix(".part.npz")
    np.savez(partial, **arrays)
    partial.replace(out)
    return out


def prepare_visual(
    cache_dir: str | Path, out: str | Path, lip_reader: str = DEFAULT_LIP_READER
) -> Path:
    """Run the frozen lip reader once over every cached s1 clip; ``<id>`` -> ``(T, 320)`` f16."""
    model = loading.load(lip_reader, task="lipread", detect=lambda r: lipread_resnet.FAMILY).module
    out = Path(out)
    # Incremental: clips already done (a cache still being built) are kept.
    arrays = dict(np.load(out)) if out.is_file() else {}
    for path in sorted(Path(cache_dir).glob("*.npz")):
        if path.name.endswith(".part.npz") or path.stem in arrays or path.stem == "index":
            continue
        item = load_item(cache_dir, path.stem)
        arrays[path.stem] = lip_reader_features(model, item["gray88"], item["landmarks"]).astype(
            np.float16
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_suffix(".part.npz")
    np.savez(partial, **arrays)
    partial.replace(out)
    return out


class Mixer:
    """Draws training and validation mixtures from the prepared arrays."""

    def __init__(
        self,
        data_dir: Path,
        audio_visual: bool,
        seed: int,
        *,
        s1_interferer: float = S1_INTERFERER,
        pseudo_speakers: bool = False,
    ) -> None:
        self.data_dir = Path(data_dir)
        self.audio = np.load(self.data_dir / "audio.npz")
        self.libri = [self.audio[k] for k in self.audio.files if k.startswith("train/")]
        self.audio_visual = audio_visual
        self.s1_interferer = s1_interferer
        self.pseudo_speakers = pseudo_speakers
        self.rng = np.random.default_rng(seed)
        self.length = int(SEGMENT_SECONDS * SAMPLE_RATE)
        self.frames = self.length // FRAME_SAMPLES
        self.visual: dict[str, np.ndarray] = {}
        self.visual_mtime = 0.0
        self.refresh()

    def refresh(self) -> bool:
        """(Re)read ``visual.npz`` if it changed (a GRID cache still being built adds clips).

        Returns:
            Whether the pool of s1 clips was (re)built.
        """
        path = self.data_dir / "visual.npz"
        if self.audio_visual:
            mtime = path.stat().st_mtime
            if self.visual and mtime == self.visual_mtime:
                return False
            self.visual, self.visual_mtime = dict(np.load(path)), mtime
        elif hasattr(self, "train_s1"):
            return False
        split = s1_split()
        have = set(self.visual) if self.audio_visual else None
        self.train_ids = [i for i in split["train"] if have is None or i in have]
        self.train_s1 = [self.audio[f"s1/{i}"] for i in self.train_ids]
        self.val_s1 = [
            (i, self.audio[f"s1/{i}"]) for i in split["val"] if have is None or i in have
        ]
        return True

    def _fit(self, x: np.ndarray, random: bool) -> np.ndarray:
        x = x.astype(np.float32) / 32768.0
        if len(x) >= self.length:
            start = int(self.rng.integers(0, len(x) - self.length + 1)) if random else 0
            return x[start : start + self.length]
        return np.pad(x, (0, self.length - len(x)))

    def _s1(self, index: int, random: bool) -> tuple[np.ndarray, int]:
        """An s1 clip cut at a video-frame boundary: ``(segment, first frame)``."""
        clip = self.train_s1[index].astype(np.float32) / 32768.0
        frames = len(clip) // FRAME_SAMPLES
        first = int(self.rng.integers(0, max(1, frames - self.frames + 1))) if random else 0
        seg = clip[first * FRAME_SAMPLES : first * FRAME_SAMPLES + self.length]
        return np.pad(seg, (0, self.length - len(seg))), first

    def _visual(self, clip_id: str, first: int = 0, frames: int | None = None) -> np.ndarray:
        frames = frames or self.frames
        v = self.visual[clip_id].astype(np.float32)[first : first + frames]
        return np.pad(v, ((0, frames - len(v)), (0, 0)))

    @staticmethod
    def _mix(target: np.ndarray, other: np.ndarray, snr_db: float) -> np.ndarray:
        pt = float(np.mean(target**2)) + 1e-10
        po = float(np.mean(other**2)) + 1e-10
        return other * math.sqrt(pt / po / 10 ** (snr_db / 10))

    def batch(self, size: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """``(mixture (B, T), sources (B, 2, T), visual (B, V, D) or None)``."""
        mixes, sources, visuals = [], [], []
        for _ in range(size):
            libri_target = not self.audio_visual and self.rng.random() < LIBRI_TARGET
            if libri_target:
                target = self._fit(self.libri[self.rng.integers(len(self.libri))], True)
            else:
                k = int(self.rng.integers(len(self.train_s1)))
                target, first = self._s1(k, True)
                if self.audio_visual:
                    visuals.append(self._visual(self.train_ids[k], first))
            if self.rng.random() < self.s1_interferer:
                k = int(self.rng.integers(len(self.train_s1)))
                if self.pseudo_speakers:
                    rate = float(self.rng.uniform(*PSEUDO_SPEAKER_RATE))
                    clip = change_rate(self.train_s1[k].astype(np.float32) / 32768.0, rate)
                    other = self._fit(clip * 32768.0, True)
                else:
                    other, _ = self._s1(k, True)
            else:
                other = self._fit(self.libri[self.rng.integers(len(self.libri))], True)
            other = self._mix(target, other, float(self.rng.uniform(*SNR_RANGE)))
            if not self.audio_visual and self.rng.random() < SINGLE_SPEAKER:
                other = np.zeros_like(other)
            gain = 10 ** (self.rng.uniform(-30, -10) / 20) / (np.sqrt(np.mean(target**2)) + 1e-8)
            target, other = target * gain, other * gain
            mixes.append(target + other)
            sources.append(np.stack([target, other]))
        vis = torch.from_numpy(np.stack(visuals)) if self.audio_visual else None
        return (
            torch.from_numpy(np.stack(mixes)).float(),
            torch.from_numpy(np.stack(sources)).float(),
            vis,
        )

    def validation(
        self, interferers: str = "librispeech"
    ) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]]:
        """Fixed 0 dB mixtures of s1 val clips.

        Args:
            interferers: ``"librispeech"`` (train-clean-100 utterances) or ``"s1"`` (another s1
                val clip at a playback rate from :data:`VAL_PSEUDO_RATES`: GRID-grammar
                pseudo-speakers, like the evaluation's unseen GRID talkers).
        """
        rng = np.random.default_rng(1234)
        out = []
        for j, (clip_id, clip) in enumerate(self.val_s1):
            target = clip.astype(np.float32) / 32768.0
            n = len(target)
            if interferers == "s1":
                _, source = self.val_s1[(j + 1 + j % 5) % len(self.val_s1)]
                rate = VAL_PSEUDO_RATES[j % len(VAL_PSEUDO_RATES)]
                other = change_rate(source.astype(np.float32) / 32768.0, rate)
                other = np.resize(other, n)
            else:
                other = self.libri[int(rng.integers(len(self.libri)))].astype(np.float32) / 32768.0
                other = np.pad(other, (0, max(0, n - len(other))))[:n]
            other = self._mix(target, other, 0.0)
            frames = int(np.ceil(n / FRAME_SAMPLES))
            vis = (
                torch.from_numpy(self._visual(clip_id, 0, frames))[None]
                if self.audio_visual
                else None
            )
            out.append(
                (
                    torch.from_numpy(target + other)[None].float(),
                    torch.from_numpy(np.stack([target, other]))[None].float(),
                    vis,
                )
            )
        return out


def thresholded_snr(estimate: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """SNR in dB capped softly at :data:`SNR_CEILING_DB`: ``(..., T)`` -> ``(...)``."""
    power = reference.pow(2).sum(-1)
    floor = power * 10 ** (-SNR_CEILING_DB / 10)
    return 10 * torch.log10((power + 1e-8) / ((reference - estimate).pow(2).sum(-1) + floor + 1e-8))


def pit_loss(estimates: torch.Tensor, sources: torch.Tensor) -> torch.Tensor:
    """uPIT negative SI-SDR for two sources: ``(B, 2, T)`` each -> scalar (best of 2 orders).

    Examples whose second source is silent (one voice) score the thresholded SNR of the stem
    nearer the voice instead: since the stems sum to the mixture, that drives the other stem
    to silence.
    """
    straight = si_sdr_torch(estimates, sources).mean(dim=1)
    swapped = si_sdr_torch(estimates.flip(1), sources).mean(dim=1)
    score = torch.maximum(straight, swapped)
    single = sources[:, 1].abs().amax(dim=-1) == 0
    if bool(single.any()):
        voice = sources[single, 0]
        one = torch.maximum(
            thresholded_snr(estimates[single, 0], voice),
            thresholded_snr(estimates[single, 1], voice),
        )
        score = torch.where(single, torch.zeros_like(score), score)
        score = score.masked_scatter(single, one)
    return -score.mean()


def target_loss(estimates: torch.Tensor, sources: torch.Tensor) -> torch.Tensor:
    """Negative SI-SDR of the target stem (index 0)."""
    return -si_sdr_torch(estimates[:, 0], sources[:, 0]).mean()


def validate(model: MaskNet, data: Sequence) -> float:
    """Mean SI-SDR improvement (dB) of the target (blind: the better-matching order)."""
    model.eval()
    gains = []
    with torch.no_grad():
        for mix, src, vis in data:
            est = model.separate(mix, vis)
            if model.config.visual_dim:
                score = si_sdr_torch(est[:, 0], src[:, 0])
            else:
                score = torch.maximum(
                    si_sdr_torch(est, src).mean(1), si_sdr_torch(est.flip(1), src).mean(1)
                )
            gains.append(float(score - si_sdr_torch(mix, src[:, 0])))
    model.train()
    return float(np.mean(gains))


def train(
    mode: str,
    data_dir: str | Path,
    out: str | Path,
    *,
    minutes: float,
    batch_size: int = 8,
    lr: float = 1e-3,
    seed: int = 0,
    eval_every: int = 100,
    log_every: int = 10,
    init: str | Path | None = None,
    s1_interferer: float = S1_INTERFERER,
    pseudo_speakers: bool = False,
    grid_val: bool = False,
) -> dict:
    """Train ``mode`` ("blind" or "av") for at most ``minutes`` of wall-clock time.

    Writes ``out`` (the best-on-validation weights: an ``avtool-checkpoint-1`` file of family
    ``masknet``, :mod:`avtool.models.checkpoint`) with its config also in ``out.json``, the resume
    state ``out.state`` and a training record ``out.train.json``.

    Args:
        init: warm start from these mask-network weights (``.pt`` + ``.pt.json``; same mode).
        s1_interferer: share of mixtures whose interferer is another s1 training clip.
        pseudo_speakers: play those s1 interferers at a random rate in
            :data:`PSEUDO_SPEAKER_RATE` (GRID-grammar talkers of other pitch and timbre).
        grid_val: select on the mean of the LibriSpeech-interferer validation and the
            s1-pseudo-speaker one (``Mixer.validation("s1")``) instead of the former alone.
    """
    torch.set_num_threads(1)
    torch.manual_seed(seed)
    out = Path(out)
    audio_visual = mode == "av"
    if init is not None:
        config = MaskNetConfig.from_dict(
            {
                k: v
                for k, v in state_dict.read_config(init, "mask network").items()
                if k != "lip_reader"
            }
        )
        model = state_dict.load_into(build(config), init, "mask network")
        if bool(config.visual_dim) != audio_visual:
            raise ValueError(f"{init}: not a {mode} mask network")
    else:
        config = MaskNetConfig.audio_visual() if audio_visual else MaskNetConfig.blind()
        model = build(config)
    optim = torch.optim.Adam(model.parameters(), lr=lr)
    mixer = Mixer(
        Path(data_dir),
        audio_visual,
        seed,
        s1_interferer=s1_interferer,
        pseudo_speakers=pseudo_speakers,
    )
    val_sets = {"librispeech": mixer.validation()}
    if grid_val:
        val_sets["s1"] = mixer.validation("s1")
    resume = out.with_suffix(".state")
    step, best, history, elapsed = 0, -1e9, [], 0.0
    if resume.is_file():
        state = torch.load(resume, weights_only=False)  # our own file, written below
        model.load_state_dict(state["model"])
        optim.load_state_dict(state["optim"])
        step, best, history, elapsed = (
            state["step"],
            state["best"],
            state["history"],
            state["elapsed"],
        )
        mixer.rng = state["rng"]
    elif init is not None:  # the warm start is the one to beat: scored, and kept if never beaten
        scores = {name: validate(model, data) for name, data in val_sets.items()}
        best = float(np.mean(list(scores.values())))
        history.append(
            {"step": 0, "val_si_sdri": round(best, 3), "seconds": 0.0}
            | ({f"val_{k}": round(v, 3) for k, v in scores.items()} if len(scores) > 1 else {})
        )
        print(f"init val SI-SDRi {best:.2f} dB ({scores})", flush=True)
        state_dict.save(model.state_dict(), config.to_json(), out, family=FAMILY)
    loss_fn = target_loss if audio_visual else pit_loss
    start = time.monotonic() - elapsed
    running = []
    model.train()
    while time.monotonic() - start < minutes * 60:
        mix, src, vis = mixer.batch(batch_size)
        loss = loss_fn(model.separate(mix, vis), src)
        optim.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        optim.step()
        step += 1
        running.append(loss.item())
        if step % log_every == 0:
            print(
                f"step {step} loss {np.mean(running):.3f} {time.monotonic() - start:.0f}s",
                flush=True,
            )
            running = []
        if step % eval_every == 0:
            scores = {name: validate(model, data) for name, data in val_sets.items()}
            score = float(np.mean(list(scores.values())))
            entry = {
                "step": step,
                "val_si_sdri": round(score, 3),
                "seconds": round(time.monotonic() - start, 1),
            }
            if len(scores) > 1:
                entry.update({f"val_{k}": round(v, 3) for k, v in scores.items()})
            if mixer.refresh():
                entry["train_clips"] = len(mixer.train_ids)
            history.append(entry)
            detail = ", ".join(f"{k} {v:.2f}" for k, v in scores.items())
            print(
                f"step {step} val SI-SDRi {score:.2f} dB ({detail}; best {max(best, score):.2f})",
                flush=True,
            )
            if score > best:
                best = score
                state_dict.save(model.state_dict(), config.to_json(), out, family=FAMILY)
            state_dict.save_atomic(
                {
                    "model": model.state_dict(),
                    "optim": optim.state_dict(),
                    "step": step,
                    "best": best,
                    "history": history,
                    "elapsed": time.monotonic() - start,
                    "rng": mixer.rng,
                },
                resume,
            )
    record = {
        "mode": mode,
        "steps": step,
        "best_val_si_sdri_db": round(best, 3),
        "batch_size": batch_size,
        "segment_seconds": SEGMENT_SECONDS,
        "lr": lr,
        "seed": seed,
        "minutes": minutes,
        "threads": 1,
        "init": str(init) if init is not None else None,
        "validation": sorted(val_sets),
        "train_clips": len(mixer.train_ids),
        "history": history,
        "config": config.to_dict(),
        "data": "targets: GRID s1 train split; interferers: LibriSpeech train-clean-100 and "
        f"{s1_interferer:.0%} other s1 train clips"
        + (f" played at a rate uniform in {PSEUDO_SPEAKER_RATE}" if pseudo_speakers else "")
        + f"; SNR uniform {SNR_RANGE} dB",
    }
    write_json(out.with_name(out.name + ".train.json"), record)
    return record


def interpolate(
    data_dir: str | Path,
    first: str | Path,
    second: str | Path,
    out: str | Path,
    alphas: Sequence[float] = (0.25, 0.5, 0.625, 0.75, 0.875),
) -> dict:
    """Weight-space interpolation of two mask networks of one architecture (a warm-started run
    and its start: ``(1 - alpha) * first + alpha * second``), alpha chosen on validation.

    Every alpha (and 0 and 1, the two ends) is scored on the LibriSpeech-interferer and the
    s1-pseudo-speaker validation sets of :meth:`Mixer.validation` (their mean, as
    ``train --grid-val`` selects); the best is written to ``out`` (+ ``out.json``) with the
    scores in ``out.interpolate.json``. No test data is read.

    Raises:
        ValueError: the two configs differ.
    """
    torch.set_num_threads(1)
    configs = [state_dict.read_config(path, "mask network") for path in (first, second)]
    if configs[0] != configs[1]:
        raise ValueError(f"{first} and {second}: different mask network configs")
    config = MaskNetConfig.from_dict({k: v for k, v in configs[0].items() if k != "lip_reader"})
    a, b = (checkpoint.read_any(path, FAMILY).state_dict for path in (first, second))
    mixer = Mixer(Path(data_dir), bool(config.visual_dim), 0)
    val_sets = {"librispeech": mixer.validation(), "s1": mixer.validation("s1")}
    model = build(config)
    scores, best = [], None
    for alpha in sorted({0.0, 1.0, *alphas}):
        model.load_state_dict(
            {k: (1 - alpha) * a[k] + alpha * b[k] if a[k].is_floating_point() else b[k] for k in a}
        )
        sets = {name: round(validate(model, data), 3) for name, data in val_sets.items()}
        mean = round(float(np.mean(list(sets.values()))), 3)
        scores.append(
            {"alpha": alpha, "val_si_sdri": mean, **{f"val_{k}": v for k, v in sets.items()}}
        )
        print(f"alpha {alpha:g}: val SI-SDRi {mean:.2f} dB {sets}", flush=True)
        if best is None or mean > best["val_si_sdri"]:
            best = scores[-1]
            state_dict.save(model.state_dict(), config.to_json(), out, family=FAMILY)
    record = {"first": str(first), "second": str(second), "best": best, "scores": scores}
    write_json(Path(out).with_name(Path(out).name + ".interpolate.json"), record)
    return record


#: What each shipped model's registry entry says (``entries`` prints them with the hashes).
SHIPPED = {
    "masknet-blind-grid-s1": (
        "masknet-blind-grid-s1.pt",
        "STFT mask TCN, blind two-speaker separation (uPIT), 16 kHz; trained on GRID s1 + "
        "LibriSpeech train-clean-100 mixtures",
        {},
    ),
    "masknet-av-grid-s1": (
        "masknet-av-grid-s1.pt",
        "STFT mask TCN, audio-visual target extraction over the frozen lipread-grid-s1 "
        "features, 16 kHz; speaker-dependent: GRID speaker s1's face only",
        {"lip_reader": DEFAULT_LIP_READER},
    ),
}


def registry_entries(weights: str | Path) -> str:
    """The ``models.toml`` tables of the shipped mask networks, hashed from ``weights``."""
    folder = Path(weights)
    blocks = []
    for name, (file, description, config) in SHIPPED.items():
        main_file, companion = folder / file, folder / f"{file}.json"
        rel = "package:avtool/weights/separate/"
        lines = [
            f"[models.{name}]",
            'task = "separate"',
            'family = "masknet"',
            f'description = "{description}"',
            'license = "CC-BY-4.0 (GRID, LibriSpeech data); weights trained by avtool"',
            "commercial = true",
            "sample_rate = 16000",
            'homepage = "https://spandh.dcs.shef.ac.uk/gridcorpus/"',
            f'source = "{rel}{file}"',
            f'sha256 = "{sha256_file(main_file)}"',
            f"size = {main_file.stat().st_size}",
        ]
        if config:
            lines.append(
                "config = { " + ", ".join(f'{k} = "{v}"' for k, v in config.items()) + " }"
            )
        lines += [
            "",
            f'[models.{name}.files."{file}.json"]',
            f'source = "{rel}{file}.json"',
            f'sha256 = "{sha256_file(companion)}"',
            f"size = {companion.stat().st_size}",
        ]
        if config.get("lip_reader"):  # the speaker-domain guard's reference (GRID s1's face)
            ident = folder.parent / "identity" / "identity-grid-s1.npz"
            lines += [
                "",
                f'[models.{name}.files."identity-grid-s1.npz"]',
                'source = "package:avtool/weights/identity/identity-grid-s1.npz"',
                f'sha256 = "{sha256_file(ident)}"',
                f"size = {ident.stat().st_size}",
            ]
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) + "\n"


#: The ``train`` command's options, passed to :func:`train` under the same names.
TRAIN_OPTIONS = (
    "minutes", "batch_size", "seed", "eval_every", "lr", "init", "s1_interferer",
    "pseudo_speakers", "grid_val",
)  # fmt: skip


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m avtool.training.separate")
    sub = parser.add_subparsers(dest="command", required=True)
    a = sub.add_parser("audio", help="decode the speech the trainer and evaluation mix")
    a.add_argument("data_root")
    a.add_argument("out")
    v = sub.add_parser("visual", help="lip-reader features of every cached s1 clip")
    v.add_argument("cache_dir")
    v.add_argument("out")
    v.add_argument("--lip-reader", default=DEFAULT_LIP_READER)
    t = sub.add_parser("train", help="train a mask network")
    t.add_argument("mode", choices=("blind", "av"))
    t.add_argument("data_dir")
    t.add_argument("out")
    t.add_argument("--minutes", type=float, default=60.0)
    t.add_argument("--batch-size", type=int, default=8)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--eval-every", type=int, default=100)
    t.add_argument("--lr", type=float, default=1e-3)
    t.add_argument("--init", help="warm start from these weights (.pt with its .pt.json)")
    t.add_argument("--s1-interferer", type=float, default=S1_INTERFERER)
    t.add_argument("--pseudo-speakers", action="store_true")
    t.add_argument("--grid-val", action="store_true")
    w = sub.add_parser("interpolate", help="interpolate two runs' weights, alpha on validation")
    w.add_argument("data_dir")
    w.add_argument("first")
    w.add_argument("second")
    w.add_argument("out")
    w.add_argument("--alphas", default="0.25,0.5,0.625,0.75,0.875")
    e = sub.add_parser("entries", help="print the registry tables of the shipped weights")
    e.add_argument(
        "weights", nargs="?", default=str(Path(__file__).parents[1] / "weights" / "separate")
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    if args.command == "interpolate":
        alphas = [float(x) for x in args.alphas.split(",")]
        record = interpolate(args.data_dir, args.first, args.second, args.out, alphas)
        print(json.dumps(record["best"]))
    elif args.command == "entries":
        print(registry_entries(args.weights), end="")
    elif args.command == "audio":
        print(prepare_audio(args.data_root, args.out))
    elif args.command == "visual":
        print(prepare_visual(args.cache_dir, args.out, args.lip_reader))
    else:
        options = {name: getattr(args, name) for name in TRAIN_OPTIONS}
        record = train(args.mode, args.data_dir, args.out, **options)
        print(json.dumps({k: record[k] for k in ("steps", "best_val_si_sdri_db")}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
