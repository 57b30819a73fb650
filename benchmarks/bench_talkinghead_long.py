"""An hour-long talking head end to end: time and peak memory (never run in tests).

    python -m benchmarks.bench_talkinghead_long --minutes 60 --out bench-results

Builds ``--minutes`` of real speech (the six GRID clips repeated, 0.3 s of silence between;
a 440 Hz tone when they are absent), then runs the real command in a child process,

    avtool --accept-license --quiet talkinghead --face astronaut.png --audio long.wav \\
        -o long.mp4 --size 256

and reports its wall time (x real time), the child's peak resident memory (``ru_maxrss``), and
the output's video and audio durations against the input's (they must agree within one frame).
The streaming claim is that memory does not grow with duration: compare ``--minutes 5`` with
``--minutes 60`` (``--compare-minutes 5`` runs both, side by side).

Writes ``<out>/talkinghead_long.json`` and prints the same JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def _speech(path: Path, minutes: float) -> float:
    """Write ``minutes`` of speech at 22.05 kHz to ``path``; returns its duration in seconds."""
    from avtool.io.audio import load_audio, save_audio

    rate = 22050
    grid = Path(os.environ.get("AVTOOL_SHARED_DATA", Path(__file__).resolve().parents[2]
                               / "shared" / "data")) / "grid"  # fmt: skip
    clips = sorted(grid.glob("*.mpg"))
    gap = np.zeros(int(0.3 * rate), np.float32)
    if clips:
        unit = np.concatenate([np.concatenate([load_audio(c, sample_rate=rate)[0], gap])
                               for c in clips])  # fmt: skip
    else:
        unit = 0.2 * np.sin(2 * np.pi * 440 * np.arange(rate * 10) / rate).astype(np.float32)
    n = int(minutes * 60 * rate)
    audio = np.tile(unit, n // len(unit) + 1)[:n]
    save_audio(path, audio, rate)
    return n / rate


def _durations(path: Path) -> dict[str, float]:
    """Video duration from its frame count (exact) and the AAC track's sample count (decoded)."""
    from avtool.io.audio import load_audio
    from avtool.io.video import probe

    info = probe(path)
    audio, rate = load_audio(path, sample_rate=8000)  # a low rate keeps an hour at 115 MB
    return {"video": info.n_frames / info.fps, "audio": len(audio) / rate}


def run_once(folder: Path, face: Path, minutes: float, size: int) -> dict:
    """Render ``minutes`` of speech in a child process; its time, peak memory and durations."""
    speech = folder / f"speech-{minutes:g}.wav"
    seconds = _speech(speech, minutes)
    output = folder / f"long-{minutes:g}.mp4"
    avtool = Path(sys.executable).with_name("avtool")
    cmd = [str(avtool), "--accept-license", "--quiet", "talkinghead", "--face", str(face),
           "--audio", str(speech), "-o", str(output), "--size", f"{size}x{size}"]  # fmt: skip
    start = time.perf_counter()
    # A fresh child per run, so ru_maxrss of RUSAGE_CHILDREN is this run's peak.
    child = subprocess.Popen(cmd)
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - start
    got = _durations(output) if output.is_file() else {}
    return {
        "minutes": minutes,
        "exit_code": os.waitstatus_to_exitcode(status),
        "wall_s": round(wall, 1),
        "x_real_time": round(seconds / wall, 2),
        "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
        "input_s": round(seconds, 3),
        "video_s": got.get("video"),
        "audio_s": got.get("audio"),
        "output_mb": round(output.stat().st_size / 1e6, 1) if output.is_file() else None,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=60.0)
    parser.add_argument("--compare-minutes", type=float, help="also render this many minutes")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--out", type=Path, default=Path("bench-results"))
    args = parser.parse_args(argv)

    from PIL import Image
    from skimage import data

    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        face = folder / "astronaut.png"
        Image.fromarray(data.astronaut()).save(face)
        runs = [args.compare_minutes] if args.compare_minutes else []
        rows = [run_once(folder, face, m, args.size) for m in [*runs, args.minutes]]
    result = {"size": args.size, "fps": 25, "runs": rows, "cpu_count": os.cpu_count(),
              "resource_limit_as": resource.getrlimit(resource.RLIMIT_AS)[0]}  # fmt: skip
    (args.out / "talkinghead_long.json").write_text(json.dumps(result, indent=1))
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
