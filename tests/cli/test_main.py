import json
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from avtool import __version__
from avtool.cli.main import app

runner = CliRunner()


def test_help_lists_the_commands_that_exist():
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("tts", "doctor", "models"):
        assert command in result.stdout


def test_version():
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and result.stdout.strip() == f"avtool {__version__}"


def test_cli_import_stays_light():
    """--help must stay fast: no torch, numpy or onnxruntime at import time."""
    code = (
        "import sys, avtool.cli.main; "
        "print([m for m in ('torch', 'numpy', 'onnxruntime', 'piper') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_unknown_device_is_a_usage_error():
    result = runner.invoke(app, ["--device", "tpu", "doctor"])
    assert result.exit_code == 2


def test_cuda_without_cuda_fails_clearly(tmp_path):
    import onnxruntime as ort

    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("this machine has CUDA")
    result = runner.invoke(app, ["--device", "cuda", "tts", "hi", "-o", str(tmp_path / "x.wav")])
    assert result.exit_code == 4
    assert "CUDA is not available" in result.stderr
    assert not list(tmp_path.iterdir())


def test_doctor_json_reports_models_and_ffmpeg():
    result = runner.invoke(app, ["--json", "doctor"])
    assert result.exit_code == 0, result.stderr
    info = json.loads(result.stdout)
    assert info["ffmpeg"]["path"] and info["problems"] == []
    names = {m["name"]: m["status"] for m in info["models"]}
    assert names["piper-joe-medium"] in ("verified", "installed")
    assert names["hibari-emma"] == "missing"


def test_doctor_missing_ffmpeg_exits_4(monkeypatch):
    monkeypatch.setenv("AVTOOL_FFMPEG", "/nonexistent/ffmpeg")
    result = runner.invoke(app, ["doctor"])
    assert result.exit_code == 4
    assert "/nonexistent/ffmpeg" in result.stderr
