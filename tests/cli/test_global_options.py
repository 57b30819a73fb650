"""Global options (--seed, --json, --quiet, --verbose, --device, --accept-license) on both sides
of the subcommand, as whisper, Piper and Demucs take their options after the input."""

from __future__ import annotations

import json

import pytest
import typer
from typer.testing import CliRunner

from avtool.cli.common import GlobalOptions, global_options, with_global_options
from avtool.cli.main import app

runner = CliRunner()


def _seen_options(args: list[str]) -> GlobalOptions:
    """The GlobalOptions a command sees for these arguments (a probe command, same wiring)."""
    probe = typer.Typer()
    seen: list[GlobalOptions] = []

    def root() -> None:
        pass

    def cmd(ctx: typer.Context, name: str = typer.Argument("x")) -> None:
        seen.append(global_options(ctx))

    probe.callback()(with_global_options(root, root=True))
    probe.command("cmd")(with_global_options(cmd))
    result = runner.invoke(probe, args)
    assert result.exit_code == 0, result.output
    return seen[0]


@pytest.mark.parametrize(
    "args",
    [
        ["--seed", "3", "--json", "-q", "--device", "cpu", "--accept-license", "cmd", "a"],
        ["cmd", "a", "--seed", "3", "--json", "-q", "--device", "cpu", "--accept-license"],
        ["--seed", "3", "-q", "cmd", "--json", "a", "--device", "cpu", "--accept-license"],
    ],
)
def test_global_options_either_side(args):
    seen = _seen_options(args)
    assert seen == GlobalOptions(
        device="cpu", quiet=True, verbose=False, seed=3, json=True, accept_license=True
    )


def test_after_the_subcommand_wins_and_defaults_do_not_override():
    assert _seen_options(["--seed", "3", "cmd", "--seed", "5"]).seed == 5
    # Not given after the subcommand: the value given before it stays.
    assert _seen_options(["--seed", "3", "--device", "cpu", "cmd"]).seed == 3
    assert _seen_options(["--device", "cpu", "cmd"]).device == "cpu"
    assert _seen_options(["cmd"]) == GlobalOptions()


def test_every_command_lists_the_global_options():
    for command in (["tts"], ["vocode"], ["music"], ["lipread"], ["talkinghead"], ["v2a"],
                    ["doctor"], ["models", "list"], ["eval", "vocode"]):  # fmt: skip
        result = runner.invoke(app, [*command, "--help"])
        assert result.exit_code == 0, (command, result.output)
        for flag in ("--seed", "--json", "--quiet", "--verbose", "--device", "--accept-license"):
            assert flag in result.output, (command, flag)


def test_bad_device_after_the_subcommand_is_a_usage_error():
    result = runner.invoke(app, ["doctor", "--device", "tpu"])
    assert result.exit_code == 2 and "tpu" in result.output


def test_json_after_doctor_and_models_list():
    result = runner.invoke(app, ["doctor", "--json"])
    assert result.exit_code == 0, result.output
    assert "ffmpeg" in json.loads(result.stdout)
    listed = runner.invoke(app, ["models", "list", "--json"])
    assert listed.exit_code == 0
    assert any(row["name"] == "piper-joe-medium" for row in json.loads(listed.stdout))


def test_tts_seed_json_quiet_after_the_text(tmp_path, use_voice_cache):
    before = tmp_path / "before.wav"
    after = tmp_path / "after.wav"
    first = runner.invoke(app, ["--seed", "3", "tts", "Hello there.", "-o", str(before)])
    second = runner.invoke(
        app, ["tts", "Hello there.", "-o", str(after), "--seed", "3", "--json", "--quiet"]
    )
    assert first.exit_code == 0 and second.exit_code == 0, second.output
    assert before.read_bytes() == after.read_bytes()
    summary = json.loads(second.stdout)
    assert summary["ok"] == 1
    sidecar = json.loads((tmp_path / "after.wav.json").read_text())
    assert sidecar["seed"] == 3


def test_licence_after_the_subcommand_is_accepted(tmp_path, monkeypatch, grid_dir):
    """The licence error says "pass --accept-license"; passing it at the end of the line works."""
    pytest.importorskip("skimage.data")
    import skimage.data
    from PIL import Image

    monkeypatch.delenv("AVTOOL_ACCEPT_LICENSE", raising=False)
    face = tmp_path / "me.png"
    Image.fromarray(skimage.data.astronaut()).save(face)
    out = tmp_path / "me.png.out.png"
    args = ["talkinghead", "--face", str(face), "--audio", str(grid_dir / "lbax4n.mpg"),
            "-o", str(out)]  # fmt: skip
    refused = runner.invoke(app, args)
    assert refused.exit_code == 3 and "pass --accept-license" in refused.output
    assert not out.exists()
    accepted = runner.invoke(app, [*args, "--accept-license"])
    assert accepted.exit_code == 0, accepted.output
    assert out.is_file()


def test_a_wrote_line_after_each_output_unless_quiet(tmp_path, use_voice_cache):
    out = tmp_path / "hi.wav"
    loud = runner.invoke(app, ["tts", "Hi there.", "-o", str(out)])
    assert loud.exit_code == 0
    assert f"wrote {out} (" in loud.stderr and "s, piper-joe-medium)" in loud.stderr
    quiet = runner.invoke(app, ["tts", "Hi there.", "-o", str(out), "--overwrite", "--quiet"])
    assert quiet.exit_code == 0 and "wrote" not in quiet.stderr
