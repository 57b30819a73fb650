"""GRID grammar, file-id transcripts and pocketsphinx recognition of real GRID speech."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest

from avtool.errors import InputError
from avtool.metrics.grid import GRID_WORDS, GridRecognizer, grid_jsgf, parse_grid_id
from avtool.metrics.wer import word_error_rate
from tests.conftest import shared_data_dir

N_S1_CLIPS = 20


def _load_audio(path: Path, sample_rate: int) -> np.ndarray:
    """(T,) float32 mono at `sample_rate` Hz, decoded by the bundled ffmpeg."""
    import imageio_ffmpeg

    cmd = [imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-i", str(path), "-vn", "-ac", "1"]
    cmd += ["-ar", str(sample_rate), "-f", "s16le", "-"]
    pcm = subprocess.run(cmd, capture_output=True, check=True).stdout
    return np.frombuffer(pcm, "<i2").astype(np.float32) / 32768.0


@pytest.fixture(scope="module")
def recognizer() -> GridRecognizer:
    pytest.importorskip("pocketsphinx")
    return GridRecognizer()


@pytest.fixture(scope="module")
def grid_s1_dir() -> Path:
    path = shared_data_dir() / "grid_s1"
    if not (path / "clips").is_dir():
        pytest.skip(f"GRID speaker s1 clips not found at {path}")
    return path


def test_parse_grid_id() -> None:
    assert parse_grid_id("lbax4n") == "lay blue at x four now"
    assert parse_grid_id("id2_vcd_swwp2s") == "set white with p two soon"
    assert parse_grid_id("clips/PGIZZS.mkv") == "place green in z zero soon"
    for bad in ["lbax4", "lbax4nn", "qbax4n", "lbawxn", "lbax0n", ""]:
        with pytest.raises(InputError):
            parse_grid_id(bad)


def test_parse_grid_id_matches_manifest(grid_manifest: list[dict[str, str]]) -> None:
    for row in grid_manifest:
        assert parse_grid_id(row["file"]) == row["transcript"]


def test_parse_grid_id_matches_s1_alignments(grid_s1_dir: Path) -> None:
    aligns = sorted((grid_s1_dir / "align").glob("*.align"))
    assert aligns
    for path in aligns:
        words = [ln.split()[2] for ln in path.read_text().splitlines() if ln.strip()]
        assert parse_grid_id(path.stem) == " ".join(w for w in words if w not in ("sil", "sp"))


def test_grammar_has_every_word() -> None:
    assert len(GRID_WORDS) == 6 and len(GRID_WORDS["letter"]) == 25
    rules = {ln.split("=")[0].strip(): ln for ln in grid_jsgf().splitlines() if "=" in ln}
    for slot, words in GRID_WORDS.items():
        alternatives = rules[f"<{slot}>"].split("=")[1].rstrip(";").split("|")
        assert [a.strip() for a in alternatives] == list(words)
    assert "public <sentence> = " + " ".join(f"<{s}>" for s in GRID_WORDS) in grid_jsgf()
    with pytest.raises(TypeError):
        GRID_WORDS["command"] = ("bin",)  # type: ignore[index]


def test_recognize_rejects_bad_audio(recognizer: GridRecognizer) -> None:
    for bad in [np.zeros((2, 100), np.float32), np.zeros(0, np.float32), np.zeros(100, np.int16)]:
        with pytest.raises(InputError):
            recognizer.recognize(bad, 16000)
    with pytest.raises(InputError, match="NaN"):
        recognizer.recognize(np.full(100, np.nan, np.float32), 16000)


@pytest.mark.slow
def test_real_grid_speech_is_recognised(
    recognizer: GridRecognizer, grid_dir: Path, grid_manifest: list[dict[str, str]]
) -> None:
    refs = [row["transcript"] for row in grid_manifest]
    clips = [_load_audio(grid_dir / row["file"], 16000) for row in grid_manifest]
    hyps = [recognizer.recognize(x, 16000) for x in clips]
    wer = word_error_rate(refs, hyps)
    print(f"GRID six speakers: WER {wer:.3f}", *zip(refs, hyps, strict=True), sep="\n")
    assert wer <= 0.25  # measured 0.111 (pocketsphinx 5.1.1)

    # Each decode is independent: the same clips in reverse order give the same words.
    assert [recognizer.recognize(x, 16000) for x in clips[::-1]] == hyps[::-1]
    # Level does not matter, within reason.
    assert [recognizer.recognize(0.05 * x, 16000) for x in clips] == hyps

    # Negative controls: nothing speech-like, or speech with the right sounds in the wrong order.
    rng = np.random.default_rng(0)
    noise = [0.1 * rng.standard_normal(len(x)).astype(np.float32) for x in clips]
    assert word_error_rate(refs, [recognizer.recognize(x, 16000) for x in noise]) >= 0.5
    assert recognizer.recognize(np.zeros(48000, np.float32), 16000) == ""
    reversed_wer = word_error_rate(refs, [recognizer.recognize(x[::-1], 16000) for x in clips])
    assert reversed_wer >= 0.5  # measured 0.81; chance is about 0.81


@pytest.mark.slow
def test_real_grid_s1_speech_is_recognised(recognizer: GridRecognizer, grid_s1_dir: Path) -> None:
    paths = sorted((grid_s1_dir / "clips").glob("*.mkv"))
    paths = paths[:: max(1, len(paths) // N_S1_CLIPS)][:N_S1_CLIPS]
    refs = [parse_grid_id(p.name) for p in paths]
    # The clips' native rate, so that recognize() resamples to 16 kHz itself.
    hyps = [recognizer.recognize(_load_audio(p, 22050), 22050) for p in paths]
    wer = word_error_rate(refs, hyps)
    print(f"GRID s1, {len(paths)} clips: WER {wer:.3f}")
    assert wer <= 0.3
