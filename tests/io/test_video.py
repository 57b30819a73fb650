"""Probing, reading and writing video through ffmpeg, on generated and real GRID clips."""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import numpy as np
import pytest

from avtool.errors import InputError, SetupError
from avtool.io.audio import load_audio, save_audio
from avtool.io.ffmpeg import ffmpeg_exe
from avtool.io.video import VideoReader, VideoWriter, probe
from tests.conftest import shared_data_dir

W, H, FPS = 64, 48, 25


def pattern(i: int, width: int = W, height: int = H) -> np.ndarray:
    """(H, W, 3) uint8: smooth gradients moving with ``i``, easy on H.264 and yuv420p."""
    y, x = np.mgrid[0:height, 0:width]
    red = 128 + 100 * np.sin(2 * np.pi * (x + 2 * i) / width)
    green = 255 * y / height
    return np.stack([red, green, np.full_like(red, 60.0)], axis=-1).astype(np.uint8)


def tone(seconds: float, rate: int = 16000) -> np.ndarray:
    return (0.3 * np.sin(2 * np.pi * 440 * np.arange(round(seconds * rate)) / rate)).astype(
        np.float32
    )


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """50 frames (2 s) of :func:`pattern` with a 2 s 440 Hz tone, written by VideoWriter."""
    path = tmp_path_factory.mktemp("video") / "clip.mp4"
    with VideoWriter(path, FPS, (W, H), audio_array=tone(2.0), sample_rate=16000) as writer:
        for i in range(50):
            writer.write(pattern(i))
    return path


# --- probe --------------------------------------------------------------------------------------


def test_probe_grid(grid_dir):
    info = probe(grid_dir / "bbaf2n.mpg")
    assert info.fps == 25
    assert (info.width, info.height) == (360, 288)
    assert info.n_frames == 75
    assert info.duration == pytest.approx(3.0, abs=0.05)
    assert info.has_audio
    assert (info.audio_sample_rate, info.audio_channels) == (44100, 2)
    assert (info.video_codec, info.audio_codec) == ("mpeg1video", "mp2")


def test_probe_grid_s1_mkv():
    clips = shared_data_dir() / "grid_s1" / "clips"
    if not clips.is_dir():
        pytest.skip(f"GRID s1 clips not found at {clips}")
    info = probe(next(iter(sorted(clips.glob("*.mkv")))))
    assert (info.video_codec, info.audio_codec) == ("h264", "flac")
    assert (info.audio_sample_rate, info.audio_channels) == (22050, 1)
    assert info.n_frames == 75


def test_probe_errors(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        probe(tmp_path / "missing.mp4")
    wav = save_audio(tmp_path / "a.wav", tone(0.1), 16000)
    with pytest.raises(InputError, match=r"a\.wav: has no video stream"):
        probe(wav)
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"\x00" * 500)
    with pytest.raises(InputError, match=r"junk\.mp4"):
        probe(junk)


# --- reading ------------------------------------------------------------------------------------


def test_reader_grid_all_frames(grid_dir):
    with VideoReader(grid_dir / "lbax4n.mpg") as reader:
        frames = list(reader)
    assert len(frames) == 75
    assert all(f.shape == (288, 360, 3) and f.dtype == np.uint8 for f in frames)
    assert reader.index == 74
    assert frames[0].std() > 10  # a real picture, not a blank frame
    frames[0][0, 0] = 0  # frames are writable arrays


def test_reader_grid_fps_size_gray(grid_dir):
    path = grid_dir / "lbax4n.mpg"
    assert len(list(VideoReader(path, fps=12.5))) in (37, 38)
    frames = list(VideoReader(path, size=(180, 144), gray=True))
    assert len(frames) == 75 and frames[0].shape == (144, 180)


def test_reader_stops_early_and_iterates_once(clip):
    with VideoReader(clip) as reader:
        shapes = []
        for frame in reader:
            shapes.append(frame.shape)
            if reader.index == 2:
                break
        assert reader.index == 2
        assert shapes == [(H, W, 3)] * 3
    with pytest.raises(RuntimeError, match="once"):
        iter(reader)


@pytest.mark.parametrize(("frames", "rc"), [(2, 1), (2.5, 0)])
def test_reader_failure_mid_stream(tmp_path, monkeypatch, clip, frames, rc):
    """A decoder that dies after two frames: the error names the file and the frame."""
    fake = tmp_path / "ffmpeg"
    fake.write_text(
        "#!/bin/sh\n"
        'case "$*" in *rawvideo*)\n'
        f"  head -c {int(frames * W * H * 3)} /dev/zero; echo 'decoder exploded' >&2; exit {rc};;\n"
        "esac\n"
        f'exec "{ffmpeg_exe()}" "$@"\n'
    )
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("AVTOOL_FFMPEG", str(fake))
    seen = []
    with pytest.raises(InputError, match="decoder exploded") as info:
        for frame in VideoReader(clip):
            seen.append(frame)
    assert len(seen) == 2
    assert str(clip) in str(info.value) and "at frame 2" in str(info.value)


