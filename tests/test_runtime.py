import json
from pathlib import Path

import pytest

from avtool.errors import ExitCode, InputError, ModelError
from avtool.runtime import (
    BatchItem,
    check_outputs,
    expand_paths,
    format_output,
    read_manifest,
    read_text,
    run_batch,
    slugify,
    unique_ids,
)


def test_read_text_rejects_non_utf8_naming_line(tmp_path: Path):
    path = tmp_path / "bad.txt"
    path.write_bytes(b"fine line\nsecond \xff line\n")
    with pytest.raises(InputError, match=r"bad.txt:2: not UTF-8"):
        read_text(path)


def test_manifest_csv_and_jsonl(tmp_path: Path):
    csv_path = tmp_path / "m.csv"
    csv_path.write_text("id,text,speed\na,Hello,1.5\nb,World,\n")
    rows = read_manifest(csv_path)
    assert [r["id"] for r in rows] == ["a", "b"]
    assert rows[0]["speed"] == "1.5" and "speed" not in rows[1]
    assert rows[1]["_line"] == 3
    jsonl = tmp_path / "m.jsonl"
    jsonl.write_text('{"text": "one"}\n\n# comment\n{"text": "two", "seed": 3}\n')
    assert [r["text"] for r in read_manifest(jsonl)] == ["one", "two"]


def test_manifest_errors_name_file_and_line(tmp_path: Path):
    jsonl = tmp_path / "m.jsonl"
    jsonl.write_text('{"text": "one"}\n{broken\n[1]\n')
    # A bad row is returned as an error row (a failed item later), not a batch abort.
    good, broken, not_object = read_manifest(jsonl)
    assert good["text"] == "one" and broken["_error"].startswith(f"{jsonl}:2: bad JSON")
    assert not_object["_error"] == f"{jsonl}:3: each line must be a JSON object"
    empty = tmp_path / "e.csv"
    empty.write_text("")
    with pytest.raises(InputError, match="empty manifest"):
        read_manifest(empty)


def test_expand_paths_files_folders_globs(tmp_path: Path):
    for name in ("b.wav", "a.wav", "c.txt"):
        (tmp_path / name).write_bytes(b"x")
    assert expand_paths([str(tmp_path)], (".wav",)) == [tmp_path / "a.wav", tmp_path / "b.wav"]
    assert expand_paths([str(tmp_path / "*.txt")]) == [tmp_path / "c.txt"]
    with pytest.raises(InputError, match="no such file"):
        expand_paths([str(tmp_path / "missing.wav")])
    with pytest.raises(InputError, match="matches no input"):
        expand_paths([str(tmp_path / "*.flac")])


def test_output_templates_and_ids():
    assert format_output("out/{id}.wav", item_id="x", index=0) == Path("out/x.wav")
    assert format_output("{index}-{stem}.wav", item_id="x", index=4, source=Path("d/clip.mp4")) == (
        Path("0005-clip.wav")
    )
    with pytest.raises(InputError, match="unknown field"):
        format_output("{nope}.wav", item_id="x", index=0)
    assert unique_ids(["a", "a", "b", "a"]) == ["a", "a-2", "b", "a-3"]
    assert slugify("Hello, there! How are you today friend?") == "hello-there-how-are-you-today"


def test_check_outputs_refuses_clashes_and_existing(tmp_path: Path):
    out = tmp_path / "x.wav"
    items = [BatchItem(0, "a", "t", out), BatchItem(1, "b", "t", out)]
    with pytest.raises(InputError, match="several items would write"):
        check_outputs(items, "overwrite")
    out.write_bytes(b"data")
    with pytest.raises(InputError, match="--overwrite"):
        check_outputs(items[:1], "refuse")
    check_outputs(items[:1], "skip")


def _writer(item: BatchItem) -> list[Path]:
    if item.input == "bad":
        raise InputError(f"{item.id}: bad input")
    if item.input == "model":
        raise ModelError("no such model")
    if item.input == "empty":
        item.output.write_bytes(b"")
        return [item.output]
    item.output.write_bytes(b"audio")
    return [item.output]


def test_batch_goes_past_failures_and_reports(tmp_path: Path):
    inputs = ["good", "bad", "empty", "good"]
    items = [BatchItem(i, f"i{i}", s, tmp_path / f"{i}.out") for i, s in enumerate(inputs)]
    report = tmp_path / "status.jsonl"
    summary = run_batch(items, _writer, report=report, quiet=True)
    assert [r.status for r in summary.results] == ["ok", "failed", "failed", "ok"]
    assert summary.exit_code == ExitCode.ITEM_FAILED
    lines = [json.loads(line) for line in report.read_text().splitlines()]
    assert [line["status"] for line in lines] == ["ok", "failed", "failed", "ok"]
    assert "missing or empty" in lines[2]["error"]
    assert (tmp_path / "3.out").read_bytes() == b"audio"


def test_single_item_keeps_its_own_exit_code(tmp_path: Path):
    bad = run_batch([BatchItem(0, "a", "bad", tmp_path / "a")], _writer, quiet=True)
    assert bad.exit_code == ExitCode.USAGE
    model = run_batch([BatchItem(0, "a", "model", tmp_path / "a")], _writer, quiet=True)
    assert model.exit_code == ExitCode.MODEL
    ok = run_batch([BatchItem(0, "a", "good", tmp_path / "a")], _writer, quiet=True)
    assert ok.exit_code == ExitCode.OK


def test_skip_existing_does_not_rerun(tmp_path: Path):
    out = tmp_path / "a.out"
    out.write_bytes(b"old")
    summary = run_batch([BatchItem(0, "a", "good", out)], _writer, policy="skip", quiet=True)
    assert summary.results[0].status == "skipped" and out.read_bytes() == b"old"


def test_manifest_file_specs_resolve_paths_and_name_bad_rows(tmp_path):
    from avtool.runtime import manifest_file_specs

    manifest = tmp_path / "m.csv"
    manifest.write_text(
        "input,id,output,audio\nclips/a.mp4,first,,noisy/a.wav\n/abs/b.mp4,,o.wav,\n"
    )
    first, second = manifest_file_specs(manifest, path_columns=("input", "audio"))
    assert first["path"] == tmp_path / "clips/a.mp4" and first["audio"] == tmp_path / "noisy/a.wav"
    assert first["id"] == "first" and "output" not in first and first["origin"] == f"{manifest}:2"
    assert second["path"] == Path("/abs/b.mp4") and second["output"] == "o.wav"
    assert "audio" not in second and "id" not in second
    bad, _ = manifest_file_specs(manifest)
    assert bad["error"] == f"{manifest}:2: columns are input, id, output"
