"""``avtool eval``: objective measures of avtool's models on real recordings."""

from __future__ import annotations

import typer

from avtool.cli.common import global_options, handle_errors
from avtool.tasks.vocode import GRIFFIN_LIM

app = typer.Typer(help="Measure models on real recordings.", no_args_is_help=True)


@app.command("vocode")
@handle_errors
def eval_vocode_command(
    ctx: typer.Context,
    clips: list[str] = typer.Argument(..., help="Speech recordings (audio/video), folders, globs."),
    model: list[str] = typer.Option(
        [GRIFFIN_LIM], "--model", help="Vocoder to score (repeatable): name or checkpoint path."
    ),
    iters: int = typer.Option(None, "--iters", help="Griffin-Lim iterations (default 32)."),
) -> None:
    """Resynthesise each clip from its mel with each vocoder: PESQ-WB, STOI, ESTOI, MCD, MR-STFT.

    Example: avtool eval vocode ../shared/data/grid/ --model griffin-lim --model g_02500000
    """
    import json

    from rich.console import Console
    from rich.table import Table

    from avtool.runtime import expand_paths
    from avtool.tasks.evaluate import VOCODER_MEASURES, evaluate_vocoders
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
    if opts.json:
        print(json.dumps(results, indent=2))
        return
    table = Table("model", *VOCODER_MEASURES, "x real time", title=f"{len(paths)} clips")
    for name, row in results["models"].items():
        table.add_row(
            name, *(f"{row['mean'][m]:.3f}" for m in VOCODER_MEASURES), str(row["x_real_time"])
        )
    Console().print(table)
