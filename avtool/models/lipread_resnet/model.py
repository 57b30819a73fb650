"""A modern visual speech recogniser: 3-D conv + 2-D ResNet front-end, BiGRU, CTC over characters.

    config = LipReaderConfig.reduced()           # the v2a-grid-s1 video encoder + BiGRU 2x160
    model = build(config)
    log_probs, word_logits = model(crops)      # (B, T, 44, 44) in [0, 1] -> (B, T, 28), (B, T, 52)

The front-end is :class:`avtool.models.visual.VideoEncoder` (shared with V2A): a 3-D
convolution stem over gray mouth crops (so the first layer sees lip *motion*), 2-D residual
stages applied frame by frame and a global average pool. Its weights can start from a trained
video-to-speech model (:func:`transfer_encoder`), whose dense mel supervision taught it visual
speech features that CTC alone is slow to find. A 2-layer bidirectional GRU and a linear layer
give per-frame log-probabilities over LipNet's vocabulary (blank 0, space 1, ``a``-``z``), so
:mod:`avtool.models.lipnet.ctc` decodes it unchanged.

A second linear head predicts, per frame, which GRID word is being spoken (51 words + silence);
it only supplies a dense auxiliary loss during training (:mod:`.train`) and is never used to
decode.

With ``lip_landmarks`` a second input stream adds the 20 dlib lip points per frame
(:func:`avtool.models.visual.lip_features`, normalised for position, roll and scale) through
:class:`~avtool.models.visual.LipEncoder`, summed with the crop features before the
normalisation. Its output convolution starts at zero, so the stream can be added to a trained
reader (:mod:`.train` ``--init-reader``) without changing its predictions before training.

The config's ``encoder`` is a :class:`~avtool.models.visual.VisualConfig`. The shipped
``lipread-grid-s1.pt.json`` (written when the encoder config was a whole ``V2AConfig``) nests
V2A's other fields too; :meth:`LipReaderConfig.from_dict` reads that layout and drops them
(:data:`LEGACY_ENCODER_KEYS`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from avtool.errors import ModelError
from avtool.models.lipnet.model import VOCAB_SIZE
from avtool.models.presets import PresetConfig
from avtool.models.visual import LipEncoder, VideoEncoder, VisualConfig

#: The GRID vocabulary in a fixed order (command, colour, preposition, letter, digit, adverb);
#: frame class ``i + 1`` is ``GRID_VOCAB[i]``, class 0 is silence / no word.
GRID_VOCAB = (
    "bin", "lay", "place", "set", "blue", "green", "red", "white", "at", "by", "in", "with",
    *"abcdefghijklmnopqrstuvxyz",
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine",
    "again", "now", "please", "soon",
)  # fmt: skip
N_WORD_CLASSES = len(GRID_VOCAB) + 1
#: The V2A-only fields the encoder config of a reader saved before the visual front-end had its
#: own config carries (``lipread-grid-s1.pt.json``): read and dropped.
LEGACY_ENCODER_KEYS = frozenset(
    {
        "gru_layers", "decoder_channels", "decoder_layers", "decoder_kernel", "n_mels",
        "audio_encoder", "audio_channels", "dropout", "lip_landmarks", "fps", "mel_preset",
        "output_advance",
    }
)  # fmt: skip


def _reduced_encoder() -> VisualConfig:
    # Pinned (not VisualConfig.reduced()) so the preset keeps matching the v2a-grid-s1 encoder
    # the shipped weights started from even if the shared reduced preset changes.
    return VisualConfig(
        crop_size=44, stem_channels=24, stem_kernel=(5, 5, 5), stages=(32, 64, 128),
        blocks_per_stage=1, hidden=160,
    )  # fmt: skip


@dataclass(frozen=True)
class LipReaderConfig(PresetConfig):
    """Architecture of a :class:`LipReader`.

    Attributes:
        encoder: the visual front-end (:class:`~avtool.models.visual.VisualConfig`; a
            V2A model's :attr:`~avtool.models.v2a.model.V2AConfig.visual` for a reader
            initialised from it).
        hidden: units of each GRU direction.
        gru_layers: stacked bidirectional GRU layers.
        dropout: dropout on the encoder features and between GRU layers (training only).
        word_head: build the auxiliary per-frame GRID word classifier.
        fps: video frame rate the model was trained on.
        lip_landmarks: add the lip-landmark stream (the model then needs ``(B, T, 40)``
            :func:`~avtool.models.visual.lip_features` beside the crops).
    """

    encoder: VisualConfig = field(default_factory=_reduced_encoder)
    hidden: int = 160
    gru_layers: int = 2
    dropout: float = 0.2
    word_head: bool = True
    fps: float = 25.0
    lip_landmarks: bool = False

    presets: ClassVar[tuple[str, ...]] = ("reduced", "debug")
    family_name: ClassVar[str] = "lip reader"

    @property
    def crop_size(self) -> int:
        """Side in pixels of the gray crops the front-end sees (the 88x88 crops pooled)."""
        return self.encoder.crop_size

    @classmethod
    def reduced(cls) -> LipReaderConfig:
        """The CPU configuration shipped as ``lipread-grid-s1`` (v2a-grid-s1's encoder)."""
        return cls()

    @classmethod
    def debug(cls) -> LipReaderConfig:
        """A tiny random-weight model for tests."""
        return cls(encoder=VisualConfig.debug(), hidden=8, gru_layers=2, dropout=0.0)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields (the encoder as a nested dict)."""
        data = dataclasses.asdict(self)
        data["encoder"] = self.encoder.to_dict()
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LipReaderConfig:
        """Inverse of :meth:`to_dict`; unknown keys are an error, except the V2A fields of
        the older encoder layout (:data:`LEGACY_ENCODER_KEYS`), which are dropped.

        Raises:
            ModelError: unknown keys or a malformed value.
        """
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ModelError(f"lip reader config: unknown keys {sorted(unknown)}")
        values = dict(data)
        try:
            if "encoder" in values:
                values["encoder"] = VisualConfig.from_dict(
                    dict(values["encoder"]), ignore=LEGACY_ENCODER_KEYS
                )
            return cls(**values)
        except (TypeError, ValueError) as exc:
            raise ModelError(f"lip reader config: {exc}") from exc


class LipReader(nn.Module):
    """Gray mouth crops → per-frame character log-probabilities (and GRID word logits).

    Args:
        config: the architecture.
    """

    def __init__(self, config: LipReaderConfig) -> None:
        super().__init__()
        self.config = config
        self.video = VideoEncoder(config.encoder)
        feat = config.encoder.hidden
        # The encoder's projection has no normalisation after it; the GRU trains faster on
        # standardised inputs (v2a normalises at the same point).
        self.norm = nn.BatchNorm1d(feat)
        self.dropout = nn.Dropout(config.dropout)
        self.gru = nn.GRU(
            feat, config.hidden, config.gru_layers, batch_first=True, bidirectional=True,
            dropout=config.dropout if config.gru_layers > 1 else 0.0,
        )  # fmt: skip
        self.out = nn.Linear(2 * config.hidden, VOCAB_SIZE)
        self.words = nn.Linear(2 * config.hidden, N_WORD_CLASSES) if config.word_head else None
        # Built last so the other modules draw the same random initial weights with or without
        # the stream; it adds to the encoder features, so it needs their size.
        self.lips = LipEncoder(feat) if config.lip_landmarks else None

    def forward(
        self, crops: torch.Tensor, lips: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Run the network.

        Args:
            crops: ``(B, T, S, S)`` float in [0, 1], ``S = config.crop_size``
                (:func:`avtool.models.visual.prepare_crops` of the 88x88 gray crops).
            lips: ``(B, T, 40)`` :func:`~avtool.models.visual.lip_features`, exactly when
                the model has the lip-landmark stream.

        Returns:
            ``(B, T, VOCAB_SIZE)`` log-softmax over blank + 27 characters, and
            ``(B, T, N_WORD_CLASSES)`` word logits (None without a word head).
        """
        x = self.hidden(crops, lips)
        log_probs = F.log_softmax(self.out(x), dim=-1)
        return log_probs, (self.words(x) if self.words is not None else None)

    def hidden(self, crops: torch.Tensor, lips: torch.Tensor | None = None) -> torch.Tensor:
        """The BiGRU output the heads read: ``(B, T, 2 * hidden)`` for ``(B, T, S, S)`` crops
        (and ``(B, T, 40)`` lip features for a model with the lip stream).

        Raises:
            ValueError: ``lips`` given to a model without the stream or missing for one with it.
        """
        if (lips is None) != (self.lips is None):
            raise ValueError("lips must be given exactly when the model has lip_landmarks")
        x = self.video(crops)  # (B, T, F)
        if self.lips is not None:
            assert lips is not None
            x = x + self.lips(lips)
        x = self.norm(x.transpose(1, 2)).transpose(1, 2)
        x, _ = self.gru(self.dropout(x))  # (B, T, 2H)
        return x


def build(config: LipReaderConfig) -> LipReader:
    """A randomly initialised model (seed torch first for reproducible weights)."""
    return LipReader(config)


def transfer_encoder(model: LipReader, v2a_state: dict[str, torch.Tensor]) -> int:
    """Copy a V2A checkpoint's ``video.*`` weights into ``model.video``.

    Args:
        model: a lip reader whose encoder config matches the V2A model's.
        v2a_state: a V2A state dict (keys ``video.stem.0.weight``, ...).

    Returns:
        The number of tensors copied.

    Raises:
        ModelError: the V2A state has no video encoder or it does not fit.
    """
    encoder = {k[len("video.") :]: v for k, v in v2a_state.items() if k.startswith("video.")}
    if not encoder:
        raise ModelError("the V2A state dict has no video encoder (no 'video.*' keys)")
    try:
        model.video.load_state_dict(encoder)
    except RuntimeError as exc:
        raise ModelError(f"V2A video encoder does not fit the lip reader config ({exc})") from exc
    return len(encoder)
