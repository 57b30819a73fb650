"""Benchmarks for ``avtool tts`` (run with ``make bench``; figures never live in tests).

Every comparison is measured side by side in one run, alternating the two contenders,
because development machines are shared and noisy:

1. In-process overhead: avtool's synthesis of a ~30 s utterance against the Piper engine
   called directly (``PiperVoice.synthesize`` + writing the WAV), same text. Target <= 1.10.
2. Command-line overhead: ``avtool tts`` against ``python -m piper`` on the same text
   (both include interpreter start and model load).
3. Batch: 100 sentences in one ``avtool tts --manifest`` run (model loaded once) against
   the sum of the same sentences as single-item runs would cost (measured on 5 of them).
4. ``avtool --help`` start-up time.
5. Kokoro speed: whole-command CPU time (user + system, all threads) of ``avtool tts --voice
   af_heart`` against ``benchmarks/kokoro_direct.py``, a script calling Kokoro's ONNX graph
   directly on the same text (same G2P, vocab and pack). Target <= 1.10.
6. Kokoro quality: GRID-grammar WER of every bundled Kokoro voice reading GRID sentences
   (pocketsphinx), beside Piper joe. Target: every voice <= 0.10.
7. A 2,000-word text (about 13 minutes of speech) with word timings: every word listed in
   order, the share found in the audio, and its seconds per second of speech as a ratio of the
   30 s text's, measured in the same run (long texts must not slow down per word).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import wave
from pathlib import Path

TEXT_30S = (
    "The river runs past the old mill and under the stone bridge, where children stop to watch "
    "the water. In the spring it rises with the melting snow, and the meadows on either side "
    "turn green almost overnight. Farmers along the valley have measured its height for more "
    "than a hundred years, writing each reading in a book that is kept at the town hall. "
    "Those records show that the floods come earlier now than they once did. Nobody in the "
    "valley agrees on why, but everyone agrees that the book should be kept, and that each "
    "new reading should be written down by hand, as it always has been, every single morning."
)


def _median_time(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def in_process(repeats: int, work: Path) -> dict:
    from piper import PiperVoice

    from avtool import registry
    from avtool.tasks.options.tts import TTSOptions
    from avtool.tasks.tts import load_voice, synthesize_to_file

    voice = load_voice("piper-joe-medium", device="cpu")
    engine = PiperVoice.load(registry.resolve("piper-joe-medium").path)

    def piper_direct() -> None:
        with wave.open(str(work / "piper.wav"), "wb") as f:
            engine.synthesize_wav(TEXT_30S, f)

    def avtool_tts() -> None:
        synthesize_to_file(voice, TEXT_30S, TTSOptions(sentence_pause=0.0), work / "avtool.wav")
        (work / "avtool.wav").unlink()

    piper_direct(), avtool_tts()  # warm-up: caches, thread pools
    piper_times, avtool_times = [], []
    for _ in range(repeats):  # alternate so both see the same machine load
        piper_times.append(_median_time(piper_direct, 1))
        avtool_times.append(_median_time(avtool_tts, 1))
    with wave.open(str(work / "piper.wav")) as f:
        seconds = f.getnframes() / f.getframerate()
    p, a = statistics.median(piper_times), statistics.median(avtool_times)
    return {
        "audio_seconds": round(seconds, 2),
        "piper_direct_s": round(p, 3),
        "avtool_s": round(a, 3),
        "ratio": round(a / p, 3),
        "target_ratio": 1.10,
        "avtool_x_real_time": round(seconds / a, 1),
    }


def _run(cmd: list[str], **kwargs) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True, **kwargs)
    return time.perf_counter() - start


def command_line(repeats: int, work: Path) -> dict:
    from avtool import registry

    bin_dir = Path(sys.executable).parent
    model = str(registry.resolve("piper-joe-medium").path)
    piper_cmd = [
        sys.executable,
        "-m",
        "piper",
        "-m",
        model,
        "-f",
        str(work / "p.wav"),
        "--",
        TEXT_30S,
    ]
    avtool_cmd = [
        str(bin_dir / "avtool"),
        "--quiet",
        "tts",
        TEXT_30S,
        "-o",
        str(work / "a.wav"),
        "--overwrite",
        "--sentence-pause",
        "0",
    ]
    _run(avtool_cmd)  # builds the cached seedable graph once
    p_times, a_times = [], []
    for _ in range(repeats):
        p_times.append(_run(piper_cmd))
        a_times.append(_run(avtool_cmd))
    p, a = statistics.median(p_times), statistics.median(a_times)
    return {"piper_cli_s": round(p, 3), "avtool_cli_s": round(a, 3), "ratio": round(a / p, 3)}


def batch(work: Path, sentences: int = 100) -> dict:
    bin_dir = Path(sys.executable).parent
    words = "a bright summer morning by the quiet river near the old stone mill".split()
    manifest = work / "batch.jsonl"
    with open(manifest, "w", encoding="utf-8") as f:
        for i in range(sentences):
            text = " ".join(words[(i + k) % len(words)] for k in range(8)).capitalize() + "."
            f.write(json.dumps({"id": f"s{i:03d}", "text": text}) + "\n")
    avtool = str(bin_dir / "avtool")
    batch_s = _run(
        [avtool, "--quiet", "tts", "-m", str(manifest), "-o", str(work / "batch/{id}.wav")]
    )
    singles = [
        _run(
            [
                avtool,
                "--quiet",
                "tts",
                f"Single item number {i}.",
                "-o",
                str(work / f"single{i}.wav"),
            ]
        )
        for i in range(5)
    ]
    import soundfile as sf

    audio = sum(sf.info(p).duration for p in (work / "batch").glob("*.wav"))
    per_single = statistics.median(singles)
    return {
        "sentences": sentences,
        "batch_s": round(batch_s, 2),
        "per_sentence_in_batch_s": round(batch_s / sentences, 3),
        "per_single_run_s": round(per_single, 3),
        "speedup_vs_single_runs": round(per_single * sentences / batch_s, 1),
        "audio_seconds": round(audio, 1),
    }


def startup(repeats: int) -> dict:
    """``avtool --help`` wall and CPU seconds, beside the floor of its CLI library.

    The floor is an interpreter importing Typer with its rich help formatter, which every
    ``--help`` pays; runs alternate so that machine load hits both alike.
    """
    avtool = str(Path(sys.executable).parent / "avtool")
    floor_cmd = [sys.executable, "-c", "import typer, typer.rich_utils"]
    helps, floors = [], []
    for _ in range(repeats):
        helps.append(_cpu_run([avtool, "--help"]))
        floors.append(_cpu_run(floor_cmd))
    median = statistics.median
    return {
        "help_median_s": round(median(t for t, _ in helps), 3),
        "help_cpu_median_s": round(median(c for _, c in helps), 3),
        "typer_floor_median_s": round(median(t for t, _ in floors), 3),
        "typer_floor_cpu_median_s": round(median(c for _, c in floors), 3),
        "target_s": 0.5,
    }


TEXT_KOKORO = (
    "The river runs past the old mill and under the stone bridge. In the spring it rises with "
    "the melting snow, and the meadows on either side turn green almost overnight. Farmers have "
    "measured its height for more than a hundred years."
)


def _cpu_run(cmd: list[str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the child: user + system over all its threads)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    wall = _run(cmd)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def kokoro_speed(repeats: int, work: Path, voice: str = "af_heart") -> dict:
    from avtool import registry
    from avtool.models import kokoro

    engine = registry.resolve(kokoro.ENGINE_ENTRY, task="tts")
    pack = registry.resolve(kokoro.ENTRY_PREFIX + voice, task="tts").path
    direct_cmd = [
        sys.executable,
        str(Path(__file__).with_name("kokoro_direct.py")),
        str(engine.path),
        str(engine.files["vocab.json"]),
        str(pack),
        str(work / "direct.wav"),
        TEXT_KOKORO,
    ]
    avtool_cmd = [
        str(Path(sys.executable).parent / "avtool"),
        "--quiet",
        "tts",
        TEXT_KOKORO,
        "--voice",
        voice,
        "-o",
        str(work / "kokoro.wav"),
        "--overwrite",
        "--sentence-pause",
        "0",
    ]
    _run(avtool_cmd)  # builds the cached timed graph once
    _run(direct_cmd)
    d_cpu, a_cpu, d_wall, a_wall = [], [], [], []
    for _ in range(repeats):  # alternate so both see the same machine load
        wall, cpu = _cpu_run(direct_cmd)
        d_wall.append(wall)
        d_cpu.append(cpu)
        wall, cpu = _cpu_run(avtool_cmd)
        a_wall.append(wall)
        a_cpu.append(cpu)
    import soundfile as sf

    seconds = sf.info(work / "kokoro.wav").duration
    d, a = statistics.median(d_cpu), statistics.median(a_cpu)
    return {
        "voice": voice,
        "audio_seconds": round(seconds, 2),
        "direct_cpu_s": round(d, 3),
        "avtool_cpu_s": round(a, 3),
        "cpu_ratio": round(a / d, 3),
        "direct_wall_s": round(statistics.median(d_wall), 3),
        "avtool_wall_s": round(statistics.median(a_wall), 3),
        "target_cpu_ratio": 1.10,
    }


def kokoro_wer(sentences: int, work: Path) -> dict:
    from avtool.models import kokoro
    from avtool.tasks.eval.voices import Reader, grid_sentences, voice_wer

    data = Path(__file__).resolve().parents[1].parent / "shared" / "data"
    texts = grid_sentences(Path(os.environ.get("AVTOOL_SHARED_DATA", data)), sentences)
    reader = Reader(cache=work / "kokoro-wer-audio")
    voices = ["piper-joe-medium", *kokoro.registered_voices()]
    results = voice_wer(reader, voices, texts, progress=lambda line: print(line, flush=True))
    rows = {v: {k: x for k, x in r.items() if k != "_audio"} for v, r in results.items()}
    worst = max(r["wer"] for v, r in rows.items() if v != "piper-joe-medium")
    return {"sentences": len(texts), "voices": rows, "kokoro_max_wer": worst, "target": 0.10}


def long_text(work: Path, words: int = 2000) -> dict:
    import random

    from avtool.tasks.options.tts import TTSOptions
    from avtool.tasks.tts import load_voice, synthesize_to_file

    rng = random.Random(3)
    sentences = TEXT_30S.replace(",", "").split(". ")
    vocab = " ".join(sentences).replace(".", "").lower().split()
    chunks, left = [], words
    while left:
        n = min(left, rng.randint(8, 18))
        chunks.append(" ".join(rng.choice(vocab) for _ in range(n)).capitalize())
        left -= n
    text = ". ".join(chunks) + "."
    voice = load_voice("piper-joe-medium", device="cpu")

    def seconds_per_second(body: str, name: str) -> tuple[float, dict, dict]:
        timings = work / f"{name}.json"
        start = time.perf_counter()
        meta = synthesize_to_file(
            voice, body, TTSOptions(), work / f"{name}.flac", timings_path=timings
        )
        elapsed = time.perf_counter() - start
        return elapsed / meta["audio"]["duration"], meta, json.loads(timings.read_text())

    short, _, _ = seconds_per_second(TEXT_30S, "short")
    long, meta, data = seconds_per_second(text, "long")
    listed = [w["word"] for w in data["words"]] == text.replace(".", "").split()
    found = sum(w["start"] is not None for w in data["words"]) / words
    return {
        "words": words,
        "duration_s": round(meta["audio"]["duration"], 1),
        "every_word_listed_in_order": listed,
        "words_found_in_audio": round(found, 4),
        "per_second_of_speech_long_vs_30s": round(long / short, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("bench-results"))
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--kokoro-sentences", type=int, default=10, help="WER sentences; 0 skips")
    parser.add_argument("--only-kokoro", action="store_true", help="Only the Kokoro checks.")
    args = parser.parse_args()
    os.environ.setdefault("AVTOOL_OFFLINE", "1")
    results: dict = {"machine": {"cores": os.cpu_count(), "platform": sys.platform}}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        if not args.only_kokoro:
            results["startup"] = startup(args.repeats)
            results["in_process_30s"] = in_process(args.repeats, work)
            results["command_line_30s"] = command_line(max(3, args.repeats // 2), work)
            results["batch_100"] = batch(work)
            results["long_text_2000_words"] = long_text(work)
        results["kokoro_speed"] = kokoro_speed(max(3, args.repeats // 2), work)
        if args.kokoro_sentences:
            results["kokoro_wer"] = kokoro_wer(args.kokoro_sentences, work)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "tts.json").write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
