"""Losses of both AnyoneNet networks.

Predictor: L2 on landmarks + an inter-frame (velocity) L2 + L1 on quaternions.
Renderer: L1 + perceptual + adversarial (least squares). The perceptual term needs ImageNet
VGG-19 weights, which cannot be downloaded here and are not bundled: :class:`VGG19Features`
loads torchvision's published ``vgg19-dcbb9e9d.pth`` (or any state dict with its
``features.N.*`` keys) from a local path. Without one the trainer falls back to the
discriminator feature-matching loss (pix2pixHD's), and says so in its log.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from avtool.errors import ModelError

#: VGG-19 "E" configuration: channels, "M" = 2x2 max-pool (torchvision's ``features`` order).
VGG19_LAYOUT: tuple[int | str, ...] = (
    64,
    64,
    "M",
    128,
    128,
    "M",
    256,
    256,
    256,
    256,
    "M",
    512,
    512,
    512,
    512,
    "M",
    512,
    512,
    512,
    512,
    "M",
)
#: Indices in ``features`` of relu1_1, relu2_1, relu3_1, relu4_1, relu5_1 and their weights
#: (pix2pixHD's VGGLoss), deeper layers weighing more.
PERCEPTUAL_LAYERS = (1, 6, 11, 20, 29)
PERCEPTUAL_WEIGHTS = (1 / 32, 1 / 16, 1 / 8, 1 / 4, 1.0)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def predictor_loss(
    landmarks: torch.Tensor,
    quaternions: torch.Tensor,
    target_landmarks: torch.Tensor,
    target_quaternions: torch.Tensor,
    *,
    landmark_weight: float = 10.0,
    interframe_weight: float = 10.0,
    quaternion_weight: float = 1.0,
) -> tuple[torch.Tensor, dict[str, float]]:
    """The predictor's training loss.

    Args:
        landmarks, target_landmarks: ``(B, F, 68, 2)`` frontal landmarks.
        quaternions, target_quaternions: ``(B, F, 4)``.
        landmark_weight: weight of the landmark L2 (landmarks are in inter-ocular distances,
            so their squared errors are ~1e-3; the weight keeps them from being swamped by
            the quaternion term).
        interframe_weight: weight of the velocity term.
        quaternion_weight: weight of the quaternion L1 term.

    Returns:
        ``(total, parts)`` with parts ``l2``, ``interframe``, ``quaternion`` as floats.
    """
    l2 = F.mse_loss(landmarks, target_landmarks)
    velocity = landmarks[:, 1:] - landmarks[:, :-1]
    target_velocity = target_landmarks[:, 1:] - target_landmarks[:, :-1]
    interframe = F.mse_loss(velocity, target_velocity)
    # q and -q are one rotation: compare with the target's sign matched to the prediction's.
    sign = torch.sign((quaternions * target_quaternions).sum(-1, keepdim=True)).detach()
    quaternion = F.l1_loss(quaternions, target_quaternions * torch.where(sign == 0, 1.0, sign))
    total = landmark_weight * l2 + interframe_weight * interframe + quaternion_weight * quaternion
    parts = {"l2": l2.item(), "interframe": interframe.item(), "quaternion": quaternion.item()}
    return total, parts


class VGG19Features(nn.Module):
    """VGG-19's convolutional part, returning the activations used by the perceptual loss.

    Parameter names match torchvision's ``vgg19().features`` (``features.0.weight`` ...), so
    its published state dict loads with :meth:`load`.
    """

    def __init__(self) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        channels = 3
        for item in VGG19_LAYOUT:
            if item == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                layers += [nn.Conv2d(channels, int(item), 3, padding=1), nn.ReLU(inplace=False)]
                channels = int(item)
        self.features = nn.Sequential(*layers[: max(PERCEPTUAL_LAYERS) + 1])
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))
        self.requires_grad_(False)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> VGG19Features:
        """Load weights from a torchvision-style VGG-19 state dict file.

        Raises:
            ModelError: unreadable file, or missing/mis-shaped ``features.*`` tensors.
        """
        model = cls()
        try:
            state = torch.load(Path(path), map_location="cpu", weights_only=True)
        except (OSError, RuntimeError, ValueError) as exc:
            raise ModelError(f"{path}: not a readable VGG-19 state dict ({exc})") from exc
        wanted = {k: v for k, v in state.items() if k.startswith("features.")}
        try:
            model.load_state_dict({**wanted, "mean": model.mean, "std": model.std}, strict=False)
        except RuntimeError as exc:
            raise ModelError(f"{path}: does not fit VGG-19 ({exc})") from exc
        expected = {k for k in model.state_dict() if k.startswith("features.")}
        missing = sorted(expected - set(wanted))
        if missing:
            raise ModelError(f"{path}: not a VGG-19 state dict (missing {missing[:3]} ...)")
        return model.eval()

    def forward(self, image: torch.Tensor) -> list[torch.Tensor]:
        """``(B, 3, H, W)`` in [-1, 1] → activations at :data:`PERCEPTUAL_LAYERS`."""
        x = ((image + 1.0) / 2.0 - self.mean) / self.std
        out = []
        for index, layer in enumerate(self.features):
            x = layer(x)
            if index in PERCEPTUAL_LAYERS:
                out.append(x)
        return out


def perceptual_loss(vgg: VGG19Features, fake: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """Weighted L1 between VGG-19 activations of ``fake`` and ``real`` ``(B, 3, H, W)``."""
    with torch.no_grad():
        targets = vgg(real)
    return sum(
        (
            w * F.l1_loss(a, b)
            for w, a, b in zip(PERCEPTUAL_WEIGHTS, vgg(fake), targets, strict=True)
        ),
        torch.zeros((), device=fake.device),
    )


def feature_matching_loss(
    fake_features: list[torch.Tensor], real_features: list[torch.Tensor]
) -> torch.Tensor:
    """Mean L1 between discriminator activations of fake and (detached) real frames."""
    terms = [F.l1_loss(f, r.detach()) for f, r in zip(fake_features, real_features, strict=True)]
    return torch.stack(terms).mean()


def adversarial_d_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """Least-squares GAN discriminator loss: real → 1, fake → 0."""
    return 0.5 * ((real_logits - 1).square().mean() + fake_logits.square().mean())


def adversarial_g_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """Least-squares GAN generator loss: fake → 1."""
    return (fake_logits - 1).square().mean()
