"""``avtool eval talkinghead``: lip sync of the talking-head renderer on real video.

For each real clip (a GRID video, say) the clip's first frame is the face and its own audio is
the drive. Three landmark tracks are compared with the real video's track, each found by the
same dlib tracker (:func:`avtool.models.face.track_video`) so detector bias is shared:

* ``renderer``: the video :func:`avtool.tasks.talkinghead.render_file` makes;
* ``static``: the baseline, the first frame repeated for as many frames, encoded to H.264 the
  same way (detection still runs on it, so codec and detector noise count for it too);
* ``driven``: the renderer's own target landmarks (no detection) — a diagnostic that separates
  errors of the mouth motion itself from what the warp and the detector make of it.

Measures per track (see :mod:`avtool.metrics.landmarks`): D-LL, D-VL, D-A (AnyoneNet, in units of
the inter-ocular distance after registering every frame on the nose and eyes) and the Pearson
correlation of the inner-mouth area over time. The issue's targets: mean area correlation at
least 0.6 and D-A at most 0.6 of the static baseline's; in pixels (``pixels``: the mouth region
of a ``--still`` render against the real frames, :func:`pixel_scores`), mouth L1 below and SSIM
above the static photo's. ``montage=`` writes a PNG of real vs rendered mouths.

``compare=[...]`` renders the same clips with more ``--model`` values in the same run (e.g.
``warp`` and ``anyonenet`` side by side): each adds the systems ``<label>`` and
``<label>.driven`` (:func:`model_label`), scored against the same real and static tracks;
``summary["d_a_ratio_by_system"]`` gives every rendered system's D-A over the static one's.
"""

from __future__ import annotations

import csv
import functools
import math
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw
from scipy.ndimage import gaussian_filter

from avtool.errors import AvtoolError, InputError
from avtool.io.audio import load_audio, save_audio
from avtool.io.face import mouth_area, resize_image
from avtool.io.files import atomic_output
from avtool.io.video import VideoReader, VideoWriter, probe
from avtool.metrics.landmarks import MEASURES, best_area_lag, lip_sync_metrics
from avtool.models.face import LANDMARK_MODEL, load_detector, track_video
from avtool.runtime import versions
from avtool.tasks.options.talkinghead import MODELS, TalkingHeadOptions
from avtool.tasks.talkinghead import load_model, plan_render, render_file, render_frames

#: Systems reported per clip; ``driven`` is a diagnostic, not a video.
SYSTEMS = ("renderer", "static", "driven")
#: The issue's targets on the shared GRID clips.
TARGET_AREA_CORR = 0.6
TARGET_DA_RATIO = 0.6


def render_options(**overrides: Any) -> Any:
    """The renderer's :class:`~avtool.tasks.options.talkinghead.TalkingHeadOptions` with overrides.

    None values are dropped, so unset CLI options keep the renderer's own defaults.
    """
    return TalkingHeadOptions(**{k: v for k, v in overrides.items() if v is not None})


def unseen_clips(paths: list[Path]) -> list[Path]:
    """``paths`` without GRID speaker s1's own clips (the bank and AnyoneNet were built on s1).

    A clip is s1's when a ``manifest.csv`` beside it (or one folder up) gives its speaker as
    ``s1`` (``../shared/data/grid/bbaf2n.mpg``), or when it lies in a ``grid_s1`` folder.
    Sentence ids alone cannot tell: every GRID speaker reads the same sentences.
    """
    speakers: dict[Path, str] = {}
    for folder in {Path(p).resolve().parent for p in paths}:
        for base in (folder, folder.parent):
            manifest = base / "manifest.csv"
            if not manifest.is_file():
                continue
            with manifest.open(newline="", encoding="utf-8") as handle:
                for row in csv.DictReader(handle):
                    if row.get("file") and row.get("speaker"):
                        speakers[(base / row["file"]).resolve()] = row["speaker"].strip()
    return [
        p
        for p in paths
        if speakers.get(Path(p).resolve()) != "s1" and "grid_s1" not in Path(p).resolve().parts
    ]


def model_label(model: str) -> str:
    """A system name for a ``--model`` value: the name itself, a checkpoint's file name."""
    return model if model in MODELS else Path(model).name


