"""Kokoro family: voice names and blends, pack checks, alignment, and the real model."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from avtool.errors import InputError, ModelError
from avtool.models import kokoro
from avtool.models.kokoro import voices
from avtool.models.loading import load
from avtool.models.text import SpeechChunk

KNOWN = ["af_heart", "af_bella", "am_adam", "am_michael", "bf_emma", "bm_george"]


def installed() -> bool:
    return importlib.util.find_spec("avtool_kokoro_data") is not None


needs_model = pytest.mark.skipif(not installed(), reason="Kokoro not assembled (make install)")


def test_voice_info_from_names():
    assert voices.voice_info("am_adam") == voices.VoiceInfo("am_adam", "male", "us")
    assert voices.voice_info("bf_emma").british
    with pytest.raises(InputError):
        voices.voice_info("zf_xiaoni")


def test_parse_blend_normalises_and_accepts_prefix():
    assert voices.parse_blend("am_adam", KNOWN) == (("am_adam", 1.0),)
    blend = voices.parse_blend("af_heart:3, kokoro-am_adam:1", KNOWN)
    assert blend == (("af_heart", 0.75), ("am_adam", 0.25))
    assert voices.parse_blend("kokoro-v1.0", KNOWN) == (("af_heart", 1.0),)
    assert voices.blend_label(blend) == "af_heart:0.75,am_adam:0.25"


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("am_adamm", "close names: am_adam"),
        ("af_heart:abc", "not a number"),
        ("af_heart:-1,am_adam:1", ">= 0"),
        ("af_heart:0,am_adam:0", "add up to 0"),
        ("af_heart:0.5,,am_adam:0.5", "empty voice"),
        ("af_heart:nan", ">= 0"),
    ],
)
def test_parse_blend_refuses_bad_strings(spec: str, message: str):
    with pytest.raises(InputError, match=message):
        voices.parse_blend(spec, KNOWN)


def test_looks_like_kokoro(tmp_path: Path):
    assert voices.looks_like_kokoro("am_adam") and voices.looks_like_kokoro("kokoro-bf_emma")
    assert voices.looks_like_kokoro("a:0.5,b:0.5") and voices.looks_like_kokoro("kokoro-v1.0")
    assert not voices.looks_like_kokoro("piper-joe-medium")
    odd = tmp_path / "a,b.onnx"
    odd.write_bytes(b"x")
    assert not voices.looks_like_kokoro(str(odd))


def test_check_pack_refuses_wrong_shape_and_nan():
    good = np.ones(voices.PACK_SHAPE, "<f4")
    assert voices.check_pack(good.tobytes(), "x.bin").shape == (510, 1, 256)
    with pytest.raises(ModelError, match="522240 bytes"):
        voices.check_pack(good.tobytes()[:-4], "x.bin")
    bad = good.copy()
    bad[3, 0, 7] = np.nan
    with pytest.raises(ModelError, match="non-finite"):
        voices.check_pack(bad.tobytes(), "x.bin")


def test_blend_packs_is_the_weighted_sum():
    a, b = np.zeros(voices.PACK_SHAPE, np.float32), np.ones(voices.PACK_SHAPE, np.float32)
    mixed = voices.blend_packs({"a": a, "b": b}, (("a", 0.25), ("b", 0.75)))
    np.testing.assert_allclose(mixed, 0.75)


def test_split_unreadable_names_the_characters():
    text, skipped = kokoro.split_unreadable("Café 你好, naïve ☃ world!")
    assert skipped == ["你", "好", "☃"]
    assert text.split() == ["Café", "naïve", "world!"] or "Café" in text


def test_align_folds_stress_and_length_marks():
    phonemes = ("h", "ə", "ˈ", "l", "O", "ː")
    samples = np.array([600, 600, 600, 600, 600, 600, 600, 1200])
    spans = kokoro._align(phonemes, samples, int(samples.sum()))
    assert spans == (
        ("^", 600), ("h", 600), ("ə", 600), ("ˈl", 1200), ("o", 600), ("ʊː", 600), ("$", 1200)
    )  # fmt: skip
    assert kokoro._align(phonemes, samples, 5) is None


@pytest.fixture(scope="module")
def adam(voice_cache: Path):
    if not installed():
        pytest.skip("Kokoro not assembled (make install)")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AVTOOL_CACHE_DIR", str(voice_cache))  # the timed graph is built once
        yield load("am_adam", task="tts", options={"threads": 1})


@needs_model
def test_real_voice_speaks_with_timings(adam):
    model = adam.module
    assert model.sample_rate == 24000 and model.timed and not model.british
    (chunk,) = model.chunks("Bin blue now.")
    result = model.synthesize(chunk)
    assert result.audio.dtype == np.float32 and 0.5 < result.audio.size / 24000 < 3.0
    assert sum(n for _, n in result.phoneme_samples) == result.audio.size
    assert 0.05 < float(np.abs(result.audio).max()) <= 1.0
    again = model.synthesize(chunk, seed=5, chunk_index=3)
    assert np.array_equal(result.audio, again.audio)  # no noise input: deterministic
    faster = model.synthesize(chunk, speed=2.0)
    assert faster.audio.size < 0.7 * result.audio.size
    assert adam.details["packs_sha256"]["am_adam"] == adam.details["packs_sha256"]["am_adam"]


@needs_model
def test_unreadable_characters_are_skipped_with_a_warning(adam):
    chunks = adam.module.chunks("Hello 你好 world.")
    assert chunks and any("你" in w for w in adam.module.warnings)


@needs_model
def test_long_sentence_is_chunked(adam):
    text = ", ".join(["the quick brown fox jumps over the lazy dog"] * 20) + "."
    chunks = adam.module.chunks(text)
    assert len(chunks) > 1 and all(len(c.phonemes) <= kokoro.MAX_PHONEMES for c in chunks)
    joined = " ".join("".join(c.phonemes) for c in chunks)
    assert joined == "".join(adam.module._phonemes(text, report=False))  # nothing dropped
    with pytest.raises(ModelError, match="at most 509"):
        adam.module.synthesize(SpeechChunk(text, 0, ("a",) * 600))


def _pack_entry(path: Path, sha256: str, size: int) -> str:
    return (
        '[models.kokoro-af_test]\ntask = "tts"\nfamily = "kokoro"\nlicense = "Apache-2.0"\n'
        f'commercial = true\nsource = "{path}"\nsha256 = "{sha256}"\nsize = {size}\n'
    )


@needs_model
def test_pack_with_wrong_hash_or_shape_is_refused(tmp_path: Path, monkeypatch):
    from avtool.registry import sha256_file

    pack = tmp_path / "af_test.bin"
    pack.write_bytes(np.ones(voices.PACK_SHAPE, "<f4").tobytes())
    toml = tmp_path / "extra.toml"
    toml.write_text(_pack_entry(pack, "0" * 64, pack.stat().st_size))
    monkeypatch.setenv("AVTOOL_REGISTRY", str(toml))
    with pytest.raises(ModelError, match="sha256"):
        load("af_test", task="tts", options={"threads": 1})
    short = tmp_path / "short.bin"
    short.write_bytes(b"\0" * 1024)
    toml.write_text(_pack_entry(short, sha256_file(short), 1024))
    with pytest.raises(ModelError, match="voice pack"):
        load("af_test", task="tts", options={"threads": 1})
