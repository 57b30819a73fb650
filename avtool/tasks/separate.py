"""Source separation: a mixture (and the target's face video) to stems.

Modes, chosen by the model (``--model``) or, without one, by the inputs:

- **audio-visual target extraction** (:data:`AV_MODEL`, when a video is given or the input is a
  video): the face stage and mouth crops of lipread/v2a (:func:`avtool.models.face.track_video`,
  88x88 gray crops), the frozen lip reader's features, then the mask network; writes the
  target and optionally the residual (``--residual``). Speaker order comes from the face.
- **blind two-speaker** (:data:`BLIND_MODEL` or a Conv-TasNet): two stems ``spk1``/``spk2``.
  Long inputs run in chunks of ``chunk_seconds`` with ``overlap_seconds`` of overlap; each chunk's
  stems are put in the order that best matches the previous chunk on the overlap, so speakers
  never swap mid-file, and cross-faded there.
- **music** (:data:`MUSIC_MODEL`): Spleeter's vocals / accompaniment at 44.1 kHz stereo.

Every mode: any sample rate and channel count in (downmixed and resampled to the model's rate),
stems written at the input's rate, the stems summing to the mixture (the resampling residual
goes to the last stem), never clipped (all stems scaled by one gain if one would clip; the gain
is in the sidecar), silence in -> silence out, and for the blind model a mixture of one voice is
reported (one stem far quieter than the other) and written as that voice plus silence.
"""

from __future__ import annotations

import itertools
import logging
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from avtool.engines import RunSettings, run_items
from avtool.errors import InputError, ModelError
from avtool.io.audio import load_audio, resample, save_audio, to_mono
from avtool.io.formats import DEFAULT_LIP_READER, MODEL_FPS, READER_SUFFIXES
from avtool.io.video import probe
from avtool.models.chunked import chunk_bounds
from avtool.models.face import load_detector, track_video
from avtool.models.loading import Loaded, load
from avtool.models.separate import detect_family, spleeter
from avtool.models.separate.visual import lip_reader_features
from avtool.registry import sha256_file
from avtool.runtime import (
    BatchItem,
    BatchSummary,
    check_outputs,
    file_items,
    format_output,
    resolve_device,
    sidecar_path,
    versions,
    write_json,
)
from avtool.tasks.options.separate import AV_MODEL, BLIND_MODEL, SeparateOptions
from avtool.tasks.speaker_guard import SpeakerGuard, load_guard
from avtool.tasks.v2a import stream_crops

log = logging.getLogger(__name__)

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3", ".m4a", ".aac", ".opus")
#: Peak a written stem may reach (PCM_16 full scale is 1.0).
MAX_PEAK = 0.999


# --------------------------------------------------------------------------- pure steps


def best_order(previous: np.ndarray, current: np.ndarray) -> tuple[int, ...]:
    """The stem order of ``current`` that best matches ``previous`` on the same samples.

    Args:
        previous: ``(S, N)`` the earlier chunk's stems over the overlap.
        current: ``(S, N)`` this chunk's stems over the overlap.

    Returns:
        A permutation (``(0, 1)`` or ``(1, 0)`` for two stems) maximising the summed
        correlation.
    """
    s = previous.shape[0]
    best, order = -math.inf, tuple(range(s))
    for perm in itertools.permutations(range(s)):
        score = sum(float(np.dot(previous[i], current[p])) for i, p in enumerate(perm))
        if score > best:
            best, order = score, perm
    return order


def run_chunked(
    fn: Any, audio: np.ndarray, chunk: int, overlap: int, *, align: bool
) -> tuple[np.ndarray, int]:
    """Run a separator chunk by chunk and join the chunks.

    Args:
        fn: ``fn(start, end) -> (S, end - start)`` stems of ``audio[start:end]``.
        audio: ``(T,)`` mixture (only its length is used here).
        chunk: samples per chunk.
        overlap: samples shared by consecutive chunks (linear cross-fade there).
        align: reorder each chunk's stems to match the previous chunk (blind models).

    Returns:
        ``(S, T)`` stems and the number of chunks whose order was swapped.
    """
    n = len(audio)
    bounds = chunk_bounds(n, chunk, overlap)
    out: np.ndarray | None = None
    swaps = 0
    prev_end = 0
    for start, end in bounds:
        stems = np.asarray(fn(start, end), np.float32)
        if out is None:
            out = np.zeros((stems.shape[0], n), np.float32)
            out[:, start:end] = stems
            prev_end = end
            continue
        shared = prev_end - start
        if align and shared > 0:
            order = best_order(out[:, start:prev_end], stems[:, :shared])
            if order != tuple(range(len(order))):
                swaps += 1
                stems = stems[list(order)]
        fade = np.linspace(0.0, 1.0, shared, dtype=np.float32) if shared > 0 else None
        if fade is not None:
            out[:, start:prev_end] = out[:, start:prev_end] * (1 - fade) + stems[:, :shared] * fade
        out[:, prev_end:end] = stems[:, shared:]
        prev_end = end
    assert out is not None
    return out, swaps


