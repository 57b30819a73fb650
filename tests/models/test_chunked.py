"""Chunked vocoding: exact lengths, seams that match a single pass, fades, errors."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from avtool.errors import InputError, ModelError
from avtool.models import hifigan, melgan
from avtool.models.chunked import (
    CHUNK_FRAMES,
    OVERLAP_FRAMES,
    apply_chunked,
    chunk_bounds,
    context_windows,
    fade_curves,
    stream_in_context,
)

HOP = 4


def framewise(mel: torch.Tensor) -> torch.Tensor:
    """A 'vocoder' without context: each frame gives HOP samples from that frame alone."""
    return mel.mean(dim=1).repeat_interleave(HOP, dim=-1)


def with_context(mel: torch.Tensor) -> torch.Tensor:
    """A 'vocoder' with a receptive field of +-3 frames and zero padding at the edges."""
    kernel = torch.ones(1, 1, 7) / 7
    smoothed = torch.nn.functional.conv1d(mel.mean(dim=1, keepdim=True), kernel, padding=3)
    return smoothed[:, 0].repeat_interleave(HOP, dim=-1)


def test_fade_curves():
    fade_in, fade_out = fade_curves(100, "linear")
    torch.testing.assert_close(fade_in + fade_out, torch.ones(100))
    fade_in, fade_out = fade_curves(100, "equal_power")
    torch.testing.assert_close(fade_in**2 + fade_out**2, torch.ones(100))
    assert fade_in[0] < 0.05 < 0.95 < fade_in[-1]
    assert bool((fade_in[1:] > fade_in[:-1]).all())
    with pytest.raises(InputError, match="crossfade"):
        fade_curves(10, "cubic")


@pytest.mark.parametrize("frames", [1, 63, 64, 65, 100, 101, 1000, 1001])
def test_chunk_bounds_cover_everything(frames):
    bounds = chunk_bounds(frames, 64, 16)
    assert bounds[0][0] == 0
    assert bounds[-1][1] == frames
    assert all(end - start <= 64 for start, end in bounds)
    for (_, end), (start, _) in itertools.pairwise(bounds):
        assert end - start == 16
    assert all(end - start > 16 for start, end in bounds[1:])


@pytest.mark.parametrize("frames", [0, 1, 50, 64, 65, 200, 333])
@pytest.mark.parametrize("overlap", [0, 8, 32])
def test_length_is_exact_and_framewise_output_is_unchanged(frames, overlap):
    mel = torch.randn(3, 5, frames)
    out = apply_chunked(framewise, mel, hop_length=HOP, chunk_frames=64, overlap_frames=overlap)
    assert out.shape == (3, frames * HOP)
    torch.testing.assert_close(out, framewise(mel), atol=1e-6, rtol=0)


def test_overlap_hides_the_context_a_chunk_lacks():
    mel = torch.randn(2, 5, 500)
    full = with_context(mel)
    # A quarter of the overlap (4 frames) exceeds the 3-frame context: seams match.
    seamless = apply_chunked(with_context, mel, hop_length=HOP, chunk_frames=100, overlap_frames=16)
    torch.testing.assert_close(seamless, full, atol=1e-6, rtol=0)
    butted = apply_chunked(with_context, mel, hop_length=HOP, chunk_frames=100, overlap_frames=0)
    assert float((butted - full).abs().max()) > 1e-3


def test_equal_power_is_exact_outside_the_fades():
    mel = torch.randn(1, 5, 300)
    out = apply_chunked(
        framewise, mel, hop_length=HOP, chunk_frames=100, overlap_frames=40, crossfade="equal_power"
    )
    full = framewise(mel)
    # Seams share frames 60-100 and 120-160...; the central halves (70-90, ...) are faded.
    gain = torch.ones(300 * HOP)
    for start in (60, 120, 180, 240):
        gain[(start + 10) * HOP : (start + 30) * HOP] = float("nan")
    exact = ~gain.isnan()
    torch.testing.assert_close(out[0, exact], full[0, exact], atol=1e-6, rtol=0)
    ratio = out[0, ~exact] / full[0, ~exact]
    assert float(ratio.min()) >= 1.0 - 1e-4
    assert float(ratio.max()) <= 2**0.5 + 1e-4


def test_each_chunk_runs_in_inference_mode():
    calls = []

    def fn(mel):
        calls.append((torch.is_inference_mode_enabled(), mel.shape[-1], mel.is_contiguous()))
        return framewise(mel)

    apply_chunked(fn, torch.randn(1, 5, 150), hop_length=HOP, chunk_frames=64, overlap_frames=8)
    assert calls == [(True, 64, True), (True, 64, True), (True, 38, True)]


def test_bad_arguments_and_bad_vocoders():
    mel = torch.randn(1, 5, 100)
    with pytest.raises(InputError, match="overlap_frames"):
        apply_chunked(framewise, mel, hop_length=HOP, chunk_frames=64, overlap_frames=40)
    with pytest.raises(InputError, match="frames"):
        apply_chunked(framewise, mel[0], hop_length=HOP)
    with pytest.raises(InputError, match="crossfade"):
        apply_chunked(framewise, mel, hop_length=HOP, crossfade="cubic")
    with pytest.raises(ModelError, match=r"frames 0-64, expected \(1, 320\)"):
        apply_chunked(framewise, mel, hop_length=5, chunk_frames=64, overlap_frames=8)


def test_defaults_cover_hifigan_v1_receptive_field():
    # HiFi-GAN V1 sees about 14 frames each way; a quarter of the overlap must cover it.
    assert OVERLAP_FRAMES // 4 >= 14
    assert 2 * OVERLAP_FRAMES <= CHUNK_FRAMES


@pytest.mark.parametrize(
    ("family", "config"),
    [(hifigan, hifigan.HiFiGANConfig.debug()), (melgan, melgan.MelGANConfig.debug())],
)
def test_vocoders_chunked_match_a_single_pass(family, config):
    torch.manual_seed(0)
    model = family.build(config).eval()
    mel = torch.randn(1, 80, 1500, generator=torch.Generator().manual_seed(4))
    full = family.infer(model, mel)
    hop = model.hop_length

    def vocode(m):
        return family.infer(model, m)

    chunked = apply_chunked(vocode, mel, hop_length=hop, chunk_frames=400, overlap_frames=64)
    assert chunked.shape == full.shape == (1, 1500 * hop)
    torch.testing.assert_close(chunked, full, atol=1e-5, rtol=0)
    # Without overlap the seams are off, but only near the chunk borders (400, 800, 1200).
    butted = apply_chunked(vocode, mel, hop_length=hop, chunk_frames=400, overlap_frames=0)
    error = (butted - full).abs()[0].reshape(1500, hop).amax(dim=1)
    near = torch.zeros(1500, dtype=torch.bool)
    for border in (400, 800, 1200):
        near[border - 16 : border + 16] = True
    assert float(error[near].max()) > 1e-4
    assert float(error[~near].max()) < 1e-5
    again = apply_chunked(vocode, mel, hop_length=hop, chunk_frames=400, overlap_frames=64)
    assert torch.equal(again, chunked)


def test_context_windows_cover_every_frame_once() -> None:
    for n, chunk, ctx in [(75, 750, 25), (100, 30, 5), (31, 10, 0), (1, 5, 3)]:
        bounds = context_windows(n, chunk, ctx)
        assert bounds[0][0] == 0 and bounds[-1][1] == n
        assert all(a[1] == b[0] for a, b in itertools.pairwise(bounds))
        assert all(max(0, ca - ctx) == wa and min(n, cb + ctx) == wb for ca, cb, wa, wb in bounds)
    with pytest.raises(InputError):
        context_windows(10, 0, 2)


def test_streamed_windows_equal_one_pass_when_context_covers_the_model() -> None:
    # A "model" whose output at frame t depends on frames t-2..t+2 (a 5-tap moving sum):
    # with 2 frames of context, any chunking gives the single-pass result exactly.
    frames = [np.float32(v) for v in np.random.default_rng(0).normal(size=37)]

    def moving_sum(window: list[np.float32]) -> np.ndarray:
        x = np.asarray(window, np.float32)
        padded = np.pad(x, 2)
        return np.stack([padded[i : i + len(x)] for i in range(5)]).sum(0)[:, None]

    whole = moving_sum(frames)
    calls: list[int] = []

    def counted(window: list[np.float32]) -> np.ndarray:
        calls.append(len(window))
        return moving_sum(window)

    for chunk in (1, 4, 10, 36, None):
        streamed = stream_in_context(
            iter(frames), counted, chunk_frames=chunk, context_frames=2, width=1
        )
        assert streamed.shape == (37, 1) and streamed.dtype == np.float32
        np.testing.assert_allclose(streamed, whole, rtol=0, atol=1e-5)
    assert max(calls) <= 37 and min(calls) >= 3  # windows, not the whole stream each time
    # Too little context changes the frames near a seam.
    short = stream_in_context(iter(frames), moving_sum, chunk_frames=4, context_frames=1, width=1)
    assert not np.allclose(short, whole)
    assert stream_in_context(
        iter([]), moving_sum, chunk_frames=4, context_frames=2, width=3
    ).shape == (0, 3)
