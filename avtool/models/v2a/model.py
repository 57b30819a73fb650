"""V2A-MelSpec-style video-to-speech and its audio-visual extension (AV2A).

The network maps mouth crops at 25 fps to a log-mel spectrogram in the ``hifigan-22k``
contract (80 bands, 22.05 kHz, hop 256: about 86.13 frames per second):

1. **Video encoder** (:mod:`avtool.models.visual`, shared with the ResNet lip reader; its
   fields are part of :class:`V2AConfig`, :attr:`V2AConfig.visual`): a 3-D convolution stem over
   ``(T, H, W)`` gray mouth crops (so the first layer sees lip *motion*), then 2-D residual
   stages applied frame by frame and a global average pool: ``(B, T, 1, H, W)`` → ``(B, T, C)``.
   With ``lip_landmarks`` a second stream adds the 20 dlib lip points per frame, normalised
   for position, in-plane rotation and scale (:func:`avtool.models.visual.lip_features`),
   through a small temporal convolution whose output is added to the crop features (an
   explicit, cheap measure of mouth opening and shape that the 44x44 crops only imply).
2. **Audio encoder** (AV2A only): 1-D convolutions over the noisy input's log mel, pooled to the
   video frame rate and added to the video features.
3. **Temporal module**: a bidirectional GRU at the video rate.
4. **Upsampling** to exactly ``MelSpec.frames_for(samples)`` mel frames by linear interpolation,
   then a 1-D convolutional **decoder** to 80 mel bands (predicted in units normalised by the
   training set's per-band mean/std, stored as buffers so the checkpoint is self-contained).

AV2A follows the seed paper's recipe: an audio encoder added to a trained V2A model, *modality
dropout* during training (a batch sees video only, audio only or both) and batch norm with
**separate running statistics per modality combination** (:class:`ModalityBatchNorm1d`), because
the fused features' statistics differ by which inputs are present; using one set of statistics
for all three would mis-normalise whichever combination is rarer at test time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from avtool.models.visual import LipEncoder, VideoEncoder, VisualConfig

#: Modality combinations; the index selects the batch-norm statistics.
VIDEO, AUDIO, BOTH = 0, 1, 2
MODES = ("video", "audio", "both")


@dataclass(frozen=True)
class V2AConfig(VisualConfig):
    """Architecture of a V2A/AV2A model: the shared visual front-end's fields
    (:class:`~avtool.models.visual.VisualConfig`: ``crop_size``, ``stem_channels``,
    ``stem_kernel``, ``stages``, ``blocks_per_stage``, ``hidden``; ``hidden`` is also each GRU
    direction's size) first, flat, as the shipped configs store them, then these.

    Attributes:
        gru_layers: layers of the bidirectional GRU.
        decoder_channels: channels of the 1-D decoder at the mel frame rate.
        decoder_layers: convolution layers of the decoder.
        decoder_kernel: their kernel size in mel frames.
        n_mels: mel bands out (80 for ``hifigan-22k``).
        audio_encoder: build the AV2A audio encoder.
        audio_channels: channels of the audio encoder.
        dropout: dropout before the GRU and in the decoder.
        lip_landmarks: add the lip-landmark stream (the model then needs ``(T, 68, 2)``
            landmarks beside the crops).
        fps: video frame rate the model was trained on.
        mel_preset: the :class:`~avtool.io.features.MelSpec` preset of the output.
        output_advance: mel frames by which inference moves the predicted mel earlier
            (:func:`avtool.models.v2a.advance`); set after training by
            :mod:`avtool.tasks.calibrate_v2a` from validation STOI, since mel regression
            from video leaves the speech about one frame late. 0 for AV2A (not calibrated).
    """

    gru_layers: int = 2
    decoder_channels: int = 256
    decoder_layers: int = 3
    decoder_kernel: int = 5
    n_mels: int = 80
    audio_encoder: bool = False
    audio_channels: int = 256
    dropout: float = 0.1
    lip_landmarks: bool = False
    fps: float = 25.0
    mel_preset: str = "hifigan-22k"
    output_advance: int = 0

    presets: ClassVar[tuple[str, ...]] = ("paper", "reduced", "debug")
    family_name: ClassVar[str] = "V2A"

    def __post_init__(self) -> None:
        if self.output_advance < 0:
            raise ValueError(f"output_advance must be >= 0, got {self.output_advance}")

    @classmethod
    def paper(cls) -> V2AConfig:
        """The paper-sized configuration (ResNet-18-like front-end; a GPU job)."""
        return cls()

    @classmethod
    def reduced(cls) -> V2AConfig:
        """The CPU configuration the shipped weights use (44x44 crops, 1.3 M parameters): the
        shared reduced front-end (:meth:`VisualConfig.reduced`) and a small GRU and decoder."""
        return cls(
            **VisualConfig.reduced().to_dict(),
            gru_layers=1,
            decoder_channels=192,
            decoder_layers=3,
            audio_channels=128,
        )

    @classmethod
    def debug(cls) -> V2AConfig:
        """A tiny random-weight configuration for tests (:meth:`VisualConfig.debug` in front)."""
        return cls(
            **VisualConfig.debug().to_dict(),
            gru_layers=1,
            decoder_channels=16,
            decoder_layers=1,
            audio_channels=16,
        )

    @property
    def visual(self) -> VisualConfig:
        """The video encoder's part of this config (the shared front-end's fields alone)."""
        return VisualConfig.pick(self)


class ModalityBatchNorm1d(nn.Module):
    """Batch norm over ``(B, C, L)`` with one set of running statistics per modality combination.

    The affine scale and shift are shared; ``running_mean``/``running_var`` are kept per mode
    (video, audio, both), and :attr:`mode` picks which ones a forward pass uses and updates.
    """

    def __init__(self, channels: int, n_modes: int = len(MODES), momentum: float = 0.1) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.register_buffer("running_mean", torch.zeros(n_modes, channels))
        self.register_buffer("running_var", torch.ones(n_modes, channels))
        self.momentum = momentum
        self.mode = VIDEO

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C, L)`` → same shape, normalised with the current mode's statistics."""
        # Indexing a row gives a view, so F.batch_norm updates that mode's statistics in place.
        return F.batch_norm(
            x,
            self.running_mean[self.mode],
            self.running_var[self.mode],
            self.weight,
            self.bias,
            self.training,
            self.momentum,
            1e-5,
        )

    def copy_stats(self, source: int, targets: tuple[int, ...]) -> None:
        """Start other modes' statistics from ``source``'s (AV2A starts from V2A's video stats)."""
        with torch.no_grad():
            for target in targets:
                self.running_mean[target].copy_(self.running_mean[source])
                self.running_var[target].copy_(self.running_var[source])


