"""A fresh virtual environment with ``pip install .`` (after torch) runs ``avtool doctor`` and
the README's first examples.

Installing ~60 wheels and torch again would take minutes on a shared 2-core machine, so the fresh
environment is given, through a ``.pth`` file, exactly the distributions that avtool's declared
dependencies (pyproject.toml, followed recursively, markers evaluated) and torch resolve to in
the running environment, symlinked into one folder, and nothing else. A package avtool imports
without declaring it is then missing there and the commands fail, as they would after a real
``pip install .``; pip itself resolves the declared requirements against that folder (offline,
``--no-index``) and installs a wheel built from a copy of the source tree (not editable), so
packaging mistakes (missing package data, entry point) show too.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parents[1]
SOURCE_FILES = ("pyproject.toml", "README.md", "LICENSE", "NOTICE")

pytestmark = pytest.mark.slow


def declared_requirements() -> list[Requirement]:
    data = tomllib.loads((REPO / "pyproject.toml").read_text())
    return [Requirement(r) for r in data["project"]["dependencies"]]


def dependency_closure(roots: list[Requirement]) -> dict[str, metadata.Distribution]:
    """Installed distributions that ``roots`` need, recursively (extras and markers honoured).

    Raises:
        pytest.fail: a declared requirement is not installed here at all.
    """
    found: dict[str, metadata.Distribution] = {}
    todo = [(r, "") for r in roots]
    while todo:
        req, extra = todo.pop()
        if req.marker is not None and not req.marker.evaluate({"extra": extra}):
            continue
        name = canonicalize_name(req.name)
        try:
            dist = metadata.distribution(req.name)
        except metadata.PackageNotFoundError:
            pytest.fail(f"{req.name} (declared or required) is not installed in {sys.prefix}")
        key = (name, tuple(sorted(req.extras)))
        if key in found:
            continue
        found[key] = dist
        for sub in dist.requires or []:
            sub_req = Requirement(sub)
            extras = req.extras or {""}
            for wanted in extras:
                if sub_req.marker is None or sub_req.marker.evaluate({"extra": wanted}):
                    todo.append((sub_req, wanted))
    return {canonicalize_name(k[0]): d for k, d in found.items()}


def link_distributions(dists: dict[str, metadata.Distribution], folder: Path) -> None:
    """Symlink each distribution's top-level files and its .dist-info into ``folder``."""
    folder.mkdir()
    for dist in dists.values():
        base = Path(dist.locate_file(""))
        tops = {Path(f).parts[0] for f in dist.files or [] if not str(f).startswith("..")}
        for top in tops:
            if top == "__pycache__" or (folder / top).exists():
                continue
            if (base / top).exists():
                (folder / top).symlink_to(base / top)


@pytest.fixture(scope="module")
def fresh_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("git") is None or sys.platform != "linux":
        pytest.skip("the fresh-install check needs Linux")
    root = tmp_path_factory.mktemp("fresh-install")
    # The source tree as a user clones it: no build/ or egg-info is written into the repository.
    src = root / "src"
    src.mkdir()
    for name in SOURCE_FILES:
        shutil.copy2(REPO / name, src / name)
    shutil.copytree(REPO / "avtool", src / "avtool",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))  # fmt: skip
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    purelib = "import sysconfig; print(sysconfig.get_path('purelib'))"
    site = Path(
        subprocess.run(
            [str(python), "-c", purelib], check=True, capture_output=True, text=True
        ).stdout.strip()
    )
    # torch first, as the README says; setuptools builds the wheel (no build isolation: offline).
    roots = [*declared_requirements(), Requirement("torch"), Requirement("setuptools")]
    linked = root / "linked"
    link_distributions(dependency_closure(roots), linked)
    (site / "_avtool_fresh_install.pth").write_text(f"{linked}\n")
    install = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet", "--no-index",
         "--no-build-isolation", "--disable-pip-version-check", str(src)],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert install.returncode == 0, install.stderr[-3000:]
    return venv


def _run(venv: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    env.update(AVTOOL_OFFLINE="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1",
               AVTOOL_CACHE_DIR=str(cwd / "cache"),
               PATH=f"{venv / 'bin'}:{env['PATH']}")  # fmt: skip
    return subprocess.run([str(venv / "bin" / "avtool"), *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)  # fmt: skip


def test_pip_install_then_doctor_and_first_examples(fresh_venv: Path, tmp_path: Path):
    installed = subprocess.run(
        [str(fresh_venv / "bin" / "python"), "-c",
         "import avtool, pathlib; print(pathlib.Path(avtool.__file__).parent)"],
        capture_output=True, text=True, check=True, cwd=tmp_path,
    ).stdout.strip()  # fmt: skip
    assert not installed.startswith(str(REPO)), "the fresh venv must not import the work tree"
    # Undeclared packages of this environment (installed --no-deps) are not visible there.
    hidden = subprocess.run(
        [str(fresh_venv / "bin" / "python"), "-c",
         "import importlib.util as u; print(u.find_spec('basic_pitch'), u.find_spec('pytest'))"],
        capture_output=True, text=True, check=True, cwd=tmp_path,
    ).stdout.split()  # fmt: skip
    assert hidden == ["None", "None"]
    doctor = _run(fresh_venv, "doctor", cwd=tmp_path)
    assert doctor.returncode == 0, doctor.stderr + doctor.stdout
    assert "piper-joe-medium" in doctor.stdout
    tts = _run(fresh_venv, "tts", "Hello there.", "-o", "hello.wav", "--timings",
               "hello.timings.json", cwd=tmp_path)  # fmt: skip
    assert tts.returncode == 0, tts.stderr
    assert (tmp_path / "hello.wav").stat().st_size > 10_000
    assert (tmp_path / "hello.timings.json").is_file()
    vocode = _run(fresh_venv, "vocode", "hello.wav", "-o", "hello.hifigan.wav", cwd=tmp_path)
    assert vocode.returncode == 0, vocode.stderr
    assert (tmp_path / "hello.hifigan.wav").stat().st_size > 10_000
    music = _run(fresh_venv, "music", "--bars", "2", "-o", "piece.mid", cwd=tmp_path)
    assert music.returncode == 0, music.stderr
    # Shipped weights travel in the wheel (package data): the lip reader's is there.
    assert (Path(installed) / "weights" / "lipread" / "lipread-grid-s1.pt").is_file()
