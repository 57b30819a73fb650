"""dlib HOG face detection and 68-point landmarks (dlib's predictor or a registered FAN).

Images are ``(H, W, 3)`` uint8 RGB; landmarks ``(68, 2)`` float32 ``(x, y)`` pixels in the iBUG
order. Large images are detected on a scaled copy; boxes come back largest first.
"""

from __future__ import annotations

import functools
import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from avtool.errors import InputError, ModelError, SetupError
from avtool.io.face import Box, Pose, estimate_pose, resize_image
from avtool.models.fan import load as load_fan
from avtool.registry import resolve

LANDMARK_MODEL = "dlib-landmarks-68"
FAN_LANDMARK_MODEL = "fan-2d-68"
#: ``--landmarks`` choices -> the registry entry fitting the 68 points in the detector's box.
LANDMARK_BACKENDS = {"dlib": LANDMARK_MODEL, "fan": FAN_LANDMARK_MODEL}
DETECT_MAX_SIDE = 1024
HOG_MIN_FACE = 80  # dlib's HOG window: smallest face found without upsampling, in pixels
MIN_FACE = 40
DETECT_THRESHOLD = 0.3


def face_model_dir() -> Path:
    """The folder holding face-recognition-models' ``.dat`` files, found without importing it.

    Raises:
        SetupError: the package is not installed.
    """
    spec = importlib.util.find_spec("face_recognition_models")
    locations = list(spec.submodule_search_locations or []) if spec else []
    for location in locations:
        folder = Path(location) / "models"
        if (folder / "shape_predictor_68_face_landmarks.dat").is_file():
            return folder
    raise SetupError(
        "the face models are missing: pip install face-recognition-models dlib-bin "
        "(or run make install)"
    )


@functools.lru_cache(maxsize=4)
def _dlib_models(predictor_path: str) -> tuple[Any, Any]:
    try:
        import dlib
    except ImportError as exc:
        raise SetupError("dlib is missing: pip install dlib-bin (or run make install)") from exc
    try:
        predictor = dlib.shape_predictor(predictor_path)
    except RuntimeError as exc:
        raise ModelError(f"{predictor_path}: not a dlib shape predictor ({exc})") from exc
    return dlib.get_frontal_face_detector(), predictor


@functools.lru_cache(maxsize=2)
def _dlib_descriptor(model_path: str) -> Any:
    import dlib

    return dlib.face_recognition_model_v1(model_path)


class Landmarker(Protocol):
    """A 68-point model other than dlib's (e.g. :class:`avtool.models.fan.FanLandmarker`).

    Called with an ``(H, W, 3)`` uint8 image and a :class:`Box`, it returns ``(68, 2)`` float32
    ``(x, y)`` pixels in the iBUG order; ``name`` is its registry name, ``path`` its weights.
    """

    name: str
    path: Path

    def __call__(self, image: np.ndarray, box: Box) -> np.ndarray: ...


class FaceDetector:
    """dlib HOG face detection plus 68-point landmarks.

    Large images are detected on a copy scaled to ``DETECT_MAX_SIDE``; small faces get dlib's
    upsampling. Boxes come back largest first (ties broken top-to-bottom, left-to-right), so the
    choice among several faces is deterministic.

    Args:
        predictor_path: a dlib 68-point ``.dat``; None uses face-recognition-models' file
            (resolve ``dlib-landmarks-68`` through the registry to apply its licence gate).
        landmarker: fit the 68 points with this model instead of dlib's predictor (detection
            and :meth:`descriptor` stay with dlib).
    """

    def __init__(
        self,
        predictor_path: str | os.PathLike[str] | None = None,
        landmarker: Landmarker | None = None,
    ) -> None:
        path = (
            Path(predictor_path)
            if predictor_path
            else face_model_dir() / ("shape_predictor_68_face_landmarks.dat")
        )
        self.predictor_path = path
        self.landmarker = landmarker
        self._detector, self._predictor = _dlib_models(str(path))

    @property
    def landmark_model(self) -> str:
        """Registry name of the model that fits the landmarks."""
        return self.landmarker.name if self.landmarker is not None else LANDMARK_MODEL

    @property
    def landmark_path(self) -> Path:
        """Weights file of the model that fits the landmarks."""
        return self.landmarker.path if self.landmarker is not None else self.predictor_path

    def detect(
        self, image: np.ndarray, min_face: int = MIN_FACE, exhaustive: bool = True
    ) -> list[Box]:
        """Face boxes in ``image`` ``(H, W, 3)`` uint8, largest first.

        Args:
            image: the picture.
            min_face: smallest face width in pixels to look for.
            exhaustive: when nothing is found, keep upsampling for smaller faces (photos; video
                frames skip it, since a lost face is reported, not hunted at 4x the cost).
        """
        height, width = image.shape[:2]
        scale = min(1.0, DETECT_MAX_SIDE / max(height, width))
        small = resize_image(image, (round(width * scale), round(height * scale)))
        # HOG finds faces down to ~80 px; each upsampling halves that, up to a ~2048 px image.
        upsample = 0
        while HOG_MIN_FACE >> upsample > min_face * scale and self._can_upsample(small, upsample):
            upsample += 1
        found = self._run_detector(small, upsample)
        while exhaustive and not found and self._can_upsample(small, upsample):
            upsample += 1
            found = self._run_detector(small, upsample)
        boxes = [
            Box(
                round(b.left() / scale),
                round(b.top() / scale),
                round(b.width() / scale),
                round(b.height() / scale),
            )
            for b in found
        ]
        return sorted(boxes, key=lambda b: (-b.area, b.y, b.x))

    @staticmethod
    def _can_upsample(image: np.ndarray, upsample: int) -> bool:
        return max(image.shape[:2]) << (upsample + 1) <= 2 * DETECT_MAX_SIDE

    def _run_detector(self, image: np.ndarray, upsample: int) -> list[Any]:
        # A threshold above dlib's 0 drops the weak hits it makes on clothing and badges.
        # dlib misreads strided views (a crop of a frame) nondeterministically: copy first.
        rects, _, _ = self._detector.run(np.ascontiguousarray(image), upsample, DETECT_THRESHOLD)
        return list(rects)

    def landmarks(self, image: np.ndarray, box: Box) -> np.ndarray:
        """The 68 landmarks ``(68, 2)`` float32 of the face in ``box``."""
        if self.landmarker is not None:
            return np.asarray(self.landmarker(image, box), dtype=np.float32)
        import dlib

        rect = dlib.rectangle(box.x, box.y, box.x + box.w - 1, box.y + box.h - 1)
        shape = self._predictor(np.ascontiguousarray(image), rect)
        return np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float32)

    def descriptor(self, image: np.ndarray, box: Box) -> np.ndarray:
        """dlib's 128-d face descriptor ``(128,)`` float32 of the face in ``box``."""
        import dlib

        weights = face_model_dir() / "dlib_face_recognition_resnet_model_v1.dat"
        model = _dlib_descriptor(str(weights))
        rect = dlib.rectangle(box.x, box.y, box.x + box.w - 1, box.y + box.h - 1)
        shape = self._predictor(image, rect)
        return np.array(model.compute_face_descriptor(image, shape), dtype=np.float32)