# --- writing ------------------------------------------------------------------------------------


def test_writer_round_trip(clip):
    info = probe(clip)
    assert (info.video_codec, info.audio_codec) == ("h264", "aac")
    assert (info.width, info.height, info.fps) == (W, H, FPS)
    assert info.duration == pytest.approx(2.0, abs=1 / FPS)
    frames = list(VideoReader(clip))
    assert len(frames) == 50
    for i in (0, 25, 49):
        assert np.abs(frames[i].astype(int) - pattern(i)).mean() < 3
    audio, rate = load_audio(clip)
    assert rate == 16000
    assert len(audio) / rate == pytest.approx(len(frames) / FPS, abs=1 / FPS)
    spectrum = np.abs(np.fft.rfft(audio))
    assert np.argmax(spectrum) * rate / len(audio) == pytest.approx(440, abs=2)
    # +faststart: the index (moov) precedes the media data (mdat).
    head = clip.read_bytes()[:4096]
    assert 0 <= head.find(b"moov") < head.find(b"mdat") or b"mdat" not in head


def test_writer_audio_file_and_mkv(tmp_path):
    wav = save_audio(tmp_path / "a.wav", np.stack([tone(1.0), tone(1.0)]), 16000)
    out = tmp_path / "out.mkv"
    with VideoWriter(out, 10, (W, H), audio=wav, preset="ultrafast") as writer:
        for i in range(10):
            writer.write(pattern(i))
    assert writer.frames_written == 10
    info = probe(out)
    assert (info.video_codec, info.audio_codec, info.audio_channels) == ("h264", "aac", 2)
    assert leftovers(tmp_path) == ["a.wav", "out.mkv"]


def test_writer_exception_leaves_nothing(tmp_path):
    writer = VideoWriter(tmp_path / "x.mp4", FPS, (W, H), audio_array=tone(1), sample_rate=16000)
    with pytest.raises(RuntimeError, match="boom"), writer:
        writer.write(pattern(0))
        raise RuntimeError("boom")
    assert leftovers(tmp_path) == []


def test_writer_keeps_existing_file_on_error(tmp_path):
    target = tmp_path / "x.mp4"
    target.write_bytes(b"old")
    with pytest.raises(ValueError, match="uint8"), VideoWriter(target, FPS, (W, H)) as w:
        w.write(pattern(0).astype(np.float32))
    assert target.read_bytes() == b"old"
    assert leftovers(tmp_path) == ["x.mp4"]


def test_writer_argument_errors(tmp_path):
    with pytest.raises(InputError, match="even width and height"):
        VideoWriter(tmp_path / "x.mp4", FPS, (65, 48))
    with pytest.raises(ValueError, match="must be one of"):
        VideoWriter(tmp_path / "x.avi", FPS, (W, H))
    with pytest.raises(ValueError, match="sample_rate"):
        VideoWriter(tmp_path / "x.mp4", FPS, (W, H), audio_array=tone(1))
    with pytest.raises(InputError, match="no such file"):
        VideoWriter(tmp_path / "x.mp4", FPS, (W, H), audio=tmp_path / "none.wav")
    with (
        pytest.raises(ValueError, match=r"must be \(48, 64, 3\)"),
        VideoWriter(tmp_path / "x.mp4", FPS, (W, H)) as w,
    ):
        w.write(pattern(0, W + 2, H))
    with pytest.raises(ValueError, match="no frames"), VideoWriter(tmp_path / "y.mp4", FPS, (W, H)):
        pass
    assert leftovers(tmp_path) == []


def test_without_ffmpeg(tmp_path, monkeypatch, clip):
    monkeypatch.setenv("AVTOOL_FFMPEG", "/nonexistent")
    with pytest.raises(SetupError), VideoWriter(tmp_path / "x.mp4", FPS, (W, H)):
        pass
    assert leftovers(tmp_path) == []
    with pytest.raises(SetupError, match="AVTOOL_FFMPEG"):
        probe(clip)


def test_abandoned_loop_stops_ffmpeg(clip):
    for _ in VideoReader(clip):
        break
    children = subprocess.run(
        ["ps", "-o", "args=", "--ppid", str(os.getpid())], capture_output=True, text=True
    ).stdout
    assert "rawvideo" not in children
