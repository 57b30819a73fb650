"""AnyoneNet inference: audio + one face → a landmark and head-pose track → rendered frames.

:func:`predict_track` is the hook for the warping renderer (``talkinghead --model warp`` can be
driven by the predictor's landmarks); :func:`render_frames` draws frames with the UNet.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import numpy as np
import torch

from avtool.errors import InputError
from avtool.io.face import estimate_pose, frontal_template, quaternion_to_rotation, register
from avtool.models.anyonenet import checkpoint
from avtool.models.anyonenet.config import MEL_RATE
from avtool.models.anyonenet.data import (
    crop_box,
    crop_face,
    load_audio_mel,
    resample_quaternions,
    resample_track,
)
from avtool.models.anyonenet.predictor import LandmarkPredictor, apply
from avtool.models.anyonenet.sketch import draw_sketch, from_tensor_image, to_tensor_image


@torch.no_grad()
def predict(
    model: LandmarkPredictor,
    mel: np.ndarray,
    source_frontal: np.ndarray,
    source_quaternion: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Run the predictor on one clip.

    Args:
        model: a loaded predictor (eval mode).
        mel: ``(F, 80)`` ln-mel at 80 Hz (:func:`.data.audio_mel`).
        source_frontal: ``(68, 2)`` frontal landmarks of the face (:func:`avtool.io.face.register`).
        source_quaternion: ``(4,)`` its head pose.

    Returns:
        ``(frontal (F, 68, 2), quaternions (F, 4))`` float32 at 80 Hz.
    """
    device = next(model.parameters()).device
    mel_t = torch.as_tensor(mel, dtype=torch.float32, device=device)[None]
    src = torch.as_tensor(source_frontal, dtype=torch.float32, device=device)[None]
    srcq = torch.as_tensor(source_quaternion, dtype=torch.float32, device=device)[None]
    disp, dq = model(mel_t, src, srcq)
    frontal, quats = apply(src, srcq, disp, dq)
    return frontal[0].cpu().numpy(), quats[0].cpu().numpy()


def project(
    frontal: np.ndarray, quaternions: np.ndarray, scale: float, translation: np.ndarray
) -> np.ndarray:
    """Frontal landmarks + head poses → image pixels (the inverse of ``register``).

    Each frame's points get the frontal template's depth, are rotated by the frame's
    quaternion and projected orthographically with the source face's scale and position.

    Args:
        frontal: ``(T, 68, 2)`` template units; quaternions: ``(T, 4)``.
        scale: pixels per template unit; translation: ``(2,)`` pixels.

    Returns:
        ``(T, 68, 2)`` float32 pixels.
    """
    depth = frontal_template()[:, 2]
    rotations = quaternion_to_rotation(quaternions)  # (T, 3, 3)
    points = np.concatenate(
        [frontal.astype(np.float64), np.broadcast_to(depth, frontal.shape[:2])[..., None]],
        axis=-1,
    )
    rotated = np.einsum("tij,tnj->tni", rotations, points)[..., :2]
    return (scale * rotated + np.asarray(translation)).astype(np.float32)


def predict_track(
    checkpoint_path: str | os.PathLike[str] | LandmarkPredictor,
    audio_path: str | os.PathLike[str],
    face_landmarks: np.ndarray,
    fps: float = 25.0,
    device: str = "cpu",
) -> tuple[np.ndarray, np.ndarray]:
    """Predict a talking face's landmark track in the source photo's pixels.

    Args:
        checkpoint_path: a predictor ``.pt`` (config JSON beside it), a registry name, or a
            loaded :class:`LandmarkPredictor`.
        audio_path: speech (any file :func:`avtool.io.audio.load_audio` reads).
        face_landmarks: ``(68, 2)`` pixels of the source face.
        fps: frame rate of the returned track.
        device: torch device for the model.

    Returns:
        ``(landmarks (T, 68, 2) float32 pixels, quaternions (T, 4))`` with
        ``T = round(duration * fps)`` (at least 1).

    Raises:
        InputError: bad landmarks, unreadable or too short audio.
        ModelError: the checkpoint cannot be loaded.
    """

    face = np.asarray(face_landmarks, dtype=np.float32)
    if face.shape != (68, 2) or not np.isfinite(face).all():
        raise InputError(f"face landmarks must be finite (68, 2) pixels, got {face.shape}")
    if fps <= 0:
        raise InputError(f"fps must be positive, got {fps}")
    if isinstance(checkpoint_path, LandmarkPredictor):
        model = checkpoint_path
    else:
        model, _, _ = checkpoint.load(checkpoint_path, "predictor", device)
    mel = load_audio_mel(audio_path)
    frontal, quat = register(face)
    pose = estimate_pose(face)
    pred, quats = predict(model, mel, frontal, quat)
    frames = max(1, round(len(mel) / MEL_RATE * fps))
    pred = resample_track(pred, MEL_RATE, frames, fps)
    quats = resample_quaternions(quats, MEL_RATE, frames, fps)
    return project(pred, quats, pose.scale, pose.translation), quats


@torch.no_grad()
def render_frames(
    renderer: torch.nn.Module,
    source_image: np.ndarray,
    source_landmarks: np.ndarray,
    track: np.ndarray,
) -> Iterator[np.ndarray]:
    """Draw one face crop per frame of a landmark track with the UNet.

    The crop is the square around the source face (:func:`.data.crop_box`), at the
    renderer's ``image_size``.

    Args:
        renderer: a loaded :class:`.unet.UNet` (eval mode).
        source_image: ``(H, W, 3)`` uint8 photo.
        source_landmarks: ``(68, 2)`` pixels of its face.
        track: ``(T, 68, 2)`` pixels (e.g. from :func:`predict_track`).

    Yields:
        ``(S, S, 3)`` uint8 frames, ``S = renderer.config.image_size``.
    """

    size = renderer.config.image_size
    device = next(renderer.parameters()).device
    crop, to_crop = crop_face(source_image, crop_box(source_landmarks), size)
    source = to_tensor_image(crop).to(device)
    for points in track:
        sketch = to_tensor_image(draw_sketch(to_crop(points), size)).to(device)
        frame = renderer(torch.cat([sketch, source])[None])[0]
        yield from_tensor_image(frame)
