"""Render speed of the offline talking head (run with ``make bench``; never asserted in tests).

A 512x512 face (skimage's astronaut) at 25 fps, driven by real speech (the six GRID clips,
concatenated; a 440 Hz tone when they are absent). Reported side by side in one run:

* ``render_only``: warp + mouth per frame with the default real-mouth bank (frames/s and x
  real time), and ``render_only_drawn`` the same with ``--mouth drawn`` (polygon teeth);
* ``encode``: the whole ``render_file`` (render, H.264 + AAC through ffmpeg), x real time of
  the render stage, and of the whole call including face detection and phone recognition;
* ``static_baseline``: the same photo, unchanged, written through the same encoder (the cost
  floor of the video writer alone).

Target: ``render_file`` at least 2x faster than real time on a 2-core CPU.
Writes ``<out>/talkinghead_speed.json`` and prints the same JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np


def _speech(folder: Path) -> Path:
    from avtool.io.audio import load_audio, save_audio

    grid = Path(os.environ.get("AVTOOL_SHARED_DATA", Path(__file__).resolve().parents[2]
                               / "shared" / "data")) / "grid"  # fmt: skip
    clips = sorted(grid.glob("*.mpg"))
    if clips:
        audio = np.concatenate([load_audio(c, sample_rate=22050)[0] for c in clips])
    else:
        audio = 0.2 * np.sin(2 * np.pi * 440 * np.arange(22050 * 10) / 22050).astype(np.float32)
    path = folder / "speech.wav"
    save_audio(path, audio, 22050)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("bench-results"))
    args = parser.parse_args(argv)
    import skimage.data
    from PIL import Image

    from avtool.io.video import VideoWriter
    from avtool.models.face import FaceDetector
    from avtool.tasks.options.talkinghead import TalkingHeadOptions
    from avtool.tasks.talkinghead import ENCODER, plan_render, render_file

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        face = folder / "astronaut.png"
        Image.fromarray(skimage.data.astronaut()).save(face)
        speech = _speech(folder)
        detector = FaceDetector()
        options = TalkingHeadOptions(fps=25.0)
        plan = plan_render(face, speech, options, detector=detector)
        start = time.perf_counter()
        for index in range(plan.n_frames):
            plan.renderer.render(plan.landmarks[index], float(plan.motion.mouth_open[index]))
        render_s = time.perf_counter() - start
        drawn = plan_render(face, speech, replace(options, mouth="drawn"), detector=detector)
        start = time.perf_counter()
        for index in range(drawn.n_frames):
            drawn.renderer.render(drawn.landmarks[index], float(drawn.motion.mouth_open[index]))
        drawn_s = time.perf_counter() - start
        start = time.perf_counter()
        result = render_file(face, speech, folder / "out.mp4", options, detector=detector)
        total_s = time.perf_counter() - start
        still = plan.renderer.image
        start = time.perf_counter()
        with VideoWriter(folder / "static.mp4", 25.0, (512, 512), audio=speech, **ENCODER) as w:
            for _ in range(plan.n_frames):
                w.write(still)
        static_s = time.perf_counter() - start
    duration = plan.duration
    report = {
        "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]},
        "input": {"size": [512, 512], "fps": 25.0, "audio_s": round(duration, 3),
                  "frames": plan.n_frames},
        "render_only": {"frames_per_s": round(plan.n_frames / render_s, 1),
                        "x_real_time": round(duration / render_s, 2)},
        "render_only_drawn": {"frames_per_s": round(drawn.n_frames / drawn_s, 1),
                              "x_real_time": round(duration / drawn_s, 2)},
        "encode": {"render_stage_x_real_time": result.timings["x_real_time"],
                   "whole_call_x_real_time": round(duration / total_s, 2),
                   "timings": result.timings},
        "static_baseline": {"x_real_time": round(duration / static_s, 2)},
        "target_x_real_time": 2.0,
    }  # fmt: skip
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "talkinghead_speed.json").write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
