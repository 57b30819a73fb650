"""Image quality of the AnyoneNet UNet renderer on held-out GRID s1 clips.

For each clip of the GRID s1 test split (``../shared/data/grid_s1/clips``, never trained on)
the first frame is the face photo and the clip's own audio the drive, as ``avtool talkinghead
--still`` would run (no invented head motion or blinks, so pixel errors measure the mouth and
the drawing, not motion the real speaker did not make). Every frame is compared, inside the
renderer's square face crop (the box around the photo's face,
:func:`avtool.models.anyonenet.data.crop_box`), with the real frame cut the same way.
Systems, scored on frames 1..T-1 (frame 0 is the photo):

* ``unet.real_landmarks``: the UNet drawn from the real frame's own dlib landmarks (the
  renderer alone, as trained: an upper bound for the audio-driven run);
* ``unet``: the UNet drawn from the viseme-driven landmarks (``--model anyonenet-unet``);
* ``warp``: the default warp renderer from the same landmarks, cut to the same crop;
* ``static``: the photo's crop repeated (the baseline).

Measures: mean absolute error in 8-bit levels (``l1``), PSNR in dB (per frame, averaged) and
``mouth_l1``, the error inside the box around the real lips (padded by half its size), where
speech moves the face. Lip-sync metrics of the rendered videos come from
``python -m benchmarks.bench_talkinghead --s1-test N --compare anyonenet-unet``.

    python -m benchmarks.bench_talkinghead_unet --clips 8 --out bench-results \\
        --preview out/s1-renderer/preview.png
    python -m benchmarks.bench_talkinghead_unet --folder ../shared/data/grid --out bench-results

``--folder`` scores every video of a folder instead (the six shared GRID clips: five speakers
the speaker-dependent weights never saw) and writes ``talkinghead_unet_<folder name>.json``.

Accepts the dlib landmark model's and the weights' non-commercial licences for this
measurement run. Writes ``<out>/talkinghead_unet.json`` and prints the summary.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

import numpy as np

SYSTEMS = ("unet.real_landmarks", "unet", "warp", "static")
KEYS = ("l1", "psnr", "mouth_l1")


def image_errors(generated: np.ndarray, real: np.ndarray, mouth: tuple[int, int, int, int]):
    """``(l1, psnr, mouth_l1)`` of two ``(S, S, 3)`` uint8 crops; mouth = (x0, y0, x1, y1)."""
    diff = generated.astype(np.float64) - real.astype(np.float64)
    mse = float(np.mean(diff**2))
    psnr = 10 * math.log10(255.0**2 / mse) if mse > 0 else float("inf")
    x0, y0, x1, y1 = mouth
    return float(np.mean(np.abs(diff))), psnr, float(np.mean(np.abs(diff[y0:y1, x0:x1])))


def mouth_box(points: np.ndarray, size: int) -> tuple[int, int, int, int]:
    """The lips' bounding box (crop pixels), padded by half its size, clipped to the crop."""
    lips = points[48:68]
    low, high = lips.min(axis=0), lips.max(axis=0)
    pad = (high - low) / 2
    x0, y0 = np.clip(np.floor(low - pad), 0, size - 1).astype(int)
    x1, y1 = np.clip(np.ceil(high + pad), 1, size).astype(int)
    return int(x0), int(y0), int(x1), int(y1)


