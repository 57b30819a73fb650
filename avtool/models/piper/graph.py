"""Make a Piper (VITS) ONNX graph seedable and make it report phoneme durations.

Piper's exported graph draws its noise with two ``RandomNormalLike`` nodes (stochastic
duration predictor and prior sample). onnxruntime seeds those kernels once per session
and advances them on every run, so the same text gives different audio on each call and
``onnxruntime.set_seed`` after loading has no effect. We replace each node by a slice of a
noise bank fed as a graph input: the caller draws the bank from a seeded numpy generator,
so a (seed, text) pair always gives the same bytes, whatever ran before in the session.

The bank is a 1-D tensor; the node's output shape is filled by tiling it (when the
caller's size estimate was short) and reshaping, so any tensor shape is covered.
"""

from __future__ import annotations

import onnx
from onnx import TensorProto, helper

#: Bumped whenever the patch below changes, so cached patched graphs are rebuilt.
PATCH_VERSION = 1
NOISE_INPUT_PREFIX = "avtool_noise_"
DURATIONS_OUTPUT = "avtool_durations"


def _replace_random_node(graph: onnx.GraphProto, node: onnx.NodeProto, bank: str) -> list:
    """Nodes computing ``reshape(tile(bank)[:numel], shape(like))`` in place of ``node``."""
    like, out, p = node.input[0], node.output[0], f"{bank}/"
    const = helper.make_tensor
    return [
        helper.make_node("Shape", [like], [p + "shape"]),
        helper.make_node("ReduceProd", [p + "shape"], [p + "numel"], keepdims=1),
        helper.make_node("Shape", [bank], [p + "bank_len"]),
        helper.make_node("Div", [p + "numel", p + "bank_len"], [p + "quot"]),
        helper.make_node(
            "Constant", [], [p + "one"], value=const(p + "one_v", TensorProto.INT64, [1], [1])
        ),
        helper.make_node("Add", [p + "quot", p + "one"], [p + "reps"]),
        helper.make_node("Tile", [bank, p + "reps"], [p + "tiled"]),
        helper.make_node(
            "Constant", [], [p + "zero"], value=const(p + "zero_v", TensorProto.INT64, [1], [0])
        ),
        helper.make_node("Slice", [p + "tiled", p + "zero", p + "numel"], [p + "flat"]),
        helper.make_node("Reshape", [p + "flat", p + "shape"], [out]),
    ]


def make_seedable(model: onnx.ModelProto) -> list[str]:
    """Patch ``model`` in place: noise banks as inputs, phoneme durations as an output.

    Args:
        model: a Piper voice graph (inputs ``input``, ``input_lengths``, ``scales``).

    Returns:
        Names of the added noise-bank inputs, each a 1-D float32 tensor of any length.

    Raises:
        ValueError: the graph has no ``RandomNormalLike`` node or no ``Ceil`` node (not a
            Piper VITS export).
    """
    graph = model.graph
    randoms = [n for n in graph.node if n.op_type == "RandomNormalLike"]
    ceils = [n for n in graph.node if n.op_type == "Ceil"]
    if not randoms or len(ceils) != 1:
        raise ValueError("not a Piper VITS graph: expected RandomNormalLike and one Ceil node")

    banks = []
    new_nodes = []
    for node in graph.node:
        if node.op_type != "RandomNormalLike":
            new_nodes.append(node)
            continue
        bank = f"{NOISE_INPUT_PREFIX}{len(banks)}"
        banks.append(bank)
        graph.input.append(helper.make_tensor_value_info(bank, TensorProto.FLOAT, ["n"]))
        new_nodes.extend(_replace_random_node(graph, node, bank))
    del graph.node[:]
    graph.node.extend(new_nodes)

    # w_ceil holds the number of spectrogram frames given to each phoneme id.
    graph.node.append(helper.make_node("Identity", [ceils[0].output[0]], [DURATIONS_OUTPUT]))
    graph.output.append(helper.make_tensor_value_info(DURATIONS_OUTPUT, TensorProto.FLOAT, None))
    return banks
