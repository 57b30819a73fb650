"""The ResNet/BiGRU lip reader: shapes, encoder transfer, checkpoints, decoding, training."""

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

from avtool.errors import ModelError
from avtool.models.checkpoint import read
from avtool.models.lipnet import ctc
from avtool.models.lipnet.model import VOCAB_SIZE
from avtool.models.lipread_resnet import (
    FAMILY,
    GRID_VOCAB,
    N_WORD_CLASSES,
    LipReaderConfig,
    build,
    infer,
    load_checkpoint,
    save,
    transfer_encoder,
)
from avtool.models.v2a.model import V2AConfig
from avtool.models.v2a.model import build as build_v2a
from avtool.training.lipread_resnet import augment, frame_labels, train

SENTENCES = ["bin blue at a one now", "lay red by b two soon", "set green in c three again"]


def test_grid_vocabulary_has_51_distinct_words():
    from avtool.metrics.grid import GRID_WORDS

    assert len(set(GRID_VOCAB)) == 51 and N_WORD_CLASSES == 52
    assert set(GRID_VOCAB) == {w for words in GRID_WORDS.values() for w in words}


def test_forward_shapes_and_log_probs():
    torch.manual_seed(0)
    model = build(LipReaderConfig.debug()).eval()
    crops = torch.rand(2, 13, 22, 22)
    log_probs, words = model(crops)
    assert log_probs.shape == (2, 13, VOCAB_SIZE) and words.shape == (2, 13, N_WORD_CLASSES)
    assert torch.allclose(log_probs.exp().sum(-1), torch.ones(2, 13), atol=1e-5)


def test_reduced_config_is_small_and_matches_v2a_encoder():
    model = build(LipReaderConfig.reduced())
    params = sum(p.numel() for p in model.parameters())
    assert 1_000_000 < params < 4_000_000  # < 20 MB as float32
    # The preset's encoder is the one the shipped v2a-grid-s1 weights fit (transfer source).
    from avtool.models.visual import VideoEncoder

    v2a_path = Path(__file__).parents[3] / "avtool" / "weights" / "v2a" / "v2a-grid-s1.pt"
    state = torch.load(v2a_path, map_location="cpu", weights_only=True)
    assert transfer_encoder(model, state) == len(VideoEncoder(model.config.encoder).state_dict())


def test_shipped_config_in_the_v2a_encoder_layout_reads_as_the_visual_front_end():
    from avtool.models.visual import VisualConfig

    beside = (
        Path(__file__).parents[3] / "avtool" / "weights" / "lipread" / "lipread-grid-s1.pt.json"
    )
    old = json.loads(beside.read_text())
    assert "decoder_channels" in old["encoder"]  # the V2AConfig layout it was written in
    config = LipReaderConfig.from_dict(old)
    assert config.encoder == VisualConfig.reduced() == V2AConfig.reduced().visual
    assert set(config.to_dict()["encoder"]) == set(VisualConfig.reduced().to_dict())
    with pytest.raises(ModelError, match="unknown VisualConfig fields: bogus"):
        LipReaderConfig.from_dict({**old, "encoder": {**old["encoder"], "bogus": 1}})


def test_transfer_encoder_copies_v2a_video_weights():
    torch.manual_seed(1)
    v2a = build_v2a(V2AConfig.debug())
    reader = build(LipReaderConfig.debug())
    copied = transfer_encoder(reader, v2a.state_dict())
    assert copied == len(v2a.video.state_dict())
    for key, value in v2a.video.state_dict().items():
        assert torch.equal(reader.video.state_dict()[key], value)
    with pytest.raises(ModelError):
        transfer_encoder(reader, {"decoder.weight": torch.zeros(1)})
    with pytest.raises(ModelError):
        big = build_v2a(V2AConfig.reduced()).state_dict()
        transfer_encoder(build(LipReaderConfig.debug()), big)


def test_checkpoint_round_trip(tmp_path: Path):
    torch.manual_seed(2)
    model = build(LipReaderConfig.debug()).eval()
    path = save(model.state_dict(), model.config, tmp_path / "m.pt")
    loaded = load_checkpoint(path)
    assert loaded.config == model.config
    crops = np.random.default_rng(0).integers(0, 255, (20, 88, 88), dtype=np.uint8)
    assert np.array_equal(infer(model, crops), infer(loaded, crops))
    config = json.loads((tmp_path / "m.pt.json").read_text())
    assert config["encoder"]["crop_size"] == 22
    (tmp_path / "bad.pt").write_bytes(b"not torch")
    with pytest.raises(ModelError):
        load_checkpoint(tmp_path / "bad.pt", model.config)
    with pytest.raises(ModelError):
        load_checkpoint(path, LipReaderConfig.reduced())
    with pytest.raises(ModelError):
        LipReaderConfig.from_dict({"hidden": 8, "colour": 1})


