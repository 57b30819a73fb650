"""Finding and running ffmpeg, and parsing its header printout."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from avtool.errors import ExitCode, InputError, SetupError
from avtool.io.ffmpeg import ffmpeg_exe, ffmpeg_version, parse_header, run_ffmpeg, stderr_tail


def test_ffmpeg_exe_is_executable():
    exe = ffmpeg_exe()
    assert os.path.isfile(exe) and os.access(exe, os.X_OK)


def test_ffmpeg_version_first_line():
    line = ffmpeg_version()
    assert line.startswith("ffmpeg version")
    assert "\n" not in line


def test_env_override_is_used(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    link = tmp_path / "my-ffmpeg"
    link.symlink_to(ffmpeg_exe())
    monkeypatch.setenv("AVTOOL_FFMPEG", str(link))
    assert ffmpeg_exe() == str(link)
    assert ffmpeg_version().startswith("ffmpeg version")


def test_env_override_missing_is_setup_error(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("AVTOOL_FFMPEG", "/nonexistent/ffmpeg")
    with pytest.raises(SetupError, match="/nonexistent/ffmpeg") as info:
        ffmpeg_exe()
    assert info.value.exit_code == ExitCode.ENVIRONMENT
    with pytest.raises(SetupError):
        ffmpeg_version()


def test_env_override_not_executable(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    fake = tmp_path / "ffmpeg"
    fake.write_text("not a program")
    monkeypatch.setenv("AVTOOL_FFMPEG", str(fake))
    with pytest.raises(SetupError, match="no executable"):
        ffmpeg_exe()


def test_run_ffmpeg_failure_names_input_and_quotes_stderr(tmp_path: Path):
    bogus = tmp_path / "garbage.mp3"
    bogus.write_bytes(b"\x00" * 100)
    with pytest.raises(InputError) as info:
        run_ffmpeg(["-i", bogus, "-f", "null", "-"], bogus)
    message = str(info.value)
    assert str(bogus) in message
    assert "Invalid data" in message or "Error" in message


def test_run_ffmpeg_returns_stdout():
    out = run_ffmpeg(
        ["-f", "lavfi", "-i", "anullsrc=r=8000:cl=mono", "-t", "0.5", "-f", "s16le", "-"], "lavfi"
    )
    assert len(out) == 8000  # 0.5 s of 16-bit mono at 8 kHz


def test_stderr_tail_keeps_last_lines():
    text = "\n".join(f"line {i}" for i in range(20)) + "\n\n"
    assert stderr_tail(text, 2) == "  line 18\n  line 19"
    assert "nothing" in stderr_tail(b"")


HEADER = """\
Input #0, mov,mp4,m4a,3gp,3g2,mj2, from 'phone.mp4':
  Duration: 01:02:03.50, start: 0.000000, bitrate: 1000 kb/s
  Stream #0:0[0x1](und): Video: h264 (High) (avc1 / 0x31637661), yuv420p(tv, bt709, progressive), 1920x1080 [SAR 1:1 DAR 16:9], 9000 kb/s, 29.97 fps, 29.97 tbr, 90k tbn (default)
    Metadata:
      handler_name    : VideoHandler
    Side data:
      displaymatrix: rotation of -90.00 degrees
  Stream #0:1[0x2](und): Audio: aac (LC) (mp4a / 0x6134706D), 48000 Hz, 5.1(side), fltp, 256 kb/s (default)
At least one output file must be specified
"""  # noqa: E501


def test_parse_header_rotation_rate_and_layout():
    info = parse_header(HEADER, "phone.mp4")
    assert info.duration == pytest.approx(3723.5)
    assert (info.video_codec, info.width, info.height) == ("h264", 1080, 1920)  # rotated
    assert info.fps == pytest.approx(29.97)
    assert info.rotation == -90.0
    assert (info.audio_codec, info.sample_rate, info.channels) == ("aac", 48000, 6)


def test_parse_header_audio_only_and_na_duration():
    text = (
        "Input #0, wav, from 'x.wav':\n  Duration: N/A, bitrate: 256 kb/s\n"
        "  Stream #0:0: Audio: pcm_s16le ([1][0][0][0] / 0x0001), 16000 Hz, 1 channels, s16\n"
    )
    info = parse_header(text, "x.wav")
    assert info.duration is None
    assert info.video_codec is None and info.width == 0
    assert (info.audio_codec, info.sample_rate, info.channels) == ("pcm_s16le", 16000, 1)


_SEEK_STDERR = (
    "[mp2 @ 0x559aea28ae80] Header missing\n"
    "[aist#0:1/mp2 @ 0x559aea27c580] [dec:mp2 @ 0x559aea28a240] Error submitting packet to "
    "decoder: Invalid data found when processing input\n"
)


def test_recovered_warning_is_one_line_naming_the_file():
    from avtool.io.ffmpeg import recovered_warning

    partial = (
        "[h264 @ 0x5] Invalid NAL unit size (6316 > 4470).\n"
        "[in#0/mov,mp4,m4a,3gp,3g2,mj2 @ 0x5] stream 1, offset 0x9edc: partial file\n"
    )
    line = recovered_warning(partial, "cut.mp4")
    assert line == "cut.mp4: truncated (ffmpeg: partial file); reading what is there"
    line = recovered_warning(_SEEK_STDERR, "bad.mpg")  # not after a seek: real damage
    assert line is not None and "\n" not in line and line.startswith("bad.mpg: damaged")
    assert "(Header missing; 1 more messages)" in line
    assert recovered_warning(_SEEK_STDERR, "x.mpg", seeked=True) is None  # the seek's own frame
    twice = _SEEK_STDERR * 2  # a second broken frame after the seek is damage
    assert recovered_warning(twice, "x.mpg", seeked=True) is not None
    assert recovered_warning("  \n", "x.mpg") is None


def test_truncated_mp4_sound_warns_once(tmp_path: Path, caplog: pytest.LogCaptureFixture):
    import subprocess

    from avtool.io.audio import load_audio

    whole = tmp_path / "whole.mp4"
    subprocess.run([ffmpeg_exe(), "-nostdin", "-loglevel", "error", "-f", "lavfi", "-i",
                    "sine=frequency=440:duration=2", "-c:a", "aac", "-movflags", "+faststart",
                    str(whole)], check=True)  # fmt: skip
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    with caplog.at_level("WARNING", logger="avtool.io.ffmpeg"):
        audio, rate = load_audio(cut, 16000)
    assert 0 < audio.size < 2 * rate
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert warnings == [f"{cut}: truncated (ffmpeg: partial file); reading what is there"]


def test_grid_audio_at_an_offset_reads_without_warning(grid_dir: Path, caplog):
    from avtool.io.audio import load_audio

    with caplog.at_level("WARNING", logger="avtool.io.ffmpeg"):
        audio, rate = load_audio(grid_dir / "bbaf2n.mpg", 16000, start=0.5, duration=0.5)
    assert audio.shape == (8000,) and rate == 16000
    assert not [r for r in caplog.records if r.levelname == "WARNING"]
