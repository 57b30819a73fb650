"""Face identity: dlib's 128-d face descriptor and the speaker-domain decision.

The speaker-dependent models (lip reading, video-to-speech, the AnyoneNet talking-head networks)
are trained on one person's face and voice. An :class:`IdentityReference` holds that person's
dlib face descriptors (one per training clip, computed from the training split only) and the
distance threshold; :func:`match` says whether an input face is the training person.

dlib's ResNet descriptor (CC0, ``dlib-face-descriptor`` in the registry) maps an aligned face
to 128 numbers; faces of one person lie within Euclidean distance 0.6 of each other (dlib's
published tolerance: 99.38% on LFW's same/different pairs).

    model = load(path_of_dlib_face_recognition_resnet_model_v1_dat)
    descriptor = infer(model, image, landmarks)          # (H, W, 3) uint8, (68, 2) -> (128,)
    result = match(reference, descriptor[None])
    result.same, result.distance
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from avtool.errors import InputError, ModelError

__all__ = [
    "DESCRIPTOR_SIZE",
    "DLIB_TOLERANCE",
    "IdentityMatch",
    "IdentityReference",
    "distances",
    "infer",
    "load",
    "match",
    "sample_indices",
]

#: Length of a dlib face descriptor.
DESCRIPTOR_SIZE = 128
#: dlib's published same-person distance (face_recognition's default ``tolerance``).
DLIB_TOLERANCE = 0.6
#: Faces compared per input, and how far into a video they are taken from (frames): a second
#: decoding pass stops there, so hour-long inputs cost the same as short ones. One definition
#: for the guard (tasks.speaker_guard) and the threshold measurement (training).
GUARD_FACES = 5
GUARD_SPAN_FRAMES = 250


@dataclass(frozen=True)
class IdentityReference:
    """The training identities of a speaker-dependent model.

    Attributes:
        speakers: names of the training identities (e.g. ``("GRID s1",)``).
        descriptors: ``(N, 128)`` float32 dlib descriptors of training-split faces.
        threshold: a face farther than this (see :func:`distances`) is another person.
        clip_ids: the ``N`` training clips the descriptors come from.
        note: how the reference and the threshold were made.
    """

    speakers: tuple[str, ...]
    descriptors: np.ndarray
    threshold: float
    clip_ids: tuple[str, ...] = ()
    note: str = ""

    def __post_init__(self) -> None:
        descriptors = np.asarray(self.descriptors, dtype=np.float32)
        if descriptors.ndim != 2 or descriptors.shape[1] != DESCRIPTOR_SIZE or not len(descriptors):
            raise ModelError(
                f"an identity reference needs (N, {DESCRIPTOR_SIZE}) descriptors with N > 0, "
                f"got {descriptors.shape}"
            )
        if not np.isfinite(descriptors).all():
            raise ModelError("identity reference descriptors must be finite")
        if not self.speakers:
            raise ModelError("an identity reference must name its training speakers")
        if not 0 < self.threshold < 2:
            raise ModelError(f"identity threshold {self.threshold} must be in (0, 2)")
        object.__setattr__(self, "descriptors", descriptors)
        object.__setattr__(self, "speakers", tuple(str(s) for s in self.speakers))
        object.__setattr__(self, "clip_ids", tuple(str(c) for c in self.clip_ids))

    def to_arrays(self) -> dict[str, np.ndarray]:
        """Arrays for ``np.savez`` (no pickles: strings are fixed-width unicode arrays)."""
        return {
            "descriptors": self.descriptors,
            "speakers": np.array(self.speakers),
            "threshold": np.float64(self.threshold),
            "clip_ids": np.array(self.clip_ids),
            "note": np.array(self.note),
        }

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, Any], source: str = "reference") -> IdentityReference:
        """The inverse of :meth:`to_arrays` (e.g. an ``np.load(..., allow_pickle=False)``).

        Raises:
            ModelError: a missing or malformed array (naming ``source``).
        """
        try:
            return cls(
                speakers=tuple(np.asarray(arrays["speakers"]).reshape(-1).tolist()),
                descriptors=np.asarray(arrays["descriptors"]),
                threshold=float(arrays["threshold"]),
                clip_ids=tuple(np.asarray(arrays.get("clip_ids", [])).reshape(-1).tolist()),
                note=str(np.asarray(arrays.get("note", "")).reshape(-1)[0])
                if np.asarray(arrays.get("note", "")).size
                else "",
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelError(f"{source}: not an identity reference ({exc})") from exc


@dataclass(frozen=True)
class IdentityMatch:
    """The decision for one input face.

    Attributes:
        distance: the input's distance to the reference (:func:`distances`, median over the
            input's faces).
        threshold: the reference's threshold.
        same: ``distance <= threshold``: the training person.
        speakers: the reference's training identities.
        faces: how many input faces were compared.
    """

    distance: float
    threshold: float
    same: bool
    speakers: tuple[str, ...]
    faces: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form for a sidecar."""
        return {
            "training_speakers": list(self.speakers),
            "distance": round(self.distance, 4),
            "threshold": round(self.threshold, 4),
            "same_speaker": self.same,
            "faces_compared": self.faces,
        }