def test_infer_windows_match_whole_clip_and_decode_through_ctc():
    torch.manual_seed(3)
    model = build(LipReaderConfig.debug()).eval()
    crops = np.random.default_rng(1).integers(0, 255, (120, 88, 88), dtype=np.uint8)
    whole = infer(model, crops)
    assert whole.shape == (120, VOCAB_SIZE) and whole.dtype == np.float32
    # Windows of 30 frames with 25 frames of context: the 3-D stem sees +-1 frame, the GRU is
    # bidirectional, so seams differ slightly but stay close on random weights.
    streamed = infer(model, iter(crops), chunk_frames=30)
    assert streamed.shape == whole.shape
    assert np.abs(np.exp(streamed) - np.exp(whole)).max() < 0.05
    assert infer(model, np.zeros((0, 88, 88), np.uint8)).shape == (0, VOCAB_SIZE)
    decoded = ctc.decode(whole, "grid")
    assert len(decoded.text.split()) == 6 and len(decoded.words) == 6
    assert isinstance(ctc.decode(whole, "greedy").text, str)


def test_frame_labels_follow_alignment_and_augmentation():
    times = np.array([[0.0, 0.2], [0.2, 0.4]], np.float32)
    classes, spans = frame_labels(12, times, ["bin", "blue"])
    assert classes[:5].tolist() == [1] * 5 and classes[5:10].tolist() == [5] * 5
    assert classes[10:].tolist() == [0, 0] and spans == [(0, 5, "bin"), (5, 10, "blue")]
    crops = torch.arange(12.0)[:, None, None].expand(12, 4, 4)
    out, labels = augment(crops, classes, torch.Generator().manual_seed(0), jitter=0.3)
    assert len(out) == len(labels) and len(out) != 12
    for frame, label in zip(out[:, 0, 0].long(), labels, strict=True):
        assert classes[frame] == label  # labels travel with their frames


def write_tiny_cache(
    folder: Path, ids: list[str], landmarks: Callable[[int, int], np.ndarray] | None = None
) -> Path:
    """GRID-format cache items whose gray crops depend on the sentence; ``landmarks(t, i)``
    adds a ``(t, 68, 2)`` landmark track to item ``i``."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i, clip_id in enumerate(ids):
        text = SENTENCES[i % 3]
        gray = rng.integers(0, 60, (30, 88, 88), dtype=np.uint8)
        gray[:, :, : 25 * (i % 3 + 1)] += 150
        words = text.split()
        times = np.array([(0.2 * k, 0.2 * k + 0.2) for k in range(len(words))], np.float32)
        extra = {"landmarks": landmarks(30, i)} if landmarks is not None else {}
        np.savez(
            folder / f"{clip_id}.npz", gray88=gray, text=np.array(text), words=times,
            word_labels=np.array(words), **extra,
        )  # fmt: skip
    return folder


@pytest.fixture
def tiny_cache(tmp_path: Path) -> Path:
    """Six GRID-format cache items whose gray crops depend on the sentence."""
    return write_tiny_cache(tmp_path / "cache", [f"clip{i}" for i in range(6)])


def test_training_reduces_loss_and_is_reproducible(tiny_cache: Path, tmp_path: Path):
    kwargs = dict(config=LipReaderConfig.debug(), epochs=6, batch_size=2, lr=1e-2, log=False)
    best = train(tiny_cache, tmp_path / "a", word_prob=0.0, **kwargs)
    assert best["last_loss"] < 0.9 * best["first_loss"]
    assert 0 <= best["cer"] <= 1.5 and 0 <= best["frame_acc"] <= 1
    model = load_checkpoint(tmp_path / "a" / "lipread.pt")
    assert model.config == LipReaderConfig.debug()
    assert len((tmp_path / "a" / "log.jsonl").read_text().splitlines()) == 6
    train(tiny_cache, tmp_path / "b", word_prob=0.0, **kwargs)
    a = (tmp_path / "a" / "lipread.pt").read_bytes()
    state_a, state_b = (read(tmp_path / r / "lipread.pt", FAMILY).state_dict for r in "ab")
    assert a and all(torch.equal(state_a[k], state_b[k]) for k in state_a)


def test_trainer_starts_the_encoder_from_a_v2a_checkpoint(tiny_cache: Path, tmp_path: Path):
    from avtool.models.v2a import save_checkpoint

    torch.manual_seed(3)
    v2a = build_v2a(V2AConfig.debug())
    init = save_checkpoint(tmp_path / "v2a.pt", v2a.state_dict(), v2a.config)
    train(tiny_cache, tmp_path / "r", config=LipReaderConfig.debug(), init_v2a=init, epochs=1,
          batch_size=2, lr=0.0, max_steps=1, log=False)  # fmt: skip
    state = read(tmp_path / "r" / "lipread.pt", FAMILY).state_dict
    assert torch.equal(state["video.stem.0.weight"], v2a.state_dict()["video.stem.0.weight"])
