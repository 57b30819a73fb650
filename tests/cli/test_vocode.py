"""``avtool vocode`` through the CLI: mel files, resynthesis, neural checkpoints, bad mels."""

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from typer.testing import CliRunner

from avtool.cli.main import app
from avtool.io.features import MelSpec, mel_spectrogram, save_mel

runner = CliRunner()


def vocode(*args: str):
    return runner.invoke(app, ["--quiet", "vocode", *args])


def _speechlike(seconds: float = 1.5, rate: int = 22050) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    f0 = 120 + 30 * np.sin(2 * np.pi * 1.5 * t)
    phase = 2 * np.pi * np.cumsum(f0) / rate
    voice = sum(np.sin(k * phase) / k for k in range(1, 20))
    return (0.3 * voice * (0.6 + 0.4 * np.sin(2 * np.pi * 3 * t))).astype(np.float32)


@pytest.fixture
def mel_file(tmp_path: Path) -> Path:
    spec = MelSpec.hifigan_22k()
    mel = mel_spectrogram(_speechlike(), spec)[0].numpy()
    return save_mel(tmp_path / "speech.npz", mel, spec)


def test_mel_file_to_wav_exact_length_and_sidecar(mel_file: Path, tmp_path: Path):
    out = tmp_path / "out.wav"
    result = vocode(str(mel_file), "-o", str(out))
    assert result.exit_code == 0, result.stderr
    audio, rate = sf.read(out)
    frames = np.load(mel_file)["mel"].shape[1]
    assert rate == 22050 and audio.size == frames * 256
    side = json.loads(Path(f"{out}.json").read_text())
    # No --model: a hifigan-22k mel goes to the shipped HiFi-GAN V1 universal generator.
    assert side["model"]["name"] == "hifigan-v1-universal" and side["input"]["kind"] == "mel"
    assert side["model"]["family"] == "hifigan" and len(side["model"]["sha256"]) == 64
    assert side["input"]["melspec"]["hop_length"] == 256


def test_mel_of_another_contract_defaults_to_griffin_lim(tmp_path: Path):
    spec = MelSpec.melgan_22k()
    mel = mel_spectrogram(_speechlike(0.5), spec)[0].numpy()
    path = save_mel(tmp_path / "melgan.npz", mel, spec)
    out = tmp_path / "out.wav"
    result = vocode(str(path), "-o", str(out))
    assert result.exit_code == 0, result.stderr
    assert json.loads(Path(f"{out}.json").read_text())["model"]["name"] == "griffin-lim"


def test_griffin_lim_seed_is_byte_identical(mel_file: Path, tmp_path: Path):
    outs = [tmp_path / f"{i}.wav" for i in range(3)]
    for out, seed in zip(outs, ("1", "1", "2"), strict=True):
        result = runner.invoke(
            app,
            ["--quiet", "--seed", seed, "vocode", str(mel_file), "-o", str(out),
             "--model", "griffin-lim"],
        )  # fmt: skip
        assert result.exit_code == 0
    assert outs[0].read_bytes() == outs[1].read_bytes() != outs[2].read_bytes()


def test_resynthesis_of_real_speech_is_intelligible(grid_dir: Path, tmp_path: Path):
    from avtool.io.audio import load_audio
    from avtool.metrics.speech import stoi

    clip = grid_dir / "lbax4n.mpg"
    out = tmp_path / "resynth.wav"
    assert vocode(str(clip), "-o", str(out)).exit_code == 0
    original, rate = load_audio(clip, sample_rate=22050)
    resynth, _ = load_audio(out)
    assert abs(resynth.size - original.size) < 256
    assert stoi(original, resynth, rate) > 0.6


def _write_debug_hifigan(folder: Path) -> Path:
    from avtool.models import hifigan

    torch.manual_seed(0)
    model = hifigan.build(hifigan.HiFiGANConfig.debug())
    checkpoint = folder / "g_00000000"
    torch.save(hifigan.to_checkpoint(model), checkpoint)
    return checkpoint


def test_neural_checkpoint_path_and_contract_check(mel_file: Path, tmp_path: Path):
    checkpoint = _write_debug_hifigan(tmp_path)
    out = tmp_path / "neural.wav"
    result = vocode(str(mel_file), "-o", str(out), "--model", str(checkpoint))
    assert result.exit_code == 0, result.stderr
    assert sf.info(out).frames == np.load(mel_file)["mel"].shape[1] * 256
    # A mel made for MelGAN (log10, no fmax) must be refused by a HiFi-GAN generator.
    spec = MelSpec.melgan_22k()
    other = save_mel(tmp_path / "melgan.npz", mel_spectrogram(_speechlike(), spec)[0], spec)
    result = vocode(str(other), "-o", str(tmp_path / "x.wav"), "--model", str(checkpoint))
    assert result.exit_code == 2
    assert "melgan.npz" in result.stderr and "log" in result.stderr
    assert not (tmp_path / "x.wav").exists()


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda m: np.where(np.arange(m.shape[1]) == 5, np.nan, m), "NaN"),
        (lambda m: m[:40], "bands"),
        (lambda m: m.T.copy(), "transposed"),
        (lambda m: m[:, :0], "frames"),
    ],
)
def test_bad_mels_exit_2_naming_the_file(tmp_path: Path, make, message):
    spec = MelSpec.hifigan_22k()
    mel = mel_spectrogram(_speechlike(), spec)[0].numpy()
    bad = tmp_path / "bad.npz"
    np.savez(bad, mel=make(mel).astype(np.float32), melspec=np.array(spec.to_json()))
    result = vocode(str(bad), "-o", str(tmp_path / "bad.wav"))
    assert result.exit_code == 2, result.stderr
    assert "bad.npz" in result.stderr and message in result.stderr
    assert not (tmp_path / "bad.wav").exists()


def test_npy_without_contract_and_unknown_model(tmp_path: Path):
    mel = np.zeros((80, 50), np.float32) - 5
    np.save(tmp_path / "bare.npy", mel)
    result = vocode(str(tmp_path / "bare.npy"), "-o", str(tmp_path / "a.wav"))
    assert result.exit_code == 2 and "contract" in result.stderr
    assert vocode(str(tmp_path / "bare.npy"), "-o", str(tmp_path / "a.wav"),
                  "--mel-preset", "hifigan-22k").exit_code == 0  # fmt: skip
    result = vocode(str(tmp_path / "bare.npy"), "-o", str(tmp_path / "b.wav"), "--model", "nope")
    assert result.exit_code == 3