def distances(reference: IdentityReference, descriptors: np.ndarray) -> np.ndarray:
    """Distance of each input face to the reference: to its nearest training descriptor.

    The nearest neighbour (not the mean) is used because the training clips span lighting,
    pose and expression; the input need only look like one of them.

    Args:
        reference: the training identities.
        descriptors: ``(K, 128)`` input descriptors.

    Returns:
        ``(K,)`` float64 Euclidean distances.

    Raises:
        InputError: not ``(K, 128)`` with K > 0.
    """
    query = np.asarray(descriptors, dtype=np.float64)
    if query.ndim != 2 or query.shape[1] != DESCRIPTOR_SIZE or not len(query):
        raise InputError(f"expected (K, {DESCRIPTOR_SIZE}) descriptors, got {query.shape}")
    refs = reference.descriptors.astype(np.float64)
    # |q - r|^2 = |q|^2 + |r|^2 - 2 q.r for every pair at once; clipped at 0 against rounding.
    squared = (query**2).sum(1)[:, None] + (refs**2).sum(1)[None] - 2 * query @ refs.T
    return np.sqrt(np.clip(squared, 0, None).min(axis=1))


def match(reference: IdentityReference, descriptors: np.ndarray) -> IdentityMatch:
    """Is the person of ``descriptors`` ``(K, 128)`` (K faces of one input) the training one?

    The median over the K faces keeps one badly aligned frame from deciding.
    """
    distance = float(np.median(distances(reference, descriptors)))
    return IdentityMatch(
        distance=distance,
        threshold=reference.threshold,
        same=distance <= reference.threshold,
        speakers=reference.speakers,
        faces=len(descriptors),
    )


def load(path: str | os.PathLike[str]) -> Any:
    """dlib's face recognition ResNet (``dlib_face_recognition_resnet_model_v1.dat``).

    Raises:
        ModelError: dlib missing or the file unreadable.
    """
    try:
        import dlib
    except ImportError as exc:  # pragma: no cover - dlib is a hard dependency
        raise ModelError("dlib is missing: pip install dlib-bin (or run make install)") from exc
    try:
        return dlib.face_recognition_model_v1(os.fspath(path))
    except RuntimeError as exc:
        raise ModelError(f"{path}: not a dlib face recognition model ({exc})") from exc


def infer(model: Any, image: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """The 128-d descriptor of the face with 68 ``landmarks`` in ``image``.

    Args:
        model: from :func:`load`.
        image: ``(H, W, 3)`` uint8 RGB.
        landmarks: ``(68, 2)`` ``(x, y)`` pixels in the iBUG order (dlib's or the tracker's);
            dlib aligns the face chip from them.

    Returns:
        ``(128,)`` float32.

    Raises:
        InputError: not an RGB uint8 image or not 68 landmarks.
    """
    import dlib

    image = np.ascontiguousarray(image)
    points = np.asarray(landmarks, dtype=np.float64)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise InputError(f"expected an (H, W, 3) uint8 image, got {image.shape} {image.dtype}")
    if points.shape != (68, 2) or not np.isfinite(points).all():
        raise InputError(f"expected (68, 2) finite landmarks, got {points.shape}")
    left, top = np.floor(points.min(0)).astype(int)
    right, bottom = np.ceil(points.max(0)).astype(int)
    shape = dlib.full_object_detection(
        dlib.rectangle(int(left), int(top), int(right), int(bottom)),
        dlib.points([dlib.point(int(x), int(y)) for x, y in points.round().astype(int)]),
    )
    return np.array(model.compute_face_descriptor(image, shape), dtype=np.float32)


def sample_indices(usable: Sequence[bool] | np.ndarray, count: int, span: int) -> list[int]:
    """Up to ``count`` evenly spread indices of usable frames among the first ``span``.

    Args:
        usable: ``(T,)`` whether each frame has a detected face.
        count: faces to compare.
        span: only the first ``span`` frames are looked at (bounds the extra decoding).
    """
    candidates = np.flatnonzero(np.asarray(usable, dtype=bool)[:span])
    if len(candidates) <= count:
        return candidates.tolist()
    picks = np.linspace(0, len(candidates) - 1, count).round().astype(int)
    return candidates[picks].tolist()
