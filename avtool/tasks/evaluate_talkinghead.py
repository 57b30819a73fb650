"""``avtool eval talkinghead``: lip sync of the talking-head renderer on real video.

For each real clip (a GRID video, say) the clip's first frame is the face and its own audio is
the drive. Three landmark tracks are compared with the real video's track, each found by the
same dlib tracker (:func:`avtool.models.face.track_video`) so detector bias is shared:

* ``renderer``: the video :func:`avtool.tasks.talkinghead.render_file` makes;
* ``static``: the baseline, the first frame repeated for as many frames, encoded to H.264 the
  same way (detection still runs on it, so codec and detector noise count for it too);
* ``driven``: the renderer's own target landmarks (no detection) — a diagnostic that separates
  errors of the mouth motion itself from what the warp and the detector make of it.

Measures per track (see :mod:`avtool.eval.landmarks`): D-LL, D-VL, D-A (AnyoneNet, in units of
the inter-ocular distance after registering every frame on the nose and eyes) and the Pearson
correlation of the inner-mouth area over time. The issue's targets: mean area correlation at
least 0.5 and D-A at most 0.6 of the static baseline's.

``compare=[...]`` renders the same clips with more ``--model`` values in the same run (e.g.
``warp`` and ``anyonenet`` side by side): each adds the systems ``<label>`` and
``<label>.driven`` (:func:`model_label`), scored against the same real and static tracks;
``summary["d_a_ratio_by_system"]`` gives every rendered system's D-A over the static one's.
"""

from __future__ import annotations

import math
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from avtool.errors import AvtoolError

#: Systems reported per clip; ``driven`` is a diagnostic, not a video.
SYSTEMS = ("renderer", "static", "driven")
#: The issue's targets on the shared GRID clips.
TARGET_AREA_CORR = 0.5
TARGET_DA_RATIO = 0.6


def render_options(**overrides: Any) -> Any:
    """The renderer's :class:`~avtool.tasks.talkinghead.TalkingHeadOptions` with overrides.

    None values are dropped, so unset CLI options keep the renderer's own defaults.
    """
    from avtool.tasks.talkinghead import TalkingHeadOptions

    return TalkingHeadOptions(**{k: v for k, v in overrides.items() if v is not None})


def model_label(model: str) -> str:
    """A system name for a ``--model`` value: the name itself, a checkpoint's file name."""
    from avtool.tasks.talkinghead import MODELS

    return model if model in MODELS else Path(model).name