def first_frame(path: Path, fps: float) -> np.ndarray:
    """The first ``(H, W, 3)`` uint8 frame of a video (at the tracking rate, as the track)."""

    with VideoReader(path, fps=fps) as reader:
        for frame in reader:
            return frame.copy()
    raise InputError(f"{path}: the video has no frames")


def write_static_video(
    frame: np.ndarray, n_frames: int, fps: float, path: Path, size: tuple[int, int] | None = None
) -> Path:
    """Encode ``frame`` repeated ``n_frames`` times as H.264 (the static-face baseline).

    Args:
        frame: ``(H, W, 3)`` uint8.
        n_frames: frame count (the rendered video's, so the tracks line up).
        fps: frame rate in frames/s.
        path: output ``.mp4``.
        size: ``(width, height)`` to resize to (the rendered video's); None keeps the frame's,
            cropped by one pixel where odd (H.264 needs even sides).
    """

    if size is not None:
        frame = resize_image(frame, size)
    height, width = frame.shape[0] // 2 * 2, frame.shape[1] // 2 * 2
    frame = np.ascontiguousarray(frame[:height, :width])
    with VideoWriter(path, fps, (width, height)) as writer:
        for _ in range(n_frames):
            writer.write(frame)
    return path


def mouth_box(points: np.ndarray, size: tuple[int, int]) -> tuple[int, int, int, int]:
    """The lips' box ``(x0, y0, x1, y1)`` padded by half its size, clipped to ``(W, H)``."""
    lips = np.asarray(points[48:68], np.float64)
    low, high = lips.min(axis=0), lips.max(axis=0)
    pad = (high - low) / 2
    width, height = size
    x0, y0 = np.floor(low - pad).astype(int)
    x1, y1 = np.ceil(high + pad).astype(int)
    return max(0, x0), max(0, y0), min(width, max(x1, x0 + 1)), min(height, max(y1, y0 + 1))


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """Mean structural similarity of two ``(h, w, 3)`` uint8 images on their luma.

    Wang et al. 2004: Gaussian window (sigma 1.5), ``C1 = (0.01 L)^2``, ``C2 = (0.03 L)^2``
    with ``L = 255``.
    """
    weights = np.array([0.299, 0.587, 0.114])
    x = a.astype(np.float64) @ weights
    y = b.astype(np.float64) @ weights
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    blur = functools.partial(gaussian_filter, sigma=1.5, mode="reflect", truncate=3.5)
    mx, my = blur(x), blur(y)
    vx = blur(x * x) - mx * mx
    vy = blur(y * y) - my * my
    cov = blur(x * y) - mx * my
    index = ((2 * mx * my + c1) * (2 * cov + c2)) / ((mx**2 + my**2 + c1) * (vx + vy + c2))
    return float(index.mean())


def mouth_image_scores(
    frames: list[np.ndarray], real: list[np.ndarray], landmarks: np.ndarray, detected: np.ndarray
) -> dict[str, float]:
    """Mouth-region L1 (8-bit levels) and SSIM of generated frames against the real ones.

    The region is each real frame's lips' box padded by half its size (:func:`mouth_box`);
    frames 1..T-1 where the real face was detected (frame 0 is the photo itself).

    Args:
        frames: generated ``(H, W, 3)`` uint8 frames, the real frames' size.
        real: the real frames.
        landmarks: ``(T, 68, 2)`` the real track (pixels).
        detected: ``(T,)`` bool.

    Returns:
        ``{"mouth_l1", "mouth_ssim", "n_frames"}``.
    """
    l1, similarity = [], []
    n = min(len(frames), len(real), len(landmarks))
    for index in range(1, n):
        if not detected[index]:
            continue
        height, width = real[index].shape[:2]
        x0, y0, x1, y1 = mouth_box(landmarks[index], (width, height))
        gen = frames[index][y0:y1, x0:x1]
        ref = real[index][y0:y1, x0:x1]
        if gen.shape != ref.shape or min(gen.shape[:2]) < 7:
            continue
        l1.append(float(np.mean(np.abs(gen.astype(np.float64) - ref.astype(np.float64)))))
        similarity.append(ssim(gen, ref))
    return {
        "mouth_l1": float(np.mean(l1)) if l1 else float("nan"),
        "mouth_ssim": float(np.mean(similarity)) if similarity else float("nan"),
        "n_frames": len(l1),
    }


