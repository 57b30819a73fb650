"""Issue 18, bad-input item 2: prepared (derived) model files in the cache are hashed when built,
checked on use (a corrupted or truncated copy is rebuilt, never run) and covered by
``avtool models verify`` (exit 3 naming the file)."""

from __future__ import annotations

import json
import logging

import pytest
from typer.testing import CliRunner

from avtool import registry
from avtool.cli.main import app

runner = CliRunner()


@pytest.fixture
def tiny_timed_source(tmp_path):
    """A two-node ONNX graph with Kokoro's duration tensor inside (not yet an output)."""
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    from avtool.models.kokoro import DURATION_OUTPUT

    nodes = [helper.make_node("Identity", ["x"], [DURATION_OUTPUT]),
             helper.make_node("Identity", [DURATION_OUTPUT], ["y"])]  # fmt: skip
    graph = helper.make_graph(
        nodes, "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])],
    )  # fmt: skip
    path = tmp_path / "tiny.onnx"
    onnx.save(helper.make_model(graph), str(path))
    return path


def test_2_kokoro_timed_graph_is_hashed_and_rebuilt_when_corrupt(tiny_timed_source, caplog):
    from avtool.models.kokoro import timed_graph

    derived = registry.derived_dir()
    built = timed_graph(tiny_timed_source, "ab" * 32, derived)
    assert built.parent == derived and registry.derived_problem(built, force=True) is None
    good = built.read_bytes()
    for damage in (lambda b: b[:-1] + bytes([b[-1] ^ 0xFF]), lambda b: b[: len(b) // 10]):
        built.write_bytes(damage(good))
        with caplog.at_level(logging.WARNING):
            again = timed_graph(tiny_timed_source, "ab" * 32, derived)
        assert again == built and again.read_bytes() == good
        assert f"{built}: the prepared file does not match its hash; rebuilding it" in caplog.text
        caplog.clear()


def test_2_models_verify_covers_derived_files(tmp_path):
    entry = registry.lookup("piper-joe-medium")
    derived = registry.derived_dir()
    derived.mkdir(parents=True)
    prepared = derived / f"piper-{entry.main.sha256[:16]}-seedable-v1.onnx"
    prepared.write_bytes(b"\x08\x07" * 500)
    registry.record_derived(prepared)
    ok = runner.invoke(app, ["models", "verify", "piper-joe-medium"])
    assert ok.exit_code == 0, ok.output
    assert f"derived files (1 in {derived}): ok" in ok.stdout
    prepared.write_bytes(b"\x08\x07" * 250)  # truncated
    bad = runner.invoke(app, ["models", "verify", "piper-joe-medium"])
    assert bad.exit_code == 3
    assert f"{prepared}: expected sha256 " in bad.stdout and "(rebuilt on next use)" in bad.stdout
    errors = [line for line in bad.stderr.splitlines() if line.startswith("error:")]
    assert errors == ["error: verification failed: 1 derived file(s)"]
    as_json = json.loads(runner.invoke(app, ["--json", "models", "verify",
                                             "piper-joe-medium"]).stdout)  # fmt: skip
    assert as_json["ok"] is False and as_json["derived"]["files"] == [str(prepared)]
