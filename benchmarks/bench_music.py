"""Benchmarks for ``avtool music`` (``make bench``): the shipped chorale models side by side.

1. Held-out negative log-likelihood per token of every model against the Markov baseline, on
   the fixed test split, in one run; statistics of 20 sampled 16-bar pieces per model against
   the held-out chorales (pitch-class and interval histogram distances, range violations,
   parallel fifths/octaves per bar, valid MIDI), with and without ``avoid_parallels``
   (``python -m avtool.training.music --eval`` on a copy of the shipped weights).
2. Speed: model load + one 16-bar four-voice piece in process (target < 2 s on the CPU), and
   the whole ``avtool music`` command (interpreter and torch import included).
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MODELS = ("music-markov-chorales", "music-lstm-chorales", "music-transformer-chorales")


def speed(repeats: int) -> dict:
    from avtool.tasks.music import compose, load_music_model
    from avtool.tasks.options.music import MusicOptions

    out = {}
    for name in MODELS:
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            compose(load_music_model(name), MusicOptions())
            times.append(time.perf_counter() - start)
        out[name] = {"load_and_16_bars_s": round(statistics.median(times), 3), "target_s": 2.0}
    avtool = str(Path(sys.executable).parent / "avtool")
    with tempfile.TemporaryDirectory() as tmp:
        times = []
        for i in range(repeats):
            start = time.perf_counter()
            subprocess.run([avtool, "--quiet", "music", "-o", f"{tmp}/{i}.mid"], check=True)
            times.append(time.perf_counter() - start)
    out["command_s"] = round(statistics.median(times), 3)
    return out


def likelihood_and_statistics(pieces: int) -> dict:
    from avtool import registry

    with tempfile.TemporaryDirectory() as tmp:
        for name in MODELS:
            path = registry.resolve(name, task="music").path
            shutil.copy(path, Path(tmp) / path.name)
        subprocess.run(
            [sys.executable, "-m", "avtool.training.music", "--eval", "--out", tmp,
             "--pieces", str(pieces), "--threads", "1"],
            check=True, capture_output=True,
        )  # fmt: skip
        return json.loads((Path(tmp) / "eval.json").read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("bench-results"))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--pieces", type=int, default=20)
    args = parser.parse_args()
    results = {"speed": speed(args.repeats), "eval": likelihood_and_statistics(args.pieces)}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "music.json").write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
