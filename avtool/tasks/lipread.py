"""Lip reading: silent (or any) face video to text with a CTC lip reader.

Two model families: ``lipread-resnet`` (:mod:`avtool.models.lipread_resnet`, 3-D conv + ResNet
front-end + BiGRU; the default ``lipread-grid-s1``) on ``gray88`` mouth crops, and ``lipnet``
(:mod:`avtool.models.lipnet`, ``lipnet-grid-s1``) on ``lipnet`` crops. Per video: the face stage
(:func:`avtool.models.face.track_video`, any frame rate resampled to 25 fps, short detection gaps
interpolated, long ones reported with their frame numbers), the model's mouth crops
(:func:`avtool.io.face.mouth_crops`, exactly as the training cache made them), the network on
windows of frames (bounded memory for long videos), and CTC decoding: ``greedy``, ``beam`` (prefix
beam search) or ``grid`` (constrained to the GRID grammar). Output is the text, or JSON with
per-word timings and confidences; every output gets a ``.json`` sidecar.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from avtool.engines import RunSettings, run_items
from avtool.errors import InputError, ModelError
from avtool.io.audio import load_audio
from avtool.io.face import MouthCrop, estimate_pose, mouth_crops
from avtool.io.files import atomic_output
from avtool.io.formats import MODEL_FPS, READER_SUFFIXES
from avtool.io.subtitles import Interval, render, write_timed_text
from avtool.io.video import VideoReader, scan
from avtool.models import state_dict
from avtool.models.face import load_detector, track_video
from avtool.models.lipnet import ctc, infer
from avtool.models.loading import family_module, load
from avtool.registry import ResolvedModel
from avtool.runtime import (
    STDIO,
    BatchSummary,
    check_outputs,
    file_items,
    resolve_device,
    sidecar_path,
    versions,
    write_json,
)
from avtool.tasks.options.lipread import FORMAT_SUFFIXES, LipreadOptions
from avtool.tasks.speaker_guard import load_guard

log = logging.getLogger(__name__)

#: Registry ``family`` of the ResNet/BiGRU reader (:mod:`avtool.models.lipread_resnet`).
RESNET_FAMILY = "lipread-resnet"
# The GRID grammar decodes one six-word sentence; GRID clips are 3 s long.
GRAMMAR_MAX_SECONDS = 30.0
# Yaw beyond which a face counts as a profile view (the mouth's far half is hidden).
PROFILE_YAW_DEGREES = 50.0
#: Shortest video read (frames at 25 fps, 0.2 s): the 3-D front-end's temporal kernel, so a
#: shorter clip fills no window of motion (a still image, a 1-frame video). A GRID s1 word
#: lasts 6 frames (median over the 900 clips' alignments).
MIN_FRAMES = 5


@dataclass
class Reader:
    """A loaded lip-reading model plus the face detector.

    Attributes:
        model: a LipNet or a ResNet/BiGRU LipReader (eval mode).
        facts: sidecar facts of the model (name, sha256, licence, ...).
        detector: the dlib face stage.
        load_seconds: time spent loading both.
        crop_preset: the :class:`avtool.io.face.MouthCrop` preset (and cache key) the model
            reads: ``lipnet`` or ``gray88``.
        infer: the family's ``infer(model, crops, chunk_frames=None) -> (T, 28) log-probs``
            (``landmarks=`` too for a model with the lip-landmark stream).
    """

    model: Any
    facts: dict[str, Any]
    detector: Any  # FaceDetector
    load_seconds: float
    crop_preset: str = "lipnet"
    infer: Any = None
    guard: Any = None  # SpeakerGuard of the model's training speaker (None: no check)

    def __post_init__(self) -> None:
        if self.infer is None:  # a Reader built around a LipNet by hand
            self.infer = infer

    @property
    def needs_landmarks(self) -> bool:
        """Whether the model reads the face landmarks beside the crops (a ResNet/BiGRU reader
        with the lip-landmark stream)."""
        return getattr(self.model, "lips", None) is not None

    def log_probs(self, crops: Any, landmarks: Any, chunk_frames: int | None = None) -> Any:
        """``(T, 28)`` log-probabilities of a clip's crops; ``landmarks`` ``(T, 68, 2)`` (the
        ones the crops were cut with) are passed on only to a model that reads them."""
        if self.needs_landmarks:
            return self.infer(self.model, crops, chunk_frames=chunk_frames, landmarks=landmarks)
        return self.infer(self.model, crops, chunk_frames=chunk_frames)


def detect_family(resolved: ResolvedModel) -> str:
    """The family of a local lip-reader ``.pt`` (no registry entry): the ResNet reader's
    config JSON beside it nests an ``encoder``; anything else is read as LipNet (whose loader
    reports a missing or bad config)."""
    try:
        config = state_dict.entry_config(resolved)
    except ModelError:
        return "lipnet"
    return RESNET_FAMILY if isinstance(config, dict) and "encoder" in config else "lipnet"


def load_reader(
    options: LipreadOptions, *, device: str = "auto", accept_license: bool = False
) -> Reader:
    """Load the lip-reading model (either family, through :func:`avtool.models.loading.load`)
    and the dlib face stage.

    Raises:
        ModelError: unknown/unverifiable model, or the landmark model's licence not accepted.
        SetupError: cuda asked for and absent.
    """
    start = time.perf_counter()
    loaded = load(
        options.model,
        task="lipread",
        device=resolve_device(device),
        accept_license=accept_license,
        detect=detect_family,
    )
    family = family_module(loaded.family)
    facts = {
        **loaded.facts(),
        "description": loaded.description,
        "config": loaded.module.config.to_dict(),
    }
    preset = getattr(family, "CROP_PRESET", "lipnet")
    detector = load_detector(accept_license=accept_license)
    guard = load_guard(options.model, accept_license=accept_license)
    return Reader(loaded.module, facts, detector, time.perf_counter() - start, preset, family.infer,
                  guard)  # fmt: skip


def _ranges(frames: Iterable[int], step: int = 1) -> str:
    """``0-15, 40`` for frames ``0, 5, 10, 15, 40`` sampled every ``step`` frames."""
    runs: list[list[int]] = []
    for f in frames:
        if runs and f == runs[-1][1] + step:
            runs[-1][1] = f
        else:
            runs.append([f, f])
    shown = ", ".join(f"{a}-{b}" if a != b else str(a) for a, b in runs[:5])
    return shown + (f" and {len(runs) - 5} more" if len(runs) > 5 else "")


def check_frontal(landmarks: np.ndarray, source: str, step: int = 5) -> float:
    """Refuse a track that is mostly a profile view; returns the median |yaw| in degrees.

    Args:
        landmarks: ``(T, 68, 2)`` face points per frame, in pixels.
        source: the video, named in the error.
        step: every ``step``-th frame is measured.

    Raises:
        InputError: more than a quarter of the (sampled) frames turn beyond
            :data:`PROFILE_YAW_DEGREES`; the message lists those frames.
    """
    sampled = list(range(0, len(landmarks), step))
    yaws = np.array([abs(estimate_pose(landmarks[i]).yaw) for i in sampled])
    turned = [i for i, yaw in zip(sampled, yaws, strict=True) if yaw > PROFILE_YAW_DEGREES]
    if len(turned) > len(sampled) / 4:
        raise InputError(
            f"{source}: profile view (head turned more than {PROFILE_YAW_DEGREES:.0f} degrees) "
            f"at frames {_ranges(turned, step)}; lip reading needs a near-frontal face"
        )
    return float(np.median(yaws)) if len(yaws) else 0.0


def clip_log_probs(reader: Reader, path: Path, options: LipreadOptions) -> dict[str, Any]:
    """Track the face, crop the mouth and run the network on one video (no decoding).

    Returns:
        ``{"log_probs": (T, 28) float32, "frames", "fps", "duration", "source_fps",
        "median_yaw", "timings": {"face_s" (tracking), "network_s" (decoding the video again,
        cropping and the network)}}``.

    Raises:
        InputError: no frames, no face, a long gap or a profile view (file and frames named),
            or ``grid`` decoding asked for on a video longer than a sentence.
    """

    start = time.perf_counter()
    try:
        track = track_video(
            path, fps=MODEL_FPS, face_index=options.face_index, max_gap=options.max_gap,
            detector=reader.detector,
        )  # fmt: skip
    except InputError:
        if options.face_index > 0:  # "no face" may mean fewer faces than the index asks for
            check_face_index(reader.detector, path, options.face_index)
        raise
    if track.n_frames < MIN_FRAMES:
        raise InputError(
            f"{path}: {track.n_frames} video frame{'s' if track.n_frames != 1 else ''} decode; "
            f"lip reading needs at least {MIN_FRAMES} "
            f"({MIN_FRAMES / MODEL_FPS:.2f} s at {MODEL_FPS:g} fps)"
        )
    duration = track.n_frames / MODEL_FPS
    if options.decoder == "grid" and duration > GRAMMAR_MAX_SECONDS:
        raise InputError(
            f"{path}: {duration:.1f} s long; the GRID grammar decodes one sentence (at most "
            f"{GRAMMAR_MAX_SECONDS:.0f} s): use --decoder beam or greedy"
        )
    median_yaw = check_frontal(track.landmarks, str(path))
    check = None
    if reader.guard is not None:  # is this the person the model was trained on?
        check = reader.guard.check_video(path, track.landmarks, track.detected, MODEL_FPS).emit()
    tracked = time.perf_counter()
    with VideoReader(path, fps=MODEL_FPS) as video:
        source_fps = video.info.fps
        crops: Iterator = mouth_crops(video, track.landmarks, MouthCrop.preset(reader.crop_preset))
        log_probs = reader.log_probs(crops, track.landmarks, chunk_frames=options.chunk_frames)
    if len(log_probs) == 0:
        raise InputError(f"{path}: the video has no frames")
    return {
        "log_probs": log_probs,
        "frames": len(log_probs),
        "fps": MODEL_FPS,
        "duration": round(len(log_probs) / MODEL_FPS, 4),
        "source_fps": round(float(source_fps), 4),
        "median_yaw": round(median_yaw, 2),
        "speaker_check": check.record if check else None,
        "warnings": check.warnings if check else [],
        "timings": {
            "face_s": round(tracked - start, 4),
            "network_s": round(time.perf_counter() - tracked, 4),
        },
    }


def check_face_index(detector: Any, path: Path, face_index: int, samples: int = 8) -> None:
    """Refuse ``--face-index`` beyond the faces a video shows (counted on ``samples`` frames
    spread over its first 10 s, the most in any one of them).

    Raises:
        InputError: fewer faces than ``face_index + 1`` in every sampled frame (and at least
            one face somewhere: no face at all is the tracker's own error).
    """
    most = 0
    with VideoReader(path, fps=MODEL_FPS) as video:
        for index, frame in enumerate(video):
            if index >= samples * 31:
                break
            if index % 31 == 0:
                most = max(most, len(detector.detect(frame, exhaustive=False)))
    if 0 < most <= face_index:
        faces = f"{most} face{'s' if most != 1 else ''}"
        raise InputError(
            f"{path}: --face-index {face_index} is out of range: the video shows {faces} "
            f"(index 0{f'..{most - 1}' if most > 1 else ''}, 0 = largest)"
        )


def check_videos(
    items: list, *, min_frames: int, fps: float, task: str, policy: str = "refuse"
) -> tuple[list, dict[int, list[str]]]:
    """Scan every item's video before any model loads (:func:`avtool.io.video.scan`).

    A missing, empty, unreadable or too short video (fewer than ``min_frames`` at ``fps``)
    becomes a failed item with a one-line error naming the file; the others run. A truncated
    or damaged one is warned about on stderr now, and its warning goes to the sidecar.

    Returns:
        ``(items, warnings by item index)``.
    """
    checked, warnings = [], {}
    for item in items:
        skipped = policy == "skip" and item.output is not None and item.output.is_file()
        if item.error is None and item.source is not None and not skipped:
            try:
                found = scan(item.source)
                found.require(min_frames, fps, task)
            except InputError as exc:
                item = dataclasses.replace(item, error=str(exc))
            else:
                if (warning := found.warning()) is not None:
                    log.warning("%s", warning)
                    warnings[item.index] = [warning]
        checked.append(item)
    return checked, warnings


def read_lips(reader: Reader, path: Path, options: LipreadOptions) -> dict[str, Any]:
    """Lip-read one video: :func:`clip_log_probs` then CTC decoding with ``options.decoder``.

    Returns:
        ``{"text", "words": [{word, start, end, confidence}], "score", "frames", "fps",
        "duration", "source_fps", "median_yaw", "timings": {...}}``.

    Raises:
        InputError: see :func:`clip_log_probs`.
    """
    result = clip_log_probs(reader, path, options)
    log_probs = result.pop("log_probs")
    start = time.perf_counter()
    decoded = ctc.decode(log_probs, options.decoder, beam=options.beam, fps=MODEL_FPS)
    result["timings"]["decode_s"] = round(time.perf_counter() - start, 4)
    return {
        "text": decoded.text,
        "words": trim_to_speech([asdict(w) for w in decoded.words], path),
        "score": round(decoded.score, 4) if decoded.score > -1e29 else None,
        **result,
    }


def speech_span(path: Path, frame_s: float = 0.02) -> tuple[float, float] | None:
    """Where sound is in the video's audio track: first and last 20 ms frame within 20 dB of
    the loudest (on 20 GRID s1 clips: median onset error +0.05 s, offset -0.04 s against the
    corpus alignments; 30 dB was -0.57 s / +0.92 s); None without an audio track."""
    try:
        audio, rate = load_audio(path, sample_rate=16000)
    except InputError:
        return None
    hop = int(frame_s * rate)
    if audio.size < hop:
        return None
    frames = audio[: audio.size // hop * hop].reshape(-1, hop)
    level = 10 * np.log10(np.mean(frames.astype(np.float64) ** 2, axis=1) + 1e-12)
    active = np.flatnonzero(level > level.max() - 20.0)
    if level.max() < -70 or active.size == 0:
        return None
    return float(active[0] * frame_s), float((active[-1] + 1) * frame_s)


def trim_to_speech(words: list[dict[str, Any]], path: Path) -> list[dict[str, Any]]:
    """Keep the edge words' timings inside the speech when the video has sound.

    The CTC reader holds the first word's first letter through the leading silence (GRID s1
    "bin" 0.00-1.00 s while the speech starts at 0.95 s), and the last word's through the
    trailing one; the audio track says where the speech is. Without sound the timings stay.
    """
    span = speech_span(path) if words else None
    if span is None:
        return words
    onset, offset = span
    first, last = dict(words[0]), dict(words[-1])
    frame = 1.0 / MODEL_FPS  # a word keeps at least one video frame
    if onset > first["start"]:
        first["start"] = round(min(onset, first["end"] - frame), 4)
    out = [first, *words[1:]]
    last = dict(out[-1])
    if offset < last["end"]:
        last["end"] = round(max(offset, last["start"] + frame), 4)
    out[-1] = last
    return out


def lipread_file(
    reader: Reader,
    path: Path,
    output: Path | None,
    options: LipreadOptions,
    warnings: Iterable[str] = (),
) -> dict[str, Any]:
    """Read one video's lips into ``output`` (text or JSON; None = stdout) plus a sidecar.

    ``warnings`` (e.g. a truncated file, from :func:`check_videos`) go into the sidecar's
    ``warnings`` beside the speaker check's.

    Returns:
        The result of :func:`read_lips`.
    """

    start = time.perf_counter()
    result = read_lips(reader, path, options)
    payload = {"input": str(path), "text": result["text"], "words": result["words"],
               "decoder": options.decoder, "model": reader.facts["name"]}  # fmt: skip
    words = [Interval(w["start"], w["end"], w["word"]) for w in result["words"]]
    sentence = [Interval(words[0].start, words[-1].end, result["text"])] if words else []
    tiers = {"sentences": sentence, "words": words}
    if options.format == "json":
        body = json.dumps(payload, indent=2) + "\n"
    elif options.format == "text":
        body = result["text"] + "\n"
    elif options.format != "all":
        body = render(options.format, tiers, duration=result["duration"], data=payload)
    if output is None:
        print(body, end="", flush=True)
        return result
    if options.format == "all":
        result["outputs"] = write_timed_text(output, "all", tiers, duration=result["duration"],
                                             data=payload)  # fmt: skip
    else:
        with atomic_output(output) as tmp:
            tmp.write_text(body, encoding="utf-8")
        result["outputs"] = [output]
    seconds = time.perf_counter() - start
    meta = {
        "task": "lipread",
        "output": str(output),
        "model": {k: reader.facts[k] for k in ("name", "sha256", "license", "description")},
        "options": asdict(options),
        "input": {"path": str(path), "frames": result["frames"], "fps": result["fps"],
                  "source_fps": result["source_fps"], "duration": result["duration"],
                  "median_yaw": result["median_yaw"]},
        "result": {"text": result["text"], "score": result["score"],
                   "words": len(result["words"])},
        "speaker_check": result.get("speaker_check"),
        "warnings": [*warnings, *result.get("warnings", [])],
        "timings": {"load_s": round(reader.load_seconds, 4), **result["timings"],
                    "total_s": round(seconds, 4),
                    "x_real_time": round(result["duration"] / seconds, 2) if seconds else None},
        "versions": versions(),
    }  # fmt: skip
    # --format all: the outputs are clip.srt, clip.json, ...; the sidecar is clip.meta.json.
    main = output.with_name(output.name + ".json") if options.format == "all" else output
    write_json(sidecar_path(main), meta)
    return result


def build_items(
    inputs: list[str], manifest: Path | None, output_template: str | None, fmt: str
) -> list:
    """Items from videos, folders, globs (``-`` = paths on stdin) and a manifest (columns
    ``input``, optional ``id`` and ``output``). ``output_template`` ``-`` or None with a
    single input writes to stdout; the default template is ``{stem}.txt`` (``.json``).

    Raises:
        InputError: no inputs, a missing file, a bad manifest row.
    """
    if fmt == "all" and output_template == STDIO:
        raise InputError("--format all writes five files: give -o a name, not -")
    template = output_template or "{stem}" + FORMAT_SUFFIXES.get(fmt, ".txt")
    nothing = "nothing to read: give video files, folders or --manifest"
    items = file_items(inputs, READER_SUFFIXES, manifest, template, nothing=nothing)
    if template == STDIO and len(items) > 1:
        raise InputError("-o - (stdout) takes one input; use a template such as '{stem}.txt'")
    return items


def run(
    items: list,
    options: LipreadOptions,
    settings: RunSettings | None = None,
) -> BatchSummary:
    """Lip-read every item with one loaded model per worker (``settings.batch``: engine,
    workers)."""
    settings = settings or RunSettings()

    options.validate()
    check_outputs(items, settings.policy)
    # Every video is scanned before the model loads: a bad one fails at once, in one line.
    items, warnings = check_videos(items, min_frames=MIN_FRAMES, fps=MODEL_FPS, task="lip reading",
                                   policy=settings.policy)  # fmt: skip

    def worker() -> Callable[[Any], list[Path]]:  # once per worker: load, then items
        if all(item.error is not None for item in items):
            return lambda item: []  # nothing left to read: no model to load
        reader = load_reader(
            options, device=settings.device, accept_license=settings.accept_license
        )

        def process(item) -> list[Path]:
            result = lipread_file(reader, item.source, item.output, options,
                                  warnings.get(item.index, []))  # fmt: skip
            return result.get("outputs", [])

        return process

    return run_items(items, worker, settings, label="lipread")
