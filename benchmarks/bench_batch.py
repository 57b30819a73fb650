"""Benchmark of the batch engines (run with ``make bench``; figures never live in tests).

1. **Speed-up**: the same 40 items (real GRID s1 clips) through the local runner (this
   process, one thread) and through ``--engine ray`` with 2 workers (one thread each), side by
   side in one run, alternating local/ray for ``--rounds`` rounds; the ratio is local wall time
   / Ray wall time per round (ideal: 2.0 on two free cores). ``--workload lipread`` (default:
   ``lipread-grid-s1``, greedy decoding; face tracking, mouth crops, the network) or ``vocode``
   (Griffin-Lim, 32 iterations: light items, where fixed costs weigh more). Ray's start-up
   (``ray.init``) is timed on its own; the Ray wall time includes starting the actors and
   loading the model in each. The outputs of both engines are compared byte for byte.
2. **Scheduling overhead per item**: a worker whose items do nothing (write a few bytes),
   run for 1 and for ``--noop-items`` items on each engine; the per-item cost is the slope
   ``(T(n) - T(1)) / (n - 1)`` in ms, Ray's minus the local runner's is what Ray adds per item.
   The same for a Ray Data ``map_batches`` pipeline over an actor pool (batch size 1, 2
   actors), the alternative the issue named, when ``ray.data`` is installed.

Items fall back to the six GRID clips (repeated under distinct ids) when GRID s1 is absent.
Writes ``<out>/batch.json`` and prints the same JSON. Machine load matters on shared
machines: ``other_processes_cores`` is the load average minus this benchmark's own cores, and
``ray_item_s_mean`` against ``local_item_s_mean`` shows how much CPU each worker got: Linux's
autogroup scheduler gives each login session (``autogroup``) one share of a busy machine, so
the driver and both workers, all in this session, split that share instead of getting a core
each, and two workers cannot beat one while other sessions keep the cores busy.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

# One thread per worker, the local runner included: set before torch is imported, and
# inherited by the Ray started below.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("AVTOOL_SHARED_DATA", REPO.parent / "shared" / "data"))
WORKERS = 2


def clip_paths(count: int) -> list[tuple[str, Path]]:
    """``(id, path)`` of ``count`` real clips: GRID s1 sorted, else the GRID clips repeated."""
    s1 = sorted((DATA / "grid_s1" / "clips").glob("*.mkv"))
    if len(s1) >= count:
        return [(p.stem, p) for p in s1[:count]]
    grid = sorted((DATA / "grid").glob("*.mpg"))
    if not grid:
        raise SystemExit(f"no GRID clips under {DATA}")
    return [(f"{grid[i % len(grid)].stem}-{i}", grid[i % len(grid)]) for i in range(count)]


WORKLOADS = {
    "lipread": "lipread lipread-grid-s1 --decoder greedy (real GRID clips: face tracking, mouth "
    "crops, ResNet/BiGRU, CTC, write text + sidecar)",
    "vocode": "vocode --model griffin-lim --iters 32 (real GRID clips: decode, resample, mel, "
    "Griffin-Lim, write WAV + sidecar)",
}


def batch_items(clips: list[tuple[str, Path]], folder: Path, suffix: str) -> list:
    from avtool.runtime import BatchItem

    return [BatchItem(i, item_id, str(path), folder / f"{item_id}{suffix}", source=path)
            for i, (item_id, path) in enumerate(clips)]  # fmt: skip


def time_workload(workload: str, items: list, engine: str) -> tuple[float, list[float]]:
    from avtool.engines import BatchOptions, RunSettings

    batch = BatchOptions(engine=engine, workers=WORKERS)
    start = time.perf_counter()
    if workload == "vocode":
        from avtool.tasks import vocode
        from avtool.tasks.options.vocode import VocodeOptions

        options = VocodeOptions(model="griffin-lim", iters=32)
        settings = RunSettings(device="cpu", policy="overwrite", quiet=True, batch=batch)
        summary = vocode.run(items, options, settings)
    else:
        from avtool.tasks import lipread
        from avtool.tasks.options.lipread import LipreadOptions

        options = LipreadOptions(decoder="greedy")
        settings = RunSettings(device="cpu", accept_license=True, policy="overwrite",
                               quiet=True, batch=batch)  # fmt: skip
        summary = lipread.run(items, options, settings)
    seconds = time.perf_counter() - start
    if summary.failed:
        raise SystemExit(f"{engine}: {summary.failed[0].id}: {summary.failed[0].error}")
    return seconds, [r.seconds for r in summary.results]


def noop_worker():
    """A factory whose items only write a few bytes: what is left is the engine's own cost."""

    def process(item) -> list[Path]:
        item.output.write_bytes(b"ok")
        return [item.output]

    return process


def time_noop(engine: str, n: int, folder: Path) -> float:
    from avtool.engines import BatchOptions, RunSettings, run_items
    from avtool.runtime import BatchItem

    folder.mkdir(parents=True, exist_ok=True)
    items = [BatchItem(i, f"n{i}", "x", folder / f"n{i}.txt") for i in range(n)]
    start = time.perf_counter()
    batch = BatchOptions(engine=engine, workers=WORKERS)
    run_items(items, noop_worker, RunSettings(policy="overwrite", quiet=True, batch=batch))
    return time.perf_counter() - start


