"""The Piper family: chunking, the seedable-graph patch (on a tiny graph) and alignment."""

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper

from avtool.models.piper import MAX_PHONEMES, PiperModel, split_phonemes
from avtool.models.piper.graph import DURATIONS_OUTPUT, make_seedable


def _words(n: int) -> list[str]:
    phonemes: list[str] = []
    for i in range(n):
        phonemes += ["a", "b", "c"] + ([","] if i % 7 == 6 else []) + [" "]
    return phonemes[:-1]


def test_split_phonemes_keeps_everything_and_respects_limit():
    phonemes = _words(500)
    pieces = split_phonemes(phonemes)
    assert all(len(p) <= MAX_PHONEMES for p in pieces)
    rejoined = [x for piece in pieces for x in [*piece, " "]][:-1]
    assert rejoined == phonemes
    # Cuts prefer clause marks: every piece but the last ends right after a comma.
    assert all(piece[-1] == "," for piece in pieces[:-1])


def test_split_phonemes_short_input_untouched():
    assert split_phonemes(list("abc")) == [list("abc")]
    assert split_phonemes(list("x" * 10), limit=4) == [list("xxxx"), list("xxxx"), list("xx")]


def _tiny_vits_like_graph() -> onnx.ModelProto:
    """input ids (1, N) -> noise shaped like (1, 3, N) -> output; Ceil gives 'durations'."""
    nodes = [
        helper.make_node("Shape", ["input"], ["n"], start=1),
        helper.make_node(
            "Constant",
            [],
            ["prefix"],
            value=helper.make_tensor("p", TensorProto.INT64, [2], [1, 3]),
        ),
        helper.make_node("Concat", ["prefix", "n"], ["shape"], axis=0),
        helper.make_node(
            "ConstantOfShape",
            ["shape"],
            ["like"],
            value=helper.make_tensor("v", TensorProto.FLOAT, [1], [0.0]),
        ),
        helper.make_node("RandomNormalLike", ["like"], ["noise"], dtype=TensorProto.FLOAT),
        helper.make_node("Abs", ["noise"], ["absn"]),
        helper.make_node("Ceil", ["absn"], ["w_ceil"]),
        helper.make_node("Identity", ["noise"], ["output"]),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny",
        [helper.make_tensor_value_info("input", TensorProto.INT64, [1, "N"])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, None)],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 15)], ir_version=8)


def _session(model: onnx.ModelProto) -> ort.InferenceSession:
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])


def test_unpatched_graph_is_not_reproducible():
    session = _session(_tiny_vits_like_graph())
    ids = np.zeros((1, 5), np.int64)
    first, second = (session.run(["output"], {"input": ids})[0] for _ in range(2))
    assert not np.array_equal(first, second)  # the reason the patch exists


def test_seedable_graph_is_a_function_of_the_bank():
    model = _tiny_vits_like_graph()
    banks = make_seedable(model)
    assert banks == ["avtool_noise_0"]
    session = _session(model)
    ids = np.zeros((1, 5), np.int64)
    bank = np.random.default_rng(1).standard_normal(32, dtype=np.float32)
    out1, dur1 = session.run(["output", DURATIONS_OUTPUT], {"input": ids, banks[0]: bank})
    out2, _ = session.run(["output", DURATIONS_OUTPUT], {"input": ids, banks[0]: bank})
    assert out1.shape == (1, 3, 5) and dur1.shape == (1, 3, 5)
    np.testing.assert_array_equal(out1, out2)
    np.testing.assert_array_equal(out1.reshape(-1), bank[:15])
    other = session.run(["output"], {"input": ids, banks[0]: bank[::-1].copy()})[0]
    assert not np.array_equal(out1, other)


def test_short_bank_is_tiled_to_fill_the_shape():
    model = _tiny_vits_like_graph()
    bank_name = make_seedable(model)[0]
    bank = np.arange(4, dtype=np.float32)
    out = _session(model).run(["output"], {"input": np.zeros((1, 7), np.int64), bank_name: bank})
    np.testing.assert_array_equal(out[0].reshape(-1), np.resize(bank, 21))


def test_make_seedable_rejects_other_graphs():
    graph = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["y"])],
        "plain",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])],
    )
    with pytest.raises(ValueError, match="not a Piper VITS graph"):
        make_seedable(helper.make_model(graph, ir_version=8))


def test_alignment_folds_stress_marks_and_covers_all_samples():
    phonemes = ("h", "ˈ", "o", "ː", " ", "b")
    id_samples = np.arange(1, 2 * len(phonemes) + 4)
    spans = PiperModel._align(phonemes, id_samples)
    assert [p for p, _ in spans] == ["^", "h", "ˈoː", " ", "b", "$"]
    assert sum(n for _, n in spans) == id_samples.sum()
    assert PiperModel._align(phonemes, id_samples[:-1]) is None


def test_real_voice_is_deterministic_per_seed(piper_voice):
    model = piper_voice.module
    chunk = model.chunks("Set white with p two soon.")[0]
    a = model.synthesize(chunk, seed=7, chunk_index=0)
    b = model.synthesize(model.chunks("Another sentence first.")[0], seed=7, chunk_index=0)
    c = model.synthesize(chunk, seed=7, chunk_index=0)
    d = model.synthesize(chunk, seed=8, chunk_index=0)
    assert a.audio.dtype == np.float32 and a.audio.ndim == 1
    np.testing.assert_array_equal(a.audio, c.audio)  # what ran in between does not matter
    assert not np.array_equal(a.audio, d.audio) and not np.array_equal(a.audio, b.audio)
    assert sum(n for _, n in a.phoneme_samples) == a.audio.size
    assert 1.0 < a.audio.size / model.sample_rate < 4.0
