"""``avtool eval v2a``: video-to-speech quality on real GRID recordings.

Sets: *seen speaker* = the held-out GRID s1 test split (:func:`avtool.datasets.grid.s1_split`,
never trained on), read from the cache of :mod:`avtool.datasets.grid` (the same face stage and
crops as ``avtool v2a``) or from the clip videos; *unseen* = any folder of GRID videos (the
six clips of ``../shared/data/grid``: other speakers, so a speaker-dependent model is expected
to fail there; reported as measured).

Per clip the generated speech (mel -> Griffin-Lim) is scored against the real audio with STOI,
ESTOI, PESQ-WB and mel-cepstral distortion, and recognised by pocketsphinx restricted to the
GRID grammar (word error rate against the transcript). Reference rows put the numbers in
context: ``resynth`` (Griffin-Lim of the *real* mel: the vocoder's ceiling) and, in the AV2A
ablation, the noisy input itself. The AV2A ablation mixes the real audio with white noise at
each SNR (seeded per clip) and compares video-only, audio-only and audio-visual inputs.
"""

from __future__ import annotations

import csv
import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from avtool.datasets.grid import find_clips, load_item, s1_split
from avtool.errors import InputError
from avtool.io.audio import load_audio
from avtool.io.features import MelSpec, mel_spectrogram
from avtool.io.formats import MODEL_FPS
from avtool.metrics.grid import GridRecognizer, parse_grid_id
from avtool.metrics.speech import mel_cepstral_distortion, pesq_wb, stoi
from avtool.metrics.wer import word_errors
from avtool.models import v2a as v2a_model
from avtool.models.face import load_detector, track_video
from avtool.models.v2a import AUDIO, BOTH, VIDEO, lip_features, prepare_crops
from avtool.tasks.options.v2a import AV2A_MODEL, DEFAULT_VOCODER, V2A_MODEL, V2AOptions
from avtool.tasks.options.vocode import GRIFFIN_LIM, VocodeOptions
from avtool.tasks.v2a import check_pose, load_model, speech_from_mel, stream_crops
from avtool.tasks.vocode import load_vocoder

MEASURES = ("stoi", "estoi", "pesq_wb", "mcd", "wer")
#: Vocoders every variant is scored with, side by side (the default first).
VOCODERS = (DEFAULT_VOCODER, GRIFFIN_LIM)
#: Speakers whose clips are never "unseen" (the training speaker).
TRAINING_SPEAKERS = ("s1",)


def unseen_paths(folder: Path) -> tuple[list[Path], dict[str, str]]:
    """A GRID folder's clips of speakers other than s1, and their transcripts by file name.

    ``manifest.csv`` (``file,transcript,speaker``) names each clip's speaker; clips of
    :data:`TRAINING_SPEAKERS` (``bbaf2n`` in ``../shared/data/grid`` is s1's own clip) are left
    out, so an "unseen" figure never counts the training speaker.
    """
    transcripts: dict[str, str] = {}
    excluded: set[str] = set()
    manifest = folder / "manifest.csv"
    if manifest.is_file():
        with manifest.open(encoding="utf-8") as f:
            for row in csv.DictReader(f):
                name = Path(row["file"]).name
                transcripts[name] = row.get("transcript") or ""
                if (row.get("speaker") or "").strip() in TRAINING_SPEAKERS:
                    excluded.add(name)
    paths = [p for p in find_clips(folder) if p.name not in excluded]
    return paths, transcripts


def short_name(vocoder: str) -> str:
    """Row label of a vocoder: ``hifigan`` for the default, else its name."""
    return "hifigan" if vocoder == DEFAULT_VOCODER else vocoder


@dataclass
class Clip:
    """One evaluation clip: crops ``(T, 88, 88)`` uint8, real audio ``(S,)`` float32 at 22.05
    kHz, transcript, the landmarks ``(T, 68, 2)`` the crops were cut with."""

    id: str
    crops: Any
    audio: Any
    text: str
    landmarks: Any = None


def seen_clips(cache: Path, ids: Sequence[str]) -> list[Clip]:
    """s1 test clips from the cache.

    Raises:
        InputError: a clip is missing from the cache.
    """
    clips = []
    for clip_id in ids:
        item = load_item(cache, clip_id)
        audio = item["audio"].astype(np.float32) / 32768.0
        clips.append(Clip(clip_id, item["gray88"], audio, str(item["text"]), item["landmarks"]))
    return clips


def video_clips(paths: Sequence[Path], detector: Any, transcripts: dict[str, str]) -> list[Clip]:
    """Clips through the inference face stage (:mod:`avtool.tasks.v2a`) from video files."""

    options = V2AOptions()
    clips = []
    for path in paths:
        track = track_video(path, fps=MODEL_FPS, detector=detector, max_gap=options.max_gap)
        check_pose(track.landmarks, track.detected, options.max_yaw, options.max_gap, str(path))
        crops = np.stack(list(stream_crops(path, track.landmarks, 88)))
        audio, _ = load_audio(path, sample_rate=22050)
        text = transcripts.get(path.name) or parse_grid_id(path.stem)
        clips.append(Clip(path.stem, crops, audio, text, track.landmarks))
    return clips


