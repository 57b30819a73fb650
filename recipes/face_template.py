"""Rebuild ``avtool/io/face_template.json``: the frontal 68-point template.

x, y: generalised-Procrustes mean of every frame of the six GRID speakers in
``../shared/data/grid`` (six different people, frontal), normalised to inter-ocular distance 1
and centred on the eye midpoint. z: an approximate depth profile in the same units (nose tip
forward, jaw corners back), used only to read yaw/pitch from 2-D landmarks.

Usage: python recipes/face_template.py ../shared/data/grid
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from avtool.io.face import LEFT_EYE, RIGHT_EYE, procrustes
from avtool.models.face import track_video


def depth_profile() -> np.ndarray:
    """Approximate z for the 68 points (units of inter-ocular distance, + towards camera)."""
    z = np.zeros(68)
    z[0:17] = -1.0 + 1.1 * np.sin(np.pi * np.arange(17) / 16)  # jaw: ears back, chin forward
    z[17:27] = [-0.35, -0.15, -0.02, 0.05, 0.08, 0.08, 0.05, -0.02, -0.15, -0.35]  # brows
    z[27:31] = [0.08, 0.2, 0.32, 0.45]  # nose bridge to tip
    z[31:36] = [0.2, 0.26, 0.3, 0.26, 0.2]  # nostrils
    z[36:48] = [-0.12, -0.04, -0.02, 0.0, -0.03, -0.05] * 2  # eyes
    z[[42, 43, 44, 45, 46, 47]] = z[[39, 38, 37, 36, 41, 40]]  # mirror
    z[48:60] = [0.05, 0.18, 0.24, 0.26, 0.24, 0.18, 0.05, 0.16, 0.22, 0.24, 0.22, 0.16]
    z[60:68] = [0.08, 0.2, 0.22, 0.2, 0.08, 0.18, 0.2, 0.18]
    return z


def main(folder: str) -> None:
    shapes = [track_video(p, smooth_window=0).landmarks for p in sorted(Path(folder).glob("*.mpg"))]
    frames = np.concatenate(shapes).astype(np.float64)
    mean = frames[0]
    for _ in range(10):  # generalised Procrustes: align all to the mean, re-average
        aligned = []
        for shape in frames:
            s, r, t = procrustes(shape, mean)
            aligned.append(s * shape @ r.T + t)
        mean = np.mean(aligned, axis=0)
    right, left = mean[RIGHT_EYE].mean(0), mean[LEFT_EYE].mean(0)
    angle = np.arctan2(*(left - right)[::-1])
    rot = np.array([[np.cos(-angle), -np.sin(-angle)], [np.sin(-angle), np.cos(-angle)]])
    mean = (mean - (left + right) / 2) @ rot.T / np.linalg.norm(left - right)
    points = np.column_stack([mean, depth_profile()]).round(4).tolist()
    out = Path(__file__).parents[1] / "avtool" / "io" / "face_template.json"
    doc = {"description": __doc__.split("\n\n")[1].replace("\n", " "), "points": points}
    out.write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {out} from {len(frames)} frames")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "../shared/data/grid")
