"""Architecture configs of the AnyoneNet family and the predictor's mel contract.

Two networks (Wang et al., "AnyoneNet: Synchronized Speech and Talking Head Generation for
Arbitrary Persons", 2021): a *landmark predictor* (audio + one face's landmarks and head pose →
per-frame landmark displacements and quaternion changes) and a *renderer* (a UNet turning a
landmark sketch plus the source photo into a frame, trained against a patch discriminator).

Each config is a frozen dataclass saved as JSON next to the weights; ``paper()`` is the
published size and ``tiny()`` a random-weight debug size for tests and smoke runs.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from avtool.io.features import MelSpec
from avtool.models.presets import PresetConfig

#: The predictor's mel: 16 kHz, 50 ms window (800 samples), 12.5 ms hop (200) → 80 frames/s.
#: The window is zero-padded to a 1024-point FFT; the rest follows the HiFi-GAN convention.
PREDICTOR_MEL = dataclasses.replace(
    MelSpec.hifigan_22k(), sample_rate=16000, win_length=800, hop_length=200
)
#: Mel frames per second of :data:`PREDICTOR_MEL` (the rate the predictor works at).
MEL_RATE = PREDICTOR_MEL.sample_rate / PREDICTOR_MEL.hop_length
N_POINTS = 68

T = TypeVar("T")


def config_from_dict(cls: type[T], data: dict[str, Any], source: str) -> T:
    """Build a config dataclass from a JSON dict (lists become tuples).

    Raises:
        ValueError: unknown keys or invalid values (``source`` names the file).
    """
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(data) - names)
    if unknown:
        raise ValueError(f"{source}: unknown {cls.__name__} keys {unknown}")
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
    return cls(**values)


@dataclass(frozen=True)
class PredictorConfig(PresetConfig):
    """The audio-to-landmark predictor.

    Per mel frame (80 Hz), three encoders are concatenated: an MLP on the mel frame
    (``audio_hidden``), an MLP on the source face's frontal landmarks (``landmark_hidden``) and
    one on its head-pose quaternion (``quaternion_hidden``), the last two repeated over time.
    The decoder is six 1-D convolutions (``conv_channels``; instance norm after the first,
    batch norm after the others), a bidirectional LSTM (``lstm_hidden`` per direction) and an
    MLP (``mlp_hidden``) giving 136 landmark displacements and 4 quaternion changes per frame;
    the quaternion changes are smoothed by a unidirectional LSTM (``smoother_hidden``).

    Attributes:
        n_mels: mel bands of the input (:data:`PREDICTOR_MEL`).
        audio_hidden: width of the audio-encoder MLP (two layers).
        landmark_hidden: width of the landmark-encoder MLP.
        quaternion_hidden: width of the quaternion-encoder MLP.
        conv_channels: output channels of the six decoder convolutions.
        kernel_size: temporal kernel of the convolutions (odd, in mel frames).
        lstm_hidden: hidden size per direction of the BiLSTM.
        mlp_hidden: hidden width of the output MLP.
        smoother_hidden: hidden size of the quaternion-smoothing LSTM.
    """

    n_mels: int = 80
    audio_hidden: int = 512
    landmark_hidden: int = 256
    quaternion_hidden: int = 64
    conv_channels: tuple[int, ...] = (512, 512, 1024, 1024, 1024, 2048)
    kernel_size: int = 5
    lstm_hidden: int = 256
    mlp_hidden: int = 512
    smoother_hidden: int = 32

    presets: ClassVar[tuple[str, ...]] = ("paper", "reduced", "debug")
    family_name: ClassVar[str] = "AnyoneNet predictor"

    def __post_init__(self) -> None:
        if len(self.conv_channels) < 1 or any(c < 1 for c in self.conv_channels):
            raise ValueError(f"conv_channels must be positive, got {self.conv_channels}")
        if self.kernel_size < 1 or self.kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd and positive, got {self.kernel_size}")

    @classmethod
    def paper(cls) -> PredictorConfig:
        """The published size (≈ 24 M parameters with 5-frame kernels)."""
        return cls()

    @classmethod
    def reduced(cls) -> PredictorConfig:
        """A CPU-trainable size (≈ 1 M parameters) for one speaker (the shipped GRID s1 weights).

        Same layout as the paper's, narrower: 128-wide encoders, convolutions and BiLSTM.
        """
        return cls(
            audio_hidden=128,
            landmark_hidden=64,
            quaternion_hidden=16,
            conv_channels=(128, 128, 128, 128, 128, 128),
            kernel_size=5,
            lstm_hidden=128,
            mlp_hidden=128,
            smoother_hidden=16,
        )

    @classmethod
    def debug(cls) -> PredictorConfig:
        """A random-weight debug size for tests and smoke runs (a few thousand parameters)."""
        return cls(
            audio_hidden=16,
            landmark_hidden=8,
            quaternion_hidden=4,
            conv_channels=(16, 16, 16, 16, 16, 16),
            kernel_size=3,
            lstm_hidden=8,
            mlp_hidden=16,
            smoother_hidden=4,
        )


@dataclass(frozen=True)
class RendererConfig(PresetConfig):
    """The landmark-to-image UNet and its patch discriminator (pix2pix-style).

    Attributes:
        image_size: square frame side in pixels (a power of two, ≥ ``2 ** depth``).
        in_channels: UNet input: landmark sketch (3) + source image (3).
        out_channels: RGB.
        base_channels: channels of the first UNet level (doubled per level, capped at 8x).
        depth: down-sampling levels (8 takes 256 px to 1 px, as pix2pix's UNet-256).
        disc_channels: channels of the first discriminator layer (doubled, capped at 8x).
        disc_layers: stride-2 layers of the discriminator (3 gives 70x70 patches).
    """

    image_size: int = 256
    in_channels: int = 6
    out_channels: int = 3
    base_channels: int = 64
    depth: int = 8
    disc_channels: int = 64
    disc_layers: int = 3

    presets: ClassVar[tuple[str, ...]] = ("paper", "reduced", "debug")
    family_name: ClassVar[str] = "AnyoneNet renderer"

    def __post_init__(self) -> None:
        if self.image_size < 2**self.depth or self.image_size & (self.image_size - 1):
            raise ValueError(
                f"image_size must be a power of two ≥ 2**depth, got {self.image_size} "
                f"with depth {self.depth}"
            )

    @classmethod
    def paper(cls) -> RendererConfig:
        """256x256 frames, UNet-256 with 64 base channels, 70x70 PatchGAN."""
        return cls()

    @classmethod
    def reduced(cls) -> RendererConfig:
        """A CPU-trainable size for one speaker (the shipped GRID s1 UNet).

        Same layout as the paper's (256x256 frames, 8 levels down to 1x1, 70x70 patches),
        a quarter of the width: 16 base channels (≈ 3.4 M UNet parameters instead of 54 M)
        and a 16-channel discriminator.
        """
        return cls(base_channels=16, disc_channels=16)

    @classmethod
    def debug(cls) -> RendererConfig:
        """32x32 frames, 4 base channels, 3 levels: a debug size."""
        return cls(image_size=32, base_channels=4, depth=3, disc_channels=4, disc_layers=2)


def preset(kind: str, name: str) -> PredictorConfig | RendererConfig:
    """``preset("predictor"|"renderer", "paper"|"reduced"|"debug")``, or a JSON config's path.

    ``"reduced"`` is :meth:`PredictorConfig.reduced` or :meth:`RendererConfig.reduced`.

    Raises:
        ValueError: unknown kind or name, or a bad JSON file.
    """
    cls: type[PredictorConfig] | type[RendererConfig] = (
        PredictorConfig if kind == "predictor" else RendererConfig
    )
    if kind not in ("predictor", "renderer"):
        raise ValueError(f"unknown config kind {kind!r}")
    if name in cls.presets:
        return cls.preset(name)
    path = Path(name)
    if path.is_file():
        return load_config(path, cls)
    raise ValueError(f"unknown {kind} config {name!r}: paper, reduced, debug or a .json file")


def config_dict(config: PredictorConfig | RendererConfig) -> dict[str, Any]:
    """The config as a JSON-ready dict with a ``kind`` key."""
    kind = "predictor" if isinstance(config, PredictorConfig) else "renderer"
    return {"kind": kind, **dataclasses.asdict(config)}


def load_config(path: str | os.PathLike[str], cls: type[T] | None = None) -> T:
    """Read a config JSON (as written by :func:`config_dict`).

    Raises:
        ValueError: unreadable, a wrong ``kind``, or unknown keys.
    """
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path}: not a readable config ({exc})") from exc
    if not isinstance(data, dict):
        raise ValueError(f"{path}: a config must be a JSON object")
    kind = data.pop("kind", None)
    found = {"predictor": PredictorConfig, "renderer": RendererConfig}.get(str(kind))
    if found is None or (cls is not None and found is not cls):
        raise ValueError(f"{path}: kind {kind!r} is not the expected config")
    return config_from_dict(found, data, str(path))  # type: ignore[return-value]