def add_noise(audio: Any, snr_db: float, seed: int) -> Any:
    """``audio`` plus white Gaussian noise at ``snr_db`` (seeded: the same mix every run)."""
    rng = np.random.default_rng(seed)
    noise = rng.standard_normal(audio.size).astype(np.float32)
    power = max(float(np.mean(audio.astype(np.float64) ** 2)), 1e-10)
    noise *= np.sqrt(power / 10 ** (snr_db / 10) / np.mean(noise.astype(np.float64) ** 2))
    return (audio + noise).astype(np.float32)


def score(reference: Any, estimate: Any, text: str, recogniser: Any) -> dict[str, float]:
    """STOI, ESTOI, PESQ-WB, MCD (dB) and WER (fraction) of ``estimate`` against ``reference``
    (both ``(S,)`` float at 22.05 kHz) and the transcript."""

    sr = 22050
    edits, words = word_errors(text, recogniser.recognize(estimate, sr))
    return {
        "stoi": stoi(reference, estimate, sr),
        "estoi": stoi(reference, estimate, sr, extended=True),
        "pesq_wb": pesq_wb(reference, estimate, sr),
        "mcd": mel_cepstral_distortion(reference, estimate, sr),
        "wer": edits / max(words, 1),
        "_edits": edits,
        "_words": words,
    }


def summarise(rows: list[dict[str, float]]) -> dict[str, Any]:
    """Means of the measures; WER pooled over words (total edits / total words)."""
    out: dict[str, Any] = {m: float(np.mean([r[m] for r in rows])) for m in MEASURES[:-1]}
    out["wer"] = sum(r["_edits"] for r in rows) / max(sum(r["_words"] for r in rows), 1)
    out["clips"] = len(rows)
    return out


