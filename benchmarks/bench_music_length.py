"""Does composing cost more per bar as ``avtool music --bars`` grows? (the ``--bars`` cap).

Composes one piece of each length with the default model (one torch thread, as ``avtool
music`` decodes) and times every bar through :func:`generate_batch`'s progress callback:
seconds per bar over the whole piece, and over its first and last eight bars. CPU seconds
(``time.process_time``) are reported next to wall seconds, because on a shared machine the
wall clock mostly measures the other processes.

    python benchmarks/bench_music_length.py --bars 8 64 [--model music-lstm-chorales]
"""

from __future__ import annotations

import argparse
import itertools
import json
import time
from dataclasses import replace


def per_bar(model_name: str, bars: int, seed: int) -> dict:
    """Seconds per bar composing one ``bars``-bar piece (model already loaded, not timed)."""
    from avtool.tasks.music import MusicOptions, compose, load_music_model

    loaded = load_music_model(model_name)
    marks: list[tuple[float, float]] = []

    def progress(done: int, total: int) -> None:
        marks.append((time.perf_counter(), time.process_time()))

    defaults = MusicOptions(model=model_name)
    sampling = replace(defaults.sampling, bars=bars, seed=seed)
    options = replace(defaults, sampling=sampling).validated()
    compose(loaded, options, progress=progress)
    wall = [b[0] - a[0] for a, b in itertools.pairwise(marks)]
    cpu = [b[1] - a[1] for a, b in itertools.pairwise(marks)]
    head, tail = min(8, len(wall)), min(8, len(wall))
    return {
        "bars": bars,
        "wall_s_per_bar": round(sum(wall) / len(wall), 4),
        "cpu_s_per_bar": round(sum(cpu) / len(cpu), 4),
        "cpu_s_per_bar_first8": round(sum(cpu[:head]) / head, 4),
        "cpu_s_per_bar_last8": round(sum(cpu[-tail:]) / tail, 4),
        "cpu_s_total": round(sum(cpu), 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bars", type=int, nargs="+", default=[8, 64])
    parser.add_argument("--model", default="music-transformer-chorales")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rows = [per_bar(args.model, bars, args.seed) for bars in args.bars]
    print(json.dumps({"model": args.model, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
