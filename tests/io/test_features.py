"""The mel contract: librosa parity on real speech and noise, mel files, and every bad-mel error."""

from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path

import librosa
import numpy as np
import pytest
import torch

from avtool.errors import ExitCode, InputError
from avtool.io.audio import load_audio
from avtool.io.features import (
    MelSpec,
    assert_compatible,
    check_mel,
    load_mel,
    mel_filterbank,
    mel_spectrogram,
    save_mel,
    stft,
)

HIFIGAN = MelSpec.hifigan_22k()
MELGAN = MelSpec.melgan_22k()
# Every other option at once: centred frames, HTK scale, unnormalised filters, power mel,
# another window/hop, zero padding and 128 bands up to Nyquist.
CENTRED = dataclasses.replace(
    HIFIGAN,
    center=True,
    mel_scale="htk",
    norm=None,
    power=2.0,
    log="log10",
    win_length=800,
    hop_length=200,
    n_mels=128,
    fmin=30.0,
    fmax=None,
    magnitude_eps=0.0,
    pad_mode="constant",
)
#: Largest |ours - librosa| in the log domain; float32 STFTs give ~1e-4 (measured 1.3e-4).
LOG_MEL_TOLERANCE = 1e-3


@pytest.fixture(scope="module")
def speech(grid_dir: Path) -> np.ndarray:
    audio, _ = load_audio(grid_dir / "bbaf2n.mpg", sample_rate=22050)
    return audio


@pytest.fixture(scope="module")
def noise() -> np.ndarray:
    return (0.1 * np.random.default_rng(0).standard_normal(22050)).astype(np.float32)


def librosa_log_mel(audio: np.ndarray, spec: MelSpec) -> np.ndarray:
    """The contract computed with librosa alone (float64), as the published recipes do."""
    filters = {
        "sr": spec.sample_rate,
        "n_mels": spec.n_mels,
        "fmin": spec.fmin,
        "fmax": spec.fmax,
        "htk": spec.mel_scale == "htk",
        "norm": spec.norm,
    }
    frames = {"n_fft": spec.n_fft, "hop_length": spec.hop_length, "win_length": spec.win_length}
    audio = audio.astype(np.float64)
    if spec.center:
        y, center = audio, True
    else:
        y, center = np.pad(audio, spec.pad, mode=spec.pad_mode), False
    if spec.magnitude_eps:
        # HiFi-GAN's sqrt(re² + im² + eps): librosa has no eps, so give it the spectrogram.
        power = np.abs(librosa.stft(y, center=center, **frames)) ** 2 + spec.magnitude_eps
        mel = librosa.feature.melspectrogram(
            S=power ** (spec.power / 2), n_fft=spec.n_fft, **filters
        )
    else:
        mel = librosa.feature.melspectrogram(
            y=y, center=center, pad_mode=spec.pad_mode, power=spec.power, **frames, **filters
        )
    mel = np.maximum(mel, spec.clip_floor)
    return {"ln": np.log, "log10": np.log10, None: np.asarray}[spec.log](mel)


# --------------------------------------------------------------------------- the contract


def test_presets_follow_the_published_recipes():
    assert (HIFIGAN.sample_rate, HIFIGAN.n_fft, HIFIGAN.win_length, HIFIGAN.hop_length) == (
        22050,
        1024,
        1024,
        256,
    )
    assert (HIFIGAN.n_mels, HIFIGAN.fmin, HIFIGAN.fmax, HIFIGAN.log) == (80, 0.0, 8000.0, "ln")
    assert (HIFIGAN.clip_floor, HIFIGAN.magnitude_eps, HIFIGAN.center) == (1e-5, 1e-9, False)
    assert HIFIGAN.pad == (1024 - 256) // 2
    assert MELGAN.differences(HIFIGAN) == [
        "fmax: None vs 8000.0",
        "log: log10 vs ln",
        "magnitude_eps: 0.0 vs 1e-09",
    ]
    assert MelSpec.default() is HIFIGAN
    assert MelSpec.preset("melgan-22k") is MELGAN
    with pytest.raises(ValueError, match="hifigan-22k"):
        MelSpec.preset("waveglow")
    with pytest.raises(dataclasses.FrozenInstanceError):
        HIFIGAN.hop_length = 200  # type: ignore[misc]


def test_dict_round_trip_is_strict():
    assert MelSpec.from_dict(HIFIGAN.to_dict()) == HIFIGAN
    assert MelSpec.from_dict(json.loads(CENTRED.to_json())) == CENTRED
    data = HIFIGAN.to_dict()
    data["fmin"] = 0  # ints are fine for float fields and normalised
    assert MelSpec.from_dict(data).to_dict()["fmin"] == 0.0

    extra = {**HIFIGAN.to_dict(), "hop_size": 256}
    with pytest.raises(ValueError, match="unknown keys: hop_size"):
        MelSpec.from_dict(extra)
    missing = HIFIGAN.to_dict()
    del missing["n_mels"], missing["log"]
    with pytest.raises(ValueError, match="missing keys: n_mels, log"):
        MelSpec.from_dict(missing)
    for field, value in [
        ("hop_length", 0),
        ("hop_length", 256.0),
        ("mel_scale", "bark"),
        ("log", "db"),
        ("power", 1.5),
        ("fmax", 20000.0),
        ("center", "no"),
        ("win_length", 2048),
    ]:
        with pytest.raises(ValueError, match=field):
            MelSpec.from_dict({**HIFIGAN.to_dict(), field: value})


