"""NOTICE lists the licence of every registered and every shipped weight file.

``python -m tests.test_notice --write`` regenerates NOTICE's generated part from models.toml
(run it after adding a registry entry; this test fails until then).
"""

from __future__ import annotations

import sys
from pathlib import Path

from avtool import registry

REPO = Path(__file__).resolve().parents[1]
NOTICE = REPO / "NOTICE"
WEIGHTS = REPO / "avtool" / "weights"
BEGIN = "<!-- registered weights: generated from avtool/models.toml -->"
END = "<!-- end of registered weights -->"


def _builtin_entries() -> list[registry.ModelEntry]:
    """The entries of avtool's own models.toml (not a user's AVTOOL_REGISTRY)."""
    import os

    saved = os.environ.pop("AVTOOL_REGISTRY", None)
    try:
        return list(registry.load_registry().values())
    finally:
        if saved is not None:
            os.environ["AVTOOL_REGISTRY"] = saved


def registered_section() -> str:
    """The generated NOTICE lines: one per registered model, grouped by where it comes from."""
    lines = [BEGIN, ""]
    for entry in sorted(_builtin_entries(), key=lambda e: (e.main.source.split("/")[0], e.name)):
        gate = "" if entry.commercial else " [non-commercial: needs --accept-license]"
        lines.append(f"- {entry.name} ({entry.task}): {entry.license}{gate}")
        for spec in entry.files:
            lines.append(f"    {spec.source}")
        if entry.homepage:
            lines.append(f"    {entry.homepage}")
    lines += ["", END]
    return "\n".join(lines)


def shipped_weight_files() -> list[str]:
    """Weight files inside the avtool package, as package:avtool/... sources."""
    return sorted(
        f"package:avtool/{p.relative_to(REPO / 'avtool').as_posix()}"
        for p in WEIGHTS.rglob("*")
        if p.is_file() and p.suffix in (".pt", ".npz", ".onnx", ".bin", ".pth", ".ckpt")
    )


def test_notice_lists_every_registered_model_and_licence():
    text = NOTICE.read_text(encoding="utf-8")
    assert BEGIN in text and END in text
    current = text[text.index(BEGIN) : text.index(END) + len(END)]
    assert current == registered_section(), "NOTICE is stale: python -m tests.test_notice --write"


def test_every_shipped_weight_file_is_registered_or_named():
    text = NOTICE.read_text(encoding="utf-8")
    registered = {spec.source for e in _builtin_entries() for spec in e.files}
    missing = [
        f for f in shipped_weight_files() if f not in registered and f.split(":", 1)[1] not in text
    ]
    assert not missing, f"shipped weights with no licence in NOTICE: {missing}"


def test_license_file_is_mit():
    assert (REPO / "LICENSE").read_text().startswith("MIT License")


if __name__ == "__main__" and "--write" in sys.argv:
    body = NOTICE.read_text(encoding="utf-8")
    start, stop = body.index(BEGIN), body.index(END) + len(END)
    NOTICE.write_text(body[:start] + registered_section() + body[stop:], encoding="utf-8")
    print(f"wrote {NOTICE}")
