"""Benchmark of ``avtool v2a`` (run with ``make bench``; figures never live in tests).

1. Quality (``avtool.tasks.eval.v2a``): seen speaker = the held-out GRID s1 test split
   (100 clips never trained on; crops from the s1 cache when present, else the face stage);
   unseen = the six clips of ``../shared/data/grid`` (other speakers: the shipped model is
   speaker-dependent). STOI, ESTOI, PESQ-WB, MCD against the real audio and the word error rate
   of pocketsphinx restricted to the GRID grammar, for the generated speech and, as context,
   Griffin-Lim of the real mel (``resynth``). Anchors: SVTS on GRID seen speakers STOI 0.705,
   PESQ 1.97, WER 2.4%; Lip2Wav STOI 0.73. Target on held-out s1: STOI >= 0.6, WER <= 25%.
2. AV2A ablation on the first ``--ablation-clips`` s1 test clips: the real audio mixed with
   white noise at 0 and 5 dB SNR, given to the AV2A model with and without the video, next to
   the video-only models and the noisy input itself.
3. Speed: ``avtool v2a`` end to end (face stage with the speaker guard, network, vocoder) on
   ``--speed-clips`` s1 test videos, as times faster than real time (video seconds / wall
   seconds), per stage, for each ``MODEL:VOCODER`` of ``--speed-configs`` side by side in one
   run: by default today's default (``v2a-content-grid-s1`` + ``DEFAULT_VOCODER``, a HiFi-GAN
   V1) against the previous one (the same model + Griffin-Lim). ``guard`` is the speaker check's
   share (dlib descriptors of 5 frames), inside the face stage. The configurations alternate
   over ``--speed-rounds`` rounds (A B, then B A, ...) and each one's times are summed over the
   rounds, so a change of load on a shared machine, or the first run's cold caches, falls on
   both; ``default_time_ratio`` is the first configuration's wall time over each other's (above
   1: the default is that many times slower) and ``default_cpu_ratio`` the same for the
   process's CPU seconds (``time.process_time``), which a busy shared machine disturbs far less
   than wall time.

Writes ``<out>/v2a.json`` and prints the same JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

from avtool.engines import RunSettings
from avtool.tasks.options.v2a import AV2A_MODEL, DEFAULT_VOCODER, V2A_MODEL, V2AOptions

REPO = Path(__file__).resolve().parents[1]
ANCHORS = {
    "svts_grid_seen": {"stoi": 0.705, "pesq_wb": 1.97, "wer": 0.024},
    "lip2wav_grid": {"stoi": 0.73},
    "target_s1_test": {"stoi_min": 0.6, "wer_max": 0.25},
}


def shared_data() -> Path:
    env = os.environ.get("AVTOOL_SHARED_DATA")
    return Path(env) if env else REPO.parent / "shared" / "data"


def speed(
    clips: list[Path], threads: int, model: str | None = None, vocoder: str | None = None
) -> dict:
    """End-to-end ``avtool v2a`` timings of ``model`` with ``vocoder`` (None = the defaults)
    from each clip's sidecar."""
    from avtool.tasks import v2a

    rows = []
    options = V2AOptions(model=model, vocoder=vocoder)
    with tempfile.TemporaryDirectory() as tmp:
        items = v2a.build_items([str(c) for c in clips], None, str(Path(tmp) / "{stem}.wav"))
        start, cpu_start = time.perf_counter(), time.process_time()
        summary = v2a.run(items, options, RunSettings(accept_license=True, quiet=True))
        wall, cpu = time.perf_counter() - start, time.process_time() - cpu_start
        for item in items:
            meta = json.loads(Path(str(item.output) + ".json").read_text())
            guard = (meta.get("speaker_check") or {}).get("seconds", 0.0)
            rows.append(meta["timings"] | {"duration": meta["audio"]["duration"], "guard_s": guard,
                                           "vocoder": meta["vocoder"]["name"]})  # fmt: skip
    totals = {k: sum(r[k] for r in rows) for k in ("face_s", "model_s", "total_s", "guard_s")}
    return {
        "model": model or V2A_MODEL,
        "vocoder": rows[0]["vocoder"] if rows else vocoder,
        "wall_s": round(wall, 2),
        "cpu_s": round(cpu, 2),
        "clips": len(rows),
        "failed": len(summary.failed),
        "threads": threads,
        "video_seconds": round(sum(r["duration"] for r in rows), 2),
        "stage_s": {k: round(v, 3) for k, v in totals.items()},
        "x_real_time": x_real_time(sum(r["duration"] for r in rows), wall, totals),
    }


