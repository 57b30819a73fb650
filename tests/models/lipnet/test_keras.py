"""The rizkiarm/LipNet Keras converter, on .h5 files written here in that layout.

The expected outputs come from a NumPy re-implementation of the Keras model (channels-last
frames ``(T, W, H, C)``, Keras GRU equations), independent of the torch code being tested.
"""

from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from avtool.errors import ModelError
from avtool.models.lipnet import infer, load_checkpoint
from avtool.models.lipnet.keras import KERAS_ORDER, convert, convert_file

CHANNELS = (2, 3, 4)
KERNELS = ((3, 5, 5), (3, 5, 5), (3, 3, 3))
HIDDEN = 5


def _weights(reset_after: bool, seed: int = 0) -> dict[str, dict[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    layers: dict[str, dict[str, np.ndarray]] = {}
    cin = 3
    for i, (cout, (kt, kh, kw)) in enumerate(zip(CHANNELS, KERNELS, strict=True), 1):
        layers[f"conv{i}"] = {
            "kernel": rng.normal(0, 0.3, (kt, kw, kh, cin, cout)),
            "bias": rng.normal(0, 0.1, cout),
        }
        layers[f"batc{i}"] = {
            "gamma": rng.uniform(0.5, 1.5, cout), "beta": rng.normal(0, 0.1, cout),
            "moving_mean": rng.normal(0, 0.1, cout), "moving_variance": rng.uniform(0.5, 2, cout),
        }  # fmt: skip
        cin = cout
    features = CHANNELS[-1] * 6 * 3  # 100x50 input -> 6x3 after the three pools
    for layer, size in ((1, features), (2, 2 * HIDDEN)):
        group = {}
        for side in ("forward", "backward"):
            bias_shape = (2, 3 * HIDDEN) if reset_after else (3 * HIDDEN,)
            group[f"{side}_gru{layer}/kernel"] = rng.normal(0, 0.2, (size, 3 * HIDDEN))
            group[f"{side}_gru{layer}/recurrent_kernel"] = rng.normal(0, 0.3, (HIDDEN, 3 * HIDDEN))
            group[f"{side}_gru{layer}/bias"] = rng.normal(0, 0.1, bias_shape)
        layers[f"bidirectional_{layer}"] = group
    layers["dense1"] = {
        "kernel": rng.normal(0, 0.5, (2 * HIDDEN, 28)),
        "bias": rng.normal(0, 1, 28),
    }
    return {k: {n: a.astype(np.float32) for n, a in v.items()} for k, v in layers.items()}


def _write_h5(path: Path, layers: dict[str, dict[str, np.ndarray]]) -> Path:
    """Keras 2 ``save_weights`` layout: one group per layer, ``layer/layer/weight:0``."""
    with h5py.File(path, "w") as f:
        names = ["the_input", "zero1", *layers]
        f.attrs["layer_names"] = [n.encode() for n in names]
        f.attrs["keras_version"] = b"2.0.2"
        for name in names:
            group = f.create_group(name)
            weights = layers.get(name, {})
            group.attrs["weight_names"] = [f"{name}/{w}:0".encode() for w in weights]
            for weight, array in weights.items():
                group.create_dataset(f"{name}/{weight}:0", data=array)
    return path


def _conv(x, kernel, bias, stride, pad):
    x = np.pad(x, ((pad[0],) * 2, (pad[1],) * 2, (pad[2],) * 2, (0, 0)))
    kt, kw, kh = kernel.shape[:3]
    windows = np.lib.stride_tricks.sliding_window_view(x, (kt, kw, kh), axis=(0, 1, 2))
    out = np.einsum("twhcabd,abdco->twho", windows, kernel) + bias
    return out[:, ::stride, ::stride]


def _keras_gru(x, kernel, rec, bias, reverse):
    n = rec.shape[0]
    seq = x[::-1] if reverse else x
    h, out = np.zeros(n), []
    sig = lambda v: 1 / (1 + np.exp(-v))  # noqa: E731
    for frame in seq:
        if bias.ndim == 2:  # reset_after=True
            xs, inner = frame @ kernel + bias[0], h @ rec + bias[1]
            z, r = sig(xs[:n] + inner[:n]), sig(xs[n : 2 * n] + inner[n : 2 * n])
            cand = np.tanh(xs[2 * n :] + r * inner[2 * n :])
        else:
            xs = frame @ kernel + bias
            z, r = sig(xs[:n] + h @ rec[:, :n]), sig(xs[n : 2 * n] + h @ rec[:, n : 2 * n])
            cand = np.tanh(xs[2 * n :] + (r * h) @ rec[:, 2 * n :])
        h = z * h + (1 - z) * cand
        out.append(h)
    out = np.array(out)
    return out[::-1] if reverse else out


def _keras_forward(layers, crops_hwc: np.ndarray) -> np.ndarray:
    """Softmax outputs ``(T, 28)`` of the Keras LipNet on ``(T, 50, 100, 3)`` uint8 crops."""
    x = crops_hwc.astype(np.float64).swapaxes(1, 2) / 255.0  # (T, W, H, C) as rizkiarm
    for i in range(1, 4):
        conv, bn = layers[f"conv{i}"], layers[f"batc{i}"]
        pad = (1, 2, 2) if i < 3 else (1, 1, 1)
        x = _conv(x, conv["kernel"], conv["bias"], 2 if i == 1 else 1, pad)
        x = (x - bn["moving_mean"]) / np.sqrt(bn["moving_variance"] + 1e-3) * bn["gamma"]
        x = np.maximum(x + bn["beta"], 0)
        t, w, h, c = x.shape
        x = x[:, : w // 2 * 2, : h // 2 * 2].reshape(t, w // 2, 2, h // 2, 2, c).max((2, 4))
    x = x.reshape(len(x), -1)
    for layer in (1, 2):
        g = layers[f"bidirectional_{layer}"]
        sides = []
        for side, reverse in (("forward", False), ("backward", True)):
            name = f"{side}_gru{layer}"
            sides.append(
                _keras_gru(
                    x,
                    g[f"{name}/kernel"],
                    g[f"{name}/recurrent_kernel"],
                    g[f"{name}/bias"],
                    reverse,
                )
            )
        x = np.concatenate(sides, axis=-1)
    logits = x @ layers["dense1"]["kernel"] + layers["dense1"]["bias"]
    e = np.exp(logits - logits.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


@pytest.mark.parametrize("reset_after", [False, True])
def test_converted_weights_reproduce_the_keras_model(tmp_path: Path, reset_after: bool):
    layers = _weights(reset_after)
    h5 = _write_h5(tmp_path / "overlapped-weights368.h5", layers)
    out = convert_file(h5, tmp_path / "lipnet-keras.pt")
    model = load_checkpoint(out)
    assert model.config.keras_gru is (not reset_after)
    assert model.config.normalize == "unit" and model.config.channels == CHANNELS
    crops = np.random.default_rng(5).integers(0, 256, (7, 50, 100, 3), dtype=np.uint8)
    expected = _keras_forward(layers, crops)[:, KERAS_ORDER]  # our vocabulary order
    got = np.exp(infer(model, crops))
    np.testing.assert_allclose(got, expected, atol=2e-5)


def test_converter_names_missing_layers(tmp_path: Path):
    layers = _weights(False)
    del layers["dense1"]
    h5 = _write_h5(tmp_path / "partial.h5", layers)
    with pytest.raises(ModelError, match="dense1"):
        convert(h5)
    with pytest.raises(ModelError, match="gru1 takes"):
        convert(_write_h5(tmp_path / "w.h5", _weights(False)), height=60, width=120)
    (tmp_path / "x.h5").write_bytes(b"garbage")
    with pytest.raises(ModelError, match="HDF5"):
        convert(tmp_path / "x.h5")


def test_converted_model_state_is_float32(tmp_path: Path):
    _, state = convert(_write_h5(tmp_path / "w.h5", _weights(True)))
    assert all(v.dtype == torch.float32 for v in state.values() if v.is_floating_point())


def test_converter_command_line(tmp_path: Path, capsys):
    from avtool.models.lipnet.keras import main

    h5 = _write_h5(tmp_path / "unseen-weights178.h5", _weights(False, seed=2))
    assert main([str(h5), str(tmp_path / "unseen.pt")]) == 0
    assert "unseen.pt" in capsys.readouterr().out
    assert load_checkpoint(tmp_path / "unseen.pt").config.keras_gru