def test_differences_lists_each_field():
    other = dataclasses.replace(HIFIGAN, hop_length=200, fmax=None)
    assert HIFIGAN.differences(other) == ["hop_length: 256 vs 200", "fmax: 8000.0 vs None"]
    assert HIFIGAN.differences(HIFIGAN) == []


@pytest.mark.parametrize("spec", [HIFIGAN, MELGAN, CENTRED], ids=["hifigan", "melgan", "centred"])
def test_frames_and_samples(spec: MelSpec):
    for length in (spec.n_fft, 5000, 22050, 22051):
        assert mel_spectrogram(torch.zeros(length), spec).shape[-1] == spec.frames_for(length)
    assert spec.samples_for(7) == 7 * spec.hop_length
    # Reflect padding needs more samples than it adds; zero padding only needs one.
    shortest = spec.pad + 1 if spec.pad_mode == "reflect" else 1
    assert mel_spectrogram(torch.zeros(shortest), spec).shape[-1] == spec.frames_for(shortest)
    with pytest.raises(ValueError, match="too short"):
        mel_spectrogram(torch.zeros(shortest - 1), spec)


def test_hifigan_frames_are_samples_over_hop():
    assert [HIFIGAN.frames_for(n) for n in (256, 511, 512, 65664)] == [1, 1, 2, 256]


# --------------------------------------------------------------------------- librosa parity


@pytest.mark.parametrize("spec", [HIFIGAN, MELGAN, CENTRED], ids=["hifigan", "melgan", "centred"])
@pytest.mark.parametrize("signal", ["speech", "noise"])
def test_mel_matches_librosa(spec: MelSpec, signal: str, request: pytest.FixtureRequest):
    audio = request.getfixturevalue(signal)
    ours = mel_spectrogram(audio, spec)
    reference = librosa_log_mel(audio, spec)
    assert ours.shape == (1, spec.n_mels, spec.frames_for(len(audio)))
    assert ours.shape[1:] == reference.shape
    assert ours.dtype == torch.float32
    assert np.abs(ours[0].numpy() - reference).max() < LOG_MEL_TOLERANCE


def test_batch_equals_items(speech: np.ndarray, noise: np.ndarray):
    batch = np.stack([speech[: len(noise)], noise])
    together = mel_spectrogram(torch.from_numpy(batch), HIFIGAN)
    for i, item in enumerate(batch):
        torch.testing.assert_close(together[i], mel_spectrogram(item, HIFIGAN)[0])
    assert stft(batch, HIFIGAN).shape == (2, 513, HIFIGAN.frames_for(len(noise)))


def test_filterbank_is_cached_and_safe_to_modify():
    first = mel_filterbank(HIFIGAN)
    assert first.shape == (80, 513) and first.dtype == torch.float32
    assert first[:, HIFIGAN.n_bins - 10 :].abs().sum() == 0  # nothing above fmax = 8 kHz
    first.zero_()
    assert mel_filterbank(HIFIGAN).abs().sum() > 0


# --------------------------------------------------------------------------- mel files


@pytest.fixture(scope="module")
def mel(speech: np.ndarray) -> np.ndarray:
    return mel_spectrogram(speech, HIFIGAN)[0].numpy()


@pytest.mark.parametrize("suffix", [".npz", ".npy"])
def test_save_load_round_trip(tmp_path: Path, mel: np.ndarray, suffix: str):
    path = save_mel(tmp_path / f"utt{suffix}", mel, MELGAN)
    loaded, spec = load_mel(path)
    assert spec == MELGAN
    assert loaded.dtype == np.float32 and np.array_equal(loaded, mel)
    expected = {"utt.npz"} if suffix == ".npz" else {"utt.npy", "utt.npy.json"}
    assert {p.name for p in tmp_path.iterdir()} == expected  # no temporary files left over
    if suffix == ".npy":
        sidecar = json.loads((tmp_path / "utt.npy.json").read_text())
        assert MelSpec.from_dict(sidecar["melspec"]) == MELGAN


def test_npy_sidecar_may_hold_other_metadata(tmp_path: Path, mel: np.ndarray):
    np.save(tmp_path / "a.npy", mel)
    meta = {"model": "fastspeech2", "melspec": HIFIGAN.to_dict()}
    (tmp_path / "a.npy.json").write_text(json.dumps(meta))
    assert load_mel(tmp_path / "a.npy")[1] == HIFIGAN


def test_assumed_contract_for_bare_npy(tmp_path: Path, mel: np.ndarray):
    np.save(tmp_path / "bare.npy", mel)
    assert load_mel(tmp_path / "bare.npy", assume=HIFIGAN)[1] == HIFIGAN


