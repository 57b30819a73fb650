"""Video to speech: a talking-face video (and optionally noisy audio) to a waveform.

The pipeline for one video:

1. **Face stage**, exactly as the training cache was made (:func:`avtool.datasets.grid.
   prepare_clip`): :func:`avtool.models.face.track_video` at 25 fps (other and variable frame rates
   are resampled by ffmpeg's ``fps`` filter, with a warning), then 88x88 gray mouth crops from
   :func:`avtool.io.face.mouth_crops` on a second, streaming pass over the frames.
2. **Checks** with clear errors naming the file and frames: no frames, no face, a face lost for
   more than ``max_gap`` frames, a profile view (head yaw beyond ``max_yaw`` degrees for more
   than ``max_gap`` frames), and for audio-visual mode a missing audio track.
3. **Model**, chunk by chunk: windows of ``chunk_frames`` video frames with ``context_frames``
   of context on each side; only each window's core mel frames are kept, so memory for crops
   is bounded by one window whatever the video length. The mel has exactly
   ``MelSpec.frames_for(round(T * sample_rate / fps))`` frames.
4. **Vocoder**: HiFi-GAN V1 universal fine-tuned on GRID s1's training speech
   (:data:`DEFAULT_VOCODER`; better than universal on the s1 validation split, see
   docs/vocode.md) when the model's mel has its contract (every registered V2A model's does), else
   Griffin-Lim; or any vocoder named with ``--vocoder``, through
   :func:`avtool.tasks.vocode.load_vocoder`, with the mel contract checked.

Outputs (WAV/FLAC, optionally the mel as ``.npz``) are written atomically with a JSON sidecar.
"""

from __future__ import annotations

import logging
import math as _math
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch

from avtool.engines import RunSettings, run_items
from avtool.errors import InputError, ModelError
from avtool.io.audio import load_audio, save_audio
from avtool.io.face import MouthCrop, estimate_pose, gap_ranges, mouth_crops
from avtool.io.features import MelSpec, assert_compatible, mel_spectrogram, save_mel
from avtool.io.formats import MODEL_FPS, READER_SUFFIXES
from avtool.io.video import VideoReader, probe
from avtool.models import v2a
from avtool.models.chunked import context_windows
from avtool.models.face import load_detector, track_video
from avtool.models.loading import Loaded, load
from avtool.registry import sha256_file
from avtool.runtime import (
    BatchSummary,
    check_outputs,
    file_items,
    format_output,
    resolve_device,
    sidecar_path,
    versions,
    write_json,
)
from avtool.tasks.lipread import check_videos
from avtool.tasks.options.v2a import AV2A_MODEL, DEFAULT_VOCODER, V2A_MODEL, V2AOptions
from avtool.tasks.options.vocode import VocodeOptions
from avtool.tasks.speaker_guard import load_guard
from avtool.tasks.vocode import default_vocoder, load_vocoder

log = logging.getLogger(__name__)

#: Shortest video made into speech (frames at 25 fps, 0.2 s): the video stem's temporal kernel
#: (5 frames), as :data:`avtool.tasks.lipread.MIN_FRAMES`; a still image or a 1-frame video
#: gave 0.04 s of audio.
MIN_FRAMES = 5


def load_model(name_or_path: str, *, device: str = "auto") -> Loaded:
    """Resolve and load a V2A/AV2A model (registry name, or a ``.pt`` state dict whose
    config is in ``<file>.json`` or ``config.json`` beside it).

    Raises:
        ModelError: unknown, unverifiable or unreadable model, or weights not matching.
    """

    # v2a is one family: a local file needs no detection.
    return load(
        name_or_path,
        task="v2a",
        device=resolve_device(device, engine="torch"),
        detect=lambda resolved: "v2a",
    )


def vocoder_name(options: V2AOptions, loaded: Loaded) -> str:
    """``options.vocoder``, or the default for the model's mel contract (see V2AOptions)."""

    if options.vocoder:
        return options.vocoder
    spec = MelSpec.preset(loaded.module.config.mel_preset)
    return DEFAULT_VOCODER if default_vocoder(spec) != "griffin-lim" else "griffin-lim"


