"""HiFi-GAN vocoders (jik876/hifi-gan): mel spectrogram to 22.05 kHz waveform.

The published generators (``LJ_V1``, ``UNIVERSAL_V1``, ``VCTK_V2``, ...) are files holding
``{"generator": state_dict}`` next to the ``config.json`` they were trained with. This family
builds the same network (:class:`HiFiGANGenerator`, key for key), reads those files, and runs
them; :class:`HiFiGANConfig` reads the official JSON.

    config = HiFiGANConfig.v1()
    model = load("LJ_V1/generator_v1", config)      # or load(path) to detect a preset
    audio = infer(model, mel)                       # (B, 80, frames) -> (B, frames * 256)

Long inputs: ``apply_chunked(lambda m: infer(model, m), mel, hop_length=model.hop_length)``
(:mod:`avtool.models.chunked`).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any, ClassVar

import numpy as np
import torch

from avtool.errors import ModelError
from avtool.io.features import MelSpec, vocoder_mismatch
from avtool.models import checkpoint as avtool_checkpoint
from avtool.models.hifigan.generator import HiFiGANGenerator
from avtool.models.presets import PresetConfig
from avtool.models.weightnorm import load_generator, mel_input, open_checkpoint, to_model_keys
from avtool.registry import ResolvedModel

__all__ = [
    "HiFiGANConfig",
    "HiFiGANGenerator",
    "build",
    "detect_config",
    "infer",
    "load",
    "to_checkpoint",
]

#: Preset names accepted by :meth:`HiFiGANConfig.preset` (and ``{"preset": ...}`` configs).
PRESETS = ("v1", "v2", "v3", "debug")
# Official config.json keys describing the mel, and the MelSpec field each one sets.
_MEL_KEYS = (
    ("sampling_rate", "sample_rate"),
    ("n_fft", "n_fft"),
    ("win_size", "win_length"),
    ("hop_size", "hop_length"),
    ("num_mels", "n_mels"),
    ("fmin", "fmin"),
    ("fmax", "fmax"),
)


def _ints(value: Any) -> tuple[int, ...]:
    return tuple(int(v) for v in value)


@dataclass(frozen=True)
class HiFiGANConfig(PresetConfig):
    """A HiFi-GAN generator architecture; field names and meaning as the official JSON.

    Attributes:
        resblock: residual block type, ``"1"`` (V1, V2) or ``"2"`` (V3).
        upsample_rates: time upsampling factor of each transposed convolution; their
            product is the hop length in samples.
        upsample_kernel_sizes: kernel size of each transposed convolution (``k - rate``
            must be even so each stage gives exactly ``rate`` samples per step).
        upsample_initial_channel: channels after ``conv_pre``; halved by every stage.
        resblock_kernel_sizes: kernel size of each residual block fused after every stage.
        resblock_dilation_sizes: dilations of each of those blocks.
        num_mels: mel bands of the input (80 in every published model).
        mel: the mel contract the model was trained on; its ``n_mels`` and ``hop_length``
            must agree with ``num_mels`` and ``upsample_rates``.
    """

    presets: ClassVar[tuple[str, ...]] = PRESETS
    family_name: ClassVar[str] = "HiFi-GAN"

    resblock: str
    upsample_rates: tuple[int, ...]
    upsample_kernel_sizes: tuple[int, ...]
    upsample_initial_channel: int
    resblock_kernel_sizes: tuple[int, ...]
    resblock_dilation_sizes: tuple[tuple[int, ...], ...]
    num_mels: int = 80
    mel: MelSpec = field(default_factory=MelSpec.hifigan_22k)

    def __post_init__(self) -> None:
        # Normalise JSON lists to tuples so configs compare, hash and stay immutable.
        object.__setattr__(self, "resblock", str(self.resblock))
        for name in ("upsample_rates", "upsample_kernel_sizes", "resblock_kernel_sizes"):
            object.__setattr__(self, name, _ints(getattr(self, name)))
        dilations = tuple(_ints(d) for d in self.resblock_dilation_sizes)
        object.__setattr__(self, "resblock_dilation_sizes", dilations)
        problems = []
        if self.resblock not in ("1", "2"):
            problems.append(f'resblock must be "1" or "2", not {self.resblock!r}')
        if not self.upsample_rates or len(self.upsample_rates) != len(self.upsample_kernel_sizes):
            problems.append("upsample_rates and upsample_kernel_sizes need the same length (> 0)")
        for rate, kernel in zip(self.upsample_rates, self.upsample_kernel_sizes, strict=False):
            if rate < 1 or kernel < rate or (kernel - rate) % 2:
                problems.append(
                    f"upsample kernel {kernel} for rate {rate}: need k >= r, k - r even"
                )
        if not self.resblock_kernel_sizes or len(dilations) != len(self.resblock_kernel_sizes):
            problems.append(
                "resblock_kernel_sizes and resblock_dilation_sizes need the same length"
            )
        if any(k < 1 or k % 2 == 0 for k in self.resblock_kernel_sizes):
            problems.append("resblock_kernel_sizes must be odd")
        if any(not d or min(d) < 1 for d in dilations):
            problems.append("every resblock needs positive dilations")
        channels = self.upsample_initial_channel
        if channels < 1 or channels % (2 ** len(self.upsample_rates)):
            problems.append(
                f"upsample_initial_channel {channels} must be a positive multiple of "
                f"2**{len(self.upsample_rates)} (halved by every stage)"
            )
        hop_from = f"product of upsample_rates {list(self.upsample_rates)}"
        if mismatch := vocoder_mismatch(self.mel, self.num_mels, self.hop_length, hop_from):
            problems.append(mismatch)
        if problems:
            raise ModelError("invalid HiFi-GAN config: " + "; ".join(problems))

    # --- presets ---------------------------------------------------------------------------

    @classmethod
    def v1(cls) -> HiFiGANConfig:
        """V1 (config_v1.json): 512 channels, resblock 1; 13.9 M parameters."""
        return cls(
            resblock="1",
            upsample_rates=(8, 8, 2, 2),
            upsample_kernel_sizes=(16, 16, 4, 4),
            upsample_initial_channel=512,
            resblock_kernel_sizes=(3, 7, 11),
            resblock_dilation_sizes=((1, 3, 5), (1, 3, 5), (1, 3, 5)),
        )

    @classmethod
    def v2(cls) -> HiFiGANConfig:
        """V2 (config_v2.json): V1 with 128 channels; 0.9 M parameters."""
        return replace(cls.v1(), upsample_initial_channel=128)

    @classmethod
    def v3(cls) -> HiFiGANConfig:
        """V3 (config_v3.json): three stages, resblock 2; 1.5 M parameters."""
        return cls(
            resblock="2",
            upsample_rates=(8, 8, 4),
            upsample_kernel_sizes=(16, 16, 8),
            upsample_initial_channel=256,
            resblock_kernel_sizes=(3, 5, 7),
            resblock_dilation_sizes=((1, 2), (2, 6), (3, 12)),
        )

    @classmethod
    def debug(cls) -> HiFiGANConfig:
        """Tiny random-weight V1 look-alike (16 channels): same hop, mel and key layout."""
        return replace(
            cls.v1(),
            upsample_initial_channel=16,
            resblock_kernel_sizes=(3, 5),
            resblock_dilation_sizes=((1, 3, 5), (1, 3, 5)),
        )

    # --- derived values and (de)serialisation -----------------------------------------------

    @property
    def hop_length(self) -> int:
        """Output samples per mel frame: the product of ``upsample_rates``."""
        return math.prod(self.upsample_rates)

    @property
    def sample_rate(self) -> int:
        """Output sample rate in Hz (the mel contract's)."""
        return self.mel.sample_rate

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict with the official key names, plus ``mel`` as a full contract."""
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        for name in ("upsample_rates", "upsample_kernel_sizes", "resblock_kernel_sizes"):
            data[name] = list(data[name])
        data["resblock_dilation_sizes"] = [list(d) for d in self.resblock_dilation_sizes]
        data["mel"] = self.mel.to_dict()
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> HiFiGANConfig:
        """A config from the official ``config.json``, :meth:`to_dict` output, or a preset.

        ``{"preset": "v1"}`` selects a preset (other keys override its fields). ``mel`` may
        be a :meth:`MelSpec.preset` name or a :meth:`MelSpec.to_dict` dict; without it, the
        official audio keys (``sampling_rate``, ``n_fft``, ``win_size``, ``hop_size``,
        ``num_mels``, ``fmin``, ``fmax``) adjust HiFi-GAN's 22.05 kHz contract. Training
        keys (batch size, learning rate, ...) are ignored.

        Raises:
            ModelError: a required field is missing or a value is invalid.
        """
        try:
            chosen = cls._fields_from(data)
            chosen["mel"] = _mel_from(data, chosen.get("mel"))
            return cls._complete(chosen)
        except (TypeError, ValueError) as exc:
            raise ModelError(f"invalid HiFi-GAN config: {exc}") from exc


def _mel_from(data: Mapping[str, Any], mel: Any) -> MelSpec:
    """The config's mel contract: given (name, dict or MelSpec), else from the official keys.

    Raises:
        ValueError: an unknown preset name or invalid contract values.
    """
    if isinstance(mel, MelSpec):
        return mel
    if isinstance(mel, str):
        return MelSpec.preset(mel)
    if isinstance(mel, Mapping):
        return MelSpec.from_dict(dict(mel))
    # An official fmax of null means Nyquist, so it is taken even when None.
    official = {
        attr: data[key]
        for key, attr in _MEL_KEYS
        if key in data and (data[key] is not None or attr == "fmax")
    }
    return replace(MelSpec.hifigan_22k(), **official)


def build(config: HiFiGANConfig) -> HiFiGANGenerator:
    """A randomly initialised generator (weight-normalised, training mode).

    Uses torch's global RNG; call ``torch.manual_seed`` first for reproducible weights.
    """
    return HiFiGANGenerator(config)


def to_checkpoint(model: HiFiGANGenerator) -> dict[str, Any]:
    """The published file layout, ``{"generator": state_dict}``, plus ``"config"``.

    The extra ``config`` dict (:meth:`HiFiGANConfig.to_dict`) is ignored by the official
    code and lets :func:`load` rebuild custom architectures. A folded model (see
    :meth:`HiFiGANGenerator.remove_weight_norm`) is written as ``weight_g``/``weight_v``
    too, so the official code can read it. Save with ``torch.save``.
    """
    with torch.device("meta"):
        layout = build(model.config).state_dict()
    state = to_model_keys(model.state_dict(), layout)
    return {"generator": state, "config": model.config.to_dict()}


def _generator_state(data: Any, source: str) -> Mapping[str, Any]:
    if not isinstance(data, Mapping):
        raise ModelError(f"{source}: expected a dict checkpoint, got a {type(data).__name__}")
    if "generator" in data:
        state = data["generator"]
        if not isinstance(state, Mapping):
            raise ModelError(f"{source}: 'generator' is not a state dict")
        return state
    if {"mpd", "msd"} & set(data):
        raise ModelError(
            f"{source}: a discriminator/optimizer checkpoint (do_*); load the generator (g_*)"
        )
    if data and all(isinstance(v, torch.Tensor) for v in data.values()):
        return data  # a bare state dict, e.g. saved from model.state_dict()
    keys = ", ".join(map(str, list(data)[:4]))
    raise ModelError(f"{source}: no 'generator' state dict in the checkpoint (keys: {keys})")


def detect_config(state: Mapping[str, Any]) -> HiFiGANConfig | None:
    """The preset whose every key and shape fit ``state`` (a generator state dict), if any."""
    for name in PRESETS:
        config = HiFiGANConfig.preset(name)
        # Meta tensors carry shapes without allocating or initialising weights.
        with torch.device("meta"):
            expected = HiFiGANGenerator(config).state_dict()
        converted = to_model_keys(state, expected)
        if converted.keys() == expected.keys() and all(
            isinstance(v, torch.Tensor) and v.shape == expected[k].shape
            for k, v in converted.items()
        ):
            return config
    return None


def load(
    checkpoint: str | os.PathLike[str] | Mapping[str, Any],
    config: HiFiGANConfig | None = None,
    device: str | torch.device = "cpu",
    *,
    fold_weight_norm: bool = True,
) -> HiFiGANGenerator:
    """Load a generator from a published (or :func:`to_checkpoint`, or avtool checkpoint) file.

    Args:
        checkpoint: path of a ``{"generator": state_dict}`` file (read with
            ``weights_only=True``), or the already loaded dict. Bare state dicts and the
            parametrization key names of newer torch are accepted too.
        config: the architecture; when None, the checkpoint's ``"config"`` entry, else the
            preset whose keys and shapes fit.
        device: where the model goes.
        fold_weight_norm: fold weight norm for faster inference (outputs are unchanged).

    Returns:
        The generator in eval mode.

    Raises:
        ModelError: unreadable or truncated file, no generator inside, an architecture that
            cannot be told, or missing/unexpected keys or shape mismatches (naming the file
            and the first few keys).
    """
    data, source = open_checkpoint(checkpoint, "HiFi-GAN checkpoint")
    if isinstance(data, Mapping) and data.get("format") == avtool_checkpoint.FORMAT:
        stored = avtool_checkpoint.from_dict(data, source, "hifigan")  # the trainer's g_ files
        data = {"generator": stored.state_dict, "config": stored.config}
    state = _generator_state(data, source)
    if config is None and isinstance(data.get("config"), Mapping):
        config = HiFiGANConfig.from_dict(data["config"])
    if config is None:
        config = detect_config(state)
    if config is None:
        raise ModelError(
            f"{source}: not a known HiFi-GAN preset ({', '.join(PRESETS)}); give its "
            "config (the config.json published beside the generator)"
        )
    what = f"HiFi-GAN generator ({_describe(config)})"
    return load_generator(
        build, config, state, source=source, what=what, device=device, fold=fold_weight_norm
    )


def _describe(config: HiFiGANConfig) -> str:
    name = next((p for p in PRESETS if HiFiGANConfig.preset(p) == config), "custom")
    return f"{name}: {config.upsample_initial_channel} channels, resblock {config.resblock}"


def infer(model: HiFiGANGenerator, mel: torch.Tensor | np.ndarray) -> torch.Tensor:
    """Vocode mel spectrograms in one pass (no gradients).

    Args:
        model: a generator from :func:`load` or :func:`build`.
        mel: ``(B, num_mels, frames)`` log-mel spectrogram in the model's mel contract
            (natural log of the magnitude mel for the published models).

    Returns:
        ``(B, frames * hop_length)`` float waveform in [-1, 1] on the model's device, at
        ``model.config.sample_rate``.

    Raises:
        InputError: ``mel`` is not 3-D with ``num_mels`` bands.
    """
    mel = mel_input(model, mel, model.config.num_mels, "HiFi-GAN")
    if mel.shape[-1] == 0:
        return mel.new_zeros(mel.shape[0], 0)
    with torch.inference_mode():
        return model(mel).squeeze(1)


def load_entry(resolved: ResolvedModel, device: str = "cpu") -> HiFiGANGenerator:
    """The front door's hook (:func:`avtool.models.loading.load`): a verified entry's
    generator. The architecture is the entry's ``[config]`` table, else the ``config.json``
    published beside the generator (the official repository's layout), else the checkpoint's
    own ``config`` or the preset its keys and shapes fit. An avtool checkpoint
    (:mod:`avtool.models.checkpoint`) carries its config.
    """
    if avtool_checkpoint.is_checkpoint(resolved.path):
        stored = avtool_checkpoint.read(resolved.path, "hifigan")
        return load({"generator": stored.state_dict, "config": stored.config}, None, device)
    config_data = dict(resolved.entry.config) or None
    beside = resolved.path.parent / "config.json"
    if config_data is None and beside.is_file():
        config_data = json.loads(beside.read_text(encoding="utf-8"))
    config = HiFiGANConfig.from_dict(config_data) if config_data else None
    return load(resolved.path, config, device)
