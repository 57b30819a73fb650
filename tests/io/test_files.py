import os
from pathlib import Path

import pytest

from avtool.errors import SetupError
from avtool.io.files import atomic_output


def test_atomic_output_renames_on_success(tmp_path: Path):
    target = tmp_path / "sub" / "out.wav"
    with atomic_output(target) as tmp:
        assert tmp.parent == target.parent and tmp.suffix == ".wav"
        assert not target.exists()
        tmp.write_bytes(b"data")
    assert target.read_bytes() == b"data"
    assert os.listdir(target.parent) == ["out.wav"]
    assert target.stat().st_mode & 0o044  # readable by others under the usual umask


def test_atomic_output_leaves_nothing_on_failure(tmp_path: Path):
    target = tmp_path / "out.wav"
    target.write_bytes(b"previous")
    with pytest.raises(RuntimeError), atomic_output(target) as tmp:
        tmp.write_bytes(b"partial")
        raise RuntimeError("boom")
    assert target.read_bytes() == b"previous"
    assert os.listdir(tmp_path) == ["out.wav"]


def test_atomic_output_rejects_empty_output(tmp_path: Path):
    with pytest.raises(SetupError, match="nothing was written"), atomic_output(tmp_path / "x.wav"):
        pass
    assert os.listdir(tmp_path) == []


def test_unwritable_folder_is_a_setup_error(tmp_path: Path):
    if os.geteuid() == 0:
        blocker = tmp_path / "file"
        blocker.write_text("not a folder")
        target = blocker / "out.wav"  # root can write anywhere; a file in the way still fails
    else:
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        target = locked / "out.wav"
    with pytest.raises(SetupError, match=r"out\.wav"), atomic_output(target):
        pass