def check_pose(landmarks: Any, detected: Any, max_yaw: float, max_gap: int, source: str) -> Any:
    """Mark profile-view frames as undetected and refuse long runs of them.

    Args:
        landmarks: ``(T, 68, 2)`` pixels.
        detected: ``(T,)`` bool.
        max_yaw: degrees of head yaw beyond which a frame is a profile view.
        max_gap: longest tolerated run of unusable frames.
        source: file name for messages.

    Returns:
        ``(T,)`` yaw in degrees.

    Raises:
        InputError: a run of more than ``max_gap`` profile frames (frames named).
    """
    yaw = np.array([estimate_pose(p.astype(np.float64)).yaw for p in landmarks], np.float32)
    usable = detected & (np.abs(yaw) <= max_yaw)
    runs = [(a, b) for a, b in gap_ranges(usable) if b - a + 1 > max_gap]
    profile = [(a, b) for a, b in runs if (np.abs(yaw[a : b + 1]) > max_yaw).any()]
    if profile:
        a, b = profile[0]
        raise InputError(
            f"{source}: profile view (head yaw up to {np.abs(yaw[a : b + 1]).max():.0f} degrees, "
            f"limit {max_yaw:g}) at frames {a}-{b}; a near-frontal face is needed"
        )
    return yaw


def stream_crops(path: Path, landmarks: Any, size: int) -> Iterator[Any]:
    """Gray 88x88 mouth crops ``(88, 88)`` uint8, one per 25 fps frame (a streaming pass)."""

    with VideoReader(path, fps=MODEL_FPS) as reader:
        frames = _take(reader, len(landmarks))
        yield from mouth_crops(frames, landmarks, MouthCrop.preset("gray88"))


def _take(frames: Iterable[Any], n: int) -> Iterator[Any]:
    for i, frame in enumerate(frames):
        if i >= n:
            return
        yield frame


def predict_mel(
    model: Any,
    crops: Iterable[Any],
    n_video: int,
    n_mel: int,
    noisy_mel: Any,
    options: V2AOptions,
    landmarks: Any = None,
) -> Any:
    """Run the model window by window over streamed crops.

    Args:
        model: a :class:`~avtool.models.v2a.V2AModel` in eval mode.
        crops: ``n_video`` crops ``(88, 88)`` uint8, in order.
        n_video: video frames.
        n_mel: mel frames to produce.
        noisy_mel: ``(n_mels, n_mel)`` log mel of the noisy audio, or None (video only).
        options: chunking options.
        landmarks: ``(n_video, 68, 2)`` face landmarks in pixels (used by models with
            ``lip_landmarks``).

    Returns:
        ``(n_mels, n_mel)`` float32 numpy log mel.
    """
    ratio = n_mel / n_video
    out = np.empty((model.config.n_mels, n_mel), np.float32)
    buffer: list[Any] = []
    first = 0  # video frame index of buffer[0]
    iterator = iter(crops)

    for core_a, core_b, win_a, win_b in context_windows(
        n_video, options.chunk_frames, options.context_frames
    ):
        while first + len(buffer) < win_b:
            buffer.append(next(iterator))
        window = np.stack(buffer[win_a - first : win_b - first])
        mel_a = round(win_a * ratio)
        mel_w = n_mel if win_b == n_video else round(win_b * ratio)
        noisy = None if noisy_mel is None else noisy_mel[:, mel_a:mel_w]
        marks = None if landmarks is None else landmarks[win_a:win_b]
        pred = v2a.infer(model, window, mel_w - mel_a, noisy, marks).numpy()
        core_start = round(core_a * ratio)
        core_end = n_mel if core_b == n_video else round(core_b * ratio)
        out[:, core_start:core_end] = pred[:, core_start - mel_a : core_end - mel_a]
        # Keep only what the next window needs (its context reaches back context_frames).
        keep_from = max(0, core_b - options.context_frames)
        del buffer[: max(0, keep_from - first)]
        first = max(first, keep_from)
    return out


def speech_from_mel(vocoder: Any, mel: Any, spec: Any) -> Any:
    """The vocoder's waveform of a predicted mel, scaled into [-0.99, 0.99] if it overshoots.

    Args:
        vocoder: a loaded :class:`~avtool.tasks.vocode.Vocoder`.
        mel: ``(n_mels, F)`` log mel (array or tensor) in the contract ``spec``.
        spec: the :class:`~avtool.io.features.MelSpec` of the mel.

    Returns:
        ``(S,)`` float32 numpy samples at ``spec.sample_rate``.
    """

    if not isinstance(mel, torch.Tensor):
        mel = torch.from_numpy(np.ascontiguousarray(mel))
    samples = vocoder.run(mel[None], spec).reshape(-1).detach().cpu().numpy().astype(np.float32)
    peak = float(np.abs(samples).max()) if samples.size else 0.0
    if peak > 0.99:  # Griffin-Lim of a predicted mel can overshoot; scale rather than clip
        samples *= 0.99 / peak
    return samples


