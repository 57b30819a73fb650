"""``avtool eval``: objective measures of avtool's models on real recordings."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

from avtool.cli import flags
from avtool.cli.common import GlobalOptions, global_options
from avtool.io.console import stderr_console
from avtool.tasks.options.lipread import DEFAULT_MODEL
from avtool.tasks.options.v2a import AV2A_MODEL, V2A_MODEL
from avtool.tasks.options.vocode import GRIFFIN_LIM

if TYPE_CHECKING:
    from rich.console import Console

app = typer.Typer(help="Measure models on real recordings.", no_args_is_help=True)

#: ``-o``: every eval command can keep its JSON report in a file.
_REPORT_HELP = "Also write the JSON report here."


def _report(results: dict, output: str | None, opts: GlobalOptions, omit: str = "") -> bool:
    """Write an eval's report to ``-o`` (when given) and, with ``--json``, print it on stdout.

    Args:
        results: the report.
        output: the ``-o`` path, or None.
        opts: the global options.
        omit: a key of ``results`` left out of the stdout copy (a per-clip list).

    Returns:
        True when it was printed (the command then prints no table).
    """
    import json
    from pathlib import Path

    from avtool.runtime import write_json

    if output:
        write_json(Path(output), results)
    if opts.json:
        print(json.dumps({k: v for k, v in results.items() if k != omit}, indent=2))
    return opts.json


def _print_failures(rows: list[dict], console: Console) -> None:
    """One ``error: CLIP: MESSAGE`` line per clip that failed (the others were scored)."""
    for row in rows:
        console.print(f"[bold red]error:[/] {row['clip']}: {row['error']}")


@app.command("vocode")
def eval_vocode_command(
    ctx: typer.Context,
    clips: list[str] = typer.Argument(..., help="Speech recordings (audio/video), folders, globs."),
    model: list[str] = typer.Option(
        [GRIFFIN_LIM], "--model", help="Vocoder to score (repeatable): name or checkpoint path."
    ),
    iters: int | None = flags.ITERS.option(None),
) -> None:
    """Resynthesise each clip from its mel with each vocoder: PESQ-WB, STOI, ESTOI, MCD, MR-STFT.

    Example: avtool eval vocode ../shared/data/grid/ --model griffin-lim --model g_02500000
    """
    from rich.console import Console
    from rich.table import Table

    from avtool.runtime import expand_paths
    from avtool.tasks.eval.vocode import VOCODER_MEASURES, evaluate_vocoders
    from avtool.tasks.vocode import MEDIA_SUFFIXES

    opts = global_options(ctx)
    paths = expand_paths(clips, MEDIA_SUFFIXES)
    results = evaluate_vocoders(
        paths,
        model,
        iters=iters,
        seed=opts.seed,
        device=opts.device,
        accept_license=opts.accept_license,
    )
    if _report(results, None, opts):
        return
    table = Table("model", *VOCODER_MEASURES, "x real time", title=f"{len(paths)} clips")
    for name, row in results["models"].items():
        table.add_row(
            name, *(f"{row['mean'][m]:.3f}" for m in VOCODER_MEASURES), str(row["x_real_time"])
        )
    Console().print(table)


@app.command("talkinghead")
def eval_talkinghead_command(
    ctx: typer.Context,
    clips: list[str] = typer.Argument(
        ..., help="Real talking-face videos with their speech (files, folders, globs)."
    ),
    model: str = typer.Option(None, "--model", help="Renderer (default: the offline warp)."),
    compare: list[str] = typer.Option(
        [], "--compare", help="Also render with this --model, side by side (repeatable)."
    ),
    limit: int = typer.Option(None, "--limit", min=1, help="Score only the first N clips."),
    still: bool = typer.Option(False, "--still", help="Render without head motion or blinks."),
    output: str = flags.output(None, _REPORT_HELP),
    keep: str = typer.Option(
        None, "--keep", help="Keep the rendered, static and drive files in this folder."
    ),
    montage: str = typer.Option(
        None, "--montage", help="Write a PNG of real vs rendered mouths (one row per clip)."
    ),
    unseen: bool = typer.Option(
        False, "--unseen", help="Leave out GRID s1's own clips (bbaf2n...): unseen speakers only."
    ),
) -> None:
    """Lip sync of the talking-head renderer vs. the static face on real clips.

    Each clip's first frame is the face and its own audio the drive. Landmarks found in the
    rendered, the static (first frame repeated) and the real videos give D-LL, D-VL, D-A
    (AnyoneNet, in inter-ocular distances) and the inner-mouth area correlation. Exit 1 when a
    clip failed (the others are still scored).

    Example: avtool --accept-license eval talkinghead ../shared/data/grid/ -o report.json

    avtool --accept-license eval talkinghead ../shared/data/grid/ --compare anyonenet

    avtool --accept-license eval talkinghead ../shared/data/grid/ ../shared/data/grid_s4/clips
      --unseen --montage mouths.png -o unseen.json

    Also scores the mouth region in pixels (L1, SSIM of a --still render against the real
    frames, beside the static photo's).
    """
    from pathlib import Path

    from rich.console import Console
    from rich.table import Table

    from avtool.metrics.landmarks import MEASURES
    from avtool.runtime import expand_paths
    from avtool.tasks.eval.talkinghead import evaluate_talkinghead, render_options
    from avtool.tasks.vocode import MEDIA_SUFFIXES

    opts = global_options(ctx)
    paths = expand_paths(clips, MEDIA_SUFFIXES)
    if unseen:
        from avtool.tasks.eval.talkinghead import unseen_clips

        paths = unseen_clips(paths)
    paths = paths[:limit]
    options = render_options(still=still, seed=opts.seed, model=model)
    console = stderr_console(opts.quiet)
    results = evaluate_talkinghead(
        paths,
        options,
        accept_license=opts.accept_license,
        keep_dir=Path(keep) if keep else None,
        on_clip=lambda clip: console.print(f"scoring {clip}"),
        compare=compare,
        montage=Path(montage) if montage else None,
    )
    failed = [row for row in results["clips"] if "error" in row]
    _print_failures(failed, console)
    if not _report(results, output, opts):
        summary = results["summary"]
        table = Table("system", *MEASURES, title=f"{summary['n_clips']} clips")
        ratios = summary.get("d_a_ratio_by_system", {})
        table.add_column("d_a / static")
        for system, means in summary["mean"].items():
            table.add_row(
                system,
                *("-" if means[m] is None else f"{means[m]:.4f}" for m in MEASURES),
                f"{ratios[system]:.3f}" if system in ratios else "-",
            )
        out = Console()
        out.print(table)
        for name, target in summary["targets"].items():
            verdict = "met" if target["met"] else "NOT met"
            out.print(f"{name} = {target['value']} (target {target['target']}): {verdict}")
    if failed:
        raise typer.Exit(1)


@app.command("lipread")
def eval_lipread_command(
    ctx: typer.Context,
    clips: list[str] = typer.Argument(..., help="GRID face videos (files, folders, globs)."),
    model: str = typer.Option(DEFAULT_MODEL, "--model", help="Registry name or .pt path."),
    decoder: list[str] = typer.Option(
        ["greedy", "beam", "grid"], "--decoder", help="greedy, beam, grid (repeatable)."
    ),
    split: str = typer.Option(None, "--split", help="Only this GRID s1 split: train, val, test."),
    cache: str = typer.Option(
        None, "--cache", help="GRID cache folder: use its crops instead of the face stage."
    ),
    output: str = flags.output(None, _REPORT_HELP),
) -> None:
    """Word and character error rate of a lip reader per CTC decoder on real GRID clips.

    Example: avtool --accept-license eval lipread ../shared/data/grid_s1 --split test
    """
    from pathlib import Path

    from rich.console import Console
    from rich.table import Table

    from avtool.io.formats import READER_SUFFIXES
    from avtool.runtime import expand_paths
    from avtool.tasks.eval.lipread import evaluate_lipread, select_split

    opts = global_options(ctx)
    folders = [str(Path(c) / "clips") if (Path(c) / "clips").is_dir() else c for c in clips]
    paths = select_split(expand_paths(folders, READER_SUFFIXES), split)
    console = stderr_console(opts.quiet)
    results = evaluate_lipread(
        paths,
        model=model,
        decoders=decoder,
        cache_dir=Path(cache) if cache else None,
        device=opts.device,
        accept_license=opts.accept_license,
        on_clip=lambda clip: console.print(f"reading {clip}") if opts.verbose else None,
    )
    _print_failures(results["failed"], console)
    if not _report(results, output, opts):
        table = Table("decoder", "WER", "CER", title=f"{results['n_clips']} clips")
        for name, row in results["decoders"].items():
            cells = ("-" if row[m] is None else f"{row[m]:.4f}" for m in ("wer", "cer"))
            table.add_row(name, *cells)
        Console().print(table)
        Console().print(f"speed: {results['speed']['x_real_time']} x real time")
    if results["failed"]:
        raise typer.Exit(1)


@app.command("v2a")
def eval_v2a_command(
    ctx: typer.Context,
    cache: str = typer.Option(None, "--cache", help="GRID s1 cache folder (seen set)."),
    seen: str = typer.Option(None, "--seen", help="GRID s1 folder (seen set, without cache)."),
    unseen: list[str] = typer.Option(
        None, "--unseen", help="Folder of other speakers' GRID videos (repeatable; s1 left out)."
    ),
    vocoder: list[str] = typer.Option(
        None, "--vocoder", help="Vocoder to score every variant with (repeatable; default both)."
    ),
    av2a_synth: list[str] = typer.Option(
        None, "--av2a-synth", help="LABEL=MODEL: AV2A fed --model's own speech (repeatable)."
    ),
    resynth: bool = typer.Option(
        True, "--resynth/--no-resynth", help="Also score the real mel (the vocoders' ceiling)."
    ),
    model: str = typer.Option(V2A_MODEL, "--model", help="Video-only model (name/path)."),
    av_model: str = typer.Option(AV2A_MODEL, "--av-model", help="AV2A model; '' skips."),
    limit: int = typer.Option(None, "--limit", help="First N s1 test clips only."),
    ablation_limit: int = typer.Option(30, "--ablation-limit", help="Clips in the AV ablation."),
    output: str = flags.output(None, _REPORT_HELP),
) -> None:
    """STOI, ESTOI, PESQ-WB, MCD and GRID-grammar WER of generated speech vs the real audio.

    Example:

      avtool --accept-license eval v2a --cache data/grid_s1_cache --unseen ../shared/data/grid \
        --unseen ../shared/data/grid_s4
    """
    from pathlib import Path

    from rich.console import Console
    from rich.table import Table

    from avtool.tasks.eval.v2a import MEASURES, VOCODERS, evaluate_v2a

    opts = global_options(ctx)
    console = stderr_console(opts.quiet)
    results = evaluate_v2a(
        model=model,
        av_model=av_model or None,
        cache=Path(cache) if cache else None,
        seen_dir=Path(seen) if seen else None,
        unseen_dir=[Path(u) for u in unseen or []],
        vocoders=vocoder or VOCODERS,
        av2a_synth=[tuple(item.split("=", 1)) for item in av2a_synth or []],
        resynth=resynth,
        limit=limit,
        ablation_limit=ablation_limit,
        seed=opts.seed,
        device=opts.device,
        accept_license=opts.accept_license,
        on_clip=lambda clip: console.print(f"clip {clip}") if opts.verbose else None,
    )
    if _report(results, output, opts, omit="per_clip"):
        return
    for set_name, rows in results["sets"].items():
        table = Table("variant", *MEASURES, "clips", title=set_name)
        for name, row in rows.items():
            table.add_row(name, *(f"{row[m]:.3f}" for m in MEASURES), str(row["clips"]))
        Console().print(table)
    Console().print(f"model speed: {results['model_x_real_time']} x real time (after face stage)")


@app.command("voices")
def eval_voices_command(
    ctx: typer.Context,
    data: str = typer.Argument("../shared/data", help="Folder with grid/, grid_s1/, grid_s4/."),
    accent: str = typer.Option("us", "--accent", help="Accent of the chosen voices: us or gb."),
    sentences: int = typer.Option(10, "--sentences", min=4, help="GRID sentences per voice."),
    wer: bool = typer.Option(True, "--wer/--no-wer", help="Also score every voice's GRID WER."),
    output: str = flags.output(None, _REPORT_HELP),
    work: str = typer.Option(None, "--work", help="Keep synthesised audio here for reruns."),
) -> None:
    """Face -> voice on real GRID people: gender agreement and speaker similarity vs baselines.

    Example: avtool --accept-license eval voices ../shared/data -o voices.json
    """
    from pathlib import Path

    from rich.console import Console
    from rich.table import Table

    from avtool.tasks.eval.voices import evaluate_voices

    opts = global_options(ctx)
    console = stderr_console(opts.quiet)
    report = evaluate_voices(
        Path(data), accent=accent, sentences=sentences, wer=wer,
        accept_license=opts.accept_license, work=Path(work) if work else None,
        progress=console.print,
    )  # fmt: skip
    if _report(report, output, opts):
        return
    summary = report["summary"]
    table = Table("method", "mean similarity", title=f"{summary['people']} GRID people")
    for method, value in summary["mean_similarity"].items():
        table.add_row(method, f"{value:.3f}")
    Console().print(table)
    Console().print(f"gender agreement: {summary['gender_agreement']:.0%}")
    if "wer" in report:
        Console().print(f"max voice WER: {report['wer']['max']:.3f} (target <= 0.10)")


@app.command("separate")
def eval_separate_command(
    ctx: typer.Context,
    data: str = typer.Option("../shared/data", "--data", help="grid, grid_s4, librispeech here."),
    cache: str = typer.Option(
        "data/grid_s1_cache", "--cache", help="GRID s1 cache (the test clips' crops and audio)."
    ),
    limit: int = typer.Option(20, "--limit", min=1, help="s1 test clips to mix."),
    snr: list[float] = typer.Option([0.0, -5.0, 5.0], "--snr", help="Target/interferer dB."),
    av_model: str = typer.Option(None, "--av-model", help="Audio-visual model (name/path)."),
    blind_model: str = typer.Option(None, "--blind-model", help="Blind model (name/path)."),
    full: bool = typer.Option(False, "--full", help="PESQ/STOI/WER at every SNR, not just 0 dB."),
    output: str = flags.output(None, _REPORT_HELP),
) -> None:
    """Two-speaker separation of GRID s1 test clips from unseen voices: SI-SDRi, SDRi, PESQ,
    STOI, GRID-grammar WER; oracle IRM and a v2a-mask baseline beside the trained models.

    Example: avtool eval separate --limit 20 -o separate.json
    """
    from pathlib import Path

    from rich.console import Console
    from rich.table import Table

    from avtool.runtime import resolve_device
    from avtool.tasks.eval.separate import evaluate_separate

    MEASURES = ("si_sdri", "sdri", "pesq", "stoi", "wer")
    opts = global_options(ctx)
    console = stderr_console(opts.quiet)
    report = evaluate_separate(
        Path(data), Path(cache), limit=limit, snrs=snr, av_model=av_model,
        blind_model=blind_model, full=full, device=resolve_device(opts.device),
        progress=None if opts.quiet else console.print,
    )  # fmt: skip
    if _report(report, output, opts, omit="per_mixture"):
        return
    title = f"{report['mixtures']} mixtures, {len(report['clips'])} s1 test clips"
    table = Table("mixtures", "system", "SI-SDRi", "SDRi", "PESQ", "STOI", "WER", title=title)
    for key, systems in report["rows"].items():
        for system, means in systems.items():
            if system == "n":
                continue
            cells = [f"{means[m]:.3g}" if m in means else "-" for m in MEASURES]
            table.add_row(key, system, *cells)
    Console().print(table)
    Console().print(f"x real time (one thread): {report['x_real_time']}")
