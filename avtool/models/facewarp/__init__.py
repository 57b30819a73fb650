"""facewarp: the offline talking-head renderer (no neural weights).

One frontal photo is animated by warping it with a piecewise-affine mesh over its 68 landmarks
(:mod:`.mesh`), painting the mouth interior when the lips part (:mod:`.mouth`). The landmarks are
driven by a :class:`~.motion.FaceMotion`:

* offline default: phones (Piper's phoneme timings from ``avtool tts``, or pocketsphinx phone
  recognition for any speech, :mod:`.phones`) become viseme parameters with coarticulation
  (:mod:`.visemes`), scaled by the audio's loudness; small head rotations (quaternions) and
  blinks are added (:mod:`.motion`);
* any other predictor (AnyoneNet) can drive the same warp: build a ``FaceMotion`` with
  ``(T, 68, 2)`` frontal landmarks (template units, as :func:`avtool.io.face.register` gives)
  and ``(T, 4)`` absolute head quaternions, or ``(T, 68, 2)`` pixel landmarks with
  ``units="pixels"``, and pass it as ``motion=`` to
  :func:`avtool.tasks.talkinghead.render_frames` / ``render_file``.

Example::

    renderer = WarpRenderer(photo, landmarks)            # (H, W, 3) uint8, (68, 2) pixels
    motion = renderer.motion(params, fps=25.0, seed=0)   # params (T, 4) from visemes
    for index, points in enumerate(renderer.landmarks(motion)):
        frame = renderer.render(points, motion.mouth_open[index])
"""

from __future__ import annotations

from typing import Any

import numpy as np

from avtool.io.face import estimate_pose, frontal_template, inter_ocular, register
from avtool.models.facewarp.mesh import FaceMesh
from avtool.models.facewarp.motion import (
    FaceMotion,
    mouth_offsets,
    project,
    rest_shape,
    synthesize_motion,
)
from avtool.models.facewarp.mouth import (
    MIN_GAP_PIXELS,
    draw_mouth,
    draw_seam,
    inner_gap,
    lip_colour,
    mouth_area_ratio,
    skin_colour,
)
from avtool.models.facewarp.mouth_bank import MouthBank, paint_mouth

__all__ = ["FaceMotion", "MouthBank", "WarpRenderer"]


class WarpRenderer:
    """Animate one photo: landmarks in, frames out.

    Args:
        image: ``(H, W, 3)`` uint8 RGB photo at the output size.
        landmarks: ``(68, 2)`` its landmarks in pixels.
        bank: real mouth interiors (:mod:`.mouth_bank`) pasted inside the parted lips; None
            draws them (:func:`.mouth.draw_mouth`: a dark cavity with polygon teeth).
    """

    def __init__(
        self, image: np.ndarray, landmarks: np.ndarray, bank: MouthBank | None = None
    ) -> None:
        self.image = image
        self.bank = bank
        self.photo_landmarks = np.asarray(landmarks, dtype=np.float64)
        pose = estimate_pose(self.photo_landmarks)
        self.quaternion = pose.quaternion
        self.scale = pose.scale
        self.frontal = register(self.photo_landmarks)[0].astype(np.float64)
        self.iod = float(inter_ocular(self.photo_landmarks))
        # The triangulation is picked on the mean face (the frontal template) with the mouth
        # wide open, placed where the photo's face is: a regular layout in which Delaunay never
        # bridges the lips, whatever the photo's own mouth shape (a smile, parted lips).
        template = rest_shape(frontal_template()[:, :2])
        opened = template + mouth_offsets(np.array([[1.5, 0.0, 0.0, 0.0]]), template)[0]
        layout = self._to_pixels(opened[None], self.quaternion[None])[0]
        self.mesh = FaceMesh.build(image, self.photo_landmarks, layout)
        self.lips = lip_colour(image, self.photo_landmarks)
        self.skin = skin_colour(image, self.photo_landmarks)
        self._inner_area_ref = mouth_area_ratio(self.photo_landmarks)

    def _to_pixels(self, frontal: np.ndarray, quaternions: np.ndarray) -> np.ndarray:
        motion = FaceMotion(frontal.astype(np.float32), quaternions, 1.0)
        return project(motion, self.photo_landmarks, self.frontal, self.quaternion, self.scale)

    def motion(self, params: np.ndarray, fps: float, **options: Any) -> FaceMotion:
        """The offline motion for ``(T, 4)`` viseme parameters on this photo's face.

        Args:
            params: ``(T, 4)`` mouth parameters (:mod:`.visemes`).
            fps: frame rate in frames/s.
            options: the keyword options of :func:`.motion.synthesize_motion` (``still``,
                ``seed``, ``loudness``, ``hold``).
        """
        return synthesize_motion(self.frontal, self.quaternion, params, fps, **options)

    def landmarks(self, motion: FaceMotion, start: int = 0, stop: int | None = None) -> np.ndarray:
        """``(n, 68, 2)`` float32 pixel landmarks of frames ``start:stop``."""
        return project(
            motion, self.photo_landmarks, self.frontal, self.quaternion, self.scale, start, stop
        )

    def render(self, landmarks: np.ndarray, openness: float | None = None) -> np.ndarray:
        """One frame: the photo warped to ``landmarks`` ``(68, 2)`` with the mouth painted.

        Args:
            landmarks: target landmarks in output pixels.
            openness: jaw opening in ``[0, 1]`` for the teeth and tongue; None estimates it
                from the inner-lip area.

        Returns:
            ``(H, W, 3)`` uint8.
        """
        frame = self.mesh.warp(landmarks)
        if self.bank is not None:
            inner = np.asarray(landmarks[60:68], dtype=np.float64)
            if inner_gap(inner) < MIN_GAP_PIXELS:
                return draw_seam(frame, inner, self.lips, self.iod)
            return paint_mouth(frame, landmarks, self.bank, self.skin)
        if openness is None:
            openness = float(np.clip(mouth_area_ratio(landmarks) / 0.12, 0.0, 1.0))
        return draw_mouth(frame, landmarks, float(openness), self.lips, self.iod)
