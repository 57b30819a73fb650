"""Convert the published LipNet Keras weights (rizkiarm/LipNet) to a :class:`LipNet` state dict.

rizkiarm/LipNet (``lipnet/model2.py``) saves Keras 2 ``save_weights`` HDF5 files
(``overlapped-weights368.h5``, ``unseen-weights178.h5``) with layers ``conv1..3``
(``kernel (t, w, h, in, out)``: the model reads frames as ``(T, W, H, C)``, width first),
``batc1..3`` (batch norm, eps 1e-3), two unnamed ``Bidirectional`` wrappers around ``gru1`` /
``gru2`` (256 units, concat) and ``dense1`` (28 outputs: ``a``-``z`` = 0-25, space = 26,
CTC blank = 27). Its input is RGB in ``[0, 1]`` (pixels / 255) on 100x50 mouth crops.

What the conversion changes:

* conv kernels ``(t, w, h, in, out)`` → torch ``(out, in, t, h, w)``;
* the per-frame flatten order ``(w, h, c)`` → torch's ``(c, h, w)`` (rows of gru1's kernel);
* GRU gates: Keras stacks ``(z, r, h)``. With ``reset_after=False`` (Keras 2.0, bias
  ``(3n,)``) the reset gate multiplies ``h`` before the recurrent matmul, which torch's
  :class:`torch.nn.GRU` cannot express, so the model uses :class:`KerasGRU`
  (``keras_gru=True``). With ``reset_after=True`` (bias ``(2, 3n)``) the gates are reordered
  to torch's ``(r, z, n)`` and loaded into :class:`torch.nn.GRU`;
* dense rows are permuted to this package's vocabulary (blank 0, space 1, ``a``-``z`` 2-27).
"""

from __future__ import annotations

import argparse
import os
import re
from pathlib import Path

import numpy as np
import torch

from avtool.errors import ModelError
from avtool.models.lipnet import save
from avtool.models.lipnet.model import LipNetConfig

# Keras output index of each of our vocabulary entries: blank, space, a..z.
KERAS_ORDER = np.array([27, 26, *range(26)])


