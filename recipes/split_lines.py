#!/usr/bin/env python3
"""Split a text file into one file per non-empty line, for per-item make rules.

    python recipes/split_lines.py lines.txt out/tts/text out/tts/items.mk

Line N becomes ``TEXT_DIR/lineNNNNN.txt``, rewritten only when its text changed (so make sees
only edited lines as new); files of lines that are gone are removed. Writes ``IDS := ...`` to
the items makefile (see ``recipes/batch-tts.mk``).
"""

from __future__ import annotations

import sys
from pathlib import Path


def split_lines(lines: Path, text_dir: Path, items: Path) -> list[str]:
    """Write the per-line files and the items makefile; returns the ids."""
    text_dir.mkdir(parents=True, exist_ok=True)
    wanted: dict[str, str] = {}
    for number, line in enumerate(lines.read_text(encoding="utf-8-sig").splitlines(), 1):
        if line.strip():
            wanted[f"line{number:05d}"] = line.strip() + "\n"
    for item_id, text in wanted.items():
        path = text_dir / f"{item_id}.txt"
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            tmp = path.with_name(f".{path.name}.tmp")
            tmp.write_text(text, encoding="utf-8")
            tmp.replace(path)
    for path in text_dir.glob("line*.txt"):
        if path.stem not in wanted:
            path.unlink()
    items.write_text(f"IDS := {' '.join(wanted)}\n", encoding="utf-8")
    return list(wanted)


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(f"usage: {sys.argv[0]} LINES TEXT_DIR ITEMS_MK")
    split_lines(Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]))
