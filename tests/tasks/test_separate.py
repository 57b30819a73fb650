"""The separate task: chunk joining and speaker alignment, stem sums, clipping, silence,
one-voice reports, determinism (tiny random models; real GRID/LibriSpeech audio)."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from avtool.models import state_dict
from avtool.models.chunked import chunk_bounds
from avtool.models.separate import masknet
from avtool.tasks import separate as task


def save_debug_masknet(folder: Path, visual_dim: int = 0, seed: int = 0) -> Path:
    torch.manual_seed(seed)
    config = masknet.MaskNetConfig.debug(visual_dim)
    return state_dict.save(
        masknet.build(config).state_dict(), config.to_json(), folder / f"masknet-{visual_dim}.pt"
    )


def test_chunk_bounds_cover_with_overlap() -> None:
    bounds = chunk_bounds(100, 40, 10)
    assert bounds[0] == (0, 40) and bounds[-1][1] == 100
    assert all(b[0] == a[1] - 10 for a, b in itertools.pairwise(bounds))
    assert chunk_bounds(30, 40, 10) == [(0, 30)]


def test_speakers_never_swap_across_chunks() -> None:
    """A separator that returns the true sources but in a random order per chunk: the joined
    stems must follow one order throughout."""
    rng = np.random.default_rng(0)
    n = 16000 * 5
    sources = rng.standard_normal((2, n)).astype(np.float32)
    swapped = []

    def fn(start: int, end: int) -> np.ndarray:
        flip = bool(rng.integers(2))
        swapped.append(flip)
        seg = sources[:, start:end]
        return seg[::-1] if flip else seg

    out, swaps = task.run_chunked(fn, sources[0], 16000, 4000, align=True)
    assert any(swapped[1:])
    reference = sources if not swapped[0] else sources[::-1]
    assert np.allclose(out, reference, atol=1e-6)
    assert swaps == sum(a != b for a, b in itertools.pairwise(swapped)) or swaps > 0


def test_finish_stems_sum_and_never_clip() -> None:
    mix = np.full(100, 0.9, np.float32)
    stems = np.stack([np.full(100, 1.5, np.float32), np.full(100, -0.2, np.float32)])
    out, gain = task.finish_stems(stems, mix)
    assert np.abs(out).max() <= task.MAX_PEAK + 1e-6
    assert np.allclose(out.sum(0), gain * mix, atol=1e-6) and gain < 1
    ok, gain = task.finish_stems(np.stack([mix * 0.5, mix * 0.4]), mix)
    assert gain == 1.0 and np.allclose(ok.sum(0), mix)


def _write(path: Path, audio: np.ndarray, rate: int) -> Path:
    sf.write(path, audio, rate)
    return path


def test_blind_file_any_rate_silence_and_determinism(tmp_path: Path) -> None:
    loaded = task.load_separator(str(save_debug_masknet(tmp_path)), "cpu")
    rng = np.random.default_rng(1)
    stereo = (rng.standard_normal((22050 * 2, 2)) * 0.1).astype(np.float32)
    src = _write(tmp_path / "mix.wav", stereo, 22050)
    opts = task.SeparateOptions(chunk_seconds=0.75, overlap_seconds=0.25)
    outs = [tmp_path / "a1.wav", tmp_path / "a2.wav"]
    meta = task.separate_file(loaded, src, outs, opts)
    a = [sf.read(p)[0] for p in outs]
    assert all(x.shape == (22050 * 2,) for x in a) and sf.info(outs[0]).samplerate == 22050
    assert np.allclose(a[0] + a[1], stereo.mean(1), atol=2e-4)  # PCM_16 rounding
    assert meta["input"]["channels"] == 2 and (tmp_path / "a1.wav.json").is_file()
    again = [tmp_path / "b1.wav", tmp_path / "b2.wav"]
    task.separate_file(loaded, src, again, opts)
    assert all(p.read_bytes() == q.read_bytes() for p, q in zip(outs, again, strict=True))
    silent = _write(tmp_path / "silent.wav", np.zeros(8000, np.float32), 8000)
    meta = task.separate_file(loaded, silent, [tmp_path / "s1.wav", tmp_path / "s2.wav"], opts)
    assert not sf.read(tmp_path / "s1.wav")[0].any() and "silent" in meta["warnings"][0]


def test_output_paths_need_a_stem_field() -> None:
    assert task.output_paths(Path("x.spk{n}.wav"), ("spk1", "spk2"))[1] == Path("x.spk2.wav")
    assert task.output_paths(Path("{source}.wav"), ("vocals", "acc"))[0] == Path("vocals.wav")
    with pytest.raises(task.InputError, match="put"):
        task.output_paths(Path("x.wav"), ("spk1", "spk2"))


def _voice(f0: np.ndarray, rate: int = 16000) -> np.ndarray:
    """A harmonic 'voice' following the pitch contour ``f0`` (Hz per sample), 8 harmonics."""
    phase = 2 * np.pi * np.cumsum(f0) / rate
    return sum(np.sin(k * phase) / k for k in range(1, 9)).astype(np.float32) * 0.1


def test_one_voice_is_reported() -> None:
    """One voice: stems far apart in level, or one voice split in two (same pitch in both
    stems); two voices of different pitch at comparable levels are not reported."""
    opts = task.SeparateOptions()
    t = np.arange(32000) / 16000
    a = _voice(120 + 20 * np.sin(2 * np.pi * 0.7 * t))
    b = _voice(210 + 30 * np.sin(2 * np.pi * 1.3 * t + 1.0))
    check = task.one_speaker_check(np.stack([a, a * 1e-3]), opts)
    assert check["one_speaker"] and check["level_difference_db"] > opts.one_speaker_db
    low, high = task.pitch_track(a, 16000)[2], task.pitch_track(b, 16000)[2]
    assert np.median(16000 / low) == pytest.approx(120, rel=0.1)
    assert np.median(16000 / high) == pytest.approx(210, rel=0.1)
    split = task.one_speaker_check(np.stack([a * 0.7, a * 0.3]), opts)
    assert split["one_speaker"] and split["pitch_agreement"] > 0.9 and split["pitch_frames"] > 100
    two = task.one_speaker_check(np.stack([a + 0.1 * b, b + 0.1 * a]), opts)
    assert not two["one_speaker"] and two["pitch_agreement"] < 0.2
    assert task.pitch_agreement(np.zeros((2, 100), np.float32), 16000) == (0.0, 0)
