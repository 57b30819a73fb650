"""One photo + speech -> a talking-head video (H.264 + AAC), offline, on a CPU.

Pipeline: load the photo and find the face (first, so a photo without a face fails at once,
exit 2), fit the photo to the output size, stream the audio once for phones (pocketsphinx, or
the TTS phoneme timings when given) and per-frame loudness, turn them into viseme parameters
and a :class:`~avtool.models.facewarp.FaceMotion` (head quaternions, blinks), then render each
frame by warping the photo and stream it to ffmpeg. Only the per-frame landmark track is kept
in memory, so an hour of audio renders in bounded memory.

Other landmark predictors drive the same renderer through ``motion=`` (a ``FaceMotion`` with
frontal landmarks and quaternions, or pixel landmarks); see :mod:`avtool.models.facewarp`.

``--model`` picks the driver and renderer (:func:`load_model`): ``warp`` (phones → visemes, the
default), ``anyonenet`` (the registered AnyoneNet landmark predictor, trained on GRID speaker
s1, driving the same warp), ``anyonenet-unet`` (the registered reduced UNet renderer, trained
on GRID speaker s1, drawing 256x256 face crops from the viseme-driven landmarks), or a local
AnyoneNet checkpoint ``.pt``: a predictor (drives the warp) or a UNet renderer (draws the face
crops from the viseme-driven landmarks).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from dataclasses import replace as replace_item
from dataclasses import replace as replace_options
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from rich.progress import Progress

from avtool import registry
from avtool.engines import RunSettings, run_items
from avtool.errors import InputError, SetupError
from avtool.io.audio import audio_info, load_audio, stdin_to_file
from avtool.io.console import stderr_console
from avtool.io.face import Box, load_image, register, resize_image, to_rgb_uint8
from avtool.io.files import atomic_output
from avtool.io.video import VideoWriter
from avtool.models.anyonenet.config import MEL_RATE
from avtool.models.anyonenet.data import load_audio_mel, resample_quaternions, resample_track
from avtool.models.anyonenet.infer import predict
from avtool.models.anyonenet.infer import render_frames as unet_frames
from avtool.models.face import LANDMARK_BACKENDS, Face, FaceDetector, detect_face, load_detector
from avtool.models.facewarp import FaceMotion, WarpRenderer
from avtool.models.facewarp.mouth import mouth_area_ratio
from avtool.models.facewarp.opening import refine_opening
from avtool.models.facewarp.phones import (
    AudioDrive,
    analyse_audio,
    describe,
    phones_from_timings,
    speech_phones,
)
from avtool.models.facewarp.visemes import Phone, apply_energy, lead_in, viseme_track
from avtool.models.loading import Loaded, load
from avtool.registry import sha256_file
from avtool.runtime import (
    BatchItem,
    BatchSummary,
    bad_item,
    check_outputs,
    file_items,
    format_output,
    resolve_device,
    sidecar_path,
    versions,
    write_json,
)
from avtool.tasks.options.talkinghead import (
    ANYONENET_MODEL,
    ANYONENET_UNET_MODEL,
    MAX_DEFAULT_SIDE,
    MIN_DEFAULT_SIDE,
    MOUTH_BANK_MODEL,
    TalkingHeadOptions,
)
from avtool.tasks.speaker_guard import check_photo

log = logging.getLogger(__name__)

VIDEO_SUFFIXES = (".mp4", ".m4v", ".mov", ".mkv")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
#: What a folder of batch inputs is searched for: speech, or videos whose sound is the speech.
AUDIO_INPUT_SUFFIXES = (".wav", ".flac", ".mp3", ".ogg", ".m4a", ".opus", ".aac", *VIDEO_SUFFIXES)
ENCODER = {"crf": 20, "preset": "veryfast"}


@dataclass(frozen=True)
class LoadedModel:
    """A neural ``--model``: the front door's record of the network that drives or renders,
    and for a renderer the predictor whose landmarks it draws.

    Attributes:
        loaded: the network (:func:`avtool.models.loading.load`; its ``details`` say the
            ``kind``: ``"predictor"``, landmarks from audio driving the warp, or
            ``"renderer"``, the UNet drawing frames from a landmark track).
        driver: for a renderer, the predictor whose landmarks it draws (None: the visemes').
    """

    loaded: Loaded
    driver: LoadedModel | None = None

    @property
    def kind(self) -> str:
        """``"predictor"`` or ``"renderer"``."""
        return str(self.loaded.details["kind"])

    @property
    def network(self) -> Any:
        """The loaded module (eval mode)."""
        return self.loaded.module

    @property
    def name(self) -> str:
        """The registry name, or the checkpoint's path."""
        return self.loaded.name

    @property
    def predictor(self) -> LoadedModel | None:
        """The predictor that drives the face: this model or its ``driver``, if any."""
        return self if self.kind == "predictor" else self.driver

    def describe(self) -> dict[str, Any]:
        """The sidecar's record of this model (:meth:`~avtool.models.loading.Loaded.facts`)."""
        driver = {"driver": self.driver.describe()} if self.driver is not None else {}
        return {**self.loaded.facts(), **driver}


def model_device(model: str, requested: str = "auto") -> str:
    """The torch device ``--model`` runs on for ``--device requested``.

    The warp renderer (``--model warp``: numpy and PIL) has no GPU path, so ``cuda`` is
    refused for it rather than ignored; the AnyoneNet networks run where
    :func:`avtool.runtime.resolve_device` says.

    Raises:
        SetupError: ``cuda`` for the warp, or CUDA not available (exit 4).
    """

    if requested not in ("auto", "cpu", "cuda"):
        raise InputError(f"--device {requested!r}: choose auto, cpu or cuda")
    if model == "warp":
        if requested == "cuda":
            raise SetupError(
                "--device cuda: the warp renderer (--model warp) runs on the CPU only "
                "(numpy); use --device cpu, or an AnyoneNet --model on the GPU"
            )
        return "cpu"
    return resolve_device(requested)


def load_model(
    model: str, device: str = "cpu", *, accept_license: bool = False
) -> LoadedModel | None:
    """Load ``--model``: None for ``warp``; the AnyoneNet network otherwise.

    Args:
        model: ``"warp"``, ``"anyonenet"`` (the registry's :data:`ANYONENET_MODEL`),
            ``"anyonenet-unet"`` (:data:`ANYONENET_UNET_MODEL`), ``"anyonenet-full"`` (that
            renderer with that predictor as its ``driver``) or an AnyoneNet checkpoint path
            (its kind, predictor or renderer, is read from the JSON beside it).
        device: torch device.
        accept_license: accept a non-commercial registry entry's licence (the registered
            predictor and UNet learned from dlib iBUG 300-W landmarks, as the face stage).

    Raises:
        ModelError: unknown name, missing or corrupt checkpoint, failed checksum, licence not
            accepted (exit 3).
    """
    if model == "warp":
        return None
    if model == "anyonenet-full":
        renderer = _load_network("anyonenet-unet", device, accept_license)
        return LoadedModel(
            renderer, LoadedModel(_load_network("anyonenet", device, accept_license))
        )
    return LoadedModel(_load_network(model, device, accept_license))


def _load_network(model: str, device: str, accept_license: bool) -> Loaded:
    """One AnyoneNet network through the front door: a short name (``anyonenet``,
    ``anyonenet-unet``), a registry name or a checkpoint path."""
    names = {"anyonenet": ANYONENET_MODEL, "anyonenet-unet": ANYONENET_UNET_MODEL}
    return load(
        names.get(model, model),
        task="talkinghead",
        device=device,
        accept_license=accept_license,
        detect=lambda resolved: "anyonenet",
    )


def load_mouth_bank(mouth: str) -> Loaded | None:
    """The registered mouth bank for ``--mouth bank`` (its ``module`` a
    :class:`~avtool.models.facewarp.mouth_bank.MouthBank`); None for ``drawn``.

    Raises:
        ModelError: the bank is missing or fails its checksum (exit 3).
    """
    if mouth != "bank":
        return None

    return load(MOUTH_BANK_MODEL, task="talkinghead")


def predictor_motion(
    network: Any, audio: str | Path, renderer: WarpRenderer, fps: float, *, still: bool = False
) -> FaceMotion:
    """The AnyoneNet predictor's motion for the warp: frontal landmarks + head poses.

    The predictor sees the photo's frontal landmarks and pose (as in training) and the audio's
    80 Hz mel; its track is resampled to ``fps``. The warp adds the predicted change to the
    photo's own shape, so the face keeps its identity.

    Args:
        network: a loaded :class:`~avtool.models.anyonenet.predictor.LandmarkPredictor`.
        audio: the speech file.
        renderer: the warp renderer of the photo.
        fps: output frame rate.
        still: keep the photo's head pose (the predicted rotations are dropped).

    Returns:
        A ``units="frontal"`` :class:`~avtool.models.facewarp.FaceMotion` of
        ``round(duration * fps)`` frames (at least 1).

    Raises:
        InputError: unreadable or too short audio (naming the file).
    """

    mel = load_audio_mel(audio)
    frontal, quaternion = register(renderer.photo_landmarks.astype(np.float32))
    track, quats = predict(network, mel, frontal, quaternion)
    frames = max(1, round(check_audio(audio) * fps))
    track = resample_track(track, MEL_RATE, frames, fps)
    if still:
        quats = np.tile(np.asarray(renderer.quaternion, np.float64), (frames, 1))
    else:
        quats = resample_quaternions(quats, MEL_RATE, frames, fps)
    return FaceMotion(track, quats, fps, units="frontal")


@dataclass
class RenderResult:
    """What :func:`render_file` produced.

    Attributes:
        n_frames: frames rendered.
        duration: audio duration in seconds.
        fps: frame rate.
        landmarks: ``(T, 68, 2)`` float32 driven landmarks in output pixels.
        timings: seconds per stage and ``x_real_time``.
        size: output ``(width, height)``.
        output: the written file (video or preview image).
        preview: the preview image, when written.
        metadata: the sidecar's content.
        warnings: what was handled with a warning (silent audio, several faces...).
    """

    n_frames: int
    duration: float
    fps: float
    landmarks: np.ndarray
    timings: dict[str, Any]
    size: tuple[int, int] = (0, 0)
    output: Path | None = None
    preview: Path | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


@dataclass
class RenderPlan:
    """A prepared render: the warped photo and the per-frame motion, before any frame."""

    renderer: WarpRenderer
    motion: FaceMotion
    landmarks: np.ndarray  # (T, 68, 2) pixels
    face: Face
    size: tuple[int, int]
    drive: AudioDrive | None
    duration: float
    source: str
    warnings: list[str]
    timings: dict[str, float]
    model: LoadedModel | None = None
    speaker_check: dict[str, Any] | None = None  # the face vs the model's training speaker
    mouth: Loaded | None = None  # the mouth-interior bank the warp pastes

    @property
    def n_frames(self) -> int:
        return len(self.landmarks)

    @property
    def frame_size(self) -> tuple[int, int]:
        """``(width, height)`` of the frames: the output size, or a UNet renderer's crop."""
        if self.model is not None and self.model.kind == "renderer":
            side = int(self.model.network.config.image_size)
            return side, side
        return self.size


# --------------------------------------------------------------------------- the face


def output_size(photo_size: tuple[int, int], requested: tuple[int, int] | None) -> tuple[int, int]:
    """The video size: ``requested``, else the photo's scaled into range and made even."""
    if requested is not None:
        return requested
    width, height = photo_size
    scale = min(1.0, MAX_DEFAULT_SIDE / max(width, height))
    scale = max(scale, MIN_DEFAULT_SIDE / min(width, height))
    return (max(2, int(width * scale) // 2 * 2), max(2, int(height * scale) // 2 * 2))


FACE_CROP_HEIGHT = 2.5
"""``--crop face``: the crop is this many brow-to-chin heights tall (head and shoulders)."""
FACE_CROP_CENTRE = 0.47
"""``--crop face``: the face's centre (landmarks' box) sits this far down the crop."""


def face_crop_box(
    landmarks: np.ndarray, photo_size: tuple[int, int], aspect: float
) -> tuple[int, int, int, int]:
    """A head-and-shoulders box ``(x0, y0, x1, y1)`` around a face, in photo pixels.

    The box has the output's ``aspect`` (width / height), is :data:`FACE_CROP_HEIGHT` face
    heights tall (less when the photo is smaller) with the face centred horizontally and at
    :data:`FACE_CROP_CENTRE` of its height, and is shifted to lie inside the photo. It is fixed
    for the whole video (from the photo's face), so the framing never jitters.
    """
    width, height = photo_size
    low, high = landmarks.min(axis=0), landmarks.max(axis=0)
    face_h = max(float(high[1] - low[1]), 1.0) * 1.25  # the landmarks stop at the brows
    centre_x = 0.5 * float(low[0] + high[0])
    centre_y = 0.5 * float(low[1] + high[1]) - 0.1 * face_h
    box_h = FACE_CROP_HEIGHT * face_h
    box_w = box_h * aspect
    shrink = min(1.0, width / box_w, height / box_h)
    box_w, box_h = box_w * shrink, box_h * shrink
    x0 = float(np.clip(centre_x - box_w / 2, 0, width - box_w))
    y0 = float(np.clip(centre_y - FACE_CROP_CENTRE * box_h, 0, height - box_h))
    return round(x0), round(y0), round(x0 + box_w), round(y0 + box_h)


def fit_photo(
    image: np.ndarray, landmarks: np.ndarray, size: tuple[int, int], crop: str = "full"
) -> tuple[np.ndarray, np.ndarray]:
    """Scale the photo (or its face crop) to cover ``size`` and crop around the face.

    Args:
        image: ``(H, W, 3)`` uint8 photo.
        landmarks: ``(68, 2)`` its landmarks in photo pixels.
        size: output ``(width, height)``.
        crop: ``"full"`` or ``"face"`` (:func:`face_crop_box` first).

    Returns:
        ``(image (height, width, 3), landmarks (68, 2))`` in output pixels.
    """
    if crop == "face":
        x0, y0, x1, y1 = face_crop_box(
            landmarks, (image.shape[1], image.shape[0]), size[0] / size[1]
        )
        image = np.ascontiguousarray(image[y0:y1, x0:x1])
        landmarks = landmarks - np.array([x0, y0], dtype=landmarks.dtype)
    height, width = image.shape[:2]
    out_w, out_h = size
    scale = max(out_w / width, out_h / height)
    new_w, new_h = max(out_w, round(width * scale)), max(out_h, round(height * scale))
    resized = resize_image(image, (new_w, new_h))
    sx, sy = new_w / width, new_h / height
    points = (landmarks + 0.5) * [sx, sy] - 0.5
    centre = points.mean(axis=0)
    x0 = int(np.clip(round(centre[0] - out_w / 2), 0, new_w - out_w))
    y0 = int(np.clip(round(centre[1] - out_h / 2), 0, new_h - out_h))
    crop = np.ascontiguousarray(resized[y0 : y0 + out_h, x0 : x0 + out_w])
    return crop, (points - [x0, y0]).astype(np.float32)


def find_face(
    face: str | Path | np.ndarray,
    options: TalkingHeadOptions,
    detector: FaceDetector | None = None,
    *,
    accept_license: bool = False,
) -> tuple[np.ndarray, Face, list[str]]:
    """Load the photo and find the face to animate.

    Returns:
        ``(photo (H, W, 3) uint8, face, warnings)``.

    Raises:
        InputError: unreadable image, no face, bad ``--face-index``/``--box``, profile view.
        ModelError: the landmark model's licence is not accepted.
    """

    if isinstance(face, np.ndarray):
        source = "<array>"
        image = to_rgb_uint8(face, source)
    else:
        source = str(face)
        image = load_image(face)
    detector = detector or load_detector(accept_license, landmarks=options.landmarks)
    box = Box.parse(options.box) if options.box else None
    found = detect_face(
        image, face_index=options.face_index, box=box, detector=detector, source=source
    )
    warnings = []
    if found.n_faces > 1 and box is None:
        warnings.append(
            f"{source}: {found.n_faces} faces found; animating face {options.face_index} "
            f"(box {found.box}; 0 is the largest, choose with --face-index or --box)"
        )
    if min(found.box.w, found.box.h) < 48:
        warnings.append(f"{source}: the face is only {found.box.w}x{found.box.h} pixels")
    return image, found, warnings


# --------------------------------------------------------------------------- planning


def _phones(phonemes: Any) -> list[Phone]:

    if isinstance(phonemes, Mapping):
        return phones_from_timings(phonemes)
    items = list(phonemes)
    if items and isinstance(items[0], Phone):
        return items
    return phones_from_timings(items)


def check_audio(audio: str | Path, label: str | None = None) -> float:
    """The audio's duration in seconds; ``label`` names the file in messages (``-`` for
    speech read from stdin into a temporary file).

    Raises:
        InputError: missing, unreadable, no audio stream, or zero length (naming the file).
    """
    try:
        info = audio_info(audio)
        # One decode up front: NaN/Inf samples or undecodable bytes fail here, naming the
        # file, instead of inside the video encoder after rendering has started.
        load_audio(audio, sample_rate=None, mono=True)
    except InputError as exc:
        if label is None:
            raise
        raise InputError(str(exc).replace(str(audio), label)) from None
    if info.frames <= 0 or info.duration <= 0:
        raise InputError(f"{label or audio}: the audio is empty (zero length); nothing to lip-sync")
    return info.duration


def plan_render(
    face: str | Path | np.ndarray,
    audio: str | Path | None,
    options: TalkingHeadOptions,
    *,
    detector: FaceDetector | None = None,
    phonemes: Any = None,
    motion: FaceMotion | None = None,
    accept_license: bool = False,
    model: LoadedModel | None = None,
    mouth: Loaded | None = None,
) -> RenderPlan:
    """Everything before the first frame: face, audio analysis, motion and landmarks.

    Args:
        face: photo path or ``(H, W[, C])`` image array.
        audio: speech file (any format ffmpeg reads); None only with ``motion``.
        options: see :class:`TalkingHeadOptions`.
        detector: a loaded face detector (else the registry's, behind its licence gate).
        phonemes: TTS timings (``{"phonemes": [...]}``), a list of phoneme dicts or
            :class:`~avtool.models.facewarp.visemes.Phone` objects; None = pocketsphinx.
        motion: drive the face with this instead of the audio (its length sets the frames).
        accept_license: for the default detector.
        model: the loaded ``options.model`` (:func:`load_model`); None loads it here.
        mouth: the loaded ``options.mouth`` bank (:func:`load_mouth_bank`); None loads it.

    Raises:
        InputError: bad options, no face, empty audio.
        ModelError: ``options.model`` cannot be loaded.
    """

    options = options.validated()
    if model is None and options.model != "warp":
        model = load_model(options.model, accept_license=accept_license)
    timings: dict[str, float] = {}
    duration = check_audio(audio) if audio is not None else None
    start = time.perf_counter()
    photo, found, warnings = find_face(face, options, detector, accept_license=accept_license)
    speaker = None
    if model is not None:  # the AnyoneNet networks know only their training speaker
        where = "<array>" if isinstance(face, np.ndarray) else str(face)
        check = check_photo(model.name, photo, found.landmarks, where, accept_license)
        speaker = check.record
        warnings.extend(check.warnings)
        if model.kind == "renderer" and speaker and speaker.get("same_speaker") is False:
            # A UNet draws the whole face from its training speaker's appearance: for anyone
            # else it paints that person's likeness, not a degraded version of this one.
            if not options.force:
                who = ", ".join(speaker.get("training_speakers", [])) or "its training speaker"
                raise InputError(
                    f"{where}: --model {options.model} draws only {who}'s face and this is "
                    f"another person (face distance {speaker.get('distance')} > "
                    f"{speaker.get('threshold')}); use --model warp, or --force to render "
                    "it anyway"
                )
            warnings.append(f"{where}: --force: rendering another person with {options.model}")
    size = output_size((photo.shape[1], photo.shape[0]), options.size)
    image, points = fit_photo(photo, found.landmarks, size, options.crop)
    # A UNet renderer draws the whole face itself: the bank only serves the warp.
    unet = model is not None and model.kind == "renderer"
    bank = None if unet or options.mouth != "bank" else mouth or load_mouth_bank(options.mouth)
    renderer = WarpRenderer(image, points, bank.module if bank is not None and not unet else None)
    timings["face_s"] = time.perf_counter() - start

    drive = None
    start = time.perf_counter()
    if motion is None and model is not None and model.predictor is not None:
        if audio is None:
            raise InputError("an audio file (or a motion) is needed to drive the face")
        motion = predictor_motion(
            model.predictor.network, audio, renderer, options.fps, still=options.still
        )
    elif motion is None:
        if audio is None:
            raise InputError("an audio file (or a motion) is needed to drive the face")
        drive = analyse_audio(audio, options.fps, recognize=phonemes is None)
        if phonemes is not None:
            drive.phones, drive.source = _phones(phonemes), "tts"
        params = viseme_track(drive.phones, drive.n_frames, options.fps)
        params = apply_energy(params, drive.loudness, drive.voiced)
        if not drive.voiced.any():
            warnings.append(f"{audio}: the audio is silent; the mouth stays closed")
        elif drive.source == "pocketsphinx" and not any(speech_phones(drive.phones)):
            warnings.append(f"{audio}: no speech recognised; the mouth follows loudness only")
            # A neutral half-open vowel everywhere, gated and scaled by the loudness.
            neutral = np.tile(np.float32([0.45, 0.0, 0.0, 0.0]), (drive.n_frames, 1))
            params = apply_energy(neutral, drive.loudness, drive.voiced)
        hold = lead_in(drive.phones, drive.n_frames, options.fps)
        if not any(speech_phones(drive.phones)):
            hold = None  # no speech anywhere: the loudness-driven neutral vowel, from rest
        if drive.bands is not None:  # the opening re-timed by the audio itself
            params = refine_opening(params, hold, drive.loudness, drive.voiced, drive.bands)
        motion = renderer.motion(
            params,
            options.fps,
            still=options.still,
            seed=options.seed,
            loudness=drive.loudness,
            hold=hold,
        )
        duration = drive.duration
    elif abs(motion.fps - options.fps) > 1e-6:
        raise InputError(f"the motion runs at {motion.fps} fps but --fps is {options.fps}")
    if duration is None:
        duration = motion.n_frames / options.fps
    landmarks = renderer.landmarks(motion)
    timings["audio_s"] = time.perf_counter() - start
    for message in warnings:
        log.warning("%s", message)
    source = "<array>" if isinstance(face, np.ndarray) else str(face)
    plan = RenderPlan(
        renderer, motion, landmarks, found, size, drive, duration, source, warnings, timings, model,
        speaker,
    )  # fmt: skip
    plan.mouth = bank if renderer.bank is not None else None
    return plan


def render_frames(
    plan: RenderPlan, start: int = 0, stop: int | None = None
) -> Iterator[np.ndarray]:
    """Yield frames ``start:stop`` of a plan, one ``(H, W, 3)`` uint8 array at a time.

    With a UNet renderer checkpoint the frames are its ``(S, S, 3)`` face crops instead.
    """
    stop = plan.n_frames if stop is None else min(stop, plan.n_frames)
    if plan.model is not None and plan.model.kind == "renderer":
        yield from unet_frames(
            plan.model.network,
            plan.renderer.image,
            plan.renderer.photo_landmarks.astype("float32"),
            plan.landmarks[start:stop],
        )
        return
    openness = plan.motion.mouth_open
    for index in range(start, stop):
        amount = None if openness is None else float(openness[index])
        yield plan.renderer.render(plan.landmarks[index], amount)


def preview_index(plan: RenderPlan) -> int:
    """The frame with the widest mouth opening (a representative still), first on ties."""
    return int(np.argmax(mouth_area_ratio(plan.landmarks))) if plan.n_frames else 0


def _save_image(path: Path, frame: np.ndarray) -> Path:

    with atomic_output(path) as tmp:
        Image.fromarray(frame).save(tmp, format="PNG" if path.suffix.lower() == ".png" else "JPEG")
    return path


def render_file(
    face: str | Path | np.ndarray,
    audio: str | Path,
    output: str | Path,
    options: TalkingHeadOptions,
    *,
    detector: FaceDetector | None = None,
    phonemes: Any = None,
    progress: Callable[[int, int], None] | None = None,
    motion: FaceMotion | None = None,
    accept_license: bool = False,
    metadata: Mapping[str, Any] | None = None,
    audio_label: str | None = None,
    model: LoadedModel | None = None,
    mouth: Loaded | None = None,
) -> RenderResult:
    """Render a talking-head video (or only a still, for an image ``output``) plus sidecar.

    Args:
        face: photo path or image array.
        audio: the speech; muxed as AAC into the video.
        output: ``.mp4``/``.m4v``/``.mov``/``.mkv`` video, or ``.png``/``.jpg`` for the
            preview frame only.
        options: see :class:`TalkingHeadOptions`.
        detector: a loaded face detector.
        phonemes: TTS timings to drive the mouth (else pocketsphinx phones).
        progress: called as ``progress(done_frames, total_frames)``.
        motion: an external driver (see :mod:`avtool.models.facewarp`).
        accept_license: for the default face detector's licence gate.
        metadata: extra sidecar fields (``avtool tts --face`` records the speech here).
        audio_label: what the sidecar records as the audio's origin instead of ``audio``'s
            path (``avtool tts --face`` renders from a temporary file that is then deleted).
        model: the loaded ``options.model`` (:func:`load_model`; loaded here when None), so a
            batch loads it once.
        mouth: the loaded ``options.mouth`` bank (:func:`load_mouth_bank`; loaded when None).

    Returns:
        The :class:`RenderResult`; the sidecar is ``output`` + ``.json``.

    Raises:
        InputError: bad options, output suffix, face or audio.
        ModelError: ``options.model`` cannot be loaded.
    """

    output = Path(output)
    suffix = output.suffix.lower()
    if suffix not in VIDEO_SUFFIXES + IMAGE_SUFFIXES:
        raise InputError(
            f"{output}: the output must be a video ({', '.join(VIDEO_SUFFIXES)}) or a still "
            f"({', '.join(IMAGE_SUFFIXES)})"
        )
    options = options.validated()
    total_start = time.perf_counter()
    plan = plan_render(
        face,
        audio,
        options,
        detector=detector,
        phonemes=phonemes,
        motion=motion,
        accept_license=accept_license,
        model=model,
        mouth=mouth,
    )
    timings: dict[str, Any] = dict(plan.timings)
    start = time.perf_counter()
    preview = Path(options.preview) if options.preview else None
    best = preview_index(plan)
    if suffix in IMAGE_SUFFIXES:
        frame = next(render_frames(plan, best, best + 1))
        _save_image(output, frame)
        preview, written = output, 1
    else:
        width, height = plan.frame_size
        written = 0
        with VideoWriter(output, options.fps, (width, height), audio=audio, **ENCODER) as writer:
            for frame in render_frames(plan):
                if preview is not None and written == best:
                    _save_image(preview, frame)
                writer.write(frame)
                written += 1
                if progress is not None:
                    progress(written, plan.n_frames)
    timings["render_s"] = time.perf_counter() - start
    timings["total_s"] = time.perf_counter() - total_start
    timings["x_real_time"] = (
        round(plan.duration / timings["render_s"], 3) if timings["render_s"] else None
    )
    timings = {k: round(v, 4) if isinstance(v, float) else v for k, v in timings.items()}
    predictor = getattr(detector, "landmark_path", None)

    landmark_name = getattr(detector, "landmark_model", LANDMARK_BACKENDS[options.landmarks])
    entry = registry.load_registry().get(landmark_name)
    meta: dict[str, Any] = {
        "task": "talkinghead",
        "output": str(output),
        "model": _model_summary(plan, options, _landmark_model(landmark_name, entry, predictor)),
        "seed": options.seed,
        "options": asdict(options),
        "input": {
            "face": plan.source,
            "face_box": str(plan.face.box),
            "faces_found": plan.face.n_faces,
            "face_pose": {
                "yaw": round(plan.face.pose.yaw, 2),
                "pitch": round(plan.face.pose.pitch, 2),
                "roll": round(plan.face.pose.roll, 2),
            },
            "audio": audio_label or (str(audio) if audio is not None else None),
            "drive": _drive_summary(plan, audio_label or audio, motion is not None),
        },
        "video": {
            "width": plan.frame_size[0],
            "height": plan.frame_size[1],
            "fps": options.fps,
            "frames": written if suffix in VIDEO_SUFFIXES else plan.n_frames,
            "duration": round(plan.n_frames / options.fps, 4),
            "audio_duration": round(plan.duration, 4),
            "preview_frame": best,
            "sha256": sha256_file(output),
        },
        "warnings": plan.warnings,
        "speaker_check": plan.speaker_check,
        "timings": timings,
        "versions": versions(),
    }
    if metadata:
        meta.update(metadata)
    write_json(sidecar_path(output), meta)
    return RenderResult(
        n_frames=plan.n_frames,
        duration=plan.duration,
        fps=options.fps,
        landmarks=plan.landmarks,
        timings=timings,
        size=plan.frame_size,
        output=output,
        preview=preview,
        metadata=meta,
        warnings=plan.warnings,
    )


def _landmark_model(name: str, entry: Any, predictor: Any) -> dict[str, Any]:
    info: dict[str, Any] = {"name": name}
    if entry is not None:
        info.update(sha256=entry.files[0].sha256, license=entry.license)
    if predictor is not None:
        info["path"] = str(predictor)
    return info


def _model_summary(
    plan: RenderPlan, options: TalkingHeadOptions, landmarks: dict[str, Any]
) -> dict[str, Any]:
    info: dict[str, Any] = {
        "name": "facewarp",
        "family": "facewarp",
        "renderer": options.model,
        "landmarks": landmarks,
        "mouth": plan.mouth.facts() if plan.mouth is not None else "drawn",
    }
    if plan.model is not None:
        # The neural model is what --model named: its name, checksum and licence come first.
        info.update(plan.model.describe())
        info["renderer"] = "facewarp" if plan.model.kind == "predictor" else "anyonenet-unet"
    return info


def _drive_summary(plan: RenderPlan, audio: Any, external: bool) -> dict[str, Any]:
    if not external and plan.model is not None and plan.model.predictor is not None:
        return {"source": "anyonenet", "units": plan.motion.units, "frames": plan.n_frames}
    if external or plan.drive is None:
        return {"source": "motion", "units": plan.motion.units, "frames": plan.n_frames}
    return describe(plan.drive, audio)


# --------------------------------------------------------------------------- batch


def build_items(
    inputs: Sequence[str],
    manifest: Path | None,
    output_template: str,
    face: str | None,
) -> list[BatchItem]:
    """Batch items: audio files (paths, folders, globs) spoken by ``face``, and manifest rows
    (columns ``input`` = the audio, ``face``, ``id``, ``output``; a row without ``face`` uses
    ``face``). A row with no face at all is a failed item of its own.

    Raises:
        InputError: no inputs, a missing input file.
    """
    items = file_items(
        inputs, AUDIO_INPUT_SUFFIXES, manifest, output_template,
        path_columns=("input", "face"), item_options=("face",),
        input_options={"face": Path(face)} if face else None,
        nothing="nothing to animate: give --audio, audio files or --manifest",
    )  # fmt: skip
    out = []
    for item in items:
        if item.error is None and "face" not in item.options:
            if face is None:
                why = f"{item.origin}: no face: give --face or a face column"
                item = bad_item(item.index, item.id, item.origin, why)
            else:
                item = replace_item(item, options={**item.options, "face": Path(face)})
        out.append(item)
    return out


def run(
    items: Sequence[BatchItem],
    options: TalkingHeadOptions,
    settings: RunSettings | None = None,
    *,
    progress: bool = False,
) -> BatchSummary:
    """Render every item (``options["face"]`` speaking ``source``) through the batch runner
    (exit codes, overwrite policy, report; a bad item fails alone and the others run).

    The model, mouth bank and face detector load once here (and once more per Ray worker with
    ``settings.batch.engine`` ``ray``: dlib's detector does not cross processes). With one item,
    the face and audio are checked before anything else (a photo without a face fails with exit
    2 before the audio is analysed). ``settings.device`` is ``--device`` (:func:`model_device`:
    cuda is refused for the warp, exit 4). ``options.preview`` is a template like ``-o`` (``{id}``,
    ``{stem}``).
    """
    settings = settings or RunSettings()

    options = options.validated()
    check_outputs(items, settings.policy)
    for item in items:
        suffix = item.output.suffix.lower() if item.output is not None else ""
        if item.error is None and suffix not in (*VIDEO_SUFFIXES, *IMAGE_SUFFIXES):
            raise InputError(f"{item.output}: the output is a video ({', '.join(VIDEO_SUFFIXES)}) "
                             f"or a still ({', '.join(IMAGE_SUFFIXES)})")  # fmt: skip
    # A bad --device (exit 4) or --model (exit 3) fails before any work.
    used = model_device(options.model, settings.device)
    model = load_model(options.model, used, accept_license=settings.accept_license)
    mouth = load_mouth_bank(options.mouth)
    detector = load_detector(settings.accept_license, landmarks=options.landmarks)
    local = settings.batch.engine == "local"
    if not local and any(i.source == Path("-") for i in items):
        raise InputError("--audio -: a Ray worker cannot read this process's stdin; give a file")
    driver_models = (model, mouth, detector) if local else None
    single = [i for i in items if i.error is None]
    if len(items) == 1 and single and single[0].source != Path("-"):
        check_audio(single[0].source)
        find_face(single[0].options["face"], options, detector)  # before the audio work

    def worker() -> Callable[[Any], Sequence[Path]]:  # once per worker: load, then items
        if driver_models is not None:
            worker_model, worker_mouth, face_detector = driver_models
        else:
            worker_model = load_model(options.model, used, accept_license=settings.accept_license)
            worker_mouth = load_mouth_bank(options.mouth)
            face_detector = load_detector(settings.accept_license, landmarks=options.landmarks)

        def process(item: BatchItem) -> Sequence[Path]:
            item_options = options
            if options.preview:
                preview = format_output(options.preview, item_id=item.id, index=item.index,
                                        source=item.source)  # fmt: skip
                item_options = replace_options(options, preview=str(preview))
            # A Ray worker's stderr is not the user's terminal: no progress bar there.
            bar = _progress_bar(settings.quiet or not progress or not local, str(item.output))
            with stdin_to_file(item.source) as audio, bar as update:
                check_audio(audio, label=item.input)
                result = render_file(
                    item.options["face"], audio, item.output, item_options,
                    detector=face_detector, progress=update, model=worker_model,
                    mouth=worker_mouth, metadata={"device": used}, audio_label=item.input,
                    accept_license=settings.accept_license,
                )  # fmt: skip
            return [p for p in (result.output, result.preview) if p is not None]

        return process

    return run_items(items, worker, settings, label="talkinghead")


class _progress_bar:
    """A rich progress bar on stderr as a ``(done, total)`` callback (disabled when quiet)."""

    def __init__(self, disabled: bool, label: str) -> None:
        self.disabled, self.label = disabled, label
        self._bar: Any = None
        self._task: Any = None

    def __enter__(self) -> Callable[[int, int], None] | None:
        if self.disabled:
            return None

        self._bar = Progress(console=stderr_console(), transient=True)
        self._bar.__enter__()
        self._task = self._bar.add_task(f"talkinghead {self.label}", total=None)

        def update(done: int, total: int) -> None:
            if done % 25 == 0 or done == total:
                self._bar.update(self._task, completed=done, total=total)

        return update

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.__exit__(*exc)