def first_frame(path: Path, fps: float) -> np.ndarray:
    """The first ``(H, W, 3)`` uint8 frame of a video (at the tracking rate, as the track)."""
    from avtool.errors import InputError
    from avtool.io.video import VideoReader

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
    from avtool.io.face import resize_image
    from avtool.io.video import VideoWriter

    if size is not None:
        frame = resize_image(frame, size)
    height, width = frame.shape[0] // 2 * 2, frame.shape[1] // 2 * 2
    frame = np.ascontiguousarray(frame[:height, :width])
    with VideoWriter(path, fps, (width, height)) as writer:
        for _ in range(n_frames):
            writer.write(frame)
    return path


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
) -> dict[str, Any]:
    """Render one clip from its first frame and audio; score renderer, static and driven.

    Args:
        clip: a real talking-face video with its speech.
        options: :class:`avtool.tasks.talkinghead.TalkingHeadOptions`.
        detector: a loaded :class:`avtool.models.face.FaceDetector`.
        work_dir: where ``<stem>.wav``, ``<stem>.generated.mp4`` and ``<stem>.static.mp4`` go.
        models: loaded models by ``--model`` value (:func:`avtool.tasks.talkinghead.load_model`),
            so each is loaded once per run; missing ones are loaded per clip.
        compare: more ``--model`` values rendered too (systems ``<label>``, ``<label>.driven``).

    Returns:
        ``{"clip", "n_frames", "systems": {name: {d_ll, d_vl, d_a, area_corr, n_frames}},
        "lag_frames", "lag_corr", "detected_fraction", "seconds": {...}}``.

    Raises:
        InputError: the clip has no frames, face or audio.
    """
    from dataclasses import replace

    from avtool.eval.landmarks import best_area_lag, lip_sync_metrics
    from avtool.io.audio import load_audio, save_audio
    from avtool.io.video import probe
    from avtool.models.face import track_video
    from avtool.tasks.talkinghead import load_model, render_file

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
        face, drive, generated_path, options, detector=detector, model=models[options.model]
    )
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
            model=models[name],
        )  # fmt: skip
        tracked = track_video(path, fps=options.fps, detector=detector)
        systems[label] = lip_sync_metrics(tracked.landmarks, real.landmarks, reference)
        systems[f"{label}.driven"] = lip_sync_metrics(
            np.asarray(other.landmarks), real.landmarks, reference
        )
        seconds[label] = time.perf_counter() - start
    lag, lag_r = best_area_lag(generated.landmarks, real.landmarks)
    return {
        "clip": clip.name,
        "n_frames": {"real": real.n_frames, "generated": generated.n_frames},
        "systems": {name: _clean(scores) for name, scores in systems.items()},
        "lag_frames": lag,
        "lag_corr": round(lag_r, 4) if math.isfinite(lag_r) else None,
        "detected_fraction": round(float(np.mean(generated.detected)), 4),
        "seconds": {k: round(v, 3) for k, v in seconds.items()},
    }


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Means over the clips that succeeded, the D-A ratio to the static baseline, the targets.

    Returns:
        ``{"mean": {system: {measure: value}}, "d_a_ratio", "d_a_ratio_by_system",
        "targets": {...}, "passed"}``; ``d_a_ratio`` is mean renderer D-A over mean static
        D-A (the targets apply to it), ``d_a_ratio_by_system`` the same for every system.
    """
    from avtool.eval.landmarks import MEASURES

    ok = [row for row in rows if "systems" in row]
    names = list(SYSTEMS) + [s for s in (ok[0]["systems"] if ok else {}) if s not in SYSTEMS]
    mean = {
        system: {m: _mean([row["systems"][system][m] for row in ok]) for m in MEASURES}
        for system in names
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
) -> dict[str, Any]:
    """Score the talking-head renderer against the static-face baseline on real clips.

    A clip that fails (no face, no audio, undecodable) is reported with its error and the
    others go on; the summary averages the clips that succeeded.

    Args:
        clips: real talking-face videos with their own speech (e.g. ``../shared/data/grid``).
        options: :class:`~avtool.tasks.talkinghead.TalkingHeadOptions` (None = defaults).
        accept_license: accept the dlib 68-point model's non-commercial licence.
        keep_dir: keep the rendered, static and drive files here (None = a temp folder).
        detector: a loaded :class:`~avtool.models.face.FaceDetector` (one is loaded otherwise).
        on_clip: called with each clip before it is processed (progress).
        compare: more ``--model`` values to render and score side by side (see
            :func:`evaluate_clip`); ``options.model`` stays the ``renderer`` system.

    Returns:
        ``{"clips": [per-clip rows], "summary": summarise(...), "options": {...},
        "landmark_model": ..., "versions": {...}}``.

    Raises:
        ModelError: the landmark model's licence is not accepted, or a ``--model`` cannot be
            loaded (before any clip is scored).
    """
    from dataclasses import asdict

    from avtool.models.face import LANDMARK_MODEL, load_detector
    from avtool.runtime import versions
    from avtool.tasks.talkinghead import load_model

    options = options or render_options()
    compare = tuple(m for m in dict.fromkeys(compare) if m != options.model)
    models = {
        name: load_model(name, accept_license=accept_license) for name in (options.model, *compare)
    }
    detector = detector or load_detector(accept_license=accept_license)
    rows: list[dict[str, Any]] = []
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
                    compare=compare,
                )  # fmt: skip
            except AvtoolError as exc:
                row = {"clip": Path(clip).name, "error": str(exc)}
            finally:
                if keep_dir is None:  # bound the temp folder's size on long clip lists
                    for leftover in work_dir.iterdir():
                        shutil.rmtree(leftover) if leftover.is_dir() else leftover.unlink()
            rows.append(row)
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
        },
        "versions": versions(),
    }
