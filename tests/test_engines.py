"""The batch engines without Ray: shards, the shared batch options, report merging, and the
local engine's worker factory (load once, then items)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from avtool.cli.common import handle_errors, with_batch_options
from avtool.engines import (
    BatchOptions,
    RunSettings,
    merge_reports,
    parse_shard,
    run_items,
    shard_items,
)
from avtool.errors import InputError, ModelError
from avtool.runtime import BatchItem, file_items

REPO = Path(__file__).resolve().parents[1]


def _items(tmp_path: Path, names: list[str]) -> list[BatchItem]:
    folder = tmp_path / "in"
    folder.mkdir(exist_ok=True)
    for name in names:
        (folder / f"{name}.wav").write_bytes(b"x")
    return file_items([str(folder / f"{n}.wav") for n in names], (".wav",), None, "out/{stem}.x")


NAMES = ["delta", "alpha", "echo", "bravo", "kilo", "charlie", "golf", "foxtrot", "hotel",
         "india", "juliet"]  # fmt: skip


@pytest.mark.parametrize("count", [1, 2, 3, 4, 11, 15])
def test_shards_cover_the_batch_once(tmp_path: Path, count: int) -> None:
    items = _items(tmp_path, NAMES)
    shards = [BatchOptions(shard=f"{i}/{count}").select(items) for i in range(1, count + 1)]
    ids = [item.id for shard in shards for item in shard]
    assert sorted(ids) == sorted(item.id for item in items)  # union = the batch
    assert len(ids) == len(set(ids))  # no overlap
    sizes = [len(s) for s in shards]
    assert max(sizes) - min(sizes) <= 1  # balanced to one item
    for shard in shards:  # batch order and original indices ({index} names) are kept
        assert [i.index for i in shard] == sorted(i.index for i in shard)
        assert all(items[i.index] == i for i in shard)


def test_shards_depend_on_ids_not_on_input_order(tmp_path: Path) -> None:
    forward = _items(tmp_path, NAMES)
    backward = _items(tmp_path, NAMES[::-1])
    for i in (1, 2, 3):
        a = {item.id for item in shard_items(forward, f"{i}/3")}
        b = {item.id for item in shard_items(backward, f"{i}/3")}
        assert a == b
    # the first shard takes the 1st, 4th, 7th... ids in sorted order (alpha, delta, golf,
    # juliet), listed in batch order
    assert [it.id for it in shard_items(forward, "1/3")] == ["delta", "alpha", "golf", "juliet"]


@pytest.mark.parametrize("bad", ["0/3", "4/3", "3", "a/b", "1/0", "-1/2", ""])
def test_bad_shards_are_refused(bad: str) -> None:
    with pytest.raises(InputError, match="--shard"):
        parse_shard(bad)


def test_bad_batch_options_are_refused() -> None:
    with pytest.raises(InputError, match="--engine 'spark'"):
        BatchOptions(engine="spark").validated()
    with pytest.raises(InputError, match="--workers 0"):
        BatchOptions(workers=0).validated()


def _command_app() -> typer.Typer:
    app = typer.Typer()

    @app.command()
    @handle_errors
    @with_batch_options
    def cmd(
        name: str = typer.Argument(...),
        settings: RunSettings = RunSettings(),
    ) -> None:
        batch, report = settings.batch, settings.report
        print(json.dumps({"name": name, "engine": batch.engine, "shard": batch.shard,
                          "workers": batch.workers, "policy": settings.policy,
                          "report": None if report is None else str(report)}))  # fmt: skip

    return app


def test_every_batch_command_gets_the_same_options() -> None:
    runner = CliRunner()
    app = _command_app()
    result = runner.invoke(app, ["x", "--engine", "ray", "--shard", "2/5", "--workers", "3"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"name": "x", "engine": "ray", "shard": "2/5",
                                         "workers": 3, "policy": "refuse",
                                         "report": None}  # fmt: skip
    assert json.loads(runner.invoke(app, ["y"]).stdout)["engine"] == "local"
    bad = runner.invoke(app, ["x", "--shard", "6/5"])
    assert bad.exit_code == 2 and "--shard 6/5" in bad.output
    # --overwrite / --skip-existing / --report are defined once too, and checked once.
    kept = json.loads(runner.invoke(app, ["x", "--skip-existing", "--report", "r.jsonl"]).stdout)
    assert (kept["policy"], kept["report"]) == ("skip", "r.jsonl")
    assert json.loads(runner.invoke(app, ["x", "--overwrite"]).stdout)["policy"] == "overwrite"
    both = runner.invoke(app, ["x", "--overwrite", "--skip-existing"])
    assert both.exit_code == 2 and "exclude each other" in both.output
    from avtool.cli.main import app as avtool_app

    for command in ("tts", "vocode", "lipread", "v2a", "music", "separate", "talkinghead"):
        help_text = runner.invoke(avtool_app, [command, "--help"]).output
        for option in ("--engine", "--shard", "--overwrite", "--skip-existing", "--report"):
            assert option in help_text, (command, option)


def _write_report(path: Path, rows: list[tuple[str, str]]) -> Path:
    lines = [json.dumps({"id": i, "input": i, "output": f"{i}.wav", "status": s}) for i, s in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_merge_reports(tmp_path: Path) -> None:
    a = _write_report(tmp_path / "shard-1.jsonl", [("b", "ok"), ("d", "skipped")])
    b = _write_report(tmp_path / "shard-2.jsonl", [("a", "ok"), ("c", "ok")])
    merged = merge_reports([b, a], shards=2)
    assert [r["id"] for r in merged["items"]] == ["a", "b", "c", "d"]
    assert (merged["ok"], merged["skipped"], merged["failed"], merged["exit_code"]) == (3, 1, 0, 0)
    # a missing shard report, a failed item, an id in two reports: exit 1
    assert merge_reports([a, b], shards=3)["missing_reports"] == 1
    assert merge_reports([a, b], shards=3)["exit_code"] == 1
    c = _write_report(tmp_path / "shard-3.jsonl", [("e", "failed"), ("a", "ok")])
    merged = merge_reports([a, b, c])
    assert merged["failed"] == 1 and merged["duplicate_ids"] == ["a"] and merged["exit_code"] == 1
    (tmp_path / "bad.jsonl").write_text('{"id": "x"}\n', encoding="utf-8")
    with pytest.raises(InputError, match=r"bad.jsonl:1: not a report line"):
        merge_reports([tmp_path / "bad.jsonl"])


def test_merge_script(tmp_path: Path) -> None:
    _write_report(tmp_path / "shard-1.jsonl", [("b", "ok")])
    _write_report(tmp_path / "shard-2.jsonl", [("a", "failed")])
    script = REPO / "recipes" / "slurm" / "merge_reports.py"
    out = tmp_path / "all.jsonl"
    run = subprocess.run(
        [sys.executable, str(script), str(tmp_path / "shard-1.jsonl"),
         str(tmp_path / "shard-2.jsonl"), "--shards", "2", "-o", str(out)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert run.returncode == 1, run.stderr  # one item failed
    assert [json.loads(line)["id"] for line in out.read_text().splitlines()] == ["a", "b"]
    summary = json.loads(run.stdout)
    assert (summary["ok"], summary["failed"], summary["reports"]) == (1, 1, 2)
    assert "items" not in summary


def test_local_engine_loads_once_and_goes_on(tmp_path: Path) -> None:
    items = _items(tmp_path, ["a", "b", "bad", "c"])
    loads: list[int] = []

    def worker():
        loads.append(1)

        def process(item: BatchItem) -> list[Path]:
            if item.id == "bad":
                raise InputError(f"{item.input}: corrupt")
            item.output.parent.mkdir(exist_ok=True)
            item.output.write_text(item.id)
            return [item.output]

        return process

    report = tmp_path / "report.jsonl"
    monkey = pytest.MonkeyPatch()
    monkey.chdir(tmp_path)
    try:
        summary = run_items(items, worker, RunSettings(report=report, quiet=True))
        assert loads == [1]
        assert [r.status for r in summary.results] == ["ok", "ok", "failed", "ok"]
        assert summary.exit_code == 1
        assert len(report.read_text().splitlines()) == 4
        (tmp_path / "out" / "b.x").unlink()
        again = run_items(items, worker, RunSettings(policy="skip", quiet=True))
        assert [r.status for r in again.results] == ["skipped", "ok", "failed", "skipped"]
    finally:
        monkey.undo()


def test_a_factory_error_stops_the_run_before_any_item(tmp_path: Path) -> None:
    def worker():
        raise ModelError("no-such-model: not in the registry")

    with pytest.raises(ModelError, match="no-such-model"):
        run_items(_items(tmp_path, ["a"]), worker, RunSettings(quiet=True))


def test_ray_missing_is_an_environment_error(monkeypatch: pytest.MonkeyPatch) -> None:
    from avtool.engines import RAY_LOOPBACK_ENV, connect_ray
    from avtool.errors import SetupError

    monkeypatch.setenv(RAY_LOOPBACK_ENV, "0")  # connect_ray sets it; restored after the test
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    with pytest.raises(SetupError, match=r"avtool\[ray\]") as caught:
        connect_ray()
    assert caught.value.exit_code == 4


class _FakeCluster:
    def __init__(self, cpus: float, gpus: float) -> None:
        self.resources = {"CPU": cpus, "GPU": gpus} if gpus else {"CPU": cpus}

    def cluster_resources(self) -> dict[str, float]:
        return self.resources


@pytest.mark.parametrize(
    ("cpus", "gpus", "workers", "device", "items", "shape"),
    [
        (8, 0, None, "auto", 100, (8, 0.0)),  # one actor per CPU
        (8, 0, None, "cpu", 3, (3, 0.0)),  # never more actors than items
        (8, 2, None, "auto", 100, (2, 1.0)),  # GPUs seen: one actor per GPU
        (8, 2, None, "cpu", 100, (8, 0.0)),  # --device cpu ignores them
        (8, 1, 4, "cuda", 100, (4, 0.25)),  # four actors share one GPU
    ],
)
def test_worker_shape(cpus, gpus, workers, device, items, shape) -> None:
    from avtool.engines import _worker_shape

    assert _worker_shape(_FakeCluster(cpus, gpus), workers, device, items) == shape


def test_cuda_on_a_cluster_without_gpus_is_refused() -> None:
    from avtool.engines import _worker_shape
    from avtool.errors import SetupError

    with pytest.raises(SetupError, match="no GPU"):
        _worker_shape(_FakeCluster(8, 0), None, "cuda", 10)
