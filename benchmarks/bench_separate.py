"""Benchmark of ``avtool separate`` (run with ``make bench``; figures never live in tests).

1. Speed on one CPU thread, side by side in one run, on the same 60 s of real speech mixtures
   (GRID s1 test clips + LibriSpeech test-other): the audio-visual mask network (lip-reader
   front-end from the s1 cache's crops, then the separator), the blind mask network, and the
   training-free baseline (v2a's speech from the lips + HiFi-GAN + a ratio mask), as times faster
   than real time (audio seconds / wall seconds). Target: >= 10x for the AV and blind models.
2. Peak memory of ``avtool separate`` (blind) on a 10-minute vs a 1-minute input, each in its
   own process (``ru_maxrss``). Target: 10-minute <= 1.5 x 1-minute.
3. Music: Spleeter 2-stem vocals SDR on real speech (LibriSpeech) over a Bach chorale from
   music21's corpus rendered without its soprano (alto, tenor, bass as accompaniment), at 0 dB.
   No real multitrack recording under a licence that allows it as a fixture is available
   offline, so this synthetic mix stands in for one.
4. Quality: ``avtool eval separate`` on ``--clips`` s1 test clips (see
   :mod:`avtool.tasks.eval.separate`).
5. ``--compare-av A B ...`` / ``--compare-blind A B ...``: audio-visual (or blind) mask
   networks side by side on exactly eval separate's mixtures (same clips, interferers, offsets
   and SNRs), those systems only (no baseline or IRM), so a retrained model is compared with
   the shipped one in one run. A blind model's stem nearer the target is scored (oracle
   selection, as eval separate does).
6. ``--one-voice``: the blind path's one-speaker report (``one_speaker_check`` on the blind
   model's stems) on real single voices (the first ``--clips`` s1 test clips, every LibriSpeech
   test-other utterance) and on eval separate's two-voice mixtures (false reports).

Writes ``<out>/separate.json`` and prints it.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def shared_data() -> Path:
    env = os.environ.get("AVTOOL_SHARED_DATA")
    return Path(env) if env else REPO.parent / "shared" / "data"


def speech_mixture(
    seconds: float, cache: Path | None = None
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """``seconds`` of s1 test speech (16 kHz) mixed at 0 dB with LibriSpeech test-other, and
    the s1 clip ids used (in order, each 3 s; only clips in ``cache`` when given)."""
    from avtool.datasets.grid import s1_split
    from avtool.io.audio import load_audio
    from avtool.tasks.eval.separate import scale_to_snr

    data = shared_data()
    ids, target = [], []
    for clip_id in s1_split()["test"]:
        if sum(len(t) for t in target) >= seconds * 16000:
            break
        if cache is not None and not (cache / f"{clip_id}.npz").is_file():
            continue
        audio, _ = load_audio(data / "grid_s1" / "clips" / f"{clip_id}.mkv", sample_rate=16000)
        audio = np.pad(audio, (0, max(0, 48000 - len(audio))))[:48000]
        ids.append(clip_id)
        target.append(audio)
    t = np.concatenate(target)[: int(seconds * 16000)]
    others = []
    for path in sorted((data / "librispeech" / "test-other").glob("*/*.flac")):
        others.append(load_audio(path, sample_rate=16000)[0])
        if sum(len(o) for o in others) >= len(t):
            break
    other = np.concatenate(others)[: len(t)]
    return t, (t + scale_to_snr(t, other, 0.0)).astype(np.float32), ids


def speed(cache: Path, seconds: float = 60.0) -> dict:
    """x real time of the AV model, the blind model and the v2a-mask baseline, one thread."""
    import torch

    from avtool.datasets.grid import load_item
    from avtool.io.audio import resample
    from avtool.io.features import MelSpec
    from avtool.models.separate.visual import lip_reader_features
    from avtool.tasks.eval.separate import v2a_mask_estimate
    from avtool.tasks.options.separate import AV_MODEL, BLIND_MODEL, SeparateOptions
    from avtool.tasks.options.v2a import V2AOptions
    from avtool.tasks.options.vocode import VocodeOptions
    from avtool.tasks.separate import load_lip_reader, load_separator, masknet_stems
    from avtool.tasks.v2a import load_model, predict_mel, speech_from_mel
    from avtool.tasks.vocode import load_vocoder

    torch.set_num_threads(1)
    _, mix, ids = speech_mixture(seconds, cache)
    items = [load_item(cache, i) for i in ids]
    crops = np.concatenate([it["gray88"][:75] for it in items])
    marks = np.concatenate([it["landmarks"][:75] for it in items])
    av, blind = load_separator(AV_MODEL, "cpu"), load_separator(BLIND_MODEL, "cpu")
    lip_reader = load_lip_reader("lipread-grid-s1", "cpu")
    v2a = load_model("v2a-content-grid-s1")
    vocoder = load_vocoder(VocodeOptions(model="hifigan-v1-universal"))
    spec = MelSpec.preset(v2a.module.config.mel_preset)
    options = SeparateOptions()
    duration = len(mix) / 16000
    out: dict = {"audio_seconds": round(duration, 1), "threads": 1}
    start = time.perf_counter()
    visual = lip_reader_features(lip_reader, crops, marks)
    front = time.perf_counter() - start
    masknet_stems(av, mix, options, visual)
    av_s = time.perf_counter() - start
    start = time.perf_counter()
    masknet_stems(blind, mix, options)
    blind_s = time.perf_counter() - start
    start = time.perf_counter()
    n_mel = spec.frames_for(round(len(crops) * spec.sample_rate / 25.0))
    mel = predict_mel(v2a.module, list(crops), len(crops), n_mel, None, V2AOptions(), marks)
    predicted = resample(speech_from_mel(vocoder, mel, spec), spec.sample_rate, 16000)
    v2a_mask_estimate(mix, predicted)
    base_s = time.perf_counter() - start
    out["x_real_time"] = {
        "av (lip-reader front-end + separator)": round(duration / av_s, 1),
        "av separator only": round(duration / (av_s - front), 1),
        "blind": round(duration / blind_s, 1),
        "v2a-mask baseline": round(duration / base_s, 1),
    }
    out["target_x_real_time"] = 10
    return out


def _peak_child(path: Path, out_dir: Path) -> float:
    """Peak resident memory (MiB, ``VmHWM``) of ``avtool separate`` on one file, in a fresh
    process."""
    code = (
        "import sys\n"
        "from typer.main import get_command\n"
        "from avtool.cli.main import app\n"
        "try:\n"
        f"    get_command(app)(['--quiet', 'separate', {str(path)!r}, '-o', "
        f"{str(out_dir / '{stem}.spk{n}.wav')!r}, '--overwrite'], standalone_mode=False)\n"
        "except SystemExit:\n"
        "    pass\n"
        # VmHWM is this process's own peak (ru_maxrss would keep the forking parent's).
        "print([l.split()[1] for l in open('/proc/self/status') if l.startswith('VmHWM')][0])\n"
    )
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    )
    return int(result.stdout.strip().splitlines()[-1]) / 1024


def memory() -> dict:
    """Peak RSS of a 10-minute vs a 1-minute blind separation."""
    import soundfile as sf

    _, mix, _ = speech_mixture(60.0)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        sf.write(folder / "one.wav", mix, 16000)
        sf.write(folder / "ten.wav", np.tile(mix, 10), 16000)
        one = _peak_child(folder / "one.wav", folder)
        ten = _peak_child(folder / "ten.wav", folder)
    return {
        "peak_rss_mib_1min": round(one, 1),
        "peak_rss_mib_10min": round(ten, 1),
        "ratio": round(ten / one, 3),
        "target_ratio": 1.5,
    }


def music() -> dict:
    """Spleeter vocals SDR on real speech over a rendered chorale accompaniment, at 0 dB."""
    import music21
    import torch

    from avtool.datasets.chorales import _parse_score
    from avtool.io.audio import load_audio
    from avtool.io.synth import render
    from avtool.metrics.separation import sdr
    from avtool.models.separate import spleeter
    from avtool.tasks.separate import load_separator

    torch.set_num_threads(1)
    chorale, _, _ = _parse_score("bwv66.6", music21.corpus.parse("bach/bwv66.6"))
    voices = chorale.voices.copy()
    voices[0] = -2  # the soprano rests: alto, tenor and bass accompany
    accompaniment = render(voices, 80.0, 44100, instrument="piano")
    speech_file = shared_data() / "librispeech" / "test-other" / "1688" / "1688-142285-0000.flac"
    speech, _ = load_audio(speech_file, sample_rate=44100)
    n = min(len(speech), len(accompaniment), 44100 * 15)
    speech, accompaniment = speech[:n], accompaniment[:n]
    speech = speech / np.sqrt(np.mean(speech**2)) * 0.05
    accompaniment = accompaniment / np.sqrt(np.mean(accompaniment**2)) * 0.05
    mix = (speech + accompaniment).astype(np.float32)
    loaded = load_separator("spleeter-2stems", "cpu")
    start = time.perf_counter()
    stems = spleeter.infer(loaded.module, torch.from_numpy(np.stack([mix, mix]))).numpy()
    seconds = time.perf_counter() - start
    vocals, backing = stems[0].mean(0), stems[1].mean(0)
    return {
        "mix": "LibriSpeech test-other 1688-142285-0000 over bwv66.6 (alto/tenor/bass, piano)",
        "seconds": round(n / 44100, 1),
        "vocals_sdr_db": round(sdr(speech, vocals), 2),
        "vocals_sdr_of_mixture_db": round(sdr(speech, mix), 2),
        "accompaniment_sdr_db": round(sdr(accompaniment, backing), 2),
        "x_real_time": round(n / 44100 / seconds, 1),
    }


def eval_mixtures(cache: Path, limit: int):
    """eval separate's mixtures, in its order: yields ``(clip_id, item, voice, snr, mix, tgt)``
    (16 kHz mixture and target, scaled together when the mixture would clip)."""
    from avtool.datasets.grid import load_item, s1_split
    from avtool.io.audio import resample
    from avtool.tasks.eval.separate import SAMPLE_RATE, SNRS, interferers, two_speaker_mixtures

    ids = [i for i in s1_split()["test"] if (cache / f"{i}.npz").is_file()][:limit]
    voices = interferers(shared_data())
    for clip_id in ids:
        item = load_item(cache, clip_id)
        target = resample(item["audio"].astype(np.float32) / 32768.0, 22050, SAMPLE_RATE)
        for _, voice, snr, mix, tgt, _ in two_speaker_mixtures(target, clip_id, voices, SNRS):
            yield clip_id, item, voice, snr, mix, tgt


def compare(cache: Path, models: list[str], limit: int) -> dict:
    """Part 5: each mask network on eval separate's mixtures (see the module docstring).

    Args:
        models: registry names or local ``.pt`` files, audio-visual or blind (mixed freely).

    Returns:
        ``{"clips", "mixtures", "rows": summarise(...)}`` with one system per model (its name
        or path) beside ``mixture``.
    """
    import torch

    from avtool.metrics.grid import GridRecognizer
    from avtool.metrics.separation import improvements
    from avtool.metrics.speech import pesq_wb, stoi
    from avtool.models.separate.visual import lip_reader_features
    from avtool.tasks.eval.separate import SAMPLE_RATE, _word_errors, summarise
    from avtool.tasks.options.separate import SeparateOptions
    from avtool.tasks.separate import load_lip_reader, load_separator, masknet_stems

    torch.set_num_threads(1)
    loaded = {m: load_separator(m, "cpu", accept_license=True) for m in models}
    readers = {
        m: load_lip_reader(a.details["lip_reader"], "cpu")
        for m, a in loaded.items()
        if a.module.config.visual_dim
    }
    recogniser = GridRecognizer()
    options = SeparateOptions()
    rows, ids, visual, last = [], [], {}, None
    for clip_id, item, voice, snr, mix, tgt in eval_mixtures(cache, limit):
        if clip_id != last:
            ids.append(clip_id)
            last = clip_id
            visual = {
                m: lip_reader_features(r, item["gray88"], item["landmarks"])
                for m, r in readers.items()
            }
        estimates = {"mixture": mix}
        for m, a in loaded.items():
            stems = masknet_stems(a, mix, options, visual.get(m))[0]
            pick = 0
            if m not in readers:  # blind: the stem nearer the target (eval separate's choice)
                pick = int(np.argmax([np.dot(x, tgt) / (np.linalg.norm(x) + 1e-8) for x in stems]))
            estimates[m] = stems[pick]
        row = {
            "clip": clip_id,
            "group": voice.group,
            "interferer": voice.id,
            "gender": "same" if voice.gender == "M" else "cross",
            "snr": snr,
            "systems": {},
        }
        for name, est in estimates.items():
            scores = improvements(tgt, est, mix)
            if snr == 0.0:
                scores["pesq"] = pesq_wb(tgt, est, SAMPLE_RATE)
                scores["stoi"] = stoi(tgt, est, SAMPLE_RATE)
                hyp = recogniser.recognize(est, SAMPLE_RATE)
                scores["wer_errors"], scores["wer_words"] = _word_errors(str(item["text"]), hyp)
            row["systems"][name] = {k: round(float(v), 4) for k, v in scores.items()}
        rows.append(row)
    return {"clips": ids, "mixtures": len(rows), "rows": summarise(rows)}


def one_voice(cache: Path, limit: int, model: str = "masknet-blind-grid-s1") -> dict:
    """Part 6: how often the blind path reports one speaker, per set of inputs.

    Returns:
        ``{set: {"n", "reported", "by_level", "by_pitch", "level_db", "pitch_agreement"}}``
        (the last two as [min, median, max]) for ``one/s1-test``, ``one/librispeech-test-other``
        and ``two/<group>`` (eval separate's mixtures, every SNR).
    """
    import torch

    from avtool.datasets.grid import s1_split
    from avtool.io.audio import load_audio
    from avtool.tasks.options.separate import SeparateOptions
    from avtool.tasks.separate import load_separator, masknet_stems, one_speaker_check

    torch.set_num_threads(1)
    blind = load_separator(model, "cpu", accept_license=True)
    options = SeparateOptions()
    data = shared_data()
    inputs: list[tuple[str, np.ndarray]] = []
    for clip_id in s1_split()["test"][:limit]:
        path = data / "grid_s1" / "clips" / f"{clip_id}.mkv"
        inputs.append(("one/s1-test", load_audio(path, sample_rate=16000)[0]))
    for path in sorted((data / "librispeech" / "test-other").glob("*/*.flac")):
        inputs.append(("one/librispeech-test-other", load_audio(path, sample_rate=16000)[0]))
    checks: dict[str, list[dict]] = {}

    def check(name: str, audio: np.ndarray) -> None:
        stems, _ = masknet_stems(blind, audio, options)
        checks.setdefault(name, []).append(one_speaker_check(stems, options, 16000))

    for name, audio in inputs:
        check(name, audio)
    for _, _, voice, _, mix, _ in eval_mixtures(cache, limit):
        check(f"two/{voice.group}", mix)
    out = {}
    for name, rows in checks.items():
        level = [r["level_difference_db"] for r in rows]
        pitch = [r["pitch_agreement"] for r in rows]
        out[name] = {
            "n": len(rows),
            "reported": sum(r["one_speaker"] for r in rows),
            "by_level": sum(v > options.one_speaker_db for v in level),
            "by_pitch": sum(v >= options.one_speaker_pitch for v in pitch),
            "level_db": [round(float(f(level)), 2) for f in (np.min, np.median, np.max)],
            "pitch_agreement": [round(float(f(pitch)), 3) for f in (np.min, np.median, np.max)],
        }
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="bench-results")
    parser.add_argument("--cache", default=str(REPO / "data" / "grid_s1_cache"))
    parser.add_argument("--clips", type=int, default=10, help="s1 test clips for eval separate")
    parser.add_argument("--skip-quality", action="store_true")
    parser.add_argument("--only", choices=("music", "speed", "memory"), help="run one part")
    parser.add_argument(
        "--compare-av", nargs="+", metavar="MODEL", help="only part 5: these AV models"
    )
    parser.add_argument(
        "--compare-blind", nargs="+", metavar="MODEL", help="only part 5: these blind models"
    )
    parser.add_argument("--one-voice", action="store_true", help="only part 6")
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    if not (shared_data() / "grid_s1").is_dir():
        print("bench_separate: ../shared/data not found; skipped")
        return 0
    report: dict = {"machine": "shared CPU, one thread"}
    for kind in ("av", "blind"):
        if getattr(args, f"compare_{kind}"):
            models = getattr(args, f"compare_{kind}")
            report[f"compare_{kind}"] = compare(Path(args.cache), models, args.clips)
    comparing = bool(args.compare_av or args.compare_blind)
    if args.one_voice:
        report["one_voice"] = one_voice(Path(args.cache), args.clips)
    if comparing or args.one_voice:
        args.skip_quality = True
    parts = {"music": music, "speed": lambda: speed(Path(args.cache)), "memory": memory}
    for name, run in parts.items():
        if args.only in (None, name) and not (comparing or args.one_voice):
            report[name] = run()
    if not args.skip_quality and args.only is None:
        from avtool.tasks.eval.separate import evaluate_separate

        quality = evaluate_separate(shared_data(), Path(args.cache), limit=args.clips)
        report["quality"] = {k: v for k, v in quality.items() if k != "per_mixture"}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "separate.json").write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
