"""LipNet training on a tiny cache: checkpoints, determinism, resuming, augmentation."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from avtool.models.lipnet import load_checkpoint
from avtool.training.lipnet import (
    ClipStore,
    augment,
    collate,
    main,
    splits_for,
    sub_sentence,
    train,
)

SENTENCES = ["bin blue at a one now", "lay red by b two soon", "set green in c three again"]


@pytest.fixture
def tiny_cache(tmp_path: Path) -> Path:
    """Six cache items in the GRID cache format with mouth crops that depend on the text."""
    cache = tmp_path / "cache"
    cache.mkdir()
    rng = np.random.default_rng(0)
    for i in range(6):
        text = SENTENCES[i % 3]
        crops = rng.integers(0, 60, (30, 50, 100, 3), dtype=np.uint8)
        crops[:, :, : 30 * (i % 3 + 1)] += 150  # a visible difference per sentence
        words = text.split()
        times = np.array([(0.2 * k, 0.2 * k + 0.2) for k in range(len(words))], np.float32)
        np.savez_compressed(
            cache / f"clip{i}.npz", lipnet=crops, text=np.array(text), words=times,
            word_labels=np.array(words),
        )  # fmt: skip
    (cache / "clip9.part.npz").write_bytes(b"in progress")  # must be ignored
    return cache


def _train(cache: Path, out: Path, **kw):
    from avtool.models.lipnet.model import LipNetConfig

    return train(cache, out, config=LipNetConfig.debug(), batch_size=2, log=False, **kw)


def test_training_writes_best_checkpoint_and_log(tiny_cache: Path, tmp_path: Path):
    splits = splits_for(tiny_cache)
    assert sorted(i for ids in splits.values() for i in ids) == [f"clip{i}" for i in range(6)]
    best = _train(tiny_cache, tmp_path / "run", epochs=2)
    assert 0 <= best["cer"] <= 1.5 and best["epoch"] in (0, 1)
    model = load_checkpoint(tmp_path / "run" / "lipnet.pt")
    assert model.config.hidden == 8
    lines = (tmp_path / "run" / "log.jsonl").read_text().splitlines()
    assert len(lines) == 2 and all(np.isfinite(json.loads(line)["loss"]) for line in lines)


def test_training_is_deterministic_and_resumable(tiny_cache: Path, tmp_path: Path):
    _train(tiny_cache, tmp_path / "a", epochs=2)
    _train(tiny_cache, tmp_path / "b", epochs=2)
    _train(tiny_cache, tmp_path / "c", epochs=1)  # stopped after one epoch ...
    _train(tiny_cache, tmp_path / "c", epochs=2, resume=True)  # ... and resumed
    states = [torch.load(tmp_path / run / "state.pt", weights_only=False) for run in "abc"]
    for key, value in states[0]["model"].items():
        assert torch.equal(value, states[1]["model"][key]), key
    assert states[2]["epoch"] == 1
    assert len((tmp_path / "c" / "log.jsonl").read_text().splitlines()) == 2


def test_augment_flips_and_jitters_reproducibly():
    video = torch.arange(2 * 50 * 4 * 6, dtype=torch.float32).reshape(2, 50, 4, 6)
    a = augment(video, torch.Generator().manual_seed(3), jitter=0.2)
    b = augment(video, torch.Generator().manual_seed(3), jitter=0.2)
    assert torch.equal(a, b)
    assert a.shape[0] == 2 and a.shape[2:] == (4, 6)
    assert a.shape[1] != 50 or not torch.equal(a, video)
    batch, lengths = collate([video, video[:, :10]])
    assert batch.shape == (2, 2, 50, 4, 6) and lengths.tolist() == [50, 10]
    assert float(batch[1, :, 10:].abs().sum()) == 0


def test_command_line(tiny_cache: Path, tmp_path: Path, capsys):
    code = main(
        ["--cache", str(tiny_cache), "--out", str(tmp_path / "cli"), "--config", "debug",
         "--epochs", "1", "--batch-size", "3"]
    )  # fmt: skip
    assert code == 0
    assert json.loads(capsys.readouterr().out.splitlines()[-1])["best"]["epoch"] == 0
    assert (tmp_path / "cli" / "lipnet.pt.json").is_file()


def test_sub_sentences_follow_the_alignment(tiny_cache: Path):
    from avtool.models.lipnet.model import LipNetConfig

    store = ClipStore(tiny_cache, LipNetConfig.debug())
    assert store.refresh(["clip0"]) == ["clip0"]
    assert store.words["clip0"][1] == (5, 10, "blue")  # 0.2-0.4 s at 25 fps
    video = store.items["clip0"][0]
    generator = torch.Generator().manual_seed(0)
    for _ in range(20):
        piece, text = sub_sentence(video, store.words["clip0"], generator)
        words = text.split()
        assert 1 <= len(words) <= 3 and text in SENTENCES[0]
        first = SENTENCES[0].split().index(words[0])
        assert piece.shape[1] == min(30, 5 * (first + len(words)) + 2) - max(0, 5 * first - 2)
