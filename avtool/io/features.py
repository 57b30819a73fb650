"""The mel contract: how a mel spectrogram was computed, stored with it and checked.

Two-stage TTS, video-to-speech and music all hand a vocoder a mel spectrogram. A mel
computed with settings other than the ones the vocoder was trained on (another hop, another
fmax, log10 instead of ln, centred frames) still "works" and sounds wrong, so here the
settings travel with the array: :class:`MelSpec` is the contract, :func:`save_mel` stores it
beside the mel, :func:`load_mel` reads it back, :func:`check_mel` catches broken arrays and
:func:`assert_compatible` refuses a mel made for another model, naming every difference.

The analysis follows the published vocoders' training code exactly (pad, then an uncentred
STFT), so a mel computed here is the mel their checkpoints expect:

* HiFi-GAN (jik876/hifi-gan ``meldataset.py``): reflect-pad ``(n_fft - hop_length) / 2``
  on both sides, ``|STFT| = sqrt(re² + im² + 1e-9)``, slaney mel filters (80 bands,
  0-8000 Hz), ``ln(clamp(mel, 1e-5))``.
* MelGAN (descriptinc/melgan-neurips ``Audio2Mel``): the same padding and filters but up to
  Nyquist, plain ``|STFT|``, ``log10(clamp(mel, 1e-5))``.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
import math
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from avtool.errors import InputError
from avtool.io.files import atomic_output, sidecar_path, write_json

log = logging.getLogger(__name__)

MEL_SCALES = ("slaney", "htk")
FILTER_NORMS = ("slaney", None)
LOGS = ("ln", "log10", None)
PAD_MODES = ("reflect", "constant")
#: Key of the contract in a ``.npy`` mel's JSON sidecar (and name of the ``.npz`` member).
CONTRACT_KEY = "melspec"
#: How far (in the contract's log units) values may fall below ``log(clip_floor)`` before we
#: warn: a model's predicted mel may undershoot the floor a little, a dB-scaled mel by far more.
_FLOOR_SLACK = 2.0


@dataclass(frozen=True)
class MelSpec:
    """How a mel spectrogram was computed; two mels are interchangeable iff their specs are equal.

    The analysis of audio ``x`` (``T`` samples at ``sample_rate``) is:

    1. pad ``x`` on both sides with ``pad_mode`` by :attr:`pad` samples: ``n_fft // 2`` when
       ``center`` (librosa's and torch's centring), else ``(n_fft - hop_length) // 2`` (the
       HiFi-GAN/MelGAN convention, which makes frame ``i`` cover samples around
       ``i * hop_length + hop_length / 2``);
    2. uncentred STFT of the padded signal: periodic Hann window of ``win_length`` samples
       zero-padded to ``n_fft`` (centred), hop ``hop_length``, ``n_fft // 2 + 1`` bins;
    3. ``S = (re² + im² + magnitude_eps) ** (power / 2)`` (magnitude for power 1);
    4. ``mel = filterbank @ S`` with librosa's mel filters (``mel_scale``, ``norm``,
       ``fmin``..``fmax``);
    5. ``log(max(mel, clip_floor))`` with the natural log ("ln"), ``log10``, or no log (None:
       the mel is left linear and ``clip_floor`` still clamps it).

    This is exactly the dynamic-range compression of HiFi-GAN (``ln``) and MelGAN
    (``log10``); no other compression is used by the vocoders avtool runs.

    Attributes:
        sample_rate: audio sample rate in Hz.
        n_fft: FFT size in samples; the STFT has ``n_fft // 2 + 1`` frequency bins.
        win_length: Hann window length in samples (<= ``n_fft``).
        hop_length: samples between frames: one mel frame is ``hop_length`` output samples.
        n_mels: number of mel bands.
        fmin: lowest filter edge in Hz.
        fmax: highest filter edge in Hz; None means Nyquist (``sample_rate / 2``).
        mel_scale: "slaney" (linear below 1 kHz, log above; librosa's default) or "htk".
        norm: filter normalisation: "slaney" (each triangle has unit area, librosa's default)
            or None (unit peak).
        power: 1.0 for a magnitude mel, 2.0 for a power mel.
        log: "ln", "log10" or None (linear mel).
        clip_floor: the mel is clamped to at least this (linear units) before the log.
        magnitude_eps: added to ``re² + im²`` before the power (HiFi-GAN uses 1e-9 so the
            square root has a gradient at 0); 0 for the plain magnitude.
        center: the padding rule of step 1 (True: ``n_fft // 2``, False: ``(n_fft - hop) // 2``).
        pad_mode: "reflect" (mirror without repeating the edge sample) or "constant" (zeros).
    """

    sample_rate: int
    n_fft: int
    win_length: int
    hop_length: int
    n_mels: int
    fmin: float
    fmax: float | None
    mel_scale: str
    norm: str | None
    power: float
    log: str | None
    clip_floor: float
    magnitude_eps: float
    center: bool
    pad_mode: str

    def __post_init__(self) -> None:
        for name in ("sample_rate", "n_fft", "win_length", "hop_length", "n_mels"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        for name in ("fmin", "power", "clip_floor", "magnitude_eps"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(f"{name} must be a number, got {value!r}")
            # Stored as float so that to_dict() and equality do not depend on how it was given.
            object.__setattr__(self, name, float(value))
        if self.fmax is not None:
            if isinstance(self.fmax, bool) or not isinstance(self.fmax, int | float):
                raise ValueError(f"fmax must be a number or None, got {self.fmax!r}")
            object.__setattr__(self, "fmax", float(self.fmax))
        nyquist = self.sample_rate / 2
        top = nyquist if self.fmax is None else self.fmax
        if not 0 <= self.fmin < top <= nyquist:
            raise ValueError(
                f"need 0 <= fmin < fmax <= sample_rate / 2, got fmin {self.fmin}, "
                f"fmax {self.fmax}, sample_rate {self.sample_rate}"
            )
        if self.win_length > self.n_fft:
            raise ValueError(f"win_length {self.win_length} exceeds n_fft {self.n_fft}")
        if self.hop_length > self.n_fft:
            raise ValueError(f"hop_length {self.hop_length} exceeds n_fft {self.n_fft}")
        if self.power not in (1.0, 2.0):
            raise ValueError(f"power must be 1.0 (magnitude) or 2.0 (power), got {self.power}")
        if self.clip_floor <= 0 or self.magnitude_eps < 0:
            raise ValueError(
                f"need clip_floor > 0 and magnitude_eps >= 0, got {self.clip_floor} "
                f"and {self.magnitude_eps}"
            )
        for name, allowed in (
            ("mel_scale", MEL_SCALES),
            ("norm", FILTER_NORMS),
            ("log", LOGS),
            ("pad_mode", PAD_MODES),
        ):
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be one of {allowed}, got {getattr(self, name)!r}")
        if not isinstance(self.center, bool):
            raise ValueError(f"center must be true or false, got {self.center!r}")

    # ----------------------------------------------------------------- presets

    @classmethod
    def hifigan_22k(cls) -> MelSpec:
        """HiFi-GAN's 22.05 kHz mel (jik876/hifi-gan config_v1/v2/v3 and LJSpeech checkpoints)."""
        return _HIFIGAN_22K

    @classmethod
    def melgan_22k(cls) -> MelSpec:
        """MelGAN's 22.05 kHz mel (descriptinc/melgan-neurips ``Audio2Mel`` defaults)."""
        return _MELGAN_22K

    @classmethod
    def default(cls) -> MelSpec:
        """The contract avtool uses when nothing else is said: :meth:`hifigan_22k`."""
        return _HIFIGAN_22K

    @classmethod
    def preset(cls, name: str) -> MelSpec:
        """A preset by name: "hifigan-22k" or "melgan-22k".

        Raises:
            ValueError: unknown name (the message lists the known ones).
        """
        presets = {"hifigan-22k": _HIFIGAN_22K, "melgan-22k": _MELGAN_22K}
        if name not in presets:
            raise ValueError(f"unknown mel preset {name!r}; known: {', '.join(presets)}")
        return presets[name]

    # ----------------------------------------------------------------- serialisation

    def to_dict(self) -> dict[str, Any]:
        """The contract as a JSON-ready dict (every field, by name)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MelSpec:
        """The contract from :meth:`to_dict`'s output.

        Raises:
            ValueError: not a mapping, unknown or missing keys (named), or an invalid value.
        """
        if not isinstance(data, dict):
            raise ValueError(f"a mel contract must be a JSON object, got {type(data).__name__}")
        names = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(data) - set(names))
        missing = [n for n in names if n not in data]
        problems = []
        if unknown:
            problems.append(f"unknown keys: {', '.join(unknown)}")
        if missing:
            problems.append(f"missing keys: {', '.join(missing)}")
        if problems:
            raise ValueError(f"bad mel contract ({'; '.join(problems)})")
        return cls(**data)

    def to_json(self) -> str:
        """:meth:`to_dict` as compact JSON with sorted keys."""
        return json.dumps(self.to_dict(), sort_keys=True)

    # ----------------------------------------------------------------- comparison and sizes

    def differences(self, other: MelSpec) -> list[str]:
        """Every field where ``self`` and ``other`` differ, as ``"name: mine vs other"``.

        Example: ``["hop_length: 256 vs 200", "log: ln vs log10"]``; empty when equal.
        """
        return [
            f"{f.name}: {getattr(self, f.name)} vs {getattr(other, f.name)}"
            for f in dataclasses.fields(self)
            if getattr(self, f.name) != getattr(other, f.name)
        ]

    @property
    def n_bins(self) -> int:
        """STFT frequency bins: ``n_fft // 2 + 1``."""
        return self.n_fft // 2 + 1

    @property
    def pad(self) -> int:
        """Samples of padding added on each side before the STFT (see the class docstring)."""
        return self.n_fft // 2 if self.center else (self.n_fft - self.hop_length) // 2

    @property
    def fmax_hz(self) -> float:
        """``fmax`` in Hz with None resolved to ``sample_rate / 2``."""
        return self.sample_rate / 2 if self.fmax is None else self.fmax

    def frames_for(self, num_samples: int) -> int:
        """Mel frames :func:`mel_spectrogram` gives for ``num_samples`` samples of audio."""
        padded = num_samples + 2 * self.pad
        return 0 if padded < self.n_fft else 1 + (padded - self.n_fft) // self.hop_length

    def samples_for(self, frames: int) -> int:
        """Samples a vocoder makes from ``frames`` mel frames: ``frames * hop_length``."""
        return frames * self.hop_length


def vocoder_mismatch(mel: Any, n_mels: int, hop_length: int, hop_from: str) -> str | None:
    """Why a vocoder network that takes ``n_mels`` bands and makes ``hop_length`` samples per
    frame does not fit the mel contract ``mel`` it claims; None when it does.

    Args:
        mel: the config's contract (anything but a :class:`MelSpec` is a problem too).
        n_mels: mel bands the network takes.
        hop_length: samples per frame it makes.
        hop_from: where ``hop_length`` comes from, for the message
            (``"product of upsample_rates [8, 8, 2, 2]"``).
    """
    if not isinstance(mel, MelSpec):
        return f"mel must be a MelSpec, not a {type(mel).__name__}"
    if (mel.n_mels, mel.hop_length) != (n_mels, hop_length):
        return (
            f"the mel has {mel.n_mels} bands and hop_length {mel.hop_length}; the network "
            f"takes {n_mels} bands and makes {hop_length} samples per frame ({hop_from})"
        )
    return None


_HIFIGAN_22K = MelSpec(
    sample_rate=22050,
    n_fft=1024,
    win_length=1024,
    hop_length=256,
    n_mels=80,
    fmin=0.0,
    fmax=8000.0,
    mel_scale="slaney",
    norm="slaney",
    power=1.0,
    log="ln",
    clip_floor=1e-5,
    magnitude_eps=1e-9,
    center=False,
    pad_mode="reflect",
)
_MELGAN_22K = dataclasses.replace(_HIFIGAN_22K, fmax=None, log="log10", magnitude_eps=0.0)


# --------------------------------------------------------------------------- computing mels


@functools.lru_cache(maxsize=16)
def _filterbank_array(spec: MelSpec) -> np.ndarray:
    import librosa

    basis = librosa.filters.mel(
        sr=spec.sample_rate,
        n_fft=spec.n_fft,
        n_mels=spec.n_mels,
        fmin=spec.fmin,
        fmax=spec.fmax_hz,
        htk=spec.mel_scale == "htk",
        norm=spec.norm,
        dtype=np.float32,
    )
    basis.setflags(write=False)  # shared by every caller through the cache
    return basis


def mel_filterbank(spec: MelSpec) -> torch.Tensor:
    """The mel filters of ``spec`` (librosa's, computed once per spec).

    Returns:
        ``(n_mels, n_fft // 2 + 1)`` float32 weights on the CPU (a fresh tensor each call).
    """
    return torch.tensor(_filterbank_array(spec))


def analysis_window(spec: MelSpec, device: torch.device | str = "cpu") -> torch.Tensor:
    """Periodic Hann window of ``win_length`` zero-padded (centred) to ``n_fft`` samples.

    Returns:
        ``(n_fft,)`` float32 window on ``device``.
    """
    window = torch.hann_window(spec.win_length, periodic=True, device=device)
    left = (spec.n_fft - spec.win_length) // 2
    return F.pad(window, (left, spec.n_fft - spec.win_length - left))


def _as_audio_batch(audio: torch.Tensor | np.ndarray) -> torch.Tensor:
    x = torch.as_tensor(audio)
    if x.ndim == 1:
        x = x.unsqueeze(0)
    if x.ndim != 2:
        raise ValueError(f"audio must be shaped (T,) or (B, T), got {tuple(x.shape)}")
    if not x.is_floating_point():
        raise ValueError(f"audio must be float samples, got {x.dtype}")
    return x if x.dtype == torch.float64 else x.float()


def stft(audio: torch.Tensor | np.ndarray, spec: MelSpec) -> torch.Tensor:
    """The contract's STFT (steps 1-2 of :class:`MelSpec`), on the audio's device.

    Args:
        audio: ``(B, T)`` or ``(T,)`` float samples at ``spec.sample_rate``.
        spec: the mel contract.

    Returns:
        ``(B, n_fft // 2 + 1, frames)`` complex spectrum, ``frames = spec.frames_for(T)``.

    Raises:
        ValueError: bad shape or dtype, or audio too short for the padding (reflect padding
            needs more than ``spec.pad`` samples) or for one frame.
    """
    x = _as_audio_batch(audio)
    length = x.shape[-1]
    # One whole frame after padding; reflect padding also needs more samples than it adds.
    shortest = max(spec.n_fft - 2 * spec.pad, spec.pad + 1 if spec.pad_mode == "reflect" else 1)
    if length < shortest:
        raise ValueError(f"audio of {length} samples is too short: needs at least {shortest}")
    x = F.pad(x.unsqueeze(1), (spec.pad, spec.pad), mode=spec.pad_mode).squeeze(1)
    window = analysis_window(spec, x.device).to(x.dtype)
    return torch.stft(
        x,
        spec.n_fft,
        hop_length=spec.hop_length,
        win_length=spec.n_fft,
        window=window,
        center=False,
        return_complex=True,
    )


def compress_mel(mel: torch.Tensor, spec: MelSpec) -> torch.Tensor:
    """Step 5 of :class:`MelSpec`: clamp at ``clip_floor``, then the contract's log."""
    mel = mel.clamp(min=spec.clip_floor)
    if spec.log == "ln":
        return mel.log()
    if spec.log == "log10":
        return mel.log10()
    return mel


def decompress_mel(mel: torch.Tensor, spec: MelSpec) -> torch.Tensor:
    """Undo :func:`compress_mel`: the linear mel (values below ``clip_floor`` are lost)."""
    if spec.log == "ln":
        return mel.exp()
    if spec.log == "log10":
        return torch.pow(10.0, mel)
    return mel


def mel_spectrogram(audio: torch.Tensor | np.ndarray, spec: MelSpec) -> torch.Tensor:
    """The mel spectrogram of ``audio`` under the contract ``spec``, batched, on its device.

    Args:
        audio: ``(B, T)`` or ``(T,)`` float samples in [-1, 1] at ``spec.sample_rate`` (a
            tensor on any device, or an ndarray).
        spec: the mel contract.

    Returns:
        ``(B, n_mels, frames)`` mel (log per ``spec.log``), ``frames = spec.frames_for(T)``;
        float32 (float64 for float64 input).

    Raises:
        ValueError: bad shape or dtype, or audio shorter than one frame.
    """
    spectrum = stft(audio, spec)
    power = spectrum.real.square() + spectrum.imag.square()
    if spec.magnitude_eps:
        power = power + spec.magnitude_eps
    magnitude = power.sqrt() if spec.power == 1.0 else power
    basis = mel_filterbank(spec).to(device=magnitude.device, dtype=magnitude.dtype)
    return compress_mel(torch.matmul(basis, magnitude), spec)


# --------------------------------------------------------------------------- mel files


def _mel_problem(mel: Any, spec: MelSpec) -> tuple[str | None, np.ndarray | None]:
    """(what is wrong with ``mel`` under ``spec``, or None; the (n_mels, frames) float32 array)."""
    if isinstance(mel, torch.Tensor):
        mel = mel.detach().cpu().numpy()
    arr = np.asarray(mel)
    if arr.ndim == 3 and arr.shape[0] == 1:
        arr = arr[0]  # a batch of one, as saved straight from a model's output
    if arr.ndim != 2:
        return f"must be a 2-D (n_mels, frames) array, got shape {arr.shape}", None
    if arr.dtype.kind != "f":
        return f"must hold float values, got dtype {arr.dtype}", None
    bands, frames = arr.shape
    if bands != spec.n_mels and frames == spec.n_mels:
        return (
            f"looks transposed: shape {arr.shape} is (frames, bands); "
            f"expected ({spec.n_mels}, frames), save mel.T instead",
            None,
        )
    if bands != spec.n_mels:
        return f"has {bands} mel bands, its contract says n_mels = {spec.n_mels}", None
    if frames == 0:
        return "has zero frames", None
    bad = ~np.isfinite(arr)
    if bad.any():
        first = int(np.argmax(bad.any(axis=0)))
        return f"has {int(bad.sum())} NaN/infinite values (first in frame {first})", None
    return None, np.ascontiguousarray(arr, dtype=np.float32)


def check_mel(
    mel: np.ndarray | torch.Tensor, spec: MelSpec, path: str | os.PathLike[str]
) -> np.ndarray:
    """Check that ``mel`` is a usable mel under ``spec``.

    A ``(1, n_mels, frames)`` batch of one is accepted and squeezed; float16/float64 values are
    converted to float32. Values far below the contract's floor (e.g. a dB-scaled mel) are
    logged as a warning, not refused: a model's predicted mel may undershoot the floor.

    Args:
        mel: ``(n_mels, frames)`` array or tensor.
        spec: the contract it claims to follow.
        path: the file it came from, named in errors.

    Returns:
        ``(n_mels, frames)`` float32 array.

    Raises:
        InputError: wrong ndim or dtype, wrong number of bands, transposed, zero frames,
            NaN/inf values (with the count and the first frame), or values above any mel of
            audio in [-1, 1] (a scaled mel, whose waveform would overflow), naming ``path``.
    """
    problem, arr = _mel_problem(mel, spec)
    if problem is not None:
        raise InputError(f"{path}: mel {problem}")
    assert arr is not None
    # No band of a signal in [-1, 1] exceeds n_fft ** power (linear); allow 1000x above that.
    ceiling_linear = float(spec.n_fft) ** spec.power * 1e3
    ceiling = {"ln": math.log, "log10": math.log10}.get(spec.log or "", float)(ceiling_linear)
    high = float(arr.max())
    if high > ceiling:
        raise InputError(
            f"{path}: mel values reach {high:.3g}, above any mel of audio in [-1, 1] under its "
            f"contract (at most {ceiling:.3g}); was it scaled?"
        )
    if spec.log is not None:
        floor = math.log(spec.clip_floor) if spec.log == "ln" else math.log10(spec.clip_floor)
        low = float(arr.min())
        if low < floor - _FLOOR_SLACK:
            log.warning(
                "%s: mel values go down to %.3g, far below the contract's floor %s(%g) = %.3g;"
                " was it computed with another compression (dB, another log)?",
                path,
                low,
                spec.log,
                spec.clip_floor,
                floor,
            )
    return arr


def assert_compatible(spec: MelSpec, model_spec: MelSpec, path: str | os.PathLike[str]) -> None:
    """Refuse a mel whose contract differs from the one the model was trained on.

    Args:
        spec: the mel's contract (from :func:`load_mel`).
        model_spec: the contract the vocoder expects.
        path: the mel file, named in the error.

    Raises:
        InputError: listing every difference, e.g. "mel.npz was computed with hop_length 200,
            the model expects 256; ...".
    """
    if spec == model_spec:
        return
    diffs = [
        f"{f.name} {getattr(spec, f.name)}, the model expects {getattr(model_spec, f.name)}"
        for f in dataclasses.fields(spec)
        if getattr(spec, f.name) != getattr(model_spec, f.name)
    ]
    raise InputError(
        f"{Path(path).name} was computed with {'; '.join(diffs)}. Recompute it from the audio "
        f"with the model's settings (avtool.io.features.mel_spectrogram) or use a vocoder "
        f"trained for this mel"
    )


def _contract_from(raw: Any, path: Path, where: str) -> MelSpec:
    try:
        data = json.loads(raw) if isinstance(raw, str) else raw
        return MelSpec.from_dict(data)
    except (ValueError, TypeError) as exc:
        raise InputError(f"{path}: unreadable mel contract in {where} ({exc})") from exc


def _missing_contract(path: Path, sidecar: Path) -> InputError:
    where = (
        f"no {CONTRACT_KEY!r} key in {sidecar.name}"
        if sidecar.is_file()
        else f"no {sidecar.name} beside it"
    )
    example = json.dumps({CONTRACT_KEY: MelSpec.default().to_dict()})
    return InputError(
        f"{path}: the mel contract is missing ({where}), so we cannot tell how the mel was "
        f"computed. Save it with avtool.io.features.save_mel as .npz, or put a "
        f"{CONTRACT_KEY!r} key in {sidecar.name}, e.g. {example}"
    )


def load_mel(
    path: str | os.PathLike[str], assume: MelSpec | None = None
) -> tuple[np.ndarray, MelSpec]:
    """Read a mel file and its contract, and check the mel against it.

    Formats: ``.npz`` with members ``mel`` (n_mels, frames) and ``melspec`` (the contract's
    JSON as a 0-d string array), as :func:`save_mel` writes; or ``.npy`` with the contract
    under the ``melspec`` key of the JSON sidecar ``<file>.npy.json``.

    Args:
        path: the mel file.
        assume: contract to use when the file carries none (e.g. from a ``--mel-preset``
            option); None makes a missing contract an error.

    Returns:
        ``(mel, spec)``: ``(n_mels, frames)`` float32 mel and its contract.

    Raises:
        InputError: missing or unreadable file, unknown suffix, missing or bad contract, or a
            mel failing :func:`check_mel`, naming the file.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    suffix = path.suffix.lower()
    if suffix not in (".npz", ".npy"):
        raise InputError(f"{path}: a mel file must be .npz or .npy (with a .npy.json sidecar)")
    spec: MelSpec | None = None
    sidecar = sidecar_path(path)
    try:
        if suffix == ".npz":
            with np.load(path, allow_pickle=False) as archive:
                if "mel" not in archive.files:
                    raise InputError(f"{path}: no 'mel' array in it (has {archive.files})")
                mel = archive["mel"]
                if CONTRACT_KEY in archive.files:
                    raw = str(archive[CONTRACT_KEY][()])
                    spec = _contract_from(raw, path, f"its {CONTRACT_KEY!r} member")
        else:
            mel = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        # numpy raises ValueError for pickled or malformed arrays.
        raise InputError(f"{path}: not a readable {suffix} mel file ({exc})") from exc
    if suffix == ".npy" and sidecar.is_file():
        try:
            meta = json.loads(sidecar.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise InputError(f"{sidecar}: not readable JSON ({exc})") from exc
        if isinstance(meta, dict) and CONTRACT_KEY in meta:
            spec = _contract_from(meta[CONTRACT_KEY], path, sidecar.name)
    if spec is None:
        if assume is None:
            if suffix == ".npz":
                raise InputError(
                    f"{path}: the mel contract is missing (no {CONTRACT_KEY!r} member); "
                    f"write it with avtool.io.features.save_mel"
                )
            raise _missing_contract(path, sidecar)
        spec = assume
    return check_mel(mel, spec, path), spec


def save_mel(path: str | os.PathLike[str], mel: np.ndarray | torch.Tensor, spec: MelSpec) -> Path:
    """Write a mel and its contract atomically.

    ``.npz``: one file with ``mel`` and ``melspec`` (the contract's JSON). ``.npy``: the array,
    plus the contract under ``melspec`` in the sidecar ``<file>.npy.json`` (written first, so
    a present ``.npy`` always has its contract).

    Args:
        path: output file, ``.npz`` or ``.npy``.
        mel: ``(n_mels, frames)`` (or ``(1, n_mels, frames)``) mel following ``spec``.
        spec: its contract.

    Returns:
        The output path.

    Raises:
        ValueError: unknown suffix, or a mel that :func:`check_mel` would refuse.
        SetupError: the output folder is not writable.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".npz", ".npy"):
        raise ValueError(f"{path}: a mel file must be .npz or .npy")
    problem, arr = _mel_problem(mel, spec)
    if problem is not None:
        raise ValueError(f"{path}: mel {problem}")
    if suffix == ".npz":
        with atomic_output(path) as tmp, open(tmp, "wb") as f:
            # A file object, not a name: np.savez would append ".npz" to a name.
            np.savez(f, mel=arr, **{CONTRACT_KEY: np.array(spec.to_json())})
        return path
    write_json(sidecar_path(path), {CONTRACT_KEY: spec.to_dict()})
    with atomic_output(path) as tmp, open(tmp, "wb") as f:
        np.save(f, arr)
    return path
