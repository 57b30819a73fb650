"""``avtool doctor``: optional packages and an unwritable model cache."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from avtool.cli.doctor import OPTIONAL_PACKAGES
from avtool.cli.main import app

runner = CliRunner()


def test_unwritable_cache_is_a_problem_exit_4(tmp_path, monkeypatch):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    monkeypatch.setenv("AVTOOL_CACHE_DIR", str(blocker / "avtool"))
    result = runner.invoke(app, ["doctor"])
    assert result.exit_code == 4
    assert "not writable" in result.stderr and str(blocker) in result.stderr


def test_writable_cache_and_optional_packages_listed(tmp_path, monkeypatch):
    monkeypatch.setenv("AVTOOL_CACHE_DIR", str(tmp_path / "new" / "cache"))
    result = runner.invoke(app, ["doctor", "--json"])
    assert result.exit_code == 0, result.output
    info = json.loads(result.stdout)
    assert info["cache_problem"] is None and not (tmp_path / "new").exists()
    listed = {row["package"]: row for row in info["optional_packages"]}
    assert set(listed) == set(OPTIONAL_PACKAGES)
    assert all("--no-deps" in row["install"] for row in listed.values())