def read_h5_weights(path: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    """All arrays of a Keras weights file, keyed by their HDF5 path (``conv1/conv1/kernel:0``).

    Full-model files (``model_weights/`` group) are read from that group.

    Raises:
        ModelError: not an HDF5 file.
    """
    import h5py

    arrays: dict[str, np.ndarray] = {}
    try:
        with h5py.File(path, "r") as handle:
            root = handle.get("model_weights", handle)

            def visit(name: str, obj: object) -> None:
                if isinstance(obj, h5py.Dataset):
                    arrays[name] = np.asarray(obj[()])

            root.visititems(visit)
    except OSError as exc:
        raise ModelError(f"{path}: not a readable HDF5 weights file ({exc})") from exc
    return arrays


def _find(arrays: dict[str, np.ndarray], pattern: str, path: str) -> np.ndarray:
    regex = re.compile(pattern)
    matches = sorted(name for name in arrays if regex.search(name))
    if len(matches) != 1:
        found = ", ".join(matches) or "none"
        raise ModelError(
            f"{path}: expected one weight matching {pattern!r} (rizkiarm/LipNet layout), "
            f"found {found}"
        )
    return arrays[matches[0]]


def _gate_order(matrix: np.ndarray, hidden: int) -> np.ndarray:
    """Keras ``(z, r, h)`` blocks on the last axis → torch ``(r, z, n)``."""
    z, r, h = (matrix[..., i * hidden : (i + 1) * hidden] for i in range(3))
    return np.concatenate([r, z, h], axis=-1)


def convert(
    path: str | os.PathLike[str], *, height: int = 50, width: int = 100
) -> tuple[LipNetConfig, dict[str, torch.Tensor]]:
    """Read a rizkiarm/LipNet ``.h5`` weights file as a config and a :class:`LipNet` state dict.

    Args:
        path: the Keras weights file.
        height, width: input crop size the model was trained on (50x100 for LipNet).

    Returns:
        ``(config, state_dict)``; ``config`` uses ``/255`` input scaling (``normalize="unit"``),
        batch norm and the GRU formulation the file was saved with.

    Raises:
        ModelError: missing layers or shapes that do not fit together.
    """
    where = str(path)
    arrays = read_h5_weights(path)
    state: dict[str, torch.Tensor] = {}
    channels, kernels = [], []
    in_channels = None
    for index in range(3):
        kernel = _find(arrays, rf"(^|/)conv{index + 1}/kernel", where)
        if kernel.ndim != 5:
            raise ModelError(f"{where}: conv{index + 1} kernel has shape {kernel.shape}, not 5-D")
        kt, kw, kh, cin, cout = kernel.shape
        in_channels = cin if index == 0 else in_channels
        channels.append(int(cout))
        kernels.append((int(kt), int(kh), int(kw)))
        block = f"blocks.{index}"
        state[f"{block}.0.weight"] = torch.from_numpy(kernel.transpose(4, 3, 0, 2, 1).copy())
        state[f"{block}.0.bias"] = torch.from_numpy(
            _find(arrays, rf"(^|/)conv{index + 1}/bias", where).copy()
        )
        batch_norm = f"batc{index + 1}"
        for keras_name, torch_name in (
            ("gamma", "weight"), ("beta", "bias"), ("moving_mean", "running_mean"),
            ("moving_variance", "running_var"),
        ):  # fmt: skip
            state[f"{block}.1.{torch_name}"] = torch.from_numpy(
                _find(arrays, rf"(^|/){batch_norm}/{keras_name}", where).copy()
            )
        state[f"{block}.1.num_batches_tracked"] = torch.tensor(0)
    recurrent = _find(arrays, r"forward_gru1/recurrent_kernel", where)
    hidden = int(recurrent.shape[0])
    bias = _find(arrays, r"forward_gru1/bias", where)
    reset_after = bias.ndim == 2
    config = LipNetConfig(
        in_channels=int(in_channels or 3), height=height, width=width, downsample=1,
        channels=tuple(channels), kernels=tuple(kernels), first_stride=2, hidden=hidden,
        gru_layers=2, dropout=0.5, batch_norm=True, keras_gru=not reset_after,
        normalize="unit",
    )  # fmt: skip
    feat_c, feat_h, feat_w = config.feature_shape()
    for layer in range(2):
        for direction, suffix in (("forward", ""), ("backward", "_reverse")):
            prefix = rf"{direction}_gru{layer + 1}/"
            kernel = _find(arrays, prefix + "kernel", where)
            rec = _find(arrays, prefix + "recurrent_kernel", where)
            bias = _find(arrays, prefix + "bias", where)
            if layer == 0:
                expected = feat_c * feat_h * feat_w
                if kernel.shape[0] != expected:
                    raise ModelError(
                        f"{where}: gru1 takes {kernel.shape[0]} features per frame, but a "
                        f"{height}x{width} input gives {expected}; pass the crop size"
                    )
                # Rows come flattened as (w, h, c); ours are (c, h, w).
                kernel = (
                    kernel.reshape(feat_w, feat_h, feat_c, -1)
                    .transpose(2, 1, 0, 3)
                    .reshape(expected, -1)
                )
            if reset_after:
                key = f"gru.weight_ih_l{layer}{suffix}"
                state[key] = torch.from_numpy(_gate_order(kernel, hidden).T.copy())
                state[f"gru.weight_hh_l{layer}{suffix}"] = torch.from_numpy(
                    _gate_order(rec, hidden).T.copy()
                )
                state[f"gru.bias_ih_l{layer}{suffix}"] = torch.from_numpy(
                    _gate_order(bias[0], hidden).copy()
                )
                state[f"gru.bias_hh_l{layer}{suffix}"] = torch.from_numpy(
                    _gate_order(bias[1], hidden).copy()
                )
            else:
                side = "forward_layers" if direction == "forward" else "backward_layers"
                state[f"gru.{side}.{layer}.kernel"] = torch.from_numpy(kernel.copy())
                state[f"gru.{side}.{layer}.recurrent"] = torch.from_numpy(rec.copy())
                state[f"gru.{side}.{layer}.bias"] = torch.from_numpy(bias.copy())
    dense = _find(arrays, r"(^|/)dense1/kernel", where)
    dense_bias = _find(arrays, r"(^|/)dense1/bias", where)
    if dense.shape[1] != len(KERAS_ORDER):
        raise ModelError(f"{where}: dense1 has {dense.shape[1]} outputs, LipNet has 28")
    state["out.weight"] = torch.from_numpy(dense[:, KERAS_ORDER].T.copy())
    state["out.bias"] = torch.from_numpy(dense_bias[KERAS_ORDER].copy())
    return config, {k: v.float() if v.is_floating_point() else v for k, v in state.items()}


def convert_file(
    path: str | os.PathLike[str], out: str | os.PathLike[str], *, height: int = 50,
    width: int = 100,
) -> Path:  # fmt: skip
    """Convert ``path`` and write ``out`` (a state dict) plus ``out.json`` (its config).

    The pair loads with :func:`avtool.models.lipnet.load` and ``avtool lipread --model OUT``.
    """
    config, state = convert(path, height=height, width=width)
    return save(state, config, out)


def main(argv: list[str] | None = None) -> int:
    """``python -m avtool.models.lipnet.keras IN.h5 OUT.pt [--height 50 --width 100]``."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("weights", help="rizkiarm/LipNet Keras weights (.h5)")
    parser.add_argument("out", help="output state dict (.pt; its config goes to OUT.json)")
    parser.add_argument("--height", type=int, default=50)
    parser.add_argument("--width", type=int, default=100)
    args = parser.parse_args(argv)
    out = convert_file(args.weights, args.out, height=args.height, width=args.width)
    print(f"wrote {out} and {out.name}.json; use: avtool lipread CLIP --model {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