def _mean(values: list[float]) -> float | None:
    finite = [v for v in values if v is not None and math.isfinite(v)]
    return round(statistics.fmean(finite), 4) if finite else None


def _clean(scores: dict[str, Any]) -> dict[str, Any]:
    # JSON has no NaN: a still mouth's correlation is reported as null.
    out: dict[str, Any] = {}
    for key, value in scores.items():
        if isinstance(value, float):
            out[key] = round(value, 5) if math.isfinite(value) else None
        else:
            out[key] = value
    return out


def evaluate_clip(
    clip: Path,
    options: Any,
    *,
    detector: Any,
    work_dir: Path,
    models: dict[str, Any] | None = None,
    compare: tuple[str, ...] = (),
    montage: list[Any] | None = None,
    accept_license: bool = False,
) -> dict[str, Any]:
    """Render one clip from its first frame and audio; score renderer, static and driven.

    Args:
        clip: a real talking-face video with its speech.
        options: :class:`avtool.tasks.options.talkinghead.TalkingHeadOptions`.
        detector: a loaded :class:`avtool.models.face.FaceDetector`.
        work_dir: where ``<stem>.wav``, ``<stem>.generated.mp4`` and ``<stem>.static.mp4`` go.
        models: loaded models by ``--model`` value (:func:`avtool.tasks.talkinghead.load_model`),
            so each is loaded once per run; missing ones are loaded per clip.
        compare: more ``--model`` values rendered too (systems ``<label>``, ``<label>.driven``).
        montage: collects the widest-mouth frame of each system (:func:`pixel_scores`).
        accept_license: for the registry's licence gates met while rendering (the speaker
            guard's reference of a non-commercial AnyoneNet entry).

    Returns:
        ``{"clip", "n_frames", "systems": {name: {d_ll, d_vl, d_a, area_corr, n_frames}},
        "pixels": {name: {mouth_l1, mouth_ssim, n_frames}}, "lag_frames", "lag_corr",
        "detected_fraction", "seconds": {...}}``.

    Raises:
        InputError: the clip has no frames, face or audio.
    """

    # Measuring the AnyoneNet UNets on strangers is the point of the unseen-speaker figures:
    # the renderer's refusal of another person's face is lifted here (its warning stays).
    options = replace(options, force=True)
    seconds: dict[str, float] = {}
    start = time.perf_counter()
    real = track_video(clip, fps=options.fps, detector=detector)
    face = first_frame(clip, options.fps)
    audio, rate = load_audio(clip)
    drive = save_audio(work_dir / f"{clip.stem}.wav", audio, rate)
    seconds["track_real"] = time.perf_counter() - start

    models = models if models is not None else {}
    for name in (options.model, *compare):
        if name not in models:
            models[name] = load_model(name)
    start = time.perf_counter()
    generated_path = work_dir / f"{clip.stem}.generated.mp4"
    result = render_file(
        face, drive, generated_path, options, detector=detector, model=models[options.model],
        accept_license=accept_license,
    )  # fmt: skip
    seconds["render"] = time.perf_counter() - start

    start = time.perf_counter()
    generated = track_video(generated_path, fps=options.fps, detector=detector)
    seconds["track_generated"] = time.perf_counter() - start

    start = time.perf_counter()
    info = probe(generated_path)
    static_path = write_static_video(
        face, generated.n_frames, options.fps, work_dir / f"{clip.stem}.static.mp4",
        size=(info.width, info.height),
    )  # fmt: skip
    static = track_video(static_path, fps=options.fps, detector=detector)
    seconds["static"] = time.perf_counter() - start

    reference = real.landmarks[0]
    systems = {
        "renderer": lip_sync_metrics(generated.landmarks, real.landmarks, reference),
        "static": lip_sync_metrics(static.landmarks, real.landmarks, reference),
        "driven": lip_sync_metrics(np.asarray(result.landmarks), real.landmarks, reference),
    }
    for name in compare:
        label = model_label(name)
        start = time.perf_counter()
        path = work_dir / f"{clip.stem}.{label}.mp4"
        other = render_file(
            face, drive, path, replace(options, model=name), detector=detector,
            model=models[name], accept_license=accept_license,
        )  # fmt: skip
        tracked = track_video(path, fps=options.fps, detector=detector)
        systems[label] = lip_sync_metrics(tracked.landmarks, real.landmarks, reference)
        systems[f"{label}.driven"] = lip_sync_metrics(
            np.asarray(other.landmarks), real.landmarks, reference
        )
        seconds[label] = time.perf_counter() - start
    start = time.perf_counter()
    pixels = pixel_scores(
        clip, face, drive, options, real, detector, models, compare, montage=montage,
        accept_license=accept_license,
    )  # fmt: skip
    seconds["pixels"] = time.perf_counter() - start
    lag, lag_r = best_area_lag(generated.landmarks, real.landmarks)
    return {
        "clip": clip.name,
        "n_frames": {"real": real.n_frames, "generated": generated.n_frames},
        "systems": {name: _clean(scores) for name, scores in systems.items()},
        "pixels": {name: _clean(scores) for name, scores in pixels.items()},
        "lag_frames": lag,
        "lag_corr": round(lag_r, 4) if math.isfinite(lag_r) else None,
        "detected_fraction": round(float(np.mean(generated.detected)), 4),
        "seconds": {k: round(v, 3) for k, v in seconds.items()},
    }


