"""``avtool eval separate``: two-speaker separation of GRID s1 from voices it never heard.

Mixtures: each of the first ``limit`` clips of GRID s1's *test* split (never trained on) plus one
interferer from each unseen group, at each target-to-interferer ratio in ``snrs`` (dB):

- ``grid``: the five non-s1 speakers of ``../shared/data/grid`` (``bbaf2n`` is s1's: left out);
- ``s4``: GRID speaker s4's clips (female);
- ``librispeech``: LibriSpeech test-other (10 speakers, never in training).

Interferers are picked deterministically per (clip, group) and cut/looped to the target's
length. Same-gender and cross-gender mixtures are reported apart (s1 is male; LibriSpeech
genders from ``speakers.csv``, s4 female, the unlabelled GRID speakers' gender from their
median F0: above 165 Hz female).

Systems scored side by side on the same mixtures:

- ``oracle-irm``: the ideal ratio mask from the true sources (the ceiling of T-F masking);
- ``v2a-mask``: training-free baseline, a ratio mask from v2a's speech predicted from the
  target's lips (``min(1, g|P| / |X|)``, ``g`` the least-squares gain of ``|P|`` onto ``|X|``);
- ``av``: the audio-visual mask network (target from the face);
- ``blind``: the blind model, the stem nearer the target counted (oracle selection, as is usual
  for blind separation scores).

Measures: SI-SDR and SDR improvement over the mixture (every SNR), PESQ-WB, STOI and the
GRID-grammar pocketsphinx WER of the target estimate beside the mixture's (at 0 dB, or every
SNR with ``full``).
"""

from __future__ import annotations

import csv
import math
import tempfile
import time
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from avtool.datasets.grid import load_item, s1_split
from avtool.errors import InputError
from avtool.io.audio import load_audio, resample, save_audio
from avtool.io.features import MelSpec
from avtool.io.ffmpeg import run_ffmpeg
from avtool.io.files import atomic_output, write_json
from avtool.metrics.grid import GridRecognizer, parse_grid_id
from avtool.metrics.separation import apply_mask, ideal_ratio_mask, improvements, mask_stft
from avtool.metrics.speech import pesq_wb, stoi
from avtool.metrics.wer import word_error_rate, word_errors
from avtool.models.separate.visual import lip_reader_features
from avtool.tasks.options.separate import AV_MODEL, BLIND_MODEL, SeparateOptions
from avtool.tasks.options.v2a import V2AOptions
from avtool.tasks.options.vocode import VocodeOptions
from avtool.tasks.separate import load_lip_reader, load_separator, masknet_stems
from avtool.tasks.v2a import load_model, predict_mel, speech_from_mel
from avtool.tasks.vocode import load_vocoder

SAMPLE_RATE = 16000
SNRS = (0.0, -5.0, 5.0)
GROUPS = ("grid", "s4", "librispeech")
SYSTEMS = ("mixture", "oracle-irm", "v2a-mask", "av", "blind")
#: Median F0 above which an unlabelled voice is called female (Hz).
FEMALE_F0 = 165.0


@dataclass
class Voice:
    """One interferer utterance: 16 kHz audio, speaker, gender (M/F), group."""

    id: str
    audio: np.ndarray
    speaker: str
    gender: str
    group: str


def median_f0(audio: np.ndarray, sample_rate: int = SAMPLE_RATE) -> float:
    """Median F0 (Hz) of the louder frames: the autocorrelation peak between 60 and 400 Hz of
    40 ms frames whose energy is within 20 dB of the loudest (a coarse gender cue only)."""
    frame, hop = int(0.04 * sample_rate), int(0.01 * sample_rate)
    lo, hi = sample_rate // 400, sample_rate // 60
    frames = [audio[i : i + frame] for i in range(0, len(audio) - frame, hop)]
    if not frames:
        return 0.0
    energy = np.array([float(np.dot(f, f)) for f in frames])
    f0s = []
    for f, e in zip(frames, energy, strict=True):
        if e < energy.max() * 0.01:
            continue
        f = f - f.mean()
        ac = np.correlate(f, f, "full")[frame - 1 :]
        lag = lo + int(np.argmax(ac[lo:hi]))
        if ac[lag] > 0.3 * ac[0]:  # voiced enough
            f0s.append(sample_rate / lag)
    return float(np.median(f0s)) if f0s else 0.0


