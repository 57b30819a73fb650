"""Video-to-speech with a content stream: a trained V2A model plus a trained lip reader, frozen,
feeding one new mel decoder.

    config = ContentV2AConfig(acoustic=v2a_config, reader=lip_reader_config)
    model = ContentV2A(config)          # then load the two trained parts (see .train_content)
    mel = model(crops, n_frames, lips=lips)   # (B, T, 44, 44) at 25 fps -> (B, 80, F) log mel

Why: a V2A model trained on mel regression alone (:class:`~avtool.models.v2a.model.V2AModel`)
learns the speaker's timbre and timing well but blurs *what* is said: on GRID s1 its speech is
recognised with a third of the words wrong, while a lip reader trained on the same clips with
CTC (:mod:`avtool.models.lipread_resnet`) gets nine words in ten. Multi-task lip-to-speech work
(e.g. Kim et al., "Lip-to-speech synthesis in the wild with multi-task learning", ICASSP 2023)
adds text supervision for this reason. Here the two trained networks are kept as they are and
a decoder reads, per video frame, the V2A temporal features ``(2 * Ha)``, the lip reader's
BiGRU state ``(2 * Hr)``, its character log-probabilities ``(28)`` and its GRID word
log-probabilities ``(52)``: acoustic detail from the first, content from the others.

The decoder: a 3-tap convolution at the video rate, linear upsampling to the mel frame count
(as in V2A), then residual 1-D convolution blocks with batch norm and a 1x1 projection to the
mel bands, predicted in units normalised by the training set's per-band statistics (buffers,
so the checkpoint is self-contained). Both trained parts stay in eval mode and receive no
gradient; :mod:`avtool.training.v2a_content` trains the decoder on features computed once.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, TypeVar

import torch
import torch.nn.functional as F
from torch import nn

from avtool.models.lipnet.model import VOCAB_SIZE
from avtool.models.lipread_resnet.model import N_WORD_CLASSES, LipReader, LipReaderConfig
from avtool.models.presets import PresetConfig
from avtool.models.v2a.model import VIDEO, V2AConfig, V2AModel

#: The ``kind`` a content model's config JSON carries (plain V2A configs have none).
KIND = "content"
T = TypeVar("T")


class _FromAcoustic(Generic[T]):
    """A read-only attribute of a :class:`ContentV2AConfig` that is its ``acoustic`` part's
    attribute of the same name."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, config: ContentV2AConfig | None, owner: type | None = None) -> T:
        if config is None:  # looked up on the class: there is no part to read
            raise AttributeError(f"{self.name} is an attribute of a ContentV2AConfig's part")
        return getattr(config.acoustic, self.name)


@dataclass(frozen=True)
class ContentV2AConfig(PresetConfig):
    """Architecture of a :class:`ContentV2A`.

    Attributes:
        acoustic: the trained V2A model's config (its temporal features are one input).
        reader: the trained lip reader's config (its BiGRU state and heads are the other).
        decoder_channels: channels of the new decoder.
        decoder_layers: residual convolution blocks of the decoder.
        decoder_kernel: their kernel size in mel frames.
        dropout: dropout in the decoder blocks (training only).
        output_advance: mel frames inference moves the prediction earlier (as
            :attr:`V2AConfig.output_advance`, calibrated for this decoder).
    """

    acoustic: V2AConfig
    reader: LipReaderConfig
    decoder_channels: int = 256
    decoder_layers: int = 4
    decoder_kernel: int = 5
    dropout: float = 0.1
    output_advance: int = 0

    family_name: ClassVar[str] = "content V2A"

    def __post_init__(self) -> None:
        if self.output_advance < 0:
            raise ValueError(f"output_advance must be >= 0, got {self.output_advance}")
        if self.acoustic.crop_size != self.reader.crop_size:
            raise ValueError(
                f"the V2A model reads {self.acoustic.crop_size}-pixel crops and the lip reader "
                f"{self.reader.crop_size}-pixel ones; they must see the same crops"
            )
        if self.acoustic.fps != self.reader.fps:
            raise ValueError("the V2A model and the lip reader were trained at different fps")

    # The task code reads these off any V2A config: a content model has its V2A part's.
    n_mels = _FromAcoustic[int]()
    mel_preset = _FromAcoustic[str]()
    crop_size = _FromAcoustic[int]()
    fps = _FromAcoustic[float]()

    @property
    def lip_landmarks(self) -> bool:
        """Whether either part reads the lip landmarks."""
        return self.acoustic.lip_landmarks or self.reader.lip_landmarks

    @property
    def audio_encoder(self) -> bool:
        return False

    @property
    def feature_size(self) -> int:
        """Channels per video frame the decoder reads."""
        heads = VOCAB_SIZE + (N_WORD_CLASSES if self.reader.word_head else 0)
        return 2 * self.acoustic.hidden + 2 * self.reader.hidden + heads

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields, tagged ``kind = "content"``."""
        data = dataclasses.asdict(self)
        data["acoustic"] = self.acoustic.to_dict()
        data["reader"] = self.reader.to_dict()
        return {"kind": KIND, **data}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ContentV2AConfig:
        """Inverse of :meth:`to_dict`.

        Raises:
            ValueError: not a content config, unknown fields or inconsistent parts.
        """
        values = dict(data)
        if values.pop("kind", None) != KIND:
            raise ValueError(f"not a content V2A config (kind must be {KIND!r})")
        unknown = set(values) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise ValueError(f"unknown ContentV2AConfig fields: {', '.join(sorted(unknown))}")
        values["acoustic"] = V2AConfig.from_dict(dict(values["acoustic"]))
        values["reader"] = LipReaderConfig.from_dict(dict(values["reader"]))
        return cls(**values)


def is_content_config(data: dict[str, Any]) -> bool:
    """Whether a V2A checkpoint's config JSON describes a :class:`ContentV2A`."""
    return data.get("kind") == KIND