def pixel_scores(
    clip: Path,
    face: np.ndarray,
    drive: Path,
    options: Any,
    real: Any,
    detector: Any,
    models: dict[str, Any],
    compare: tuple[str, ...] = (),
    *,
    montage: list[Any] | None = None,
    accept_license: bool = False,
) -> dict[str, dict[str, Any]]:
    """Mouth-region L1 and SSIM against the real frames: each warp system and the static photo.

    The systems are rendered ``--still`` (frames straight from the renderer, not encoded): the
    real speaker's own head motion is not in the drive, so invented head motion would only add
    misalignment; the static photo is the first frame repeated. A UNet renderer's frames are
    face crops of another size and are not scored here.

    Args:
        montage: when a list, ``(real, {system: frame})`` of the frame with the widest real
            mouth opening is appended (for :func:`write_montage`).

    Returns:
        ``{system: {"mouth_l1", "mouth_ssim", "n_frames"}}`` with ``static`` among them.
    """

    with VideoReader(clip, fps=options.fps) as reader:
        frames = [frame.copy() for frame in reader]
    scores: dict[str, dict[str, Any]] = {}
    rendered: dict[str, np.ndarray] = {}
    length = len(frames)
    widest = int(np.argmax(np.where(real.detected, mouth_area(real.landmarks), -1.0)))
    for name in (options.model, *compare):
        model = models.get(name)
        if model is not None and model.kind == "renderer":
            continue
        label = "renderer" if name == options.model else model_label(name)
        plan = plan_render(
            face, drive, replace(options, model=name, still=True, size=None, crop="full"),
            detector=detector, model=model, accept_license=accept_license,
        )  # fmt: skip
        if plan.frame_size != (frames[0].shape[1], frames[0].shape[0]):
            continue
        generated = list(render_frames(plan))
        length = min(length, len(generated))
        scores[label] = mouth_image_scores(generated, frames, real.landmarks, real.detected)
        if widest < len(generated):
            rendered[label] = generated[widest]
    # The static photo is scored on the same frames as the renders (they may be a frame short).
    scores["static"] = mouth_image_scores([face] * length, frames, real.landmarks, real.detected)
    rendered["static"] = face
    if montage is not None and widest < len(frames):
        montage.append((clip.stem, frames[widest], real.landmarks[widest], rendered))
    return scores