def finish_stems(stems: np.ndarray, mixture: np.ndarray) -> tuple[np.ndarray, float]:
    """Make stems sum exactly to the mixture and keep them from clipping.

    Args:
        stems: ``(S, T)`` estimates at the mixture's rate (``(S, C, T)`` for multichannel).
        mixture: ``(T,)`` or ``(C, T)``.

    Returns:
        The stems (last one absorbs ``mixture - sum``) and the gain applied to all of them
        (1.0 unless a stem would exceed :data:`MAX_PEAK`; then they sum to gain x mixture).
    """
    # In place where possible: on long inputs every (S, T) copy is a large share of the peak.
    stems = np.asarray(stems, dtype=np.float32)
    if len(stems) == 2:
        np.subtract(mixture, stems[0], out=stems[1])
    else:
        stems[-1] = mixture - stems[:-1].sum(axis=0)
    peak = max(float(stems.max(initial=0.0)), -float(stems.min(initial=0.0)))
    gain = 1.0 if peak <= MAX_PEAK else MAX_PEAK / peak
    if gain != 1.0:
        stems *= np.float32(gain)
    return stems, gain


def rms_dbfs(audio: np.ndarray) -> float:
    """RMS level in dB relative to full scale (-inf for digital silence)."""
    flat = np.ravel(audio)
    # Blockwise float64 sum of squares: no full-length float64 temporary on long inputs.
    total = sum(
        float(np.dot(b.astype(np.float64), b))
        for b in np.array_split(flat, max(1, flat.size // 1_000_000))
    )
    power = total / flat.size if flat.size else 0.0
    return 10 * math.log10(power) if power > 0 else -math.inf


#: Fewest frames where both stems are voiced for the pitch-agreement rule to apply.
PITCH_MIN_FRAMES = 20


def pitch_track(audio: np.ndarray, sample_rate: int) -> tuple[np.ndarray, ...]:
    """Per-frame energy, periodicity and pitch period of 40 ms Hann frames every 10 ms.

    Args:
        audio: ``(T,)`` samples.
        sample_rate: Hz.

    Returns:
        ``(energy, periodicity, period)``, each ``(N,)``: the frame's sum of squares, its
        normalised autocorrelation peak in [0, 1] between 60 and 400 Hz, and that peak's lag in
        samples.
    """
    frame, hop = int(0.04 * sample_rate), int(0.01 * sample_rate)
    lo, hi = sample_rate // 400, sample_rate // 60
    n = max(0, (len(audio) - frame) // hop + 1)
    size = 1 << (2 * frame - 1).bit_length()
    window = np.hanning(frame)
    energy, peak, period = (np.zeros(n) for _ in range(3))
    for a in range(0, n, 512):  # blocks of frames: bounded memory on long inputs
        idx = np.arange(a, min(n, a + 512))[:, None] * hop + np.arange(frame)[None]
        frames = audio[idx].astype(np.float64) * window
        ac = np.fft.irfft(np.abs(np.fft.rfft(frames, size)) ** 2, size)[:, : hi + 1]
        ac /= ac[:, :1] + 1e-12
        lag = lo + np.argmax(ac[:, lo:hi], axis=1)
        energy[a : a + len(idx)] = (frames**2).sum(1)
        peak[a : a + len(idx)] = ac[np.arange(len(ac)), lag]
        period[a : a + len(idx)] = lag
    return energy, peak, period


def pitch_agreement(stems: np.ndarray, sample_rate: int) -> tuple[float, int]:
    """How often two stems carry the same pitch: one voice split in two, not two voices.

    Frames count where both stems are voiced (periodicity above 0.4) and within 20 dB of their
    own loudest frame; a frame agrees when the two pitch periods differ by under 3.5%
    (0.05 octave).

    Returns:
        ``(share of agreeing frames, frames counted)``; ``(0.0, frames)`` when fewer than
        :data:`PITCH_MIN_FRAMES` count.
    """
    (e0, p0, t0), (e1, p1, t1) = (pitch_track(s, sample_rate) for s in stems[:2])
    if len(e0) == 0:
        return 0.0, 0
    both = (e0 > 0.01 * e0.max()) & (e1 > 0.01 * e1.max()) & (p0 > 0.4) & (p1 > 0.4)
    frames = int(both.sum())
    if frames < PITCH_MIN_FRAMES:
        return 0.0, frames
    agree = np.abs(np.log2(t0[both] / t1[both])) < 0.05
    return float(agree.mean()), frames


def one_speaker_check(
    stems: np.ndarray, options: SeparateOptions, sample_rate: int = 16000
) -> dict[str, Any]:
    """Whether two blind stems are really one voice.

    Two cues, either suffices: the blind model, trained with one-voice examples whose second
    source is silent, leaves one stem near silence on a GRID-like single voice (a level
    difference above ``one_speaker_db``); on other single voices it often splits the voice in
    two, and then both stems carry the same pitch (:func:`pitch_agreement` at or above
    ``one_speaker_pitch``), which two different talkers rarely do.

    Returns:
        ``{"one_speaker", "level_difference_db", "pitch_agreement", "pitch_frames"}``.
    """
    levels = [rms_dbfs(s) for s in stems]
    diff = abs(levels[0] - levels[1]) if all(np.isfinite(levels)) else math.inf
    agreement, frames = pitch_agreement(stems, sample_rate) if np.isfinite(diff) else (0.0, 0)
    one = diff > options.one_speaker_db or agreement >= options.one_speaker_pitch
    return {
        "one_speaker": bool(one),
        "level_difference_db": round(diff, 2) if np.isfinite(diff) else None,
        "pitch_agreement": round(agreement, 3),
        "pitch_frames": frames,
    }


# --------------------------------------------------------------------------- model runs


def audio_visual(loaded: Loaded) -> bool:
    """Whether the model extracts a target by its face (a mask network with visual input)."""
    return loaded.family == "masknet" and bool(loaded.config.visual_dim)


def model_stems(loaded: Loaded) -> tuple[str, ...]:
    """The names of the model's outputs, in order: ``target``, ``residual`` (audio-visual),
    ``spk1``, ``spk2``... (blind), or Spleeter's sources."""
    if loaded.family == "masknet":
        return ("target", "residual") if audio_visual(loaded) else ("spk1", "spk2")
    if loaded.family == "convtasnet":
        return tuple(f"spk{i + 1}" for i in range(loaded.config.n_src))
    return tuple(loaded.config.stems)


def load_separator(name_or_path: str, device: str, accept_license: bool = False) -> Loaded:
    """A separation model through the front door (a local ``.pt`` is a mask network, another
    local file an Asteroid Conv-TasNet).

    Raises:
        ModelError: unknown, unverifiable or unreadable model, or a family this task lacks.
    """

    return load(
        name_or_path,
        task="separate",
        device=device,
        accept_license=accept_license,
        detect=detect_family,
    )


def load_lip_reader(name: str | None, device: str) -> Any:
    """The frozen ResNet lip reader an audio-visual model reads (``lipread-grid-s1`` by
    default), through the front door."""
    return load(
        name or DEFAULT_LIP_READER,
        task="lipread",
        device=device,
        detect=lambda resolved: "lipread-resnet",
    ).module


def masknet_stems(
    loaded: Loaded,
    audio: np.ndarray,
    options: SeparateOptions,
    visual: np.ndarray | None = None,
) -> tuple[np.ndarray, int]:
    """``(2, T)`` stems of a 16 kHz mixture with a mask network (chunked).

    Args:
        visual: ``(V, D)`` lip features at 25 fps covering the audio (audio-visual models).
    """

    model = loaded.module
    rate = loaded.config.sample_rate
    per_frame = rate / MODEL_FPS
    device = next(model.parameters()).device

    def fn(start: int, end: int) -> np.ndarray:
        x = torch.from_numpy(np.ascontiguousarray(audio[start:end]))[None].to(device)
        v = None
        if visual is not None:
            a, b = int(start // per_frame), math.ceil(end / per_frame)
            seg = visual[a:b]
            seg = np.pad(seg, ((0, max(0, b - a - len(seg))), (0, 0)))
            v = torch.from_numpy(seg)[None].to(device)
        with torch.no_grad():
            return model.separate(x, v)[0].cpu().numpy()

    # Chunk edges fall on video frames so the visual features line up.
    frame = int(per_frame)
    chunk = max(frame, int(options.chunk_seconds * rate) // frame * frame)
    overlap = min(chunk // 2, int(options.overlap_seconds * rate) // frame * frame)
    return run_chunked(fn, audio, chunk, overlap, align=not audio_visual(loaded))


def convtasnet_stems(
    loaded: Loaded, audio: np.ndarray, options: SeparateOptions
) -> tuple[np.ndarray, int]:
    """``(n_src, T)`` stems with Conv-TasNet (chunked, aligned across chunks).

    Asteroid's outputs are unscaled; each chunk's stems get the least-squares gains that
    best rebuild the mixture, so chunks join at consistent levels.
    """

    model = loaded.module
    device = next(model.parameters()).device

    def fn(start: int, end: int) -> np.ndarray:
        x = torch.from_numpy(np.ascontiguousarray(audio[start:end]))[None].to(device)
        with torch.no_grad():
            stems = model(x)[0].cpu().numpy().astype(np.float64)
        gains, *_ = np.linalg.lstsq(stems.T, audio[start:end].astype(np.float64), rcond=None)
        return (stems * gains[:, None]).astype(np.float32)

    rate = loaded.config.sample_rate
    chunk = int(options.chunk_seconds * rate)
    overlap = min(chunk // 2, int(options.overlap_seconds * rate))
    return run_chunked(fn, audio, chunk, overlap, align=True)


def music_stems(loaded: Loaded, audio: np.ndarray, options: SeparateOptions) -> np.ndarray:
    """``(2, 2, T)`` vocals and accompaniment of ``(2, T)`` 44.1 kHz stereo."""

    device = next(loaded.module.parameters()).device
    x = torch.from_numpy(np.ascontiguousarray(audio, np.float32)).to(device)
    return spleeter.infer(loaded.module, x).cpu().numpy()


# --------------------------------------------------------------------------- files


def output_paths(template: Path, stems: tuple[str, ...]) -> list[Path]:
    """One path per stem from ``template`` (``{n}`` = 1, 2, ...; ``{source}`` = stem name).

    Raises:
        InputError: a multi-stem template without ``{n}`` or ``{source}``.
    """
    text = str(template)
    if "{n}" not in text and "{source}" not in text:
        raise InputError(
            f"-o {text}: this model writes {len(stems)} stems ({', '.join(stems)}); put {{n}} or "
            "{source} in the output name, e.g. '{stem}.spk{n}.wav'"
        )
    return [
        Path(text.replace("{n}", str(i + 1)).replace("{source}", name))
        for i, name in enumerate(stems)
    ]


def _escape(template: str) -> str:
    """Keep ``{n}``/``{source}`` through :func:`avtool.runtime.format_output`."""
    return template.replace("{n}", "{{n}}").replace("{source}", "{{source}}")


@dataclass
class Prepared:
    """What the face stage found for one audio-visual item."""

    visual: np.ndarray
    frames: int
    face_detected_fraction: float
    speaker_check: dict | None
    warnings: list[str]


def visual_features(
    loaded: Loaded,
    lip_reader: Any,
    detector: Any,
    video: Path,
    n_samples: int,
    sample_rate: int,
    options: SeparateOptions,
    guard: Any = None,
) -> Prepared:
    """Track the face, cut mouth crops and run the frozen lip reader.

    Raises:
        InputError: no face (frames named), a long face gap, a video whose length differs from
            the audio's by more than ``max_offset_seconds``.
    """

    info = probe(video)
    audio_seconds = n_samples / sample_rate
    if info.n_frames == 0 or info.duration <= 0:
        raise InputError(f"{video}: the video has no frames")
    if abs(info.duration - audio_seconds) > options.max_offset_seconds:
        raise InputError(
            f"{video}: video is {info.duration:.2f} s but the audio is {audio_seconds:.2f} s; "
            f"more than {options.max_offset_seconds:g} s apart, so they cannot be aligned"
        )
    track = track_video(video, fps=MODEL_FPS, detector=detector, max_gap=options.max_gap)
    warnings: list[str] = []
    check = None
    if guard is not None:
        result = guard.check_video(video, track.landmarks, track.detected, MODEL_FPS).emit()
        check, warnings = result.record, list(result.warnings)
    crops = np.stack(list(stream_crops(video, track.landmarks, 88)))
    n = min(len(crops), len(track.landmarks))
    features = lip_reader_features(lip_reader, crops[:n], track.landmarks[:n])
    return Prepared(features, n, round(float(track.detected.mean()), 4), check, warnings)


def load_audio_for(path: Path) -> tuple[np.ndarray, int]:
    """``(C, T)`` float32 and the file's rate (a video's soundtrack for video files)."""
    audio, rate = load_audio(path, mono=False)
    if audio.size == 0:
        raise InputError(f"{path}: the audio is empty")
    return audio, rate


def separate_file(
    loaded: Loaded,
    source: Path,
    outputs: list[Path],
    options: SeparateOptions,
    *,
    video: Path | None = None,
    lip_reader: Any = None,
    detector: Any = None,
    guard: Any = None,
    write_stems: tuple[bool, ...] | None = None,
) -> dict[str, Any]:
    """Separate one mixture and write its stems (each with a JSON sidecar).

    Args:
        loaded: the model.
        source: the mixture (any audio, or a video whose soundtrack is the mixture).
        outputs: one path per stem (:func:`model_stems` order).
        options: run-time options.
        video: the target's face video (audio-visual models).
        lip_reader, detector, guard: the audio-visual model's front-end, face detector and
            speaker-domain guard.
        write_stems: which stems to write (default all).

    Returns:
        The sidecar content (shared by the stems, each with its own ``output``).

    Raises:
        InputError: bad input (see the module docstring); nothing is written then.
    """

    start = time.perf_counter()
    mixture, rate = load_audio_for(source)
    if mixture.shape[0] > 2:  # surround: separate the downmix
        mixture = to_mono(mixture)[None]
    channels = mixture.shape[0]
    warnings: list[str] = []
    record: dict[str, Any] = {}
    prepared = None
    if audio_visual(loaded):
        if video is None:
            raise InputError(f"{source}: {loaded.name} needs the target's face: give --video")
        prepared = visual_features(
            loaded, lip_reader, detector, video, mixture.shape[1], rate, options, guard
        )
        warnings += prepared.warnings
    face_s = time.perf_counter() - start
    level = rms_dbfs(mixture)
    swaps = 0
    gain = 1.0
    if loaded.family == "spleeter":
        stereo = mixture if channels == 2 else np.repeat(to_mono(mixture)[None], 2, axis=0)
        x = resample(stereo, rate, loaded.config.sample_rate)
        if level < options.silence_dbfs:
            stems44 = np.zeros((2, *x.shape), np.float32)
            warnings.append(f"{source}: silent input ({level:.0f} dBFS); wrote silent stems")
        else:
            stems44 = music_stems(loaded, x, options)
        stems = np.stack([resample(s, loaded.config.sample_rate, rate) for s in stems44])
        stems = stems[..., : mixture.shape[1]]
        stems = np.pad(stems, ((0, 0), (0, 0), (0, mixture.shape[1] - stems.shape[-1])))
        if channels == 1:
            stems = stems.mean(axis=1)  # (2, T): back to the input's one channel
        stems, gain = finish_stems(stems, mixture if channels == 2 else mixture[0])
    else:
        mono = mixture[0] if channels == 1 else to_mono(mixture)
        x = resample(mono, rate, loaded.config.sample_rate)
        if level < options.silence_dbfs:
            stems16 = np.zeros((2, len(x)), np.float32)
            warnings.append(f"{source}: silent input ({level:.0f} dBFS); wrote silent stems")
        elif loaded.family == "masknet":
            visual = None
            if prepared is not None:
                need = math.ceil(len(x) / loaded.config.sample_rate * MODEL_FPS)
                visual = prepared.visual[:need]
                visual = np.pad(visual, ((0, need - len(visual)), (0, 0)), mode="edge")
            stems16, swaps = masknet_stems(loaded, x, options, visual)
        else:
            stems16, swaps = convtasnet_stems(loaded, x, options)
        if rate != loaded.config.sample_rate:
            stems = np.stack([resample(s, loaded.config.sample_rate, rate) for s in stems16])
        else:
            stems = stems16
        del stems16, x
        if stems.shape[1] != len(mono):
            stems = stems[:, : len(mono)]
            stems = np.pad(stems, ((0, 0), (0, len(mono) - stems.shape[1])))
        if not audio_visual(loaded) and level >= options.silence_dbfs and len(stems) == 2:
            check = one_speaker_check(stems, options, rate)
            record["one_speaker_check"] = check
            if check["one_speaker"]:
                loud = int(rms_dbfs(stems[1]) > rms_dbfs(stems[0]))
                stems = np.zeros_like(stems)
                stems[0] = mono  # the voice in spk1, silence in spk2 (no invented second voice)
                warnings.append(
                    f"{source}: one speaker found, not two (stem level difference "
                    f"{check['level_difference_db']} dB, pitch agreement "
                    f"{check['pitch_agreement']:.0%}); "
                    "wrote the mixture as spk1 and silence as spk2 "
                    f"(the louder stem was spk{loud + 1})"
                )
        stems, gain = finish_stems(stems, mono)
        if channels > 1:
            log.info("%s: %d channels downmixed to mono for separation", source.name, channels)
    if gain < 1.0:
        warnings.append(
            f"{source}: stems scaled by {gain:.4f} ({20 * math.log10(gain):.2f} dB) so none clips; "
            "they sum to that fraction of the mixture"
        )
    for message in warnings[len(prepared.warnings) if prepared else 0 :]:
        log.warning("%s", message)
    model_s = time.perf_counter() - start - face_s
    n_samples = mixture.shape[-1]
    # Only the stems are needed from here: drop the mixture (and its mono view) before
    # writing, which lowers the peak memory of long inputs.
    mixture = mono = None
    wanted = write_stems or tuple(True for _ in outputs)
    written = []
    for stem, path, keep in zip(stems, outputs, wanted, strict=True):
        if keep:
            save_audio(path, stem, rate)
            written.append(path)
    seconds = time.perf_counter() - start
    duration = n_samples / rate
    meta = {
        "task": "separate",
        "mode": (
            "audio-visual"
            if audio_visual(loaded)
            else "music"
            if loaded.family == "spleeter"
            else "blind"
        ),
        "model": loaded.facts(),
        "seed": options.seed,
        "options": asdict(options),
        "input": {
            "audio": str(source),
            "video": str(video) if video else None,
            "sample_rate": rate,
            "channels": channels,
            "duration": round(duration, 4),
            "rms_dbfs": None if not np.isfinite(level) else round(level, 2),
            "frames": prepared.frames if prepared else None,
            "face_detected_fraction": prepared.face_detected_fraction if prepared else None,
        },
        "stems": [
            {
                "name": name,
                "output": str(path) if keep else None,
                "rms_dbfs": None if not np.isfinite(rms_dbfs(s)) else round(rms_dbfs(s), 2),
            }
            for name, path, keep, s in zip(model_stems(loaded), outputs, wanted, stems, strict=True)
        ],
        "gain": round(gain, 6),
        "chunk_swaps": swaps,
        **record,
        "speaker_check": prepared.speaker_check if prepared else None,
        "warnings": warnings,
        "timings": {
            "load_s": round(loaded.load_seconds, 4),
            "face_s": round(face_s, 4),
            "model_s": round(model_s, 4),
            "total_s": round(seconds, 4),
            "x_real_time": round(duration / seconds, 2) if seconds else None,
        },
        "versions": versions(),
    }
    for path in written:
        write_json(sidecar_path(path), {**meta, "output": str(path), "sha256": sha256_file(path)})
    return meta


# --------------------------------------------------------------------------- batch


def build_items(
    inputs: list[str], manifest: Path | None, output_template: str, video: Path | None = None
) -> list[BatchItem]:
    """Items from audio/video files, folders, globs and a manifest (``input``, ``id``,
    ``output``, ``video``). ``{n}`` and ``{source}`` in the template name the stems.

    Raises:
        InputError: no inputs, a missing file, a bad manifest row.
    """
    return file_items(
        inputs,
        AUDIO_SUFFIXES + READER_SUFFIXES,
        manifest,
        _escape(output_template),
        path_columns=("input", "video"),
        item_options=("video",),
        input_options={"video": video} if video else None,
        nothing="nothing to do: give mixture files or --manifest",
    )


def default_model(items: list[BatchItem]) -> str:
    """:data:`AV_MODEL` when any item has a face video (or is a video), else :data:`BLIND_MODEL`."""
    for item in items:
        if item.options.get("video") or Path(item.input).suffix.lower() in READER_SUFFIXES:
            return AV_MODEL
    return BLIND_MODEL


def run(
    items: list[BatchItem],
    options: SeparateOptions,
    settings: RunSettings | None = None,
    *,
    residual_template: str | None = None,
) -> BatchSummary:
    """Separate every item with one loaded model (and face stage for audio-visual models) per
    worker (``settings.batch``: engine, workers).

    Raises:
        InputError: bad options or outputs; ModelError: a model cannot be loaded.
    """
    settings = settings or RunSettings()

    if options.chunk_seconds <= 0 or not 0 <= options.overlap_seconds < options.chunk_seconds:
        raise InputError("--chunk-seconds must be > 0 and --overlap-seconds in [0, chunk)")
    run_on = resolve_device(settings.device, engine="torch")
    model_name = options.model or default_model(items)
    loaded = load_separator(model_name, run_on, settings.accept_license)
    plans: list[tuple[BatchItem, list[Path], tuple[bool, ...]]] = []
    checked: list[BatchItem] = []
    for item in items:
        assert item.output is not None
        if audio_visual(loaded):
            target = Path(str(item.output).replace("{n}", "1").replace("{source}", "target"))
            residual = None
            if residual_template:
                residual = format_output(
                    _escape(residual_template),
                    item_id=item.id,
                    index=item.index,
                    source=item.source,
                )
                residual = Path(str(residual).replace("{n}", "2").replace("{source}", "residual"))
            paths = [target, residual or target.with_name(target.name + ".unused")]
            plans.append((item, paths, (True, residual is not None)))
        else:
            if residual_template:
                raise InputError("--residual is for audio-visual target extraction only")
            paths = output_paths(item.output, model_stems(loaded))
            plans.append((item, paths, tuple(True for _ in paths)))
        for k, (path, keep) in enumerate(zip(plans[-1][1], plans[-1][2], strict=True)):
            if keep:
                checked.append(replace(item, output=path, id=f"{item.id}#{k}"))
    check_outputs(checked, settings.policy)

    def face_stage(model: Loaded, on: str) -> tuple[Any, Any, Any]:
        """The lip reader, face detector and speaker guard of an audio-visual model."""
        if not audio_visual(model):
            return None, None, None

        reader = load_lip_reader(model.details["lip_reader"], on)
        return (reader, load_detector(accept_license=settings.accept_license),
                _load_guard(model.name, settings.accept_license))  # fmt: skip

    # The models loaded here planned the outputs; the local engine reuses them, a Ray worker
    # loads its own (dlib's detector does not cross processes).
    local = settings.batch.engine == "local"
    driver_models = (loaded, *face_stage(loaded, run_on)) if local else None
    by_index = {item.index: (paths, keep) for item, paths, keep in plans}

    def worker() -> Callable[[BatchItem], list[Path]]:  # once per worker: load, then items
        models = driver_models
        if models is None:
            on = resolve_device(settings.device, engine="torch")
            model = load_separator(model_name, on, settings.accept_license)
            models = (model, *face_stage(model, on))
        model, lip_reader, detector, guard = models

        def process(item: BatchItem) -> list[Path]:
            paths, keep = by_index[item.index]
            video = item.options.get("video")
            source = Path(item.input)
            if audio_visual(model) and video is None and source.suffix.lower() in READER_SUFFIXES:
                video = source
            separate_file(
                model,
                source,
                paths,
                options,
                video=Path(video) if video else None,
                lip_reader=lip_reader,
                detector=detector,
                guard=guard,
                write_stems=keep,
            )
            return [p for p, k in zip(paths, keep, strict=True) if k]

        return process

    first = [replace(item, output=by_index[item.index][0][0]) for item in items]
    return run_items(first, worker, settings, label="separate")


def _load_guard(name: str, accept_license: bool) -> SpeakerGuard | None:
    """The speaker-domain guard of a speaker-dependent model (None when it names no identity)."""
    try:
        return load_guard(name, accept_license=accept_license)
    except ModelError as exc:
        log.warning("speaker check unavailable: %s", exc)
        return None
