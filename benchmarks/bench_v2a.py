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
   run: by default today's default (``v2a-content-grid-s1`` + HiFi-GAN V1 universal) against
   the previous one (the same model + Griffin-Lim). ``guard`` is the speaker check's share
   (dlib descriptors of 5 frames), inside the face stage.

Writes ``<out>/v2a.json`` and prints the same JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

from avtool.tasks.v2a import AV2A_MODEL, DEFAULT_VOCODER, V2A_MODEL

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
    options = v2a.V2AOptions(model=model, vocoder=vocoder)
    with tempfile.TemporaryDirectory() as tmp:
        items = v2a.build_items([str(c) for c in clips], None, str(Path(tmp) / "{stem}.wav"))
        start = time.perf_counter()
        summary = v2a.run(items, options, accept_license=True, quiet=True)
        wall = time.perf_counter() - start
        for item in items:
            meta = json.loads(Path(str(item.output) + ".json").read_text())
            guard = (meta.get("speaker_check") or {}).get("seconds", 0.0)
            rows.append(meta["timings"] | {"duration": meta["audio"]["duration"], "guard_s": guard,
                                           "vocoder": meta["vocoder"]["name"]})  # fmt: skip
    seconds = sum(r["duration"] for r in rows)
    total = {k: sum(r[k] for r in rows) for k in ("face_s", "model_s", "total_s", "guard_s")}
    return {
        "model": model or v2a.V2A_MODEL,
        "vocoder": rows[0]["vocoder"] if rows else vocoder,
        "wall_s": round(wall, 2),
        "clips": len(rows),
        "failed": len(summary.failed),
        "threads": threads,
        "video_seconds": round(seconds, 2),
        "x_real_time": {
            "end_to_end_incl_load": round(seconds / wall, 2),
            "per_clip_total": round(seconds / total["total_s"], 2),
            "face_stage": round(seconds / total["face_s"], 2),
            "guard": round(seconds / total["guard_s"], 2) if total["guard_s"] else None,
            "network": round(seconds / total["model_s"], 2),
            "vocoder_and_io": round(
                seconds / max(total["total_s"] - total["face_s"] - total["model_s"], 1e-9), 2
            ),
        },
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
        results["speed"] = [speed(clips, args.threads, m, v or None) for m, v in configs]
        first, *others = results["speed"]
        for other in others:  # > 1: the first (default) config takes that many times as long
            other["default_time_ratio"] = round(first["wall_s"] / other["wall_s"], 3)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "v2a.json").write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
