"""``avtool doctor``: what avtool will run with on this machine."""

from __future__ import annotations

import typer

from avtool.cli.common import global_options, handle_errors, stderr_console


def collect(device: str) -> dict:
    """Versions, devices, ffmpeg, cache and every registry model's status (plain data)."""
    import os
    import platform
    import sys

    from avtool import registry
    from avtool.errors import AvtoolError
    from avtool.runtime import environment_flag, versions

    info: dict = {"versions": versions(), "python_executable": sys.executable}
    try:
        import torch

        info["torch"] = {
            "version": torch.__version__,
            "cuda": torch.cuda.is_available(),
            "threads": torch.get_num_threads(),
        }
    except ImportError:
        info["torch"] = None
    import onnxruntime as ort

    info["onnxruntime_providers"] = ort.get_available_providers()
    try:
        from avtool.runtime import resolve_device

        info["device"] = resolve_device(device, engine="torch" if info["torch"] else "onnx")
    except AvtoolError as exc:
        info["device"] = f"unavailable: {exc}"
    try:
        from avtool.io.ffmpeg import ffmpeg_exe, ffmpeg_version

        info["ffmpeg"] = {"path": ffmpeg_exe(), "version": ffmpeg_version()}
    except AvtoolError as exc:
        info["ffmpeg"] = {"path": None, "error": str(exc)}
    info["cpu"] = {"machine": platform.machine(), "cores": os.cpu_count()}
    info["cache_dir"] = str(registry.cache_dir())
    info["offline"] = environment_flag("AVTOOL_OFFLINE")
    info["registry_files"] = [str(p) for p in registry.registry_files()]
    info["models"] = [
        {"name": e.name, "task": e.task, "family": e.family, "status": registry.model_status(e)}
        for e in registry.load_registry().values()
    ]
    return info


@handle_errors
def doctor_command(ctx: typer.Context) -> None:
    """Show versions, device, ffmpeg, cache folder, offline mode and installed models.

    Exits 4 when ffmpeg is missing or the requested device is unavailable.
    """
    import json

    from rich.table import Table

    opts = global_options(ctx)
    info = collect(opts.device)
    problems = []
    if info["ffmpeg"]["path"] is None:
        problems.append(info["ffmpeg"]["error"])
    if str(info["device"]).startswith("unavailable"):
        problems.append(info["device"])
    if opts.json:
        print(json.dumps({**info, "problems": problems}, indent=2))
    else:
        from rich.console import Console

        console = Console()
        table = Table(show_header=False, box=None)
        v = info["versions"]
        table.add_row("avtool", v["avtool"])
        table.add_row("python", f"{v['python']} ({info['python_executable']})")
        torch_info = info["torch"]
        table.add_row(
            "torch",
            f"{torch_info['version']} (cuda: {torch_info['cuda']})"
            if torch_info
            else "not installed",
        )
        table.add_row("onnxruntime", f"{v.get('onnxruntime')} {info['onnxruntime_providers']}")
        table.add_row("device", str(info["device"]))
        ff = info["ffmpeg"]
        table.add_row("ffmpeg", f"{ff['path']} ({ff['version']})" if ff["path"] else ff["error"])
        table.add_row("cache", info["cache_dir"])
        table.add_row("offline", "yes (AVTOOL_OFFLINE)" if info["offline"] else "no")
        table.add_row("registry", ", ".join(info["registry_files"]))
        console.print(table)
        models = Table("model", "task", "family", "status", title="models")
        for m in info["models"]:
            models.add_row(m["name"], m["task"], m["family"], m["status"])
        console.print(models)
        for problem in problems:
            stderr_console().print(f"[bold red]problem:[/] {problem}")
    raise typer.Exit(4 if problems else 0)
