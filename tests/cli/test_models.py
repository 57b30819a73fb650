"""``avtool models``: list, show, pull, verify, path through the real CLI root."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from avtool.cli.main import app
from tests.test_registry import WEIGHTS, http_server, toml_entry, use_registry

runner = CliRunner()


def run(*args: str):
    return runner.invoke(app, list(args))


def test_list_json_lists_the_bundled_voices() -> None:
    result = run("--json", "models", "list")
    assert result.exit_code == 0, result.output
    rows = {row["name"]: row for row in json.loads(result.stdout)}
    assert {"piper-joe-medium", "hibari-heart", "hibari-emma"} <= set(rows)
    assert rows["piper-joe-medium"]["status"] in ("installed", "verified")
    assert rows["hibari-emma"]["status"] == "missing"
    assert rows["hibari-heart"]["sample_rate"] == 24000
    assert run("--json", "models", "list", "--task", "no-such-task").stdout.strip() == "[]"


def test_list_table_and_show() -> None:
    result = run("models", "list", "--task", "tts")
    assert result.exit_code == 0 and "piper-joe-medium" in result.stdout
    shown = run("models", "show", "piper-joe-medium")
    assert shown.exit_code == 0
    assert "58afce0321b8d9c46d7cdf9c16500cc55a793b4220212dba6b70fb788b3baf06" in shown.stdout
    info = json.loads(run("--json", "models", "show", "hibari-emma").stdout)
    assert info["files"][0]["path"].endswith("hibari-emma/bf_emma.int8.onnx")
    assert info["config"] == {"voice": "emma", "british": True}
    unknown = run("models", "show", "hibari-emm")
    assert unknown.exit_code == 3 and "hibari-emma" in unknown.stderr


def test_path_prints_an_existing_file() -> None:
    result = run("models", "path", "piper-joe-medium")
    assert result.exit_code == 0, result.output
    path = Path(result.stdout.strip())
    assert path.name == "en_US-joe-medium.onnx" and path.is_file()
    missing = run("models", "path", "hibari-emma")  # not downloaded; path never downloads
    assert missing.exit_code == 3 and missing.stdout == ""


def test_verify_all_and_a_corrupt_local_entry(tmp_path: Path, monkeypatch) -> None:
    result = run("models", "verify")
    assert result.exit_code == 0, result.output
    assert "piper-joe-medium: ok" in result.stdout

    weights = tmp_path / "w.onnx"
    weights.write_bytes(WEIGHTS)
    use_registry(monkeypatch, tmp_path / "r.toml", toml_entry("mine", str(weights), WEIGHTS))
    assert run("models", "verify", "mine").exit_code == 0
    weights.write_bytes(WEIGHTS[::-1])
    result = run("--json", "models", "verify")
    assert result.exit_code == 3
    report = json.loads(result.stdout)
    assert not report["ok"] and report["models"]["piper-joe-medium"]["status"] == "ok"
    assert "expected sha256" in report["models"]["mine"]["problems"][0]
    assert "mine" in result.stderr


def test_pull_downloads_and_respects_offline_and_licence(tmp_path: Path, monkeypatch) -> None:
    with http_server() as server:
        server.routes["/nc.onnx"] = (200, WEIGHTS)
        table = toml_entry("nc-remote", f"{server.url}/nc.onnx", WEIGHTS, commercial=False)
        use_registry(monkeypatch, tmp_path / "r.toml", table)

        refused = run("models", "pull", "nc-remote")
        assert refused.exit_code == 3 and "--accept-license" in refused.stderr
        monkeypatch.setenv("AVTOOL_OFFLINE", "1")
        offline = run("--accept-license", "models", "pull", "nc-remote")
        assert offline.exit_code == 3 and "AVTOOL_OFFLINE" in offline.stderr
        assert server.hits == []

        monkeypatch.delenv("AVTOOL_OFFLINE")
        pulled = run("--json", "--accept-license", "models", "pull", "nc-remote")
        assert pulled.exit_code == 0, pulled.output
        path = Path(json.loads(pulled.stdout)["path"])
        assert path.read_bytes() == WEIGHTS and server.hits == ["/nc.onnx"]
    assert run("models", "path", "nc-remote").stdout.strip() == str(path)


@pytest.mark.parametrize("command", ["list", "verify"])
def test_a_broken_registry_exits_3(tmp_path: Path, monkeypatch, command: str) -> None:
    bad = toml_entry("bad", "w.bin", b"w").replace("sha256 = ", 'sha256 = "00" #')
    path = use_registry(monkeypatch, tmp_path / "bad.toml", bad)
    result = run("models", command)
    assert result.exit_code == 3 and str(path) in result.stderr
