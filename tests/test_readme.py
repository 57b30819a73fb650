"""Issue 18 point 7: the README is a user's page (short, what to type first, the measures
explained once, pictures that exist, examples that work on a fresh clone); the model cards and
training history live in docs/, one page per subcommand."""

from __future__ import annotations

import re

from tests.conftest import REPO_ROOT

README = REPO_ROOT / "README.md"
COMMANDS = ("tts", "vocode", "lipread", "v2a", "talkinghead", "separate", "music")


def _sections(text: str) -> dict[str, str]:
    parts = re.split(r"^## (.+)$", text, flags=re.MULTILINE)
    return {title.strip(): body for title, body in zip(parts[1::2], parts[2::2], strict=True)}


def test_readme_is_short_and_starts_with_use():
    text = README.read_text(encoding="utf-8")
    lines = text.splitlines()
    assert len(lines) < 300
    titles = [line for line in lines if line.startswith("## ")]
    # Install, the global options and exit codes come before the per-command pages.
    assert titles.index("## Global options and exit codes") < 3
    for option in ("--seed", "--json", "--quiet", "--verbose", "--device", "--accept-license"):
        assert option in _sections(text)["Global options and exit codes"]
    for code in ("0", "1", "2", "3", "4", "130"):
        assert re.search(rf"\b{code}\b", _sections(text)["Global options and exit codes"])


def test_images_exist_and_user_examples_need_no_shared_data():
    text = README.read_text(encoding="utf-8")
    images = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)
    assert any(p.endswith((".jpg", ".png")) and "demo" in p for p in images)  # a still frame
    assert any(p.endswith(".png") and "demo" not in p for p in images)  # a plot
    for path in images:
        assert (REPO_ROOT / path).is_file(), path
    user_part = text.split("## For developers")[0]
    assert "../shared/data" not in user_part and "shared/data/grid" not in user_part


def test_measures_explained_once_and_docs_page_per_command():
    text = README.read_text(encoding="utf-8")
    measures = _sections(text)["The measures, in plain words"]
    for name in ("WER", "STOI", "PESQ", "MCD", "MR-STFT", "SI-SDR", "D-LL", "D-A"):
        assert name in measures, name
    for command in COMMANDS:
        page = REPO_ROOT / "docs" / f"{command}.md"
        assert page.is_file(), page
        assert f"docs/{command}.md" in text, command
