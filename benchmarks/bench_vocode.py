"""Benchmarks for the vocoders (run with ``make bench``; figures never live in tests).

Speed is reported as times faster than real time (audio seconds / wall seconds), measured
side by side in one run, alternating the contenders, because development machines are
shared and noisy. The input is 10 s of real speech (the GRID clips, concatenated and
resampled to 22.05 kHz) or, when the clips are absent, a fixed synthetic voice-like signal.
Each CPU section also reports ``other_processes_cores``, the cores other processes kept busy
meanwhile: torch's multi-threaded ops slow down many times over when another process holds
one of the cores, so figures taken while it is well above 0 carry a warning.

1. Griffin-Lim on the CPU: ``librosa.griffinlim`` against avtool's torch ``griffin_lim`` on
   the same linear magnitude (``mel_to_linear`` of the HiFi-GAN 22.05 kHz mel), 32
   iterations, momentum 0.99, random initial phase, identical framing (librosa with
   ``center=False`` analyses the same padded signal, cut the same way). Target: avtool at
   least 3x faster. The spectral convergence of both outputs shows that they do equal work.
   Also the whole ``vocode`` (mel -> linear -> Griffin-Lim) in the same loop.
2. Neural vocoders on the CPU, batch 1: HiFi-GAN V1/V2/V3 and MelGAN (ljspeech config)
   with random weights (speed does not depend on the weights), weight norm folded as
   ``load`` does for inference. On a GPU, when torch sees one: batch 1 and 16 in float32
   and batch 16 in float16, after warm-up, synchronised; HiFi-GAN V1 is compared with the
   published anchor of 495x real time on an A100 (Vocos paper).
3. Resynthesis quality on the six GRID clips at 22.05 kHz: the HiFi-GAN mel of each clip
   vocoded by Griffin-Lim with 32 iterations (the baseline) and with 100, scored against
   the clip by wide-band PESQ, STOI, ESTOI, mel-cepstral distortion and multi-resolution
   STFT distance (means over clips). Two rows bracket the scale: "identity" (the clip saved
   and loaded again: the ceiling) and "noise_0db" (the clip plus white noise at 0 dB SNR).
   The neural vocoders are left out: with random weights they are untrained.

Writes ``<out>/vocode.json`` and prints the same JSON.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from avtool.io.features import MelSpec, mel_spectrogram, stft

SAMPLE_RATE = 22050
ITERS = 32
MOMENTUM = 0.99
#: HiFi-GAN V1 on an A100, times real time (Vocos paper's inference speed table).
ANCHOR_X_REAL_TIME = 495.0
TARGET_GL_SPEEDUP = 3.0
GPU_BATCHES = (1, 16)
REPO = Path(__file__).resolve().parents[1]


def grid_folder() -> Path | None:
    """The GRID clips: ``$AVTOOL_SHARED_DATA/grid``, else ``../shared/data/grid``."""
    candidates = []
    if os.environ.get("AVTOOL_SHARED_DATA"):
        candidates.append(Path(os.environ["AVTOOL_SHARED_DATA"]) / "grid")
    candidates.append(REPO.parent / "shared" / "data" / "grid")
    for folder in candidates:
        if folder.is_dir() and any(folder.glob("*.mpg")):
            return folder
    return None


def load_clips(folder: Path | None) -> list[tuple[str, np.ndarray]]:
    """``(name, mono float32 audio at 22.05 kHz)`` for every clip, sorted by name."""
    if folder is None:
        return []
    from avtool.io.audio import load_audio

    return [(p.stem, load_audio(p, SAMPLE_RATE)[0]) for p in sorted(folder.glob("*.mpg"))]


def synthetic_voice(seconds: float) -> np.ndarray:
    """A fixed voice-like signal: 20 harmonics of a gliding pitch, 4 Hz syllables, noise."""
    t = np.arange(round(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    f0 = 120 + 30 * np.sin(2 * np.pi * 0.3 * t)
    phase = 2 * np.pi * np.cumsum(f0) / SAMPLE_RATE
    voice = sum(np.sin(k * phase) / k for k in range(1, 21))
    envelope = 0.5 + 0.5 * np.sin(2 * np.pi * 4 * t) ** 2
    noise = np.random.default_rng(0).standard_normal(t.size)
    return (0.1 * envelope * voice + 0.003 * noise).astype(np.float32)


def speech_input(clips: list[tuple[str, np.ndarray]], seconds: float) -> tuple[np.ndarray, str]:
    """``seconds`` of the clips back to back (repeated if too short), or the synthetic signal."""
    n = round(seconds * SAMPLE_RATE)
    if not clips:
        return synthetic_voice(seconds), "synthetic (GRID clips not found)"
    joined = np.concatenate([audio for _, audio in clips])
    joined = np.tile(joined, -(-n // joined.size))[:n]
    return np.ascontiguousarray(joined), f"GRID clips concatenated ({len(clips)} clips)"


def alternate(
    contenders: dict[str, Callable[[], object]], repeats: int, warmup: int = 2
) -> dict[str, float]:
    """Median seconds of each contender, timed in turn within each round after a warm-up.

    The warm-up rounds pay for caches, thread pools and fresh memory (Griffin-Lim's first
    calls run several times slower than the later ones).
    """
    for _ in range(warmup):
        for fn in contenders.values():
            fn()
    times: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(repeats):
        for name, fn in contenders.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}


def cpu_snapshot() -> tuple[float, float, float] | None:
    """(CPU seconds busy on the machine, CPU seconds of this process, wall clock), Linux only."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]
    except OSError:
        return None
    user, nice, system, _idle, _iowait, irq, softirq, steal = map(int, fields)
    busy = (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")
    own = time.process_time()
    return busy, own, time.perf_counter()


def other_cores(before: tuple[float, float, float] | None) -> float | None:
    """Cores kept busy by other processes since ``before`` (mean over the wall time).

    Torch's multi-threaded ops slow down many times over when another process holds a core
    (OpenMP waits for its descheduled threads), single-threaded librosa hardly at all, so
    speed figures taken while this is well above 0 are not to be trusted.
    """
    after = cpu_snapshot()
    if before is None or after is None:
        return None
    busy, own, wall = (a - b for a, b in zip(after, before, strict=True))
    return round(max(busy - own, 0.0) / max(wall, 1e-9), 2)


def spectral_convergence(audio: torch.Tensor, magnitude: torch.Tensor, spec: MelSpec) -> float:
    """``|| |STFT(audio)| - magnitude || / || magnitude ||`` under the contract's analysis."""
    rebuilt = stft(audio, spec).abs()[..., : magnitude.shape[-1]]
    return float(torch.linalg.norm(rebuilt - magnitude) / torch.linalg.norm(magnitude))


def griffin_lim_cpu(audio: np.ndarray, repeats: int) -> dict:
    import librosa

    from avtool.models.griffinlim import griffin_lim, mel_to_linear, vocode

    spec = MelSpec.hifigan_22k()
    seconds = audio.size / SAMPLE_RATE
    mel = mel_spectrogram(audio, spec)
    magnitude = mel_to_linear(mel, spec)
    frames = magnitude.shape[-1]
    magnitude_np = magnitude[0].numpy()

    def librosa_gl() -> np.ndarray:
        # center=False iterates on the padded signal the contract's uncentred STFT analysed;
        # cutting `pad` samples off its start aligns it with avtool's output.
        padded = librosa.griffinlim(
            magnitude_np,
            n_iter=ITERS,
            hop_length=spec.hop_length,
            win_length=spec.win_length,
            n_fft=spec.n_fft,
            window="hann",
            center=False,
            momentum=MOMENTUM,
            init="random",
            random_state=0,
        )
        return padded[spec.pad : spec.pad + spec.samples_for(frames)]

    contenders = {
        "librosa": librosa_gl,
        "avtool": lambda: griffin_lim(magnitude, spec, iters=ITERS, momentum=MOMENTUM),
        "vocode": lambda: vocode(mel, spec, iters=ITERS, momentum=MOMENTUM),
    }
    before = cpu_snapshot()
    median = alternate(contenders, repeats)
    others = other_cores(before)
    lib, ours = median["librosa"], median["avtool"]
    return {
        "iters": ITERS,
        "momentum": MOMENTUM,
        "audio_seconds": round(seconds, 2),
        "librosa_s": round(lib, 3),
        "avtool_s": round(ours, 3),
        "librosa_x_real_time": round(seconds / lib, 1),
        "avtool_x_real_time": round(seconds / ours, 1),
        "speedup": round(lib / ours, 2),
        "target_speedup": TARGET_GL_SPEEDUP,
        "meets_target": lib / ours >= TARGET_GL_SPEEDUP,
        "spectral_convergence": {
            "librosa": round(
                spectral_convergence(torch.from_numpy(librosa_gl()), magnitude, spec), 4
            ),
            "avtool": round(spectral_convergence(contenders["avtool"](), magnitude, spec), 4),
        },
        "vocode_s": round(median["vocode"], 3),
        "vocode_x_real_time": round(seconds / median["vocode"], 1),
        "other_processes_cores": others,
    }


def neural_models() -> dict[str, tuple[torch.nn.Module, Callable, MelSpec]]:
    """Random-weight generators with weight norm folded: name -> (model, infer, mel contract)."""
    from avtool.models import hifigan, melgan

    models = {}
    for preset in ("v1", "v2", "v3"):
        torch.manual_seed(0)
        model = hifigan.build(hifigan.HiFiGANConfig.preset(preset)).remove_weight_norm().eval()
        models[f"hifigan_{preset}"] = (model, hifigan.infer, model.config.mel)
    torch.manual_seed(0)
    model = melgan.build(melgan.MelGANConfig.ljspeech()).remove_weight_norm().eval()
    models["melgan_ljspeech"] = (model, melgan.infer, model.config.mel)
    return models


def neural_cpu(models: dict, audio: np.ndarray, repeats: int) -> dict:
    seconds = audio.size / SAMPLE_RATE
    mels = {name: mel_spectrogram(audio, spec) for name, (_, _, spec) in models.items()}
    contenders = {
        name: (lambda m=model, f=infer, x=mels[name]: f(m, x))
        for name, (model, infer, _) in models.items()
    }
    before = cpu_snapshot()
    median = alternate(contenders, repeats, warmup=1)
    others = other_cores(before)
    return {
        "note": "random weights (untrained): speed only; weight norm folded as for inference",
        "batch": 1,
        "audio_seconds": round(seconds, 2),
        "torch_threads": torch.get_num_threads(),
        "other_processes_cores": others,
        "models": {
            name: {
                "params_m": round(sum(p.numel() for p in model.parameters()) / 1e6, 2),
                "s": round(median[name], 3),
                "x_real_time": round(seconds / median[name], 1),
            }
            for name, (model, _, _) in models.items()
        },
    }


def _gpu_time(fn: Callable[[], object], repeats: int) -> float:
    """Median seconds of ``fn`` on the GPU, synchronised before and after each call."""
    for _ in range(3):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(repeats):
        torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def neural_gpu(models: dict, audio: np.ndarray, repeats: int) -> dict:
    if not torch.cuda.is_available():
        return {"available": False, "note": "torch sees no CUDA device: GPU speed not measured"}
    device = torch.device("cuda")
    torch.backends.cudnn.benchmark = True
    seconds = audio.size / SAMPLE_RATE
    runs = max(10, 3 * repeats)
    results: dict = {}
    for name, (cpu_model, infer, spec) in models.items():
        mel = mel_spectrogram(audio, spec).to(device)
        rows = {}
        for dtype in (torch.float32, torch.float16):
            model = copy.deepcopy(cpu_model).to(device=device, dtype=dtype)
            batches = GPU_BATCHES if dtype == torch.float32 else GPU_BATCHES[-1:]
            for batch in batches:
                x = mel.expand(batch, -1, -1).contiguous()
                torch.cuda.reset_peak_memory_stats()
                took = _gpu_time(lambda m=model, x=x, f=infer: f(m, x), runs)
                rows[f"batch_{batch}_{str(dtype).removeprefix('torch.')}"] = {
                    "s": round(took, 4),
                    "x_real_time": round(batch * seconds / took, 1),
                    "peak_memory_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2),
                }
            del model
            torch.cuda.empty_cache()
        results[name] = rows
    v1 = results["hifigan_v1"]
    best_fp32 = max(v1[f"batch_{b}_float32"]["x_real_time"] for b in GPU_BATCHES)
    best_any = max(row["x_real_time"] for row in v1.values())
    return {
        "available": True,
        "device": torch.cuda.get_device_name(device),
        "note": "random weights (untrained): speed only; float32 convolutions may use TF32",
        "cudnn_allow_tf32": torch.backends.cudnn.allow_tf32,
        "audio_seconds_per_item": round(seconds, 2),
        "models": results,
        "anchor": {
            "hifigan_v1_x_real_time": ANCHOR_X_REAL_TIME,
            "source": "Vocos paper (Siuzdak 2023): HiFi-GAN V1 on an A100",
            "best_float32_x_real_time": best_fp32,
            "best_x_real_time": best_any,
            "best_float32_vs_anchor": round(best_fp32 / ANCHOR_X_REAL_TIME, 2),
            "meets_anchor_float32": best_fp32 >= ANCHOR_X_REAL_TIME,
        },
    }


def _scores(reference: np.ndarray, estimate: np.ndarray) -> dict[str, float]:
    from avtool.metrics import speech

    return {
        "pesq_wb": speech.pesq_wb(reference, estimate, SAMPLE_RATE),
        "stoi": speech.stoi(reference, estimate, SAMPLE_RATE),
        "estoi": speech.stoi(reference, estimate, SAMPLE_RATE, extended=True),
        "mcd_db": speech.mel_cepstral_distortion(reference, estimate, SAMPLE_RATE),
        "mr_stft": speech.multi_resolution_stft_distance(reference, estimate),
    }


def quality(clips: list[tuple[str, np.ndarray]], work: Path) -> dict:
    if not clips:
        return {"skipped": "GRID clips not found ($AVTOOL_SHARED_DATA/grid, ../shared/data/grid)"}
    from avtool.io.audio import load_audio, save_audio
    from avtool.models.griffinlim import vocode

    spec = MelSpec.hifigan_22k()
    per_row: dict[str, list[dict[str, float]]] = {}
    for index, (name, audio) in enumerate(clips):
        save_audio(work / f"{name}.wav", audio, SAMPLE_RATE)
        mel = mel_spectrogram(audio, spec)
        rng = np.random.default_rng(index)
        noise = rng.standard_normal(audio.size) * math.sqrt(
            float(np.mean(audio.astype(float) ** 2))
        )
        outputs = {
            "identity": load_audio(work / f"{name}.wav")[0],
            "griffin_lim_32": vocode(mel, spec, iters=32)[0].numpy(),
            "griffin_lim_100": vocode(mel, spec, iters=100)[0].numpy(),
            "noise_0db": audio + noise.astype(np.float32),
        }
        for row, estimate in outputs.items():
            per_row.setdefault(row, []).append(_scores(audio, estimate))
    table = {
        row: {key: round(statistics.mean(s[key] for s in scores), 3) for key in scores[0]}
        for row, scores in per_row.items()
    }
    return {
        "clips": [name for name, _ in clips],
        "sample_rate": SAMPLE_RATE,
        "mel": "hifigan_22k",
        "baseline": "griffin_lim_32",
        "note": (
            "means over clips; identity = saved as 16-bit WAV and loaded (ceiling); "
            "noise_0db = clip + white noise at 0 dB SNR; neural vocoders left out: "
            "random weights are untrained"
        ),
        "rows": table,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("bench-results"))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="3 s of audio and 2 clips")
    args = parser.parse_args()
    os.environ.setdefault("AVTOOL_OFFLINE", "1")
    began = time.perf_counter()
    folder = grid_folder()
    clips = load_clips(folder)
    audio, source = speech_input(clips, 3.0 if args.quick else 10.0)
    results: dict = {
        "machine": {
            "cores": os.cpu_count(),
            "platform": sys.platform,
            "torch": torch.__version__,
            "torch_threads": torch.get_num_threads(),
        },
        "input": {
            "source": source,
            "seconds": round(audio.size / SAMPLE_RATE, 2),
            "sample_rate": SAMPLE_RATE,
            "quick": args.quick,
        },
    }
    models = neural_models()
    with tempfile.TemporaryDirectory() as tmp:
        sections: dict[str, Callable[[], dict]] = {
            "griffin_lim_cpu": lambda: griffin_lim_cpu(audio, args.repeats),
            "neural_cpu": lambda: neural_cpu(models, audio, args.repeats),
            "neural_gpu": lambda: neural_gpu(models, audio, args.repeats),
            "quality": lambda: quality(clips[:2] if args.quick else clips, Path(tmp)),
        }
        for name, section in sections.items():
            start = time.perf_counter()
            results[name] = section()
            results[name]["section_s"] = round(time.perf_counter() - start, 1)
    busy = {
        section: results[section]["other_processes_cores"]
        for section in ("griffin_lim_cpu", "neural_cpu")
        if (results[section]["other_processes_cores"] or 0) > 0.25
    }
    if busy:
        results["warning"] = (
            f"other processes kept cores busy during the CPU timings ({busy}, in cores): "
            "torch's multi-threaded figures are then several times too slow; rerun on a "
            "quiet machine"
        )
    results["elapsed_s"] = round(time.perf_counter() - began, 1)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "vocode.json").write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
