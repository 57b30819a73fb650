"""A batch goes on past bad manifest rows: each becomes a failed item in the report (naming
``file:line``), the other rows run, and the exit code is 1."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from avtool.cli.main import app
from avtool.io.audio import load_audio, save_audio

runner = CliRunner()


def _report(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_tts_manifest_bad_rows_are_failed_items(tmp_path, use_voice_cache):
    manifest = tmp_path / "bad.csv"
    manifest.write_text(
        "text,id\n"
        "Hello there.,a\n"
        ",b\n"  # no text: a failed item, not a batch abort
        '"An unterminated quote, c\n'  # csv alone would swallow the next row into this one
        "Fine again.,d\n"
    )
    report = tmp_path / "status.jsonl"
    result = runner.invoke(
        app, ["tts", "-m", str(manifest), "-o", str(tmp_path / "{id}.wav"), "--report", str(report)]
    )
    assert result.exit_code == 1, result.output
    rows = {r["id"]: r for r in _report(report)}
    assert [r["status"] for r in _report(report)] == ["ok", "failed", "failed", "ok"]
    assert rows["b"]["error"] == f"{manifest}:3: give exactly one of 'text' or 'text_file'"
    assert rows["line-4"]["error"] == f"{manifest}:4: unterminated quote"
    assert rows["line-4"]["exit_code"] == 2
    assert f"{manifest}:4: unterminated quote" in result.stderr
    assert sorted(p.name for p in tmp_path.glob("*.wav")) == ["a.wav", "d.wav"]


def test_tts_jsonl_bad_json_and_unknown_column(tmp_path, use_voice_cache):
    manifest = tmp_path / "lines.jsonl"
    manifest.write_text(
        '{"text": "One.", "id": "one"}\n{broken\n{"text": "x", "colour": "red"}\n'
        '{"text": "Two.", "id": "two"}\n'
    )
    report = tmp_path / "status.jsonl"
    result = runner.invoke(
        app, ["tts", "-m", str(manifest), "-o", str(tmp_path / "{id}.wav"), "--report", str(report)]
    )
    assert result.exit_code == 1
    statuses = [(r["status"], (r["error"] or "").split(" (")[0]) for r in _report(report)]
    assert statuses == [
        ("ok", ""),
        ("failed", f"{manifest}:2: bad JSON"),
        ("failed", f"{manifest}:3: unknown column(s) colour"),
        ("ok", ""),
    ]


def test_vocode_manifest_names_the_csv_line_not_a_merged_path(tmp_path, grid_dir):
    audio, rate = load_audio(grid_dir / "lbax4n.mpg", sample_rate=22050, duration=0.5)
    save_audio(tmp_path / "a.wav", audio, rate)
    save_audio(tmp_path / "b.wav", audio, rate)
    manifest = tmp_path / "bad.csv"
    manifest.write_text('input,id\n"a.wav,first\nb.wav,second\n')
    report = tmp_path / "status.jsonl"
    result = runner.invoke(
        app,
        ["vocode", "-m", str(manifest), "--model", "griffin-lim", "-o",
         str(tmp_path / "out" / "{id}.wav"), "--report", str(report)],
    )  # fmt: skip
    assert result.exit_code == 1, result.output
    first, second = _report(report)
    assert first["status"] == "failed" and first["error"] == f"{manifest}:2: unterminated quote"
    assert second["status"] == "ok"
    assert [p.name for p in (tmp_path / "out").glob("*.wav")] == ["second.wav"]
