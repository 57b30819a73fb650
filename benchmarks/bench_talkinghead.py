"""Talking-head lip-sync quality on real GRID video (run with ``make bench``).

For each clip in ``../shared/data/grid`` (or ``$AVTOOL_SHARED_DATA/grid``) the first frame is the
face and the clip's own audio the drive; ``avtool eval talkinghead``'s pipeline
(:func:`avtool.tasks.evaluate_talkinghead.evaluate_talkinghead`) renders it, tracks the 68 dlib
landmarks in the rendered, the static (first frame repeated) and the real videos, and reports
D-LL, D-VL, D-A (AnyoneNet, inter-ocular-distance units after registration on nose and eyes)
and the Pearson correlation of the inner-mouth area, renderer and static baseline side by side
in one run. Targets (the issue): area correlation >= 0.5, D-A <= 0.6 x the static baseline's.

Accepts the dlib landmark model's non-commercial licence for this measurement run.
Writes ``<out>/talkinghead.json`` and prints the summary.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def grid_folder() -> Path | None:
    """The GRID clips: ``$AVTOOL_SHARED_DATA/grid``, else ``../shared/data/grid``."""
    candidates = []
    if os.environ.get("AVTOOL_SHARED_DATA"):
        candidates.append(Path(os.environ["AVTOOL_SHARED_DATA"]) / "grid")
    candidates.append(REPO.parent / "shared" / "data" / "grid")
    for folder in candidates:
        if folder.is_dir() and any(folder.glob("*.mpg")):
            return folder
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("bench-results"))
    parser.add_argument("--quick", action="store_true", help="two clips only")
    parser.add_argument("--still", action="store_true", help="render without head motion")
    parser.add_argument("--keep", type=Path, default=None, help="keep rendered videos here")
    args = parser.parse_args()

    import torch

    torch.set_num_threads(1)  # two shared cores: dlib and ffmpeg need the other one
    from avtool.runtime import write_json
    from avtool.tasks.evaluate_talkinghead import evaluate_talkinghead, render_options

    folder = grid_folder()
    if folder is None:
        print("GRID clips not found; nothing to measure", file=sys.stderr)
        return
    clips = sorted(folder.glob("*.mpg"))[: 2 if args.quick else None]
    start = time.perf_counter()
    results = evaluate_talkinghead(
        clips,
        render_options(still=args.still),
        accept_license=True,
        keep_dir=args.keep,
        on_clip=lambda clip: print(f"scoring {clip.name}", file=sys.stderr),
    )
    results["wall_seconds"] = round(time.perf_counter() - start, 1)
    results["machine"] = {"cpu_count": os.cpu_count()}
    args.out.mkdir(parents=True, exist_ok=True)
    write_json(args.out / "talkinghead.json", results)
    print(json.dumps({"summary": results["summary"], "wall_seconds": results["wall_seconds"]},
                     indent=2))  # fmt: skip


if __name__ == "__main__":
    main()