def write_montage(path: Path, items: list[Any], scale: int = 3) -> Path:
    """A PNG of real vs rendered mouths: one row per clip, columns real | each system.

    Each cell is the real frame's mouth box (the lips padded by half their size, as scored),
    cut from the real frame and from each system's frame at that instant, enlarged ``scale``
    times (nearest neighbour, so pixels stay visible); the row's clip id and the column names
    are written on it.
    """
    if not items:
        raise ValueError("no montage rows")
    names = ["real", *items[0][3].keys()]
    cell_w, cell_h = 64 * scale, 40 * scale
    label_h = 14
    canvas = Image.new("RGB", (cell_w * len(names), (cell_h + label_h) * len(items) + label_h))
    draw = ImageDraw.Draw(canvas)
    for column, name in enumerate(names):
        draw.text((column * cell_w + 4, 1), name, fill=(255, 255, 255))
    for row, (stem, real, points, rendered) in enumerate(items):
        top = label_h + row * (cell_h + label_h)
        draw.text((4, top + 1), stem, fill=(255, 255, 0))
        height, width = real.shape[:2]
        x0, y0, x1, y1 = mouth_box(points, (width, height))
        for column, name in enumerate(names):
            frame = real if name == "real" else rendered.get(name)
            if frame is None or frame.shape != real.shape:
                continue
            cut = Image.fromarray(np.ascontiguousarray(frame[y0:y1, x0:x1]))
            cut.thumbnail((cell_w, cell_h), Image.Resampling.NEAREST)
            cut = cut.resize((cell_w, round(cell_w * cut.height / max(cut.width, 1))),
                             Image.Resampling.NEAREST)  # fmt: skip
            canvas.paste(cut.crop((0, 0, cell_w, min(cell_h, cut.height))),
                         (column * cell_w, top + label_h))  # fmt: skip
    with atomic_output(path) as tmp:
        canvas.save(tmp, format="PNG")
    return path


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Means over the clips that succeeded, the D-A ratio to the static baseline, the targets.

    Returns:
        ``{"mean": {system: {measure: value}}, "d_a_ratio", "d_a_ratio_by_system",
        "targets": {...}, "passed"}``; ``d_a_ratio`` is mean renderer D-A over mean static
        D-A (the targets apply to it), ``d_a_ratio_by_system`` the same for every system.
    """
    ok = [row for row in rows if "systems" in row]
    names = list(SYSTEMS) + [s for s in (ok[0]["systems"] if ok else {}) if s not in SYSTEMS]
    mean = {
        system: {m: _mean([row["systems"][system][m] for row in ok]) for m in MEASURES}
        for system in names
    }
    pixel_names = list(dict.fromkeys(n for row in ok for n in row.get("pixels", {})))
    pixels = {
        system: {
            m: _mean([row["pixels"][system][m] for row in ok if system in row.get("pixels", {})])
            for m in ("mouth_l1", "mouth_ssim")
        }
        for system in pixel_names
    }
    renderer_da, static_da = mean["renderer"]["d_a"], mean["static"]["d_a"]
    ratio = round(renderer_da / static_da, 4) if renderer_da is not None and static_da else None
    corr = mean["renderer"]["area_corr"]
    targets = {
        "area_corr": {"target": f">= {TARGET_AREA_CORR}", "value": corr,
                      "met": corr is not None and corr >= TARGET_AREA_CORR},
        "d_a_ratio": {"target": f"<= {TARGET_DA_RATIO}", "value": ratio,
                      "met": ratio is not None and ratio <= TARGET_DA_RATIO},
    }  # fmt: skip
    if "renderer" in pixels and "static" in pixels:
        l1, l1_static = pixels["renderer"]["mouth_l1"], pixels["static"]["mouth_l1"]
        sim, sim_static = pixels["renderer"]["mouth_ssim"], pixels["static"]["mouth_ssim"]
        targets["mouth_l1"] = {"target": f"< static ({l1_static})", "value": l1,
                               "met": l1 is not None and l1_static is not None
                               and l1 < l1_static}  # fmt: skip
        targets["mouth_ssim"] = {"target": f"> static ({sim_static})", "value": sim,
                                 "met": sim is not None and sim_static is not None
                                 and sim > sim_static}  # fmt: skip
    by_system = {
        system: round(mean[system]["d_a"] / static_da, 4)
        for system in names
        if system != "static" and mean[system]["d_a"] is not None and static_da
    }
    return {
        "n_clips": len(ok),
        "mean": mean,
        "d_a_ratio": ratio,
        "d_a_ratio_by_system": by_system,
        "pixels": pixels,
        "targets": targets,
        "passed": bool(ok) and all(t["met"] for t in targets.values()),
    }


def evaluate_talkinghead(
    clips: list[Path],
    options: Any = None,
    *,
    accept_license: bool = False,
    keep_dir: Path | None = None,
    detector: Any = None,
    on_clip: Callable[[Path], None] | None = None,
    compare: tuple[str, ...] | list[str] = (),
    montage: Path | None = None,
) -> dict[str, Any]:
    """Score the talking-head renderer against the static-face baseline on real clips.

    A clip that fails (no face, no audio, undecodable) is reported with its error and the
    others go on; the summary averages the clips that succeeded.

    Args:
        clips: real talking-face videos with their own speech (e.g. ``../shared/data/grid``).
        options: :class:`~avtool.tasks.options.talkinghead.TalkingHeadOptions` (None = defaults).
        accept_license: accept the dlib 68-point model's non-commercial licence.
        keep_dir: keep the rendered, static and drive files here (None = a temp folder).
        detector: a loaded :class:`~avtool.models.face.FaceDetector` (one is loaded otherwise).
        on_clip: called with each clip before it is processed (progress).
        compare: more ``--model`` values to render and score side by side (see
            :func:`evaluate_clip`); ``options.model`` stays the ``renderer`` system.
        montage: write a PNG of real vs rendered mouths here (one row per clip, the frame
            where the real mouth is widest; :func:`write_montage`).

    Returns:
        ``{"clips": [per-clip rows], "summary": summarise(...), "options": {...},
        "landmark_model": ..., "versions": {...}}``.

    Raises:
        ModelError: the landmark model's licence is not accepted, or a ``--model`` cannot be
            loaded (before any clip is scored).
    """

    options = options or render_options()
    compare = tuple(m for m in dict.fromkeys(compare) if m != options.model)
    models = {
        name: load_model(name, accept_license=accept_license) for name in (options.model, *compare)
    }
    detector = detector or load_detector(accept_license=accept_license)
    rows: list[dict[str, Any]] = []
    cells: list[Any] | None = [] if montage is not None else None
    with tempfile.TemporaryDirectory(prefix="avtool-eval-th-") as tmp:
        work_dir = Path(tmp)
        if keep_dir is not None:
            keep_dir.mkdir(parents=True, exist_ok=True)
            work_dir = keep_dir
        for clip in clips:
            if on_clip is not None:
                on_clip(clip)
            try:
                row = evaluate_clip(
                    Path(clip), options, detector=detector, work_dir=work_dir, models=models,
                    compare=compare, montage=cells, accept_license=accept_license,
                )  # fmt: skip
            except AvtoolError as exc:
                row = {"clip": Path(clip).name, "error": str(exc)}
            finally:
                if keep_dir is None:  # bound the temp folder's size on long clip lists
                    for leftover in work_dir.iterdir():
                        shutil.rmtree(leftover) if leftover.is_dir() else leftover.unlink()
            rows.append(row)
    if montage is not None and cells:
        write_montage(Path(montage), cells)
    return {
        "clips": rows,
        "summary": summarise(rows),
        "options": asdict(options),
        "systems": {
            "renderer": options.model,
            **{model_label(m): m for m in compare},
        },
        "models": {
            name: (m.describe() if m is not None else {"name": "facewarp"})
            for name, m in models.items()
        },
        "landmark_model": LANDMARK_MODEL,
        "measures": {
            "d_ll": "mean lip-landmark distance, inter-ocular distances (AnyoneNet D-LL)",
            "d_vl": "mean lip-landmark velocity distance, IOD per frame (AnyoneNet D-VL)",
            "d_a": "mean |inner-mouth area difference|, IOD squared (AnyoneNet D-A)",
            "area_corr": "Pearson r of inner-mouth area over time",
            "mouth_l1": "mean |rendered - real| in the real lips' box padded by half its size, "
            "8-bit levels, --still render, frames 1..T-1",
            "mouth_ssim": "SSIM (luma, Gaussian window 1.5) in the same box",
        },
        "versions": versions(),
    }
