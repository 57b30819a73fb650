"""The face stage as models: dlib detection, 68-point landmarks and tracking through a video.

Shared by ``talkinghead``, ``lipread``, ``v2a`` and ``separate``. The offline backend is dlib
(HOG detector + the iBUG 300-W 68-point shape predictor shipped by ``face-recognition-models``);
model files are found on disk without importing that package, whose ``__init__`` needs
``pkg_resources``. Pure image and geometry code (boxes, registration, pose, gap filling, mouth
crops) stays in :mod:`avtool.io.face`; this package holds what runs a model or reads the registry.
"""

from avtool.models.face.detector import (
    FAN_LANDMARK_MODEL,
    LANDMARK_BACKENDS,
    LANDMARK_MODEL,
    Face,
    FaceDetector,
    Landmarker,
    choose_box,
    detect_face,
    face_model_dir,
    load_detector,
)
from avtool.models.face.tracking import track_frames, track_video

__all__ = [
    "FAN_LANDMARK_MODEL",
    "LANDMARK_BACKENDS",
    "LANDMARK_MODEL",
    "Face",
    "FaceDetector",
    "Landmarker",
    "choose_box",
    "detect_face",
    "face_model_dir",
    "load_detector",
    "track_frames",
    "track_video",
]