def _npz(path: Path, mel: object, spec: MelSpec | None = HIFIGAN) -> None:
    members = {"mel": mel}
    if spec is not None:
        members["melspec"] = np.array(spec.to_json())
    np.savez(path, **members)


def _nan_mel(mel: np.ndarray) -> np.ndarray:
    bad = mel.copy()
    bad[3, 5] = np.nan
    bad[10, 7] = np.inf
    return bad


BAD_MELS = {
    "nan": (lambda m, p: _npz(p, _nan_mel(m)), r"2 NaN/infinite values \(first in frame 5\)"),
    "bands": (lambda m, p: _npz(p, m[:64]), "has 64 mel bands, its contract says n_mels = 80"),
    "zero-frames": (lambda m, p: _npz(p, m[:, :0]), "zero frames"),
    "transposed": (lambda m, p: _npz(p, m.T), r"looks transposed: shape \(256, 80\)"),
    "dtype": (lambda m, p: _npz(p, m.astype(np.int64)), "dtype int64"),
    "ndim": (lambda m, p: _npz(p, m[0]), "2-D"),
    "no-contract-npz": (lambda m, p: _npz(p, m, None), "contract is missing"),
    "bad-contract": (
        lambda m, p: np.savez(p, mel=m, melspec=np.array('{"hop_length": 256}')),
        "missing keys",
    ),
    "no-mel": (lambda m, p: np.savez(p, spectrogram=m), "no 'mel' array"),
    "corrupt": (lambda m, p: p.write_bytes(b"PK\x03\x04 not really a zip"), "not a readable"),
}


@pytest.mark.parametrize("case", list(BAD_MELS))
def test_bad_mel_files_name_the_file(tmp_path: Path, mel: np.ndarray, case: str):
    write, message = BAD_MELS[case]
    path = tmp_path / f"{case}.npz"
    write(mel, path)
    with pytest.raises(InputError, match=message) as info:
        load_mel(path)
    assert str(path) in str(info.value)
    assert info.value.exit_code == ExitCode.USAGE


def test_npy_without_sidecar_says_how_to_provide_the_contract(tmp_path: Path, mel: np.ndarray):
    path = tmp_path / "bare.npy"
    np.save(path, mel)
    with pytest.raises(InputError, match="contract is missing") as info:
        load_mel(path)
    text = str(info.value)
    assert str(path) in text and "bare.npy.json" in text and '"melspec"' in text


def test_sidecar_without_the_contract_key(tmp_path: Path, mel: np.ndarray):
    np.save(tmp_path / "m.npy", mel)
    (tmp_path / "m.npy.json").write_text('{"model": "x"}')
    with pytest.raises(InputError, match=r"no 'melspec' key in m\.npy\.json"):
        load_mel(tmp_path / "m.npy")


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("mel.txt", b"1 2 3", "must be .npz or .npy"),
        ("pickled.npy", None, "not a readable"),
        ("absent.npz", ..., "no such file"),
    ],
)
def test_unreadable_mel_files(tmp_path: Path, name: str, content: object, message: str):
    path = tmp_path / name
    if content is None:
        np.save(path, np.array([{"mel": 1}], dtype=object), allow_pickle=True)
    elif isinstance(content, bytes):
        path.write_bytes(content)
    with pytest.raises(InputError, match=message) as info:
        load_mel(path)
    assert str(path) in str(info.value)


def test_check_mel_accepts_a_batch_of_one_and_float64(mel: np.ndarray):
    out = check_mel(torch.from_numpy(mel[None].astype(np.float64)), HIFIGAN, "x.npz")
    assert out.shape == mel.shape and out.dtype == np.float32


def test_check_mel_warns_about_a_db_scaled_mel(mel: np.ndarray, caplog: pytest.LogCaptureFixture):
    decibels = 20 * mel / np.log(10)  # ln -> dB: goes down to -100
    with caplog.at_level(logging.WARNING, logger="avtool.io.features"):
        check_mel(decibels, HIFIGAN, "db.npz")
    assert "far below the contract's floor" in caplog.text


def test_save_refuses_a_bad_mel(tmp_path: Path, mel: np.ndarray):
    with pytest.raises(ValueError, match="NaN"):
        save_mel(tmp_path / "x.npz", _nan_mel(mel), HIFIGAN)
    with pytest.raises(ValueError, match=r"\.npz or \.npy"):
        save_mel(tmp_path / "x.pt", mel, HIFIGAN)
    assert list(tmp_path.iterdir()) == []


def test_assert_compatible_lists_every_difference(tmp_path: Path):
    mine = dataclasses.replace(HIFIGAN, hop_length=200, log="log10")
    with pytest.raises(InputError) as info:
        assert_compatible(mine, HIFIGAN, tmp_path / "mel.npz")
    text = str(info.value)
    assert "mel.npz was computed with hop_length 200, the model expects 256" in text
    assert "log log10, the model expects ln" in text
    assert_compatible(HIFIGAN, MelSpec.default(), "mel.npz")
