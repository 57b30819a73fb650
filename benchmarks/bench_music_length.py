"""Does composing cost more per bar as ``avtool music --bars`` grows? (the ``--bars`` cap).

Composes one piece of each length with the default model (one torch thread, as ``avtool
music`` decodes) and times every bar through :func:`generate_batch`'s progress callback:
seconds per bar over the whole piece, and over its first and last eight bars. CPU seconds
(``time.process_time``) are reported next to wall seconds, because on a shared machine the
wall clock mostly measures the other processes.

    python benchmarks/bench_music_length.py --bars 8 64 [--model music-lstm-chorales]

With ``--count N``, it instead composes N pieces of ``--bars`` bars at once and reports CPU
seconds, the growth of the process's peak memory and a hash of the pieces, for one
``--batch-piece-bars`` chunk size (one setting per process: peak memory only grows):

    python benchmarks/bench_music_length.py --count 128 --bars 16 --batch-piece-bars 512
    python benchmarks/bench_music_length.py --count 128 --bars 16 --batch-piece-bars 1000000
"""

from __future__ import annotations

import argparse
import itertools
import json
import time
from dataclasses import replace


def per_bar(model_name: str, bars: int, seed: int) -> dict:
    """Seconds per bar composing one ``bars``-bar piece (model already loaded, not timed)."""
    from avtool.tasks.music import compose, load_music_model
    from avtool.tasks.options.music import MusicOptions

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


def batch_memory(model_name: str, count: int, bars: int, seed: int, chunk: int) -> dict:
    """CPU seconds, peak memory growth (MB) and a hash of ``count`` pieces composed together."""
    import hashlib
    import resource

    from avtool.tasks import music
    from avtool.tasks.options.music import MusicOptions

    music.BATCH_PIECE_BARS = chunk
    loaded = music.load_music_model(model_name)
    defaults = MusicOptions(model=model_name, count=count)
    sampling = replace(defaults.sampling, bars=bars, seed=seed)
    options = replace(defaults, sampling=sampling).validated()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    cpu = time.process_time()
    pieces, _, _ = music.compose(loaded, options)
    return {
        "count": count,
        "bars": bars,
        "batch_piece_bars": chunk,
        "cpu_s": round(time.process_time() - cpu, 1),
        "peak_growth_mb": round((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak) / 1024),
        "pieces_sha256": hashlib.sha256(pieces.tobytes()).hexdigest()[:16],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bars", type=int, nargs="+", default=[8, 64])
    parser.add_argument("--model", default="music-transformer-chorales")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--count", type=int, help="pieces composed at once (memory mode)")
    parser.add_argument("--batch-piece-bars", type=int, default=512)
    args = parser.parse_args()
    if args.count:
        row = batch_memory(args.model, args.count, args.bars[0], args.seed, args.batch_piece_bars)
        print(json.dumps({"model": args.model, "batch": row}, indent=2))
        return
    rows = [per_bar(args.model, bars, args.seed) for bars in args.bars]
    print(json.dumps({"model": args.model, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