def noisy_mel_for(path: Path, n_mel: int, spec: Any) -> Any:
    """``(n_mels, n_mel)`` log mel of an audio file (or a video's audio track), cut/padded.

    Raises:
        InputError: no audio stream, undecodable, or too short.
    """

    audio, _ = load_audio(path, sample_rate=spec.sample_rate)
    if audio.size <= spec.n_fft:
        raise InputError(f"{path}: the audio is too short ({audio.size} samples)")
    with torch.no_grad():
        mel = mel_spectrogram(torch.from_numpy(np.ascontiguousarray(audio)), spec)[0].numpy()
    if mel.shape[1] < n_mel:  # audio shorter than the video: silence (the log floor) after it
        floor = _math.log(spec.clip_floor)
        mel = np.pad(mel, ((0, 0), (0, n_mel - mel.shape[1])), constant_values=floor)
    return mel[:, :n_mel]


def v2a_file(
    loaded: Loaded,
    vocoder: Any,
    detector: Any,
    video: Path,
    output: Path,
    options: V2AOptions,
    *,
    audio: Path | None = None,
    mel_output: Path | None = None,
    guard: Any = None,
    warnings: Iterable[str] = (),
) -> dict[str, Any]:
    """Make speech for one video; write ``output`` (+ ``mel_output``) and the sidecar.

    ``guard`` (a :class:`~avtool.tasks.speaker_guard.SpeakerGuard`) compares the face with
    the model's training speaker: another person gets a warning (stderr and sidecar).
    ``warnings`` (e.g. a truncated file, from :func:`avtool.tasks.lipread.check_videos`) go
    into the sidecar too.

    Returns:
        The sidecar's content.

    Raises:
        InputError: see the module docstring; nothing is written then.
    """

    start = time.perf_counter()
    model = loaded.module
    wants_audio = audio is not None or options.audio_from_video
    if wants_audio and model.audio is None:
        raise ModelError(f"{loaded.name}: a video-only model; give an AV2A model for --audio")
    info = probe(video)
    if info.n_frames == 0 or info.duration <= 0:
        raise InputError(f"{video}: the video has no frames")
    audio_source = video if options.audio_from_video else audio
    if audio_source is not None and audio_source == video and not info.has_audio:
        raise InputError(f"{video}: has no audio track for audio-visual mode (frame 0 onwards)")
    if abs(info.fps - MODEL_FPS) > 0.01:
        log.warning(
            "%s: %.3f fps resampled to %g fps (the model's rate)", video, info.fps, MODEL_FPS
        )
    track = track_video(video, fps=MODEL_FPS, detector=detector, max_gap=options.max_gap)
    if track.n_frames < MIN_FRAMES:
        raise InputError(
            f"{video}: {track.n_frames} video frame{'s' if track.n_frames != 1 else ''} decode; "
            f"v2a needs at least {MIN_FRAMES} ({MIN_FRAMES / MODEL_FPS:.2f} s at {MODEL_FPS:g} fps)"
        )
    yaw = check_pose(track.landmarks, track.detected, options.max_yaw, options.max_gap,
                     str(video))  # fmt: skip
    check = None
    if guard is not None:
        check = guard.check_video(video, track.landmarks, track.detected, MODEL_FPS).emit()
    face_s = time.perf_counter() - start
    spec = MelSpec.preset(model.config.mel_preset)
    if vocoder.spec is not None:
        assert_compatible(spec, vocoder.spec, video)
    n_video = track.n_frames
    n_samples = round(n_video * spec.sample_rate / MODEL_FPS)
    n_mel = spec.frames_for(n_samples)
    noisy = None
    if audio_source is not None:
        noisy = noisy_mel_for(audio_source, n_mel, spec)
    mel = predict_mel(model, stream_crops(video, track.landmarks, 88), n_video, n_mel, noisy,
                      options, track.landmarks)  # fmt: skip
    model_s = time.perf_counter() - start - face_s
    samples = speech_from_mel(vocoder, mel, spec)
    if mel_output is not None:
        save_mel(mel_output, mel, spec)
    save_audio(output, samples, spec.sample_rate)
    seconds = time.perf_counter() - start
    duration = samples.size / spec.sample_rate
    meta = {
        "task": "v2a",
        "output": str(output),
        "mel_output": str(mel_output) if mel_output else None,
        "mode": "audio-visual" if noisy is not None else "video",
        "model": {**loaded.facts(), "config": model.config.to_dict()},
        "vocoder": {"name": vocoder.name, "family": vocoder.family, "sha256": vocoder.sha256},
        "seed": options.seed,
        "options": asdict(options),
        "input": {"video": str(video), "audio": str(audio_source) if audio_source else None,
                  "source_fps": info.fps, "fps": MODEL_FPS, "frames": n_video,
                  "face_detected_fraction": round(float(track.detected.mean()), 4),
                  "max_abs_yaw": round(float(np.abs(yaw).max()), 1)},
        "speaker_check": check.record if check else None,
        "warnings": [*warnings, *(check.warnings if check else [])],
        "mel": {"frames": int(n_mel), "melspec": spec.to_dict()},
        "audio": {"sample_rate": spec.sample_rate, "samples": int(samples.size),
                  "duration": round(duration, 4), "sha256": sha256_file(output)},
        "timings": {"load_s": round(loaded.load_seconds, 4), "face_s": round(face_s, 4),
                    "model_s": round(model_s, 4), "total_s": round(seconds, 4),
                    "x_real_time": round(duration / seconds, 2) if seconds else None},
        "versions": versions(),
    }  # fmt: skip
    write_json(sidecar_path(output), meta)
    return meta