def interferers(data: Path) -> dict[str, list[Voice]]:
    """The unseen voices of each group, decoded at 16 kHz.

    Raises:
        InputError: a group's folder is missing.
    """
    out: dict[str, list[Voice]] = {g: [] for g in GROUPS}
    grid = data / "grid"
    if not (grid / "manifest.csv").is_file():
        raise InputError(f"{grid}: no manifest.csv (the unseen GRID speakers)")
    with open(grid / "manifest.csv", newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            if row["speaker"].strip() == "s1":
                continue  # bbaf2n is s1's own clip: never an unseen voice
            audio, _ = load_audio(grid / row["file"], sample_rate=SAMPLE_RATE)
            gender = "F" if median_f0(audio) > FEMALE_F0 else "M"
            out["grid"].append(Voice(Path(row["file"]).stem, audio, row["speaker"], gender, "grid"))
    for path in sorted((data / "grid_s4" / "clips").glob("*.mkv")):
        audio, _ = load_audio(path, sample_rate=SAMPLE_RATE)
        out["s4"].append(Voice(path.stem, audio, "s4", "F", "s4"))
    libri = data / "librispeech"
    genders = {}
    with open(libri / "speakers.csv", newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            genders[row["speaker_id"]] = row["gender"]
    for path in sorted((libri / "test-other").glob("*/*.flac")):
        audio, _ = load_audio(path, sample_rate=SAMPLE_RATE)
        speaker = path.stem.split("-")[0]
        out["librispeech"].append(Voice(path.stem, audio, speaker, genders[speaker], "librispeech"))
    for group, voices in out.items():
        if not voices:
            raise InputError(f"no {group} interferers found under {data}")
    return out


def fit(audio: np.ndarray, n: int, offset: int) -> np.ndarray:
    """``audio`` from ``offset`` on, looped to exactly ``n`` samples."""
    if len(audio) >= n:
        start = offset % (len(audio) - n + 1)
        return audio[start : start + n]
    return np.resize(np.roll(audio, -offset % len(audio)), n)


def scale_to_snr(target: np.ndarray, other: np.ndarray, snr_db: float) -> np.ndarray:
    """``other`` scaled so ``10 log10(P_target / P_other) = snr_db``."""
    pt = float(np.mean(target**2)) + 1e-12
    po = float(np.mean(other**2)) + 1e-12
    return (other * math.sqrt(pt / po / 10 ** (snr_db / 10))).astype(np.float32)


def v2a_mask_estimate(
    mixture: np.ndarray, predicted: np.ndarray, n_fft: int = 512, hop: int = 160
) -> np.ndarray:
    """The training-free baseline: a ratio mask from speech predicted from the lips.

    Args:
        mixture: ``(T,)`` 16 kHz.
        predicted: ``(T',)`` v2a's speech for the target at 16 kHz (cut/padded to ``T``).

    Returns:
        ``(T,)`` target estimate.
    """
    pred = np.pad(predicted, (0, max(0, len(mixture) - len(predicted))))[: len(mixture)]
    x, p = mask_stft(mixture, n_fft, hop), mask_stft(pred, n_fft, hop).abs()
    gain = float((x.abs() * p).sum() / (p.pow(2).sum() + 1e-8))
    mask = torch.clamp(gain * p / (x.abs() + 1e-8), 0.0, 1.0)
    return apply_mask(mask, x, len(mixture), n_fft, hop)


def _choose(items: Sequence[Any], key: str) -> Any:
    return items[zlib.crc32(key.encode()) % len(items)]


def two_speaker_mixtures(
    target: np.ndarray, clip_id: str, voices: dict[str, list[Voice]], snrs: Sequence[float]
) -> Iterator[tuple[str, Voice, float, np.ndarray, np.ndarray, np.ndarray]]:
    """The evaluation's mixtures of one target clip, in its order (group, then SNR).

    Each group's interferer is chosen by the clip id and looped or cut to the target's length
    from a clip-dependent offset; when a mixture would clip, mixture, target and interferer
    are scaled together (the ratio is unchanged).

    Args:
        target: ``(T,)`` the target speech at 16 kHz.
        clip_id: the target's id (fixes the choice of interferer and its offset).
        voices: :func:`interferers`.
        snrs: target-to-interferer ratios in dB.

    Yields:
        ``(group, voice, snr, mix, target, interferer)``, the three signals ``(T,)`` float32.
    """
    for group in GROUPS:
        voice = _choose(voices[group], f"{clip_id}/{group}")
        other_raw = fit(voice.audio, len(target), zlib.crc32(clip_id.encode()))
        for snr in snrs:
            other = scale_to_snr(target, other_raw, snr)
            mix = (target + other).astype(np.float32)
            peak = float(np.abs(mix).max())
            if peak > 0.99:  # keep the mixture unclipped; the ratio is unchanged
                mix, tgt, oth = mix * 0.99 / peak, target * 0.99 / peak, other * 0.99 / peak
            else:
                tgt, oth = target, other
            yield group, voice, snr, mix, tgt, oth


def evaluate_separate(
    data: Path,
    cache: Path,
    *,
    limit: int = 20,
    snrs: Sequence[float] = SNRS,
    av_model: str | None = None,
    blind_model: str | None = None,
    v2a_model: str = "v2a-content-grid-s1",
    full: bool = False,
    device: str = "cpu",
    progress: Any = None,
) -> dict[str, Any]:
    """Score every system on the mixtures (see the module docstring).

    Args:
        data: ``../shared/data`` (grid, grid_s4, librispeech).
        cache: the GRID s1 cache (:mod:`avtool.training.grid_cache`): the test clips' audio,
            mouth crops and landmarks, made by the same face stage as ``avtool separate``.
        limit: s1 test clips used (the first ones present in the cache).
        snrs: target-to-interferer ratios in dB.
        av_model, blind_model: models to score (defaults: the registered ones).
        v2a_model: the model of the training-free baseline.
        full: PESQ/STOI/WER at every SNR, not only 0 dB.
        device: torch device.
        progress: called with a short string after each mixture.

    Returns:
        ``{"mixtures", "snrs", "rows": {group/gender/snr: {system: means}}, "overall",
        "x_real_time", "per_mixture"}``.

    Raises:
        InputError: no s1 test clip in the cache, a missing interferer folder.
    """

    ids = [i for i in s1_split()["test"] if (Path(cache) / f"{i}.npz").is_file()][:limit]
    if not ids:
        raise InputError(f"{cache}: no GRID s1 test clip in the cache; build it first")
    voices = interferers(Path(data))
    av = load_separator(av_model or AV_MODEL, device)
    blind = load_separator(blind_model or BLIND_MODEL, device)
    lip_reader = load_lip_reader(av.details["lip_reader"], device)
    v2a = load_model(v2a_model, device=device)
    vocoder = load_vocoder(VocodeOptions(model="hifigan-v1-universal"), device=device)
    spec = MelSpec.preset(v2a.module.config.mel_preset)
    recogniser = GridRecognizer()
    options = SeparateOptions()
    seconds = {s: 0.0 for s in SYSTEMS}
    audio_seconds = 0.0
    per_mixture: list[dict[str, Any]] = []
    for clip_id in ids:
        item = load_item(cache, clip_id)
        target = resample(item["audio"].astype(np.float32) / 32768.0, 22050, SAMPLE_RATE)
        text = str(item["text"])
        start = time.perf_counter()
        visual = lip_reader_features(lip_reader, item["gray88"], item["landmarks"])
        seconds["av"] += time.perf_counter() - start
        start = time.perf_counter()
        n_video = len(item["gray88"])
        n_mel = spec.frames_for(round(n_video * spec.sample_rate / 25.0))
        mel = predict_mel(
            v2a.module, list(item["gray88"]), n_video, n_mel, None, V2AOptions(), item["landmarks"]
        )
        predicted = resample(speech_from_mel(vocoder, mel, spec), spec.sample_rate, SAMPLE_RATE)
        seconds["v2a-mask"] += time.perf_counter() - start
        for group, voice, snr, mix, tgt, oth in two_speaker_mixtures(target, clip_id, voices, snrs):
            estimates: dict[str, np.ndarray] = {"mixture": mix}
            t0 = time.perf_counter()
            estimates["oracle-irm"] = ideal_ratio_mask(tgt, oth)
            t1 = time.perf_counter()
            estimates["v2a-mask"] = v2a_mask_estimate(mix, predicted)
            t2 = time.perf_counter()
            stems, _ = masknet_stems(av, mix, options, visual)
            estimates["av"] = stems[0]
            t3 = time.perf_counter()
            stems, _ = masknet_stems(blind, mix, options)
            t4 = time.perf_counter()
            pick = int(np.argmax([np.dot(s, tgt) / (np.linalg.norm(s) + 1e-8) for s in stems]))
            estimates["blind"] = stems[pick]
            for name, dt in (
                ("oracle-irm", t1 - t0),
                ("v2a-mask", t2 - t1),
                ("av", t3 - t2),
                ("blind", t4 - t3),
            ):
                seconds[name] += dt
            audio_seconds += len(mix) / SAMPLE_RATE
            row: dict[str, Any] = {
                "clip": clip_id,
                "group": group,
                "interferer": voice.id,
                "gender": "same" if voice.gender == "M" else "cross",
                "snr": snr,
                "systems": {},
            }
            for name, est in estimates.items():
                scores = improvements(tgt, est, mix)
                if full or snr == 0.0:
                    scores["pesq"] = pesq_wb(tgt, est, SAMPLE_RATE)
                    scores["stoi"] = stoi(tgt, est, SAMPLE_RATE)
                    hyp = recogniser.recognize(est, SAMPLE_RATE)
                    scores["wer_errors"], scores["wer_words"] = _word_errors(text, hyp)
                row["systems"][name] = {k: round(float(v), 4) for k, v in scores.items()}
            per_mixture.append(row)
            if progress:
                progress(f"{clip_id} {group} {snr:+g} dB")
    return {
        "mixtures": len(per_mixture),
        "clips": ids,
        "snrs": list(snrs),
        "rows": summarise(per_mixture),
        "x_real_time": {s: round(audio_seconds / t, 1) for s, t in seconds.items() if t > 0},
        "models": {"av": av.name, "blind": blind.name, "v2a": v2a.name},
        "per_mixture": per_mixture,
    }


def _word_errors(reference: str, hypothesis: str) -> tuple[int, int]:
    return word_errors(reference, hypothesis)


def summarise(rows: list[dict[str, Any]]) -> dict[str, dict[str, dict[str, float]]]:
    """Means per (group, gender, snr) and per snr over all groups, per system and measure.

    WER is pooled (errors / words), the rest averaged.
    """
    keys: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        for key in (
            f"{row['group']}/{row['gender']}/{row['snr']:+g}dB",
            f"all/{row['snr']:+g}dB",
            f"all/{row['gender']}/{row['snr']:+g}dB",
        ):
            keys.setdefault(key, []).append(row)
    out: dict[str, dict[str, dict[str, float]]] = {}
    for key, group in sorted(keys.items()):
        out[key] = {"n": {"mixtures": len(group)}}  # type: ignore[dict-item]
        for system in group[0]["systems"]:
            scores = [r["systems"][system] for r in group]
            means: dict[str, float] = {}
            for measure in ("si_sdri", "sdri", "si_sdr", "pesq", "stoi"):
                values = [s[measure] for s in scores if measure in s]
                if values:
                    means[measure] = round(float(np.mean(values)), 3)
            words = sum(s.get("wer_words", 0) for s in scores)
            if words:
                means["wer"] = round(sum(s.get("wer_errors", 0) for s in scores) / words, 4)
            out[key][system] = means
    return out


# --------------------------------------------------------------------------- pipeline


def pipeline_clip(target_video: str | Path, interferer: str | Path, out: str | Path) -> Path:
    """A real two-speaker clip: the target's video with its speech plus ``interferer``'s at
    0 dB as the soundtrack (H.264 video copied, the mixture as AAC, 16 kHz mono).

    Raises:
        InputError: unreadable inputs; SetupError: ffmpeg fails.
    """

    target, _ = load_audio(target_video, sample_rate=SAMPLE_RATE)
    other, _ = load_audio(interferer, sample_rate=SAMPLE_RATE)
    mix = target + scale_to_snr(target, fit(other, len(target), 0), 0.0)
    mix = mix * (0.9 / max(float(np.abs(mix).max()), 1e-6))
    out = Path(out)
    with tempfile.TemporaryDirectory() as tmp:
        wav = save_audio(Path(tmp) / "mix.wav", mix, SAMPLE_RATE)
        with atomic_output(out) as part:
            run_ffmpeg(
                [
                    "-y",
                    "-i",
                    str(target_video),
                    "-i",
                    str(wav),
                    "-map",
                    "0:v:0",
                    "-map",
                    "1:a:0",
                    "-c:v",
                    "copy",
                    "-c:a",
                    "aac",
                    "-b:a",
                    "128k",
                    "-shortest",
                    str(part),
                ],
                target_video,
            )
    return out


def pipeline_report(folder: str | Path, clip_id: str) -> dict[str, Any]:
    """GRID-grammar recognition of the pipeline's mixture and separated target, and the lip
    reading of the face, against ``clip_id``'s transcript; writes ``folder/report.json``."""

    folder = Path(folder)
    truth = parse_grid_id(clip_id)
    recogniser = GridRecognizer()
    report: dict[str, Any] = {"clip": clip_id, "transcript": truth}
    for name, path in (
        ("mixture", folder / "mix.mp4"),
        ("separated target", folder / "target.wav"),
    ):
        audio, rate = load_audio(path)
        text = recogniser.recognize(audio, rate)
        report[name] = {"recognised": text, "wer": round(word_error_rate(truth, text), 4)}
    lipread = (folder / "lipread.txt").read_text(encoding="utf-8").strip()
    report["lipread"] = {"text": lipread, "wer": round(word_error_rate(truth, lipread), 4)}
    write_json(folder / "report.json", report)
    print(report)
    return report
