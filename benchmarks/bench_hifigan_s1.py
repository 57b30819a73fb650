"""HiFi-GAN fine-tuned on GRID s1 against the universal generator and Griffin-Lim, in one run.

Run after ``make -f recipes/vocoder.mk finetune-s1`` (figures never live in tests)::

    python -m benchmarks.bench_hifigan_s1 --candidate out/vocoder-s1/g_00000060 \\
        --s1-test-clips 30 --v2a-val-clips 39 --v2a-test-clips 30

1. Analysis-resynthesis (``avtool.tasks.eval.vocode.evaluate_vocoders``: each clip's own mel
   vocoded and scored against the clip; PESQ-WB, STOI, ESTOI, MCD, MR-STFT) on the six real
   GRID clips of ``../shared/data/grid`` (what ``avtool eval vocode`` is run on; reported for
   all six and for the five non-s1 ones, since ``bbaf2n`` is one of s1's *training* clips and
   so was seen by the fine-tuned vocoder) and on the first ``--s1-test-clips`` clips of s1's
   test split (never trained on by either the vocoder or the V2A model).
2. v2a's output through each vocoder (the default ``v2a-content-grid-s1`` mel, from the face
   stage on the videos): STOI, ESTOI, PESQ-WB, MCD and GRID-grammar WER, on the first
   ``--v2a-val-clips`` clips of s1's validation split (where a default is chosen) and the first
   ``--v2a-test-clips`` of its test split.

Writes ``<out>/hifigan_s1.json`` and prints the same JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
UNIVERSAL = "hifigan-v1-universal"
GRIFFIN_LIM = "griffin-lim"
#: s1's own clip in ``../shared/data/grid`` (in s1's training split).
S1_GRID_CLIP = "bbaf2n"


def shared_data() -> Path:
    env = os.environ.get("AVTOOL_SHARED_DATA")
    return Path(env) if env else REPO.parent / "shared" / "data"


def resynthesis(clips: list[Path], models: list[str]) -> dict:
    """``evaluate_vocoders`` of every model on ``clips`` (per-clip rows kept)."""
    from avtool.tasks.eval.vocode import evaluate_vocoders

    return evaluate_vocoders(clips, models, accept_license=True)


def means(results: dict, keep: set[str] | None = None) -> dict:
    """Mean vocoder measures per model of :func:`resynthesis` (or only the stems in ``keep``)."""
    from avtool.tasks.eval.vocode import VOCODER_MEASURES

    out: dict = {}
    for name, row in results["models"].items():
        rows = [r for r in row["per_clip"] if keep is None or Path(r["clip"]).stem in keep]
        out[name] = {m: round(statistics.fmean(r[m] for r in rows), 4) for m in VOCODER_MEASURES}
        out[name]["clips"] = len(rows)
        out[name]["per_clip_pesq_wb"] = [round(r["pesq_wb"], 3) for r in rows]
    return out


def v2a_through(clip_paths: list[Path], vocoders: list[str]) -> dict:
    """The default v2a model's mel of each clip, vocoded by each vocoder and scored."""
    from avtool.io.features import MelSpec
    from avtool.io.formats import MODEL_FPS as FPS
    from avtool.metrics.grid import GridRecognizer
    from avtool.models import v2a as v2a_model
    from avtool.models.face import load_detector
    from avtool.tasks.eval.v2a import score, summarise, video_clips
    from avtool.tasks.options.v2a import V2A_MODEL
    from avtool.tasks.options.vocode import VocodeOptions
    from avtool.tasks.v2a import load_model, speech_from_mel
    from avtool.tasks.vocode import load_vocoder

    spec = MelSpec.hifigan_22k()
    model = load_model(V2A_MODEL)
    loaded = [load_vocoder(VocodeOptions(model=name)) for name in vocoders]
    recogniser = GridRecognizer()
    clips = video_clips(clip_paths, load_detector(accept_license=True), {})
    rows: dict[str, list] = {name: [] for name in vocoders}
    for clip in clips:
        n_mel = spec.frames_for(round(len(clip.crops) * spec.sample_rate / FPS))
        mel = v2a_model.infer(model.module, clip.crops, n_mel, None, clip.landmarks).numpy()
        for name, vocoder in zip(vocoders, loaded, strict=True):
            wave = speech_from_mel(vocoder, mel, spec)
            rows[name].append(score(clip.audio, wave, clip.text, recogniser))
    return {"model": model.name, "vocoders": {n: summarise(r) for n, r in rows.items()}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--candidate", required=True, help="fine-tuned generator: name or g_ file")
    parser.add_argument("--out", type=Path, default=REPO / "bench-results")
    parser.add_argument("--s1-test-clips", type=int, default=100)
    parser.add_argument("--v2a-val-clips", type=int, default=39)
    parser.add_argument("--v2a-test-clips", type=int, default=100)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)

    import torch

    from avtool.datasets.grid import s1_split

    torch.set_num_threads(args.threads)
    os.environ.setdefault("AVTOOL_ACCEPT_LICENSE", "1")  # dlib landmarks: research use
    data = shared_data()
    split = s1_split()
    s1 = data / "grid_s1" / "clips"
    models = [GRIFFIN_LIM, UNIVERSAL, args.candidate]
    grid = sorted((data / "grid").glob("*.mpg"))
    results: dict = {"candidate": args.candidate, "threads": args.threads}

    def report(key: str, value: dict) -> None:
        results[key] = value
        print(json.dumps({key: value}), flush=True)

    on_grid = resynthesis(grid, models)
    report("resynth_grid_all6", means(on_grid))
    report("resynth_grid_5_non_s1", means(on_grid, {p.stem for p in grid} - {S1_GRID_CLIP}))
    test = [s1 / f"{i}.mkv" for i in split["test"][: args.s1_test_clips]]
    report("resynth_s1_test", means(resynthesis(test, models)))
    if args.v2a_val_clips:
        val = [s1 / f"{i}.mkv" for i in split["val"][: args.v2a_val_clips]]
        report("v2a_s1_val", v2a_through(val, models))
    if args.v2a_test_clips:
        test = [s1 / f"{i}.mkv" for i in split["test"][: args.v2a_test_clips]]
        report("v2a_s1_test", v2a_through(test, models))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "hifigan_s1.json").write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
