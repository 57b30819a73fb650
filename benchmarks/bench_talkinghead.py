"""Talking-head lip-sync quality on real GRID video (run with ``make bench``).

For each clip in ``../shared/data/grid`` (or ``$AVTOOL_SHARED_DATA/grid``) the first frame is the
face and the clip's own audio the drive; ``avtool eval talkinghead``'s pipeline
(:func:`avtool.tasks.eval.talkinghead.evaluate_talkinghead`) renders it, tracks the 68 dlib
landmarks in the rendered, the static (first frame repeated) and the real videos, and reports
D-LL, D-VL, D-A (AnyoneNet, inter-ocular-distance units after registration on nose and eyes)
and the Pearson correlation of the inner-mouth area, renderer and static baseline side by side
in one run. Targets (the issue): area correlation >= 0.5, D-A <= 0.6 x the static baseline's.

``--model`` picks the renderer scored as ``renderer`` (default warp) and ``--compare`` adds more
(default: ``anyonenet`` when the registry has it), rendered and scored side by side in the same
run; ``--compare none`` scores the one renderer only.
``--s1-test N`` scores the first N clips (by id) of the GRID s1 test split
(``../shared/data/grid_s1/clips``, :func:`avtool.datasets.grid.s1_split`) instead: a held-out
check of the warp's constants, which were tuned on the six GRID clips.

``--unseen`` scores the speakers the renderer never saw instead: the five non-s1 clips of
``grid`` (``bbaf2n``, s1's own, left out by the manifest) and every ``grid_s4`` clip, and writes
``talkinghead_unseen.json`` with a montage of real vs rendered mouths
(``talkinghead_unseen_mouths.png``). Every run also reports the mouth region in pixels (L1 and
SSIM of a ``--still`` render against the real frames, beside the static photo's).

Accepts the dlib landmark model's non-commercial licence for this measurement run.
Writes ``<out>/talkinghead.json`` (``talkinghead_s1_test.json`` with ``--s1-test``) and prints
the summary.
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


def default_compare() -> list[str]:
    """The registered AnyoneNet systems: ``anyonenet`` (predictor), ``anyonenet-unet``
    (renderer), each when the registry has its weights, and ``anyonenet-full`` (both)."""
    from avtool.registry import load_registry
    from avtool.tasks.options.talkinghead import ANYONENET_MODEL, ANYONENET_UNET_MODEL

    registry = load_registry()
    pairs = (("anyonenet", ANYONENET_MODEL), ("anyonenet-unet", ANYONENET_UNET_MODEL))
    names = [name for name, entry in pairs if entry in registry]
    # The paper's pipeline, the predictor drawn by the UNet, when both are there.
    return [*names, "anyonenet-full"] if len(names) == 2 else names


def s1_test_clips(count: int, *, spread: bool = False) -> list[Path]:
    """``count`` GRID s1 test-split clips (by id): the first ones present, or with ``spread``
    ids spread evenly over the split; [] without the data."""
    from avtool.datasets.grid import s1_split

    candidates = []
    if os.environ.get("AVTOOL_SHARED_DATA"):
        candidates.append(Path(os.environ["AVTOOL_SHARED_DATA"]) / "grid_s1" / "clips")
    candidates.append(REPO.parent / "shared" / "data" / "grid_s1" / "clips")
    for folder in candidates:
        if folder.is_dir():
            ids = sorted(s1_split()["test"])
            if spread:
                step = (len(ids) - 1) / max(count - 1, 1)
                ids = [ids[i] for i in sorted({round(k * step) for k in range(count)})]
            present = [p for p in (folder / f"{i}.mkv" for i in ids) if p.is_file()]
            return present[:count]
    return []


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("bench-results"))
    parser.add_argument("--quick", action="store_true", help="two clips only")
    parser.add_argument("--still", action="store_true", help="render without head motion")
    parser.add_argument("--keep", type=Path, default=None, help="keep rendered videos here")
    parser.add_argument("--model", default=None, help="the renderer system (default warp)")
    parser.add_argument("--compare", action="append", default=None, help="more --model values")
    parser.add_argument(
        "--s1-test",
        type=int,
        default=None,
        metavar="N",
        help="first N GRID s1 test-split clips instead of the six GRID clips",
    )
    parser.add_argument(
        "--unseen", action="store_true", help="the five non-s1 grid clips and grid_s4 instead"
    )
    args = parser.parse_args()

    import torch

    torch.set_num_threads(1)  # two shared cores: dlib and ffmpeg need the other one
    from avtool.runtime import write_json
    from avtool.tasks.eval.talkinghead import evaluate_talkinghead, render_options

    montage = None
    if args.unseen:
        from avtool.tasks.eval.talkinghead import unseen_clips

        folder = grid_folder()
        s4 = (folder.parent / "grid_s4" / "clips") if folder else None
        found = sorted(folder.glob("*.mpg")) if folder else []
        found += sorted(s4.glob("*.mkv")) if s4 is not None and s4.is_dir() else []
        clips = unseen_clips(found)[: 2 if args.quick else None]
        name = "talkinghead_unseen.json"
        montage = args.out / "talkinghead_unseen_mouths.png"
        args.out.mkdir(parents=True, exist_ok=True)
    elif args.s1_test:
        clips = s1_test_clips(args.s1_test)
        name = "talkinghead_s1_test.json"
    else:
        folder = grid_folder()
        clips = sorted(folder.glob("*.mpg"))[: 2 if args.quick else None] if folder else []
        name = "talkinghead.json"
    if not clips:
        print("GRID clips not found; nothing to measure", file=sys.stderr)
        return
    compare = args.compare if args.compare is not None else default_compare()
    compare = [m for m in compare if m != "none"]
    start = time.perf_counter()
    results = evaluate_talkinghead(
        clips,
        render_options(still=args.still, model=args.model),
        compare=compare,
        accept_license=True,
        keep_dir=args.keep,
        montage=montage,
        on_clip=lambda clip: print(f"scoring {clip.name}", file=sys.stderr),
    )
    results["wall_seconds"] = round(time.perf_counter() - start, 1)
    results["machine"] = {"cpu_count": os.cpu_count()}
    args.out.mkdir(parents=True, exist_ok=True)
    write_json(args.out / name, results)
    print(json.dumps({"summary": results["summary"], "wall_seconds": results["wall_seconds"]},
                     indent=2))  # fmt: skip


if __name__ == "__main__":
    main()