class AudioEncoder(nn.Module):
    """Noisy log mel ``(B, n_mels, F)`` (normalised) → features ``(B, F, hidden)``."""

    def __init__(self, config: V2AConfig) -> None:
        super().__init__()
        c = config.audio_channels
        self.conv1 = nn.Conv1d(config.n_mels, c, 5, padding=2)
        self.bn1 = ModalityBatchNorm1d(c)
        self.conv2 = nn.Conv1d(c, c, 5, padding=2)
        self.bn2 = ModalityBatchNorm1d(c)
        self.proj = nn.Linear(c, config.hidden)

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.bn1(self.conv1(mel)))
        x = F.relu(self.bn2(self.conv2(x)))
        return self.proj(x.transpose(1, 2))


class V2AModel(nn.Module):
    """Video (and optionally noisy audio) → log mel in the configured contract.

    Buffers ``mel_mean``/``mel_std`` ``(n_mels,)`` hold the training set's per-band statistics;
    the network predicts normalised mels and :meth:`forward` returns them in log-mel units.
    """

    def __init__(self, config: V2AConfig) -> None:
        super().__init__()
        self.config = config
        self.video = VideoEncoder(config.visual)
        self.audio = AudioEncoder(config) if config.audio_encoder else None
        self.lips = LipEncoder(config.hidden) if config.lip_landmarks else None
        self.fuse_norm = ModalityBatchNorm1d(config.hidden)
        self.dropout = nn.Dropout(config.dropout)
        self.gru = nn.GRU(config.hidden, config.hidden, config.gru_layers, batch_first=True,
                          bidirectional=True)  # fmt: skip
        layers: list[nn.Module] = []
        cin = 2 * config.hidden
        for _ in range(config.decoder_layers):
            kernel = config.decoder_kernel
            layers.append(nn.Conv1d(cin, config.decoder_channels, kernel, padding=kernel // 2))
            layers.append(ModalityBatchNorm1d(config.decoder_channels))
            cin = config.decoder_channels
        self.decoder = nn.ModuleList(layers)
        self.out = nn.Conv1d(cin, config.n_mels, 1)
        self.register_buffer("mel_mean", torch.zeros(config.n_mels))
        self.register_buffer("mel_std", torch.ones(config.n_mels))

    def set_mode(self, mode: int) -> None:
        """Select the batch-norm statistics of a modality combination (VIDEO, AUDIO, BOTH)."""
        for module in self.modules():
            if isinstance(module, ModalityBatchNorm1d):
                module.mode = mode

    def normalise(self, mel: torch.Tensor) -> torch.Tensor:
        """Log mel ``(B, n_mels, F)`` → training-normalised units."""
        return (mel - self.mel_mean[:, None]) / self.mel_std[:, None]

    def forward(
        self,
        crops: torch.Tensor,
        n_frames: int,
        noisy_mel: torch.Tensor | None = None,
        mode: int | None = None,
        lips: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Predict the log mel.

        Args:
            crops: ``(B, T, S, S)`` gray mouth crops in [0, 1] at ``config.fps``, ``S`` =
                ``config.crop_size`` (:func:`avtool.models.visual.prepare_crops` of 88x88 uint8
                crops).
            n_frames: mel frames ``F`` to produce (``MelSpec.frames_for(samples)``).
            noisy_mel: ``(B, n_mels, F)`` log mel of the noisy audio (AV2A models only).
            mode: VIDEO, AUDIO or BOTH; default BOTH when ``noisy_mel`` is given, else VIDEO.
                With AUDIO the video features are zeroed (audio-only inpainting).
            lips: ``(B, T, 40)`` :func:`avtool.models.visual.lip_features` (models with
                ``lip_landmarks`` only).

        Returns:
            ``(B, n_mels, F)`` log mel.
        """
        x = self.encode(crops, noisy_mel, mode, lips)
        x = F.interpolate(x.transpose(1, 2), size=n_frames, mode="linear", align_corners=False)
        for i in range(0, len(self.decoder), 2):
            x = self.dropout(F.relu(self.decoder[i + 1](self.decoder[i](x))))
        y = self.out(x)
        return y * self.mel_std[:, None] + self.mel_mean[:, None]

    def encode(
        self,
        crops: torch.Tensor,
        noisy_mel: torch.Tensor | None = None,
        mode: int | None = None,
        lips: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """The temporal module's output at the video rate: ``(B, T, 2 * hidden)``.

        Arguments as for :meth:`forward`; :class:`avtool.models.v2a.content.ContentV2A` reads
        these features from a trained model.
        """
        if mode is None:
            mode = BOTH if noisy_mel is not None else VIDEO
        if mode != VIDEO and (self.audio is None or noisy_mel is None):
            raise ValueError("audio modes need an AV2A model and noisy_mel")
        if (lips is None) != (self.lips is None):
            raise ValueError("lips must be given exactly when the model has lip_landmarks")
        self.set_mode(mode)
        feats = self.video(crops)  # (B, T, H)
        if self.lips is not None:
            assert lips is not None
            feats = feats + self.lips(lips)
        if mode == AUDIO:
            feats = torch.zeros_like(feats)
        if mode != VIDEO:
            assert self.audio is not None and noisy_mel is not None
            audio = self.audio(self.normalise(noisy_mel))  # (B, F_in, H)
            # Pool the audio features to the video rate so the GRU runs at 25 fps either way.
            audio = F.adaptive_avg_pool1d(audio.transpose(1, 2), feats.shape[1])
            feats = feats + audio.transpose(1, 2)
        x = self.fuse_norm(feats.transpose(1, 2)).transpose(1, 2)
        x, _ = self.gru(self.dropout(x))  # (B, T, 2H)
        return x


def build(config: V2AConfig) -> V2AModel:
    """A randomly initialised model (seed torch first for reproducible weights)."""
    return V2AModel(config)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