def x_real_time(seconds: float, wall: float, total: dict[str, float]) -> dict:
    """Video seconds over wall seconds, end to end and per stage (``total``: stage seconds)."""
    return {
        "end_to_end_incl_load": round(seconds / wall, 2),
        "per_clip_total": round(seconds / total["total_s"], 2),
        "face_stage": round(seconds / total["face_s"], 2),
        "guard": round(seconds / total["guard_s"], 2) if total["guard_s"] else None,
        "network": round(seconds / total["model_s"], 2),
        "vocoder_and_io": round(
            seconds / max(total["total_s"] - total["face_s"] - total["model_s"], 1e-9), 2
        ),
    }


def merge_rounds(runs: list[dict]) -> dict:
    """One configuration's :func:`speed` results over several rounds, times summed."""
    wall = sum(r["wall_s"] for r in runs)
    seconds = sum(r["video_seconds"] for r in runs)
    stages = {k: sum(r["stage_s"][k] for r in runs) for k in runs[0]["stage_s"]}
    return runs[0] | {
        "rounds": len(runs),
        "wall_s": round(wall, 2),
        "wall_s_per_round": [r["wall_s"] for r in runs],
        "cpu_s": round(sum(r["cpu_s"] for r in runs), 2),
        "clips": sum(r["clips"] for r in runs),
        "failed": sum(r["failed"] for r in runs),
        "video_seconds": round(seconds, 2),
        "stage_s": {k: round(v, 3) for k, v in stages.items()},
        "x_real_time": x_real_time(seconds, wall, stages),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=REPO / "bench-results")
    parser.add_argument("--model", default=V2A_MODEL)
    parser.add_argument("--av-model", default=AV2A_MODEL)
    parser.add_argument("--cache", type=Path, default=REPO / "data" / "grid_s1_cache")
    parser.add_argument("--ablation-clips", type=int, default=100)
    parser.add_argument("--speed-clips", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--speed-configs", nargs="+",
        default=[f"{V2A_MODEL}:{DEFAULT_VOCODER}", f"{V2A_MODEL}:griffin-lim"],
        help="MODEL:VOCODER pairs timed side by side in this run (today's default, the previous)",
    )  # fmt: skip
    parser.add_argument("--speed-rounds", type=int, default=2, help="alternating rounds (A B, B A)")
    parser.add_argument("--speed-only", action="store_true", help="skip the quality measures")
    args = parser.parse_args(argv)

    import torch

    from avtool.datasets.grid import s1_split
    from avtool.tasks.eval.v2a import evaluate_v2a

    torch.set_num_threads(args.threads)
    os.environ.setdefault("AVTOOL_ACCEPT_LICENSE", "1")  # dlib landmarks: research use
    data = shared_data()
    s1 = data / "grid_s1"
    grid = data / "grid"
    results: dict = {"anchors": ANCHORS, "threads": args.threads, "cpu_count": os.cpu_count()}
    cache = args.cache if (args.cache / "index.json").is_file() else None
    if not args.speed_only:
        quality = evaluate_v2a(
            model=args.model,
            av_model=args.av_model or None,
            cache=cache,
            seen_dir=s1 if cache is None and (s1 / "clips").is_dir() else None,
            unseen_dir=[d for d in (grid, data / "grid_s4") if (d / "manifest.csv").is_file()],
            ablation_limit=args.ablation_clips,
            accept_license=True,
        )
        results["quality"] = quality["sets"]
        results["models"] = quality["models"]
        results["crops_from"] = "cache" if cache else "face stage"
        seen = quality["sets"].get("seen (s1 test)", {}).get("v2a (hifigan)")
        if seen:
            target = ANCHORS["target_s1_test"]
            results["target_met"] = {
                "stoi": seen["stoi"] >= target["stoi_min"],
                "wer": seen["wer"] <= target["wer_max"],
            }
    if (s1 / "clips").is_dir():
        clips = [s1 / "clips" / f"{i}.mkv" for i in s1_split()["test"][: args.speed_clips]]
        configs = [c.partition(":")[::2] for c in args.speed_configs]
        runs: list[list[dict]] = [[] for _ in configs]
        for round_index in range(max(1, args.speed_rounds)):
            order = range(len(configs))
            for index in order if round_index % 2 == 0 else reversed(order):
                model, vocoder = configs[index]
                runs[index].append(speed(clips, args.threads, model, vocoder or None))
        results["speed"] = [merge_rounds(r) for r in runs]
        first, *others = results["speed"]
        for other in others:  # > 1: the first (default) config takes that many times as long
            other["default_time_ratio"] = round(first["wall_s"] / other["wall_s"], 3)
            other["default_cpu_ratio"] = round(first["cpu_s"] / other["cpu_s"], 3)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "v2a.json").write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
