"""``--engine ray`` on a local Ray (2 CPUs, loopback only), one session for the module:
vocode and lipread on the real GRID clips give the local engine's bytes, one report line per
item, a corrupt item reported while the others are written, and ``--skip-existing`` after a
killed run redoes only the missing items. Skipped without Ray (``pip install 'avtool[ray]'``).
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from avtool.engines import (
    LOCAL_OBJECT_STORE_BYTES,
    RAY_LOOPBACK_ENV,
    BatchOptions,
    RunSettings,
    run_items,
)
from avtool.runtime import BatchItem, bad_item

GOOD = ["bbaf2n", "lbax4n", "lrwp9a"]


@pytest.fixture(scope="module")
def ray_session(tmp_path_factory: pytest.TempPathFactory):
    """One local Ray for the module: 2 CPUs on 127.0.0.1, no dashboard."""
    patch = pytest.MonkeyPatch()
    patch.setenv(RAY_LOOPBACK_ENV, "0")  # read when ray is imported
    patch.delenv("RAY_ADDRESS", raising=False)
    # Workers inherit the environment of the Ray started here: a private cache and one thread.
    patch.setenv("AVTOOL_CACHE_DIR", str(tmp_path_factory.mktemp("ray-cache")))
    patch.setenv("OMP_NUM_THREADS", "1")
    ray = pytest.importorskip("ray")
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        object_store_memory=LOCAL_OBJECT_STORE_BYTES,
        logging_level=logging.WARNING,
    )
    yield ray
    ray.shutdown()
    patch.undo()


@pytest.fixture
def clips(grid_dir: Path, tmp_path: Path) -> list[str]:
    """Three real clips with a corrupt one in the middle."""
    corrupt = tmp_path / "corrupt.mpg"
    corrupt.write_bytes(os.urandom(4096))
    paths = [str(grid_dir / f"{name}.mpg") for name in GOOD]
    return [paths[0], str(corrupt), *paths[1:]]


def _avtool(args: list[str]) -> tuple[int, str]:
    from avtool.cli.main import app

    result = CliRunner().invoke(app, args)
    return result.exit_code, result.output


def _report(path: Path) -> dict[str, dict]:
    lines = path.read_text(encoding="utf-8").splitlines()
    rows = [json.loads(line) for line in lines]
    assert len(rows) == len({r["id"] for r in rows}) == len(lines)
    return {r["id"]: r for r in rows}


def _both_engines(ray_session, tmp_path: Path, monkeypatch, command: list[str], suffix: str,
                  good: list[str] = GOOD):  # fmt: skip
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("AVTOOL_OFFLINE", "1")
    runs = {}
    for engine in ("local", "ray"):
        code, output = _avtool([*command, "-o", f"{engine}/{{stem}}{suffix}", "--engine", engine,
                                "--workers", "2", "--report", f"{engine}.jsonl"])  # fmt: skip
        assert code == 1, output  # the corrupt item failed, the batch went on
        runs[engine] = _report(tmp_path / f"{engine}.jsonl")
    for engine, report in runs.items():
        assert sorted(report) == sorted([*good, "corrupt"])  # one line per item
        assert report["corrupt"]["status"] == "failed"
        assert "corrupt.mpg" in report["corrupt"]["error"]
        assert report["corrupt"]["exit_code"] == 2
        assert not (tmp_path / engine / f"corrupt{suffix}").exists()
        for name in good:
            assert report[name]["status"] == "ok", report[name]
            assert report[name]["outputs"] == [f"{engine}/{name}{suffix}"]
    for name in good:  # the same bytes from either engine
        local = (tmp_path / "local" / f"{name}{suffix}").read_bytes()
        assert local and local == (tmp_path / "ray" / f"{name}{suffix}").read_bytes(), name
    return runs


def test_vocode_on_ray_matches_local(ray_session, clips, tmp_path: Path, monkeypatch) -> None:
    _both_engines(ray_session, tmp_path, monkeypatch,
                  ["vocode", *clips, "--model", "griffin-lim", "--iters", "8"], ".wav")  # fmt: skip


def test_lipread_on_ray_matches_local(ray_session, clips, tmp_path: Path, monkeypatch) -> None:
    # two real clips around the corrupt one: the reader is the slow part of this module
    command = ["--accept-license", "lipread", *clips[:3], "--decoder", "greedy"]
    _both_engines(ray_session, tmp_path, monkeypatch, command, ".txt", good=GOOD[:2])
    text = (tmp_path / "ray" / "bbaf2n.txt").read_text().strip()
    assert len(text.split()) >= 4  # a real transcript of s1's own clip, not an empty file


def test_skip_existing_after_a_killed_run_redoes_only_the_missing(
    ray_session, grid_dir: Path, tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("AVTOOL_OFFLINE", "1")
    rows = ["input,id"] + [f"{grid_dir / GOOD[i % 3]}.mpg,clip{i}" for i in range(8)]
    (tmp_path / "clips.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    args = ["vocode", "-m", "clips.csv", "-o", "out/{id}.wav", "--model", "griffin-lim",
            "--iters", "8", "--engine", "ray", "--workers", "1"]  # fmt: skip
    env = {**os.environ, "RAY_ADDRESS": ray_session.get_runtime_context().gcs_address}
    driver = subprocess.Popen(
        [sys.executable, "-m", "avtool", *args, "--report", "killed.jsonl"], env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    deadline = time.monotonic() + 240
    while not list((tmp_path / "out").glob("*.wav")) and driver.poll() is None:
        assert time.monotonic() < deadline, "the killed run wrote nothing in 240 s"
        time.sleep(0.05)
    os.killpg(driver.pid, signal.SIGKILL)  # the driver dies mid-batch
    driver.wait()
    # Its actor dies with it; wait until its CPU is back so nothing more is written.
    while ray_session.available_resources().get("CPU", 0) < 2:
        assert time.monotonic() < deadline, "the killed run's worker did not go away"
        time.sleep(0.2)
    done = {p.stem: p.stat().st_mtime_ns for p in (tmp_path / "out").glob("*.wav")}
    assert 1 <= len(done) < 8, done  # killed mid-batch
    code, output = _avtool([*args, "--skip-existing", "--report", "resumed.jsonl"])
    assert code == 0, output
    report = _report(tmp_path / "resumed.jsonl")
    assert len(report) == 8
    for item_id, row in report.items():
        assert row["status"] == ("skipped" if item_id in done else "ok"), row
    for item_id, mtime in done.items():  # kept, not rewritten
        assert (tmp_path / "out" / f"{item_id}.wav").stat().st_mtime_ns == mtime
    # every output whole: clips of the same source have the same bytes
    for i in range(8):
        first = (tmp_path / "out" / f"clip{i % 3}.wav").read_bytes()
        assert (tmp_path / "out" / f"clip{i}.wav").read_bytes() == first


def _pid_worker(loads: str):
    """A factory that records each load (one file per process) and writes the pid per item."""

    def worker():
        Path(loads, f"{os.getpid()}-{time.monotonic_ns()}").write_text("")

        def process(item: BatchItem) -> list[Path]:
            time.sleep(0.05)
            item.output.write_text(str(os.getpid()))
            return [item.output]

        return process

    return worker


def test_one_model_load_per_actor(ray_session, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "loads").mkdir()
    items = [BatchItem(i, f"item{i}", "x", Path(f"item{i}.txt")) for i in range(12)]
    # a manifest row that could not be read is a failed item on Ray too, never processed
    items.append(bad_item(12, "line-14", "m.csv:14", "m.csv:14: unterminated quote"))
    settings = RunSettings(quiet=True, batch=BatchOptions(engine="ray", workers=2))
    summary = run_items(items, _pid_worker(str(tmp_path / "loads")), settings)
    assert [r.status for r in summary.results] == ["ok"] * 12 + ["failed"]
    assert (summary.results[-1].exit_code, summary.exit_code) == (2, 1)
    assert [r.id for r in summary.results] == [i.id for i in items]  # summary in batch order
    loads = list((tmp_path / "loads").iterdir())
    assert len(loads) == 2  # two actors, one load each, however many items
    pids = {(tmp_path / f"item{i}.txt").read_text() for i in range(12)}
    assert pids == {p.name.split("-")[0] for p in loads} and str(os.getpid()) not in pids