def evaluate_v2a(
    *,
    model: str = V2A_MODEL,
    av_model: str | None = AV2A_MODEL,
    cache: Path | None = None,
    seen_dir: Path | None = None,
    unseen_dir: Path | Sequence[Path] | None = None,
    vocoders: Sequence[str] = VOCODERS,
    av2a_synth: Sequence[tuple[str, str]] = (),
    resynth: bool = True,
    limit: int | None = None,
    ablation_limit: int | None = 30,
    snrs: Sequence[float] = (0.0, 5.0),
    iters: int | None = None,
    seed: int = 0,
    device: str = "auto",
    accept_license: bool = False,
    on_clip: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Score V2A (and the AV2A ablation) on the seen and unseen sets.

    Args:
        model: the video-only model (name or path).
        av_model: the AV2A model for the ablation; None skips it.
        cache: GRID s1 cache folder (seen set from cached crops).
        seen_dir: GRID s1 folder (``clips/``); used when ``cache`` is None.
        unseen_dir: folder(s) of other speakers' GRID videos (with ``manifest.csv``; s1's
            clips in them are left out, see :func:`unseen_paths`); one set per folder.
        vocoders: every variant is vocoded by each (rows ``"<variant> (<vocoder>)"``).
        av2a_synth: ``(label, model)`` AV2A models fed the video and ``model``'s own mel as
            their audio (the seed paper's AV2A, :mod:`avtool.training.av2a_synth`); rows
            ``"av2a-synth <label>"`` on every set.
        resynth: score the real mel through each vocoder too (the vocoders' ceiling).
        limit: first N seen test clips only.
        ablation_limit: first N seen test clips for the AV2A ablation (None: all).
        snrs: noise levels of the ablation in dB.
        iters, seed: Griffin-Lim settings.
        device, accept_license: as for ``avtool v2a``.
        on_clip: progress callback with each clip id.

    Returns:
        ``{"sets": {name: {variant: {measure: mean, ..., "clips": n}}}, "per_clip": ...,
        "x_real_time": ..., "models": ...}``.

    Raises:
        InputError: no seen source and no unseen folder, or a clip cannot be read.
    """

    if cache is None and seen_dir is None and unseen_dir is None:
        raise InputError("give --cache or --seen (GRID s1) and/or --unseen (a GRID folder)")
    spec = MelSpec.hifigan_22k()
    v2a = load_model(model, device=device)
    av = load_model(av_model, device=device) if av_model else None
    synth_models = [(label, load_model(name, device=device)) for label, name in av2a_synth]
    if not vocoders:
        raise InputError("give at least one vocoder")
    loaded_vocoders = [
        load_vocoder(VocodeOptions(model=name, iters=iters, seed=seed), device=device)
        for name in vocoders
    ]
    recogniser = GridRecognizer()
    detector = None

    def vocode(mel: Any) -> dict[str, Any]:
        # One waveform per vocoder, keyed by its row label.
        return {short_name(v.name): speech_from_mel(v, mel, spec) for v in loaded_vocoders}

    def real_mel(audio: Any, n_mel: int) -> Any:
        with torch.no_grad():
            mel = mel_spectrogram(torch.from_numpy(np.ascontiguousarray(audio)), spec)[0].numpy()
        if mel.shape[1] < n_mel:
            mel = np.pad(mel, ((0, 0), (0, n_mel - mel.shape[1])), mode="edge")
        return mel[:, :n_mel]

    sets: dict[str, list[Clip]] = {}
    test_ids = s1_split()["test"][:limit]
    if cache is not None:
        sets["seen (s1 test)"] = seen_clips(cache, test_ids)
    elif seen_dir is not None:
        detector = load_detector(accept_license=accept_license)
        clip_dir = seen_dir / "clips" if (seen_dir / "clips").is_dir() else seen_dir
        paths = [clip_dir / f"{i}.mkv" for i in test_ids]
        sets["seen (s1 test)"] = video_clips(paths, detector, {})
    unseen_dirs = [unseen_dir] if isinstance(unseen_dir, (str, Path)) else list(unseen_dir or [])
    for folder in map(Path, unseen_dirs):
        detector = detector or load_detector(accept_license=accept_license)
        paths, transcripts = unseen_paths(folder)
        sets[f"unseen ({folder.name}, not s1)"] = video_clips(paths, detector, transcripts)

    results: dict[str, Any] = {"sets": {}, "per_clip": {}}
    model_seconds, audio_seconds = 0.0, 0.0
    for set_name, clips in sets.items():
        rows: dict[str, list[dict[str, float]]] = {}
        per_clip: dict[str, dict[str, Any]] = {}
        for index, clip in enumerate(clips):
            if on_clip:
                on_clip(clip.id)
            n_mel = spec.frames_for(round(len(clip.crops) * spec.sample_rate / MODEL_FPS))
            # Each mel variant -> {vocoder label: waveform}; the noisy input is not vocoded.
            mels: dict[str, Any] = {"resynth": real_mel(clip.audio, n_mel)} if resynth else {}
            start = time.perf_counter()
            mel = v2a_model.infer(v2a.module, clip.crops, n_mel, None, clip.landmarks).numpy()
            model_seconds += time.perf_counter() - start
            audio_seconds += len(clip.crops) / MODEL_FPS
            mels["v2a"] = mel
            for label, synth_model in synth_models:
                # The paper's inference: the V2A model's own speech is the audio input.
                mels[f"av2a-synth {label}"] = _av_infer(
                    synth_model.module, clip.crops, n_mel, mel, BOTH, clip.landmarks
                )
            raw: dict[str, Any] = {}
            in_ablation = ablation_limit is None or index < ablation_limit
            if av is not None and set_name.startswith("seen") and in_ablation:
                mels["av2a video-only"] = _av_infer(
                    av.module, clip.crops, n_mel, None, VIDEO, clip.landmarks
                )
                for snr in snrs:
                    noisy = add_noise(clip.audio, snr, zlib.crc32(clip.id.encode()) + int(snr))
                    noisy_mel = real_mel(noisy, n_mel)
                    raw[f"noisy input {snr:g} dB"] = noisy
                    mels[f"av2a audio-only {snr:g} dB"] = _av_infer(
                        av.module, clip.crops, n_mel, noisy_mel, AUDIO, clip.landmarks
                    )
                    mels[f"av2a audio-visual {snr:g} dB"] = _av_infer(
                        av.module, clip.crops, n_mel, noisy_mel, BOTH, clip.landmarks
                    )
            variants: dict[str, Any] = {}
            for name, variant_mel in mels.items():
                for label, wave in vocode(variant_mel).items():
                    variants[f"{name} ({label})"] = wave
            variants.update(raw)
            per_clip[clip.id] = {}
            for name, wave in variants.items():
                row = score(clip.audio, wave, clip.text, recogniser)
                rows.setdefault(name, []).append(row)
                per_clip[clip.id][name] = {k: round(v, 4) for k, v in row.items()}
        results["sets"][set_name] = {name: summarise(r) for name, r in rows.items()}
        results["per_clip"][set_name] = per_clip
    results["model_x_real_time"] = (
        round(audio_seconds / model_seconds, 1) if model_seconds else None
    )
    results["models"] = {"v2a": {"name": v2a.name, "sha256": v2a.sha256},
                         "av2a": {"name": av.name, "sha256": av.sha256} if av else None,
                         "av2a_synth": {label: {"name": m.name, "sha256": m.sha256}
                                        for label, m in synth_models},
                         "vocoders": [v.name for v in loaded_vocoders]}  # fmt: skip
    return results


def _av_infer(
    model: Any, crops: Any, n_mel: int, noisy_mel: Any, mode: int, landmarks: Any = None
) -> Any:
    """AV2A inference in a given modality mode; ``(n_mels, n_mel)`` numpy log mel.

    ``landmarks`` ``(T, 68, 2)`` feed the lip stream of models that have one.
    """

    with torch.no_grad():
        x = prepare_crops(torch.as_tensor(crops)[None], model.config.crop_size)
        noisy = None if noisy_mel is None else torch.as_tensor(noisy_mel)[None].float()
        lips = None
        if model.lips is not None:
            marks = torch.from_numpy(np.ascontiguousarray(landmarks, dtype=np.float32))
            lips = lip_features(marks[None])
        # Video-only through the AV model (noisy None): its audio path is skipped.
        return model(x, n_mel, noisy, mode, lips)[0].numpy()
