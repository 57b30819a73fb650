"""The speaker-domain guard shared by every task that runs a speaker-dependent model.

A registry entry of such a model ships its training identities as a companion file named
``identity-<who>.npz`` (an :class:`~avtool.models.face_identity.IdentityReference`: the
speakers' names, one dlib face descriptor per training clip, the threshold; sha256-checked like
every registry file). The task's face stage hands the guard the input's face (a video's tracked
landmarks, or a photo's); the guard compares dlib descriptors of a few frames with the
reference and, for another person, logs one warning line (stderr) and returns it for the
sidecar's ``"warnings"``, with the distance in ``"speaker_check"``.

    guard = load_guard("lipread-grid-s1")            # None: the model names no identity
    check = guard.check_video(path, track.landmarks, track.detected, fps=25)
    sidecar["speaker_check"], sidecar["warnings"] = check.record, check.emit().warnings
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from avtool import registry
from avtool.errors import ModelError
from avtool.io.video import VideoReader
from avtool.models import face_identity

log = logging.getLogger(__name__)

#: Companion files of this prefix hold a model's training identities.
IDENTITY_PREFIX = "identity-"
#: The registry entry of dlib's face descriptor (CC0).
DESCRIPTOR_MODEL = "dlib-face-descriptor"
GUARD_FACES = face_identity.GUARD_FACES
GUARD_SPAN_FRAMES = face_identity.GUARD_SPAN_FRAMES


@dataclass
class GuardCheck:
    """What a task writes: ``record`` into ``"speaker_check"``, ``warnings`` into
    ``"warnings"`` (empty for the training person)."""

    record: dict[str, Any] | None
    warnings: list[str] = field(default_factory=list)

    def emit(self) -> GuardCheck:
        """Log each warning (one stderr line through the CLI's handler); returns self."""
        for message in self.warnings:
            log.warning("%s", message)
        return self


@dataclass
class SpeakerGuard:
    """A loaded reference and descriptor model for one speaker-dependent model.

    Attributes:
        model_name: the guarded model (for messages).
        reference: its training identities.
        reference_sha256: checksum of the reference file (recorded in sidecars).
        descriptor: dlib's face recognition network.
    """

    model_name: str
    reference: face_identity.IdentityReference
    reference_sha256: str
    descriptor: Any

    def check_faces(self, images: Sequence[np.ndarray], landmarks: Sequence[np.ndarray],
                    source: str) -> GuardCheck:  # fmt: skip
        """Compare faces (``(H, W, 3)`` uint8 images, ``(68, 2)`` landmarks) of one input."""
        start = time.perf_counter()
        if not images:
            message = (
                f"{source}: no face to check against {self.model_name}'s training speaker "
                f"({', '.join(self.reference.speakers)}); its output for another person is "
                "unreliable"
            )
            return GuardCheck({"training_speakers": list(self.reference.speakers),
                               "distance": None, "same_speaker": None}, [message])  # fmt: skip
        descriptors = np.stack(
            [face_identity.infer(self.descriptor, im, lm) for im, lm in zip(images, landmarks,
                                                                              strict=True)]
        )  # fmt: skip
        result = face_identity.match(self.reference, descriptors)
        record = {
            **result.to_dict(),
            "reference_sha256": self.reference_sha256,
            "seconds": round(time.perf_counter() - start, 4),
        }
        warnings = []
        if not result.same:
            who = ", ".join(result.speakers)
            warnings.append(
                f"{source}: this face is not {self.model_name}'s training speaker ({who}; face "
                f"distance {result.distance:.2f} > {result.threshold:.2f}); the model knows only "
                "that person, so its output for anyone else is unreliable"
            )
        return GuardCheck(record, warnings)

    def check_image(self, image: np.ndarray, landmarks: np.ndarray, source: str) -> GuardCheck:
        """Check one photo's face (``(H, W, 3)`` uint8, ``(68, 2)`` landmarks)."""
        return self.check_faces([image], [landmarks], source)

    def check_video(
        self, path: Path, landmarks: np.ndarray, detected: np.ndarray, fps: float, source: str = ""
    ) -> GuardCheck:
        """Check a video's tracked face: :data:`GUARD_FACES` detected frames of the first
        :data:`GUARD_SPAN_FRAMES`, read in one extra pass that stops there.

        Args:
            path: the video.
            landmarks: ``(T, 68, 2)`` tracked landmarks at ``fps``.
            detected: ``(T,)`` frames where the face was detected (not interpolated).
            fps: the rate the track was made at (the video is decoded at it).
            source: name for messages (default: ``path``).
        """
        picks = face_identity.sample_indices(detected, GUARD_FACES, GUARD_SPAN_FRAMES)
        wanted, images = set(picks), {}
        if picks:
            with VideoReader(path, fps=fps) as reader:
                for index, frame in enumerate(reader):
                    if index in wanted:
                        images[index] = frame
                    if index >= picks[-1]:
                        break
        found = [i for i in picks if i in images]
        return self.check_faces([images[i] for i in found], [landmarks[i] for i in found],
                                source or str(path))  # fmt: skip


@functools.lru_cache(maxsize=8)
def cached_guard(name: str, accept_license: bool = False) -> SpeakerGuard | None:
    """:func:`load_guard`, loaded once per process (for tasks that plan one item at a time)."""
    return load_guard(name, accept_license=accept_license)


def check_photo(
    name: str, image: np.ndarray, landmarks: np.ndarray, source: str, accept_license: bool = False
) -> GuardCheck:
    """Check a photo's face against registered model ``name``'s training identities; an empty
    check (no record, no warning) when the model names none. Nothing is logged."""
    guard = cached_guard(name, accept_license)
    return guard.check_image(image, landmarks, source) if guard else GuardCheck(None)


def identity_file(entry: registry.ModelEntry) -> registry.FileSpec | None:
    """The entry's ``identity-*.npz`` companion, if it names training identities."""
    return next((f for f in entry.files[1:] if f.name.startswith(IDENTITY_PREFIX)), None)


def load_guard(name: str, *, accept_license: bool = False) -> SpeakerGuard | None:
    """The guard of a registered model; None when it names no training identities (a model
    that is not speaker-dependent, or a local weights path).

    Raises:
        ModelError: the reference or descriptor file fails its checks or cannot be read.
    """
    entry = registry.load_registry().get(name)
    spec = identity_file(entry) if entry is not None else None
    if entry is None or spec is None:
        return None
    resolved = registry.resolve(name, accept_license=accept_license)
    path = resolved.files[spec.name]
    try:
        with np.load(path, allow_pickle=False) as arrays:
            reference = face_identity.IdentityReference.from_arrays(dict(arrays), str(path))
    except (OSError, ValueError) as exc:
        raise ModelError(f"{path}: not a readable identity reference ({exc})") from exc
    descriptor = face_identity.load(registry.resolve(DESCRIPTOR_MODEL).path)
    return SpeakerGuard(entry.name, reference, spec.sha256, descriptor)
