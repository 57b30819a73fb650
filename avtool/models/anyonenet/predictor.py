"""AnyoneNet's landmark predictor: mel frames + one face's landmarks and pose → a track.

Shapes: ``B`` clips, ``F`` mel frames at 80 Hz (:data:`~.config.MEL_RATE`), landmarks in the
frontal template's units (:func:`avtool.io.face.register`: centred, inter-ocular distance 1).
"""

from __future__ import annotations

import itertools

import torch
from torch import nn

from avtool.models.anyonenet.config import N_POINTS, PredictorConfig

#: Fixed affine applied to the ln-mel before the audio encoder (speech ln-mels span about
#: -11..2); a learned per-frame norm would erase loudness, which tells silence from speech.
MEL_OFFSET = 5.0
MEL_SCALE = 4.0


def _mlp(sizes: list[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(itertools.pairwise(sizes)):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class LandmarkPredictor(nn.Module):
    """Audio encoder + landmark encoder + quaternion encoder → conv/BiLSTM/MLP decoder.

    The output layer starts at zero, so an untrained model predicts the source face held
    still (the static baseline) and training only has to learn the motion.
    """

    def __init__(self, config: PredictorConfig) -> None:
        super().__init__()
        self.config = config
        c = config
        self.audio_encoder = nn.Sequential(
            _mlp([c.n_mels, c.audio_hidden, c.audio_hidden]), nn.ReLU()
        )
        self.landmark_encoder = nn.Sequential(
            _mlp([2 * N_POINTS, c.landmark_hidden, c.landmark_hidden]), nn.ReLU()
        )
        self.quaternion_encoder = nn.Sequential(
            _mlp([4, c.quaternion_hidden, c.quaternion_hidden]), nn.ReLU()
        )
        width = c.audio_hidden + c.landmark_hidden + c.quaternion_hidden
        convs: list[nn.Module] = []
        for i, channels in enumerate(c.conv_channels):
            norm = nn.InstanceNorm1d(channels, affine=True) if i == 0 else nn.BatchNorm1d(channels)
            convs += [
                nn.Conv1d(width, channels, c.kernel_size, padding=c.kernel_size // 2),
                norm,
                nn.ReLU(),
            ]
            width = channels
        self.convs = nn.Sequential(*convs)
        self.lstm = nn.LSTM(width, c.lstm_hidden, batch_first=True, bidirectional=True)
        self.head = _mlp([2 * c.lstm_hidden, c.mlp_hidden, 2 * N_POINTS + 4])
        self.smoother = nn.LSTM(4, c.smoother_hidden, batch_first=True)
        self.smoother_out = nn.Linear(c.smoother_hidden, 4)
        for layer in (self.head[-1], self.smoother_out):
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)

    def forward(
        self, mel: torch.Tensor, source_landmarks: torch.Tensor, source_quaternion: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Predict landmark displacements and quaternion changes.

        Args:
            mel: ``(B, F, n_mels)`` ln-mel frames (:data:`~.config.PREDICTOR_MEL`).
            source_landmarks: ``(B, 68, 2)`` frontal landmarks of the source face.
            source_quaternion: ``(B, 4)`` its head pose ``(w, x, y, z)``.

        Returns:
            ``(displacements (B, F, 68, 2), quaternion_changes (B, F, 4))``, to be added to the
            source landmarks and quaternion (see :func:`apply`).
        """
        batch, frames, _ = mel.shape
        audio = self.audio_encoder((mel + MEL_OFFSET) / MEL_SCALE)
        face = self.landmark_encoder(source_landmarks.reshape(batch, -1))
        pose = self.quaternion_encoder(source_quaternion)
        identity = torch.cat([face, pose], dim=-1)[:, None, :].expand(-1, frames, -1)
        x = torch.cat([audio, identity], dim=-1).transpose(1, 2)  # (B, C, F)
        x = self.convs(x).transpose(1, 2)
        x, _ = self.lstm(x)
        out = self.head(x)
        displacement = out[..., : 2 * N_POINTS].reshape(batch, frames, N_POINTS, 2)
        smoothed, _ = self.smoother(out[..., 2 * N_POINTS :])
        return displacement, self.smoother_out(smoothed)


def apply(
    source_landmarks: torch.Tensor,
    source_quaternion: torch.Tensor,
    displacement: torch.Tensor,
    quaternion_change: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Source + predicted changes → the track.

    Args:
        source_landmarks: ``(B, 68, 2)``; source_quaternion: ``(B, 4)``.
        displacement: ``(B, F, 68, 2)``; quaternion_change: ``(B, F, 4)``.

    Returns:
        ``(landmarks (B, F, 68, 2), quaternions (B, F, 4))``, quaternions normalised to unit
        length with ``w ≥ 0``.
    """
    landmarks = source_landmarks[:, None] + displacement
    quats = source_quaternion[:, None] + quaternion_change
    quats = quats / quats.norm(dim=-1, keepdim=True).clamp_min(1e-8)
    quats = torch.where(quats[..., :1] < 0, -quats, quats)
    return landmarks, quats


def build(config: PredictorConfig) -> LandmarkPredictor:
    """A randomly initialised predictor (seed torch first for reproducible weights)."""
    return LandmarkPredictor(config)


def count_parameters(module: nn.Module) -> int:
    """Trainable parameters of ``module``."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)