def load_detector(accept_license: bool = False, landmarks: str = "dlib") -> FaceDetector:
    """A :class:`FaceDetector` with a registered 68-point model.

    Both models are trained on iBUG 300-W images (``fan``: 300W-LP, derived from them), which
    allow research use only, so the registry's licence gate applies: pass
    ``--accept-license`` (or set ``AVTOOL_ACCEPT_LICENSE=1``).

    Args:
        accept_license: accept the landmark model's non-commercial licence.
        landmarks: ``"dlib"`` (``dlib-landmarks-68``, shipped, the offline default) or
            ``"fan"`` (``fan-2d-68``, 2D-FAN; downloaded once from its publisher and
            sha256-checked; fitted in dlib's face box).

    Raises:
        InputError: an unknown ``landmarks`` choice.
        ModelError: licence not accepted, the file fails its checksum, or (``fan``) it is not
            in the cache while offline or its download fails.
    """
    if landmarks not in LANDMARK_BACKENDS:
        raise InputError(f"--landmarks {landmarks!r}: choose one of {', '.join(LANDMARK_BACKENDS)}")
    if landmarks == "fan":
        return FaceDetector(landmarker=load_fan(FAN_LANDMARK_MODEL, accept_license=accept_license))
    model = resolve(LANDMARK_MODEL, task="face", accept_license=accept_license)
    return FaceDetector(model.path)


@dataclass(frozen=True)
class Face:
    """One detected face: its box, 68 landmarks ``(68, 2)`` and how many faces were seen."""

    box: Box
    landmarks: np.ndarray
    n_faces: int
    pose: Pose


def choose_box(boxes: list[Box], face_index: int, source: str) -> Box:
    """Pick ``boxes[face_index]`` (boxes sorted largest first) with a clear error."""
    if not boxes:
        raise InputError(f"{source}: no face found (a frontal, unoccluded face is needed)")
    if not 0 <= face_index < len(boxes):
        raise InputError(
            f"{source}: --face-index {face_index} asked for, but {len(boxes)} face(s) found "
            f"(0 is the largest)"
        )
    return boxes[face_index]


def detect_face(
    image: np.ndarray,
    *,
    face_index: int = 0,
    box: Box | None = None,
    detector: FaceDetector | None = None,
    source: str = "image",
    max_yaw: float = 50.0,
) -> Face:
    """Find one face in a photo and its landmarks.

    Args:
        image: ``(H, W, 3)`` uint8 RGB.
        face_index: which face when there are several (0 = largest).
        box: use this box instead of detecting (``--box``); landmarks are still fitted.
        detector: a loaded :class:`FaceDetector` (one is made otherwise).
        source: the file name for error messages.
        max_yaw: refuse faces turned further than this many degrees (a profile view).

    Raises:
        InputError: no face, a bad index or box, or a profile view.
    """
    detector = detector or FaceDetector()
    height, width = image.shape[:2]
    if box is not None:
        if box.x < 0 or box.y < 0 or box.x + box.w > width or box.y + box.h > height:
            raise InputError(f"{source}: --box {box} lies outside the {width}x{height} image")
        boxes = [box]
    else:
        boxes = detector.detect(image)
        box = choose_box(boxes, face_index, source)
    landmarks = detector.landmarks(image, box)
    pose = estimate_pose(landmarks)
    if abs(pose.yaw) > max_yaw:
        raise InputError(
            f"{source}: the face is turned {abs(pose.yaw):.0f} degrees (a profile view); "
            "a frontal photo is needed"
        )
    return Face(box=box, landmarks=landmarks, n_faces=len(boxes), pose=pose)
