"""Benchmark of ``avtool lipread`` (run with ``make bench``; figures never live in tests).

1. Seen speaker: the held-out GRID s1 test split (``avtool.datasets.grid.s1_split()["test"]``,
   100 clips never trained on), read by ``--model`` (default: the shipped ``lipread-grid-s1``;
   ``--model lipnet-grid-s1`` for LipNet). The mouth crops come
   from the s1 cache when it exists (``--cache``, made by the same face-stage code as
   inference), else from the face stage run here.
2. Unseen speakers: the six clips in ``../shared/data/grid`` (other GRID speakers), through
   the whole pipeline (face stage + network).
Both report corpus WER and CER for greedy, prefix beam and GRID-grammar decoding. The anchor is
LipNet's 4.8% WER (overlapped speakers, Assael et al. 2016); the target on held-out s1 is a WER
of at most 10%.
3. Speed: times faster than real time (video seconds / wall seconds) of the whole pipeline on
   the CPU, from the unseen clips and ``--speed-clips`` s1 test clips read from their videos:
   face stage (dlib detection + landmarks) and the rest (second decode, crops, network)
   separately, plus decoding time
   per decoder. Target: faster than real time on the 2-core CPU.

Writes ``<out>/lipread.json`` and prints the same JSON.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def shared_data() -> Path:
    env = os.environ.get("AVTOOL_SHARED_DATA")
    return Path(env) if env else REPO.parent / "shared" / "data"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=REPO / "bench-results")
    parser.add_argument("--model", default="lipread-grid-s1")
    parser.add_argument("--cache", type=Path, default=REPO / "data" / "grid_s1_cache")
    parser.add_argument("--speed-clips", type=int, default=10)
    # One thread: torch threads slow down many times over when another process holds a core.
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)

    import torch

    from avtool.datasets.grid import s1_split
    from avtool.tasks.eval.lipread import (
        LIPNET_PAPER_WER,
        TARGET_WER,
        evaluate_lipread,
    )

    torch.set_num_threads(args.threads)
    os.environ.setdefault("AVTOOL_ACCEPT_LICENSE", "1")  # dlib landmarks: research use
    data = shared_data()
    results: dict = {
        "model": args.model,
        "threads": args.threads,
        "cpu_count": os.cpu_count(),
        "anchors": {"lipnet_paper_wer_overlapped": LIPNET_PAPER_WER, "target_wer_s1": TARGET_WER},
    }
    s1_clips = data / "grid_s1" / "clips"
    if s1_clips.is_dir():
        test_ids = s1_split()["test"]
        clips = [p for i in test_ids for p in sorted(s1_clips.glob(f"{i}.*"))]
        cache = args.cache if args.cache.is_dir() else None
        seen = evaluate_lipread(clips, model=args.model, cache_dir=cache, accept_license=True)
        seen.pop("clips")
        results["seen_s1_test"] = {**seen, "crops_from": "cache" if cache else "face stage"}
        results["seen_s1_test"]["target_met"] = {
            d: row["wer"] is not None and row["wer"] <= TARGET_WER
            for d, row in seen["decoders"].items()
        }
        speed_clips = clips[: args.speed_clips]
        speed = evaluate_lipread(speed_clips, model=args.model, accept_license=True)
        results["speed_s1_from_video"] = {"n_clips": speed["n_clips"], **speed["speed"]}
    grid = data / "grid"
    if (grid / "manifest.csv").is_file():
        clips = sorted(p for p in grid.iterdir() if p.suffix == ".mpg")
        unseen = evaluate_lipread(clips, model=args.model, accept_license=True)
        results["unseen_speakers"] = unseen
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "lipread.json").write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
