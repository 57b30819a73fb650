"""Fit the talking head's audio-refined jaw opening (:mod:`avtool.models.facewarp.opening`).

Data: GRID speaker s1's **training** split only (``avtool/datasets/grid_s1_split.json``; never
val/test, grid_s4 or the other speakers of ``../shared/data/grid``), the clips of the GRID cache
(``data/grid_s1_cache/<id>.npz``, :mod:`avtool.training.grid_cache`) with an even index in id
order. Per clip: its cached audio goes through the renderer's own audio analysis
(:func:`avtool.models.facewarp.phones.analyse_audio`: pocketsphinx phones, loudness, band
levels) and viseme track, and the target is the cached dlib track's inner-mouth area (registered
on the first frame, :func:`avtool.metrics.landmarks.inner_mouth_area`), standardised per clip.
A ridge regression on standardised inputs gives the weights, folded back to raw inputs (the
read-out standardises its output per recording, so the intercept does not matter).

    python -m avtool.training.mouth_driver --cache data/grid_s1_cache --out out/mouth-driver.json

prints the ``WEIGHTS`` table of :mod:`avtool.models.facewarp.opening` and writes it with the
fit's facts as JSON; ``--check`` exits 1 when the table differs from the shipped one. About 5
minutes on one CPU thread (phone recognition of 257 three-second clips).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from avtool.datasets.grid import FPS, SAMPLE_RATE, load_item, s1_split
from avtool.io.audio import save_audio
from avtool.metrics.landmarks import inner_mouth_area, normalise_track
from avtool.models.facewarp import opening
from avtool.models.facewarp.phones import analyse_audio
from avtool.models.facewarp.visemes import apply_energy, lead_in, viseme_track
from avtool.runtime import write_json

RIDGE = 10.0
"""Ridge penalty on the standardised inputs (summed squared error over all frames)."""


def clip_rows(cache: Path, clip_id: str, work: Path) -> tuple[np.ndarray, np.ndarray]:
    """One training clip's read-out inputs ``(T, 7 x 13)`` and standardised area ``(T,)``."""
    item = load_item(cache, clip_id)
    wav = save_audio(work / f"{clip_id}.wav", item["audio"].astype(np.float32) / 32768.0,
                     SAMPLE_RATE)  # fmt: skip
    drive = analyse_audio(wav, FPS)
    params = apply_energy(viseme_track(drive.phones, drive.n_frames, FPS), drive.loudness,
                          drive.voiced)  # fmt: skip
    hold = lead_in(drive.phones, drive.n_frames, FPS)
    inputs = opening.windows(
        opening.frame_inputs(params, hold, drive.loudness, drive.voiced, drive.bands)
    )
    track = item["landmarks"].astype(np.float64)
    area = inner_mouth_area(normalise_track(track, track[0]))
    n = min(len(area), len(inputs))
    target = area[:n]
    return inputs[:n], (target - target.mean()) / (target.std() + 1e-9)


def fit(inputs: list[np.ndarray], targets: list[np.ndarray], ridge: float = RIDGE) -> np.ndarray:
    """Ridge weights on raw inputs ``(n_features,)`` (fitted on standardised ones)."""
    x = np.concatenate(inputs)
    y = np.concatenate(targets)
    mean, scale = x.mean(axis=0), x.std(axis=0) + 1e-6
    z = (x - mean) / scale
    weights = np.linalg.solve(z.T @ z + ridge * np.eye(z.shape[1]), z.T @ y)
    return weights / scale


def table(weights: np.ndarray) -> list[list[float]]:
    """The weights as ``WEIGHTS`` rows (one per frame offset), 6 significant digits."""
    rows = weights.reshape(2 * opening.CONTEXT + 1, opening.N_INPUTS)
    return [[float(f"{v:.6g}") for v in row] for row in rows]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path, default=Path("data/grid_s1_cache"))
    parser.add_argument("--out", type=Path, default=None, help="write the table and facts")
    parser.add_argument("--step", type=int, default=2, help="every STEP-th cached train clip")
    parser.add_argument("--check", action="store_true", help="exit 1 if it differs from shipped")
    args = parser.parse_args(argv)

    cached = [i for i in sorted(s1_split()["train"]) if (args.cache / f"{i}.npz").is_file()]
    ids = cached[:: args.step]
    if not ids:
        print(f"{args.cache}: no cached GRID s1 training clips", file=sys.stderr)
        return 2
    start = time.perf_counter()
    inputs, targets = [], []
    with tempfile.TemporaryDirectory(prefix="avtool-driver-") as tmp:
        for index, clip_id in enumerate(ids):
            x, y = clip_rows(args.cache, clip_id, Path(tmp))
            inputs.append(x)
            targets.append(y)
            if index % 50 == 0:
                print(f"{index}/{len(ids)} {clip_id}", file=sys.stderr)
    rows = table(fit(inputs, targets))
    facts = {
        "clips": len(ids),
        "frames": int(sum(len(y) for y in targets)),
        "ridge": RIDGE,
        "seconds": round(time.perf_counter() - start, 1),
        "weights": rows,
    }
    text = "WEIGHTS = (\n" + "".join(f"    {tuple(row)},\n" for row in rows) + ")"
    print(text)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        write_json(args.out, facts)
    if args.check:
        shipped = np.asarray(opening.WEIGHTS, dtype=np.float64)
        if shipped.shape != np.shape(rows) or not np.allclose(shipped, rows, rtol=1e-4):
            print("the fitted table differs from opening.WEIGHTS", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