def build_items(
    inputs: list[str],
    manifest: Path | None,
    output_template: str,
    audio: Path | None = None,
) -> list:
    """Items from video files, folders, globs and a manifest (columns ``input``, optional
    ``id``, ``output``, ``audio``). ``audio`` applies to every command-line input.

    Raises:
        InputError: no inputs, a missing file, a bad manifest row.
    """
    return file_items(
        inputs, READER_SUFFIXES, manifest, output_template, path_columns=("input", "audio"),
        item_options=("audio",), input_options={"audio": audio} if audio else None,
        nothing="nothing to do: give video files or --manifest",
    )  # fmt: skip


def run(
    items: list,
    options: V2AOptions,
    settings: RunSettings | None = None,
    *,
    mel_template: str | None = None,
) -> BatchSummary:
    """Make speech for every item with one loaded model, vocoder and face detector per worker
    (``settings.batch``: engine, workers).

    Raises:
        InputError: bad options or outputs; ModelError: a model cannot be loaded.
    """
    settings = settings or RunSettings()

    if options.chunk_frames < 1 or options.context_frames < 0:
        raise InputError("--chunk-frames must be >= 1 and --context-frames >= 0")
    if options.iters is not None and options.iters < 1:
        raise InputError(f"--iters {options.iters}: must be at least 1")
    check_outputs(items, settings.policy)
    any_audio = options.audio_from_video or any(i.options.get("audio") for i in items)
    name = options.model or (AV2A_MODEL if any_audio else V2A_MODEL)
    # Every video is scanned before the models load: a bad one fails at once, in one line.
    items, warnings = check_videos(items, min_frames=MIN_FRAMES, fps=MODEL_FPS, task="v2a",
                                   policy=settings.policy)  # fmt: skip

    def worker() -> Callable[[Any], list[Path]]:  # once per worker: load, then items
        if all(item.error is not None for item in items):
            return lambda item: []  # nothing left to do: no model to load
        loaded = load_model(name, device=settings.device)
        if any_audio and loaded.module.audio is None:
            raise ModelError(f"{loaded.name}: a video-only model; give an AV2A model for --audio")
        vocoder_options = VocodeOptions(
            model=vocoder_name(options, loaded), iters=options.iters, seed=options.seed
        )
        vocoder = load_vocoder(
            vocoder_options, device=settings.device, accept_license=settings.accept_license
        )
        detector = load_detector(accept_license=settings.accept_license)
        guard = load_guard(loaded.name, accept_license=settings.accept_license)

        def process(item) -> list[Path]:
            mel_out = None
            if mel_template:
                mel_out = format_output(mel_template, item_id=item.id, index=item.index,
                                        source=item.source)  # fmt: skip
            v2a_file(loaded, vocoder, detector, item.source, item.output, options,
                     audio=item.options.get("audio"), mel_output=mel_out, guard=guard,
                     warnings=warnings.get(item.index, []))  # fmt: skip
            return [item.output] + ([mel_out] if mel_out else [])

        return process

    return run_items(items, worker, settings, label="v2a")