def score_clip(clip: Path, model, detector, preview: list) -> dict:
    """Per-system mean ``l1``, ``psnr``, ``mouth_l1`` over one clip's frames 1..T-1."""
    from avtool.io.audio import load_audio, save_audio
    from avtool.io.video import VideoReader
    from avtool.models.anyonenet.data import crop_box, crop_face
    from avtool.models.anyonenet.infer import render_frames as unet_frames
    from avtool.models.face import track_video
    from avtool.tasks.options.talkinghead import TalkingHeadOptions
    from avtool.tasks.talkinghead import plan_render, render_frames

    size = int(model.network.config.image_size)
    with VideoReader(clip, fps=25.0) as reader:
        frames = list(reader)
    track = track_video(clip, fps=25.0, detector=detector).landmarks
    count = min(len(frames), len(track))
    audio, rate = load_audio(clip)
    work = Path(os.environ.get("TMPDIR", "/tmp")) / f"bench_unet_{os.getpid()}"
    work.mkdir(parents=True, exist_ok=True)
    drive = save_audio(work / f"{clip.stem}.wav", audio, rate)
    photo = frames[0]
    options = TalkingHeadOptions(still=True, size=(photo.shape[1], photo.shape[0]))
    plan = plan_render(photo, drive, options, detector=detector, accept_license=True)
    box = crop_box(plan.renderer.photo_landmarks)
    real, to_crop = [], None
    for frame in frames[:count]:
        crop, to_crop = crop_face(frame, box, size)
        real.append(crop)
    systems = {
        "unet.real_landmarks": list(
            unet_frames(model.network, photo, plan.renderer.photo_landmarks, track[:count])
        ),
        "unet": list(
            unet_frames(model.network, photo, plan.renderer.photo_landmarks, plan.landmarks)
        ),
        "warp": [crop_face(f, box, size)[0] for f in render_frames(plan)],
        "static": [real[0]] * count,
    }
    n = min(count, *(len(v) for v in systems.values()))
    sums = {name: np.zeros(3) for name in systems}
    for t in range(1, n):
        mouth = mouth_box(to_crop(track[t]), size)
        for name, generated in systems.items():
            sums[name] += image_errors(generated[t], real[t], mouth)
    opening = [float(np.ptp(track[t, 62:67, 1])) for t in range(n)]
    widest = int(np.argmax(opening))
    preview.append((opening[widest], real[widest], systems["unet.real_landmarks"][widest],
                    systems["unet"][widest], real[0]))  # fmt: skip
    return {
        "clip": clip.name,
        "frames": n,
        "systems": {
            name: dict(zip(KEYS, (s / max(n - 1, 1)).round(4).tolist(), strict=True))
            for name, s in sums.items()
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("bench-results"))
    parser.add_argument("--clips", type=int, default=8, help="s1 test clips to score")
    parser.add_argument("--model", default="anyonenet-unet", help="registry name or .pt")
    parser.add_argument("--preview", type=Path, default=None, help="write a preview PNG here")
    parser.add_argument("--folder", type=Path, default=None, help="score this folder's videos")
    args = parser.parse_args()

    import torch

    torch.set_num_threads(1)  # two shared cores
    from avtool.models.face import FaceDetector
    from avtool.runtime import write_json
    from avtool.tasks.talkinghead import load_model
    from benchmarks.bench_talkinghead import s1_test_clips

    if args.folder is not None:
        from avtool.datasets.grid import find_clips

        clips = find_clips(args.folder) if args.folder.is_dir() else []
        name = f"talkinghead_unet_{args.folder.resolve().name}.json"
    else:
        clips, name = s1_test_clips(args.clips, spread=True), "talkinghead_unet.json"
    if not clips:
        print("GRID s1 clips not found; nothing to measure", file=sys.stderr)
        return
    model = load_model(args.model, accept_license=True)
    if model is None or model.kind != "renderer":
        raise SystemExit(f"--model {args.model}: not a UNet renderer")
    detector = FaceDetector()
    start = time.perf_counter()
    rows, preview = [], []
    for clip in clips:
        print(f"scoring {clip.name}", file=sys.stderr)
        rows.append(score_clip(clip, model, detector, preview))
    mean = {
        name: {k: round(float(np.mean([r["systems"][name][k] for r in rows])), 4) for k in KEYS}
        for name in SYSTEMS
    }
    results = {
        "model": model.describe(),
        "clips": rows,
        "summary": {"n_clips": len(rows), "mean": mean},
        "wall_seconds": round(time.perf_counter() - start, 1),
        "machine": {"cpu_count": os.cpu_count(), "torch_threads": 1},
    }
    args.out.mkdir(parents=True, exist_ok=True)
    write_json(args.out / name, results)
    if args.preview:
        from PIL import Image

        # The clip whose widest mouth opening is largest: real | UNet (real landmarks) |
        # UNet (viseme-driven) | the photo crop (source).
        _, *images = max(preview, key=lambda p: p[0])
        args.preview.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.concatenate(images, axis=1)).save(args.preview)
    print(json.dumps({"summary": results["summary"], "wall_seconds": results["wall_seconds"]},
                     indent=2))  # fmt: skip


if __name__ == "__main__":
    main()