class _DataNoop:
    """Ray Data actor: the same no-op items as :func:`noop_worker`."""

    def __init__(self) -> None:
        self.process = noop_worker()

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        from avtool.runtime import BatchItem

        for i, path in zip(batch["index"], batch["output"], strict=True):
            self.process(BatchItem(int(i), f"n{i}", "x", Path(str(path))))
        return {"index": batch["index"]}


def time_ray_data(ray: Any, n: int, folder: Path) -> float:
    folder.mkdir(parents=True, exist_ok=True)
    rows = [{"index": i, "output": str(folder / f"d{i}.txt")} for i in range(n)]
    start = time.perf_counter()
    dataset = ray.data.from_items(rows).map_batches(
        _DataNoop, batch_size=1, concurrency=WORKERS, num_cpus=1
    )
    done = sum(1 for _ in dataset.iter_rows())
    assert done == n
    return time.perf_counter() - start


def slope_ms(t1: float, tn: float, n: int) -> float:
    return round((tn - t1) / (n - 1) * 1000, 3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("bench-results"))
    parser.add_argument("--items", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--noop-items", type=int, default=200)
    parser.add_argument("--workload", choices=sorted(WORKLOADS), default="lipread")
    args = parser.parse_args()

    import torch

    from avtool.engines import connect_ray

    torch.set_num_threads(1)
    load_before = os.getloadavg()[0]
    clips = clip_paths(args.items)
    os.environ.setdefault("AVTOOL_OFFLINE", "1")
    result: dict[str, Any] = {"items": len(clips), "workers": WORKERS, "threads_per_worker": 1,
                              "workload": WORKLOADS[args.workload],
                              "source": str(clips[0][1].parent)}  # fmt: skip
    os.environ.pop("RAY_ADDRESS", None)  # a local Ray, on loopback only
    start = time.perf_counter()
    ray = connect_ray(num_cpus=WORKERS)
    result["ray_init_s"] = round(time.perf_counter() - start, 2)
    logging.getLogger("ray").setLevel(logging.WARNING)
    try:  # Ray Data's progress lines would bury the figures
        from ray.data import DataContext

        DataContext.get_current().enable_progress_bars = False
    except ImportError:
        pass
    with tempfile.TemporaryDirectory(prefix="bench-batch-") as tmp:
        root = Path(tmp)
        suffix = ".wav" if args.workload == "vocode" else ".txt"
        local_items = batch_items(clips, root / "local", suffix)
        ray_items = batch_items(clips, root / "ray", suffix)
        rounds = []
        for _ in range(args.rounds):
            local_s, local_items_s = time_workload(args.workload, local_items, "local")
            ray_s, ray_items_s = time_workload(args.workload, ray_items, "ray")
            # Seconds each item took inside its worker: when they grow on Ray, the workers got
            # less CPU each (a busy machine), not more scheduling overhead.
            rounds.append({"local_s": round(local_s, 2), "ray_s": round(ray_s, 2),
                           "speedup": round(local_s / ray_s, 3),
                           "local_item_s_mean": round(statistics.mean(local_items_s), 3),
                           "ray_item_s_mean": round(statistics.mean(ray_items_s), 3),
                           "ray_parallelism": round(sum(ray_items_s) / ray_s, 2)})  # fmt: skip
        same = all(
            a.output.read_bytes() == b.output.read_bytes()
            for a, b in zip(local_items, ray_items, strict=True)
        )
        result[args.workload] = {
            "rounds": rounds,
            "speedup_median": round(statistics.median(r["speedup"] for r in rounds), 3),
            "local_s_per_item": round(min(r["local_s"] for r in rounds) / len(clips), 3),
            "outputs_identical": same,
        }
        n = args.noop_items
        noop: dict[str, Any] = {"items": n}
        for engine in ("local", "ray"):
            time_noop(engine, 1, root / f"noop-{engine}-warm")  # first-use costs, not timed
            t1 = time_noop(engine, 1, root / f"noop-{engine}-1")
            tn = time_noop(engine, n, root / f"noop-{engine}-n")
            noop[engine] = {"one_item_s": round(t1, 3), f"{n}_items_s": round(tn, 3),
                            "per_item_ms": slope_ms(t1, tn, n)}  # fmt: skip
        noop["ray_overhead_per_item_ms"] = round(
            noop["ray"]["per_item_ms"] - noop["local"]["per_item_ms"], 3
        )
        try:
            import ray.data  # optional: pip install 'ray[data]'

            time_ray_data(ray, 1, root / "data-warm")  # first-use costs, not timed
            t1 = time_ray_data(ray, 1, root / "data-1")
            tn = time_ray_data(ray, n, root / "data-n")
            noop["ray_data_map_batches"] = {"one_item_s": round(t1, 3),
                                            f"{n}_items_s": round(tn, 3),
                                            "per_item_ms": slope_ms(t1, tn, n)}  # fmt: skip
        except ImportError:
            noop["ray_data_map_batches"] = "skipped: ray.data not installed (ray[data])"
        result["scheduling"] = noop
    load_after = os.getloadavg()[0]
    result["other_processes_cores"] = round(max(0.0, (load_before + load_after) / 2 - WORKERS), 2)
    try:  # Linux's autogroup: processes of one session share one CPU share when busy
        result["autogroup"] = Path("/proc/self/autogroup").read_text(encoding="utf-8").strip()
    except OSError:
        result["autogroup"] = None
    args.out.mkdir(parents=True, exist_ok=True)
    text = json.dumps(result, indent=2)
    (args.out / "batch.json").write_text(text + "\n", encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
