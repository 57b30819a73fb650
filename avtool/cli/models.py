"""``avtool models``: list, show, pull, verify and locate the weights in the registry."""

from __future__ import annotations

import dataclasses
import json
import sys
from typing import TYPE_CHECKING, Any

import typer

from avtool.cli.common import global_options
from avtool.errors import ModelError

if TYPE_CHECKING:
    from rich.console import Console

    from avtool.registry import FileSpec, ModelEntry

app = typer.Typer(
    help="List, download, verify and locate model weights (the models.toml registry).",
    no_args_is_help=True,
)


def _print_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, default=str))


def _stdout_console() -> Console:
    from rich.console import Console

    # Piped output gets room for whole names and paths instead of rich's 80-column default.
    return Console(highlight=False, width=None if sys.stdout.isatty() else 200)


def _entry_dict(entry: ModelEntry) -> dict[str, Any]:
    from avtool import registry

    def where(spec: FileSpec) -> str | None:
        try:
            return str(registry.file_path(entry, spec))
        except ModelError:
            return None

    return {
        "name": entry.name,
        "task": entry.task,
        "family": entry.family,
        "description": entry.description,
        "license": entry.license,
        "commercial": entry.commercial,
        "sample_rate": entry.sample_rate,
        "fps": entry.fps,
        "homepage": entry.homepage,
        "size": entry.size,
        "status": registry.model_status(entry),
        "config": dict(entry.config),
        "files": [{**dataclasses.asdict(f), "path": where(f)} for f in entry.files],
    }


@app.command("list")
def list_command(
    ctx: typer.Context,
    task: str | None = typer.Option(None, "--task", help="Only models for this task (tts, ...)."),
) -> None:
    """List the registry's models and whether their files are here."""
    from rich.table import Column, Table

    from avtool import registry

    entries = [e for e in registry.load_registry().values() if task in (None, e.task)]
    rows = [_entry_dict(e) for e in entries]
    if global_options(ctx).json:
        _print_json(rows)
        return
    name_column = Column("name", no_wrap=True)
    table = Table(name_column, "task", "family", "size", "license", "commercial", "status")
    for row in rows:
        table.add_row(
            row["name"],
            row["task"],
            row["family"],
            registry.human_size(row["size"]),
            row["license"],
            "yes" if row["commercial"] else "no (--accept-license)",
            row["status"],
        )
    _stdout_console().print(table)


@app.command("show")
def show_command(ctx: typer.Context, name: str = typer.Argument(..., help="Model name.")) -> None:
    """Show every field of one model: sources, checksums, cache paths, config."""
    from avtool import registry

    info = _entry_dict(registry.lookup(name))
    if global_options(ctx).json:
        _print_json(info)
        return
    for key, value in info.items():
        if key not in ("files", "config"):
            typer.echo(f"{key:12} {'' if value is None else value}")
    typer.echo(f"{'config':12} {json.dumps(info['config'], default=str)}")
    for f in info["files"]:
        typer.echo(f"file         {f['name']}")
        for key in ("source", "sha256", "size", "path"):
            value = f[key]
            if key == "size" and value is None:
                value = "not published (checked by sha256 only)"
            typer.echo(f"  {key:10} {value}")


@app.command("pull")
def pull_command(ctx: typer.Context, name: str = typer.Argument(..., help="Model name.")) -> None:
    """Download a model's files (when not cached) and verify them."""
    from avtool import registry

    opts = global_options(ctx)
    model = registry.resolve(
        name, accept_license=opts.accept_license, offline=opts.offline, quiet=opts.quiet
    )
    if opts.json:
        _print_json({"name": name, "path": str(model.path), "files": dict(model.files)})
    else:
        typer.echo(f"{name}: verified {model.path}")


@app.command("verify")
def verify_command(
    ctx: typer.Context,
    name: str | None = typer.Argument(None, help="Model name; all present models when omitted."),
) -> None:
    """Rehash model files against the registry, and the prepared (derived) files in the
    cache against the hashes recorded when they were built; exit 3 when any is missing or
    corrupt.

    Without a name, models none of whose files are here (not downloaded) are skipped, and
    every derived file is checked; with a name, the derived files made from that model. A
    corrupt derived file is rebuilt by the next command that uses it (or delete it).
    """
    from avtool import registry

    models = registry.load_registry()
    entries = [registry.lookup(name, models)] if name else list(models.values())
    results: dict[str, dict[str, Any]] = {}
    for entry in entries:
        if name is None and not any(_present(entry, f) for f in entry.files):
            results[entry.name] = {"status": "not downloaded", "problems": []}
            continue
        problems = registry.verify(entry, force=True)
        results[entry.name] = {"status": "failed" if problems else "ok", "problems": problems}
    derived = registry.derived_files(entries[0] if name else None)
    derived_problems = registry.verify_derived(entries[0] if name else None)
    failed = [n for n, r in results.items() if r["problems"]]
    if global_options(ctx).json:
        _print_json({"ok": not failed and not derived_problems, "models": results,
                     "derived": {"files": [str(p) for p in derived],
                                 "problems": derived_problems}})  # fmt: skip
    else:
        for model_name, result in results.items():
            typer.echo(f"{model_name}: {result['status']}")
            for problem in result["problems"]:
                typer.echo(f"  {problem}")
        if derived:
            status = "failed" if derived_problems else "ok"
            typer.echo(f"derived files ({len(derived)} in {registry.derived_dir()}): {status}")
            for problem in derived_problems:
                typer.echo(f"  {problem}")
    if derived_problems:
        failed.append(f"{len(derived_problems)} derived file(s)")
    if failed:
        raise ModelError(f"verification failed: {', '.join(failed)}")


def _present(entry: ModelEntry, spec: FileSpec) -> bool:
    from avtool import registry

    try:
        return registry.file_path(entry, spec).exists()
    except ModelError:
        return False


@app.command("path")
def path_command(
    ctx: typer.Context, name: str = typer.Argument(..., help="Model name or weights file.")
) -> None:
    """Print the main weights file's path (exit 3 when it is not here or fails its checks)."""
    from avtool import registry

    # Only locating: never downloads, and the licence gate applies when the model is used.
    model = registry.resolve(name, accept_license=True, download=False)
    if global_options(ctx).json:
        _print_json({"name": model.entry.name, "path": str(model.path)})
    else:
        typer.echo(str(model.path))