class ResBlock1d(nn.Module):
    """``x + dropout(relu(bn(conv(x))))`` over ``(B, C, F)``."""

    def __init__(self, channels: int, kernel: int, dropout: float) -> None:
        super().__init__()
        self.conv = nn.Conv1d(channels, channels, kernel, padding=kernel // 2)
        self.norm = nn.BatchNorm1d(channels)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.dropout(F.relu(self.norm(self.conv(x))))


class ContentV2A(nn.Module):
    """Frozen V2A model + frozen lip reader → a new mel decoder (video only).

    Args:
        config: the architecture.
    """

    def __init__(self, config: ContentV2AConfig) -> None:
        super().__init__()
        self.config = config
        self.acoustic = V2AModel(config.acoustic)
        self.reader = LipReader(config.reader)
        for part in (self.acoustic, self.reader):
            part.requires_grad_(False)
        ch = config.decoder_channels
        self.inp = nn.Conv1d(config.feature_size, ch, 3, padding=1)
        self.blocks = nn.Sequential(
            *(ResBlock1d(ch, config.decoder_kernel, config.dropout)
              for _ in range(config.decoder_layers))
        )  # fmt: skip
        self.out = nn.Conv1d(ch, config.n_mels, 1)
        self.register_buffer("mel_mean", torch.zeros(config.n_mels))
        self.register_buffer("mel_std", torch.ones(config.n_mels))
        self.acoustic.eval()
        self.reader.eval()

    #: No audio encoder: AV2A stays a :class:`V2AModel` (the task code checks this).
    audio = None

    @property
    def lips(self) -> nn.Module | None:
        """A lip-landmark stream of either part (the task code passes lip features when there
        is one); :meth:`features` gives them to each part that has its own."""
        return self.acoustic.lips if self.acoustic.lips is not None else self.reader.lips

    def train(self, mode: bool = True) -> ContentV2A:
        """Switch the decoder's mode; the trained parts always stay in eval mode."""
        super().train(mode)
        self.acoustic.eval()
        self.reader.eval()
        return self

    def normalise(self, mel: torch.Tensor) -> torch.Tensor:
        """Log mel ``(B, n_mels, F)`` → training-normalised units."""
        return (mel - self.mel_mean[:, None]) / self.mel_std[:, None]

    @torch.no_grad()
    def features(self, crops: torch.Tensor, lips: torch.Tensor | None = None) -> torch.Tensor:
        """What the decoder reads: ``(B, T, config.feature_size)`` at the video rate.

        Args:
            crops: ``(B, T, S, S)`` gray mouth crops in [0, 1].
            lips: ``(B, T, 40)`` lip features (when either part has a lip stream).
        """
        acoustic_lips = lips if self.acoustic.lips is not None else None
        acoustic = self.acoustic.encode(crops, mode=VIDEO, lips=acoustic_lips)
        hidden = self.reader.hidden(crops, lips if self.reader.lips is not None else None)
        parts = [acoustic, hidden, F.log_softmax(self.reader.out(hidden), dim=-1)]
        if self.reader.words is not None:
            parts.append(F.log_softmax(self.reader.words(hidden), dim=-1))
        return torch.cat(parts, dim=-1)

    def decode(self, features: torch.Tensor, n_frames: int) -> torch.Tensor:
        """``(B, T, feature_size)`` features → ``(B, n_mels, n_frames)`` *normalised* log mel."""
        x = self.inp(features.transpose(1, 2))
        x = F.interpolate(x, size=n_frames, mode="linear", align_corners=False)
        return self.out(self.blocks(x))

    def forward(
        self,
        crops: torch.Tensor,
        n_frames: int,
        noisy_mel: torch.Tensor | None = None,
        mode: int | None = None,
        lips: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Predict the log mel (same call as :meth:`V2AModel.forward`, video only).

        Args:
            crops: ``(B, T, S, S)`` gray mouth crops in [0, 1] at ``config.fps``.
            n_frames: mel frames ``F`` to produce.
            noisy_mel: must be None (no audio input).
            mode: None or VIDEO.
            lips: ``(B, T, 40)`` lip features when the acoustic part has a lip stream.

        Returns:
            ``(B, n_mels, F)`` log mel.
        """
        if noisy_mel is not None or mode not in (None, VIDEO):
            raise ValueError("a content V2A model is video-only (use an AV2A model for audio)")
        y = self.decode(self.features(crops, lips), n_frames)
        return y * self.mel_std[:, None] + self.mel_mean[:, None]
