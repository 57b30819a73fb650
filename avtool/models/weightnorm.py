"""Weight-normalised convolutions under the published checkpoints' names, and their loading.

The HiFi-GAN and MelGAN checkpoints were saved with torch's legacy ``weight_norm(dim=0)``,
which stores each convolution's weight as ``weight_g`` (the norm, shape ``(out, 1, 1)``, or
``(in, 1, 1)`` for a transposed convolution) and ``weight_v`` (the direction). That function is
deprecated; its replacement, ``torch.nn.utils.parametrizations.weight_norm``, names the same
tensors ``parametrizations.weight.original0`` / ``original1``. The layers here keep the legacy
names natively, so ``state_dict()`` matches the published files key for key, and
:func:`read_state_dict` accepts either naming (and plain folded ``weight`` tensors).

Shared by the GAN vocoder families (:mod:`avtool.models.hifigan`, :mod:`avtool.models.melgan`).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from avtool.errors import InputError, ModelError

ConfigT = TypeVar("ConfigT")
Generator = TypeVar("Generator", bound=nn.Module)

#: How many offending keys an error message lists before summarising the rest.
MAX_LISTED_KEYS = 4
_PARAMETRIZED = (".parametrizations.weight.original0", ".parametrizations.weight.original1")


def _norm_except_dim0(weight: torch.Tensor) -> torch.Tensor:
    """The L2 norm over every dimension but the first, kept as ``(n, 1, ..., 1)``."""
    return torch.linalg.vector_norm(weight, dim=tuple(range(1, weight.ndim)), keepdim=True)


class _WeightNormed:
    """Mixin for a conv layer: ``weight = weight_g * weight_v / ||weight_v||`` until folded."""

    def _split_weight(self) -> None:
        weight = self.weight.detach()
        del self.weight
        # Registered after ``bias`` as the legacy function did, so key order matches too.
        self.weight_g = nn.Parameter(_norm_except_dim0(weight))
        self.weight_v = nn.Parameter(weight.clone())

    def effective_weight(self) -> torch.Tensor:
        """The convolution weight in use (computed from g and v unless folded)."""
        if "weight_v" in self._parameters:
            # The same kernel as torch's weight_norm (legacy and parametrization alike), so a
            # published checkpoint gives bit-identical weights to the authors' code.
            return torch._weight_norm(self.weight_v, self.weight_g, 0)
        return self.weight

    def fold_weight_norm(self) -> None:
        """Replace ``weight_g``/``weight_v`` by the plain ``weight`` they give (faster inference).

        The folded weight is exactly the tensor the unfolded layer computes, so outputs do not
        change. A no-op when already folded.
        """
        if "weight_v" not in self._parameters:
            return
        weight = self.effective_weight().detach().clone()
        del self.weight_g, self.weight_v
        self.weight = nn.Parameter(weight)

    @property
    def weight_normed(self) -> bool:
        """True while the weight is parametrised by ``weight_g`` and ``weight_v``."""
        return "weight_v" in self._parameters


class WNConv1d(_WeightNormed, nn.Conv1d):
    """``nn.Conv1d`` with a weight-normalised weight (parameters ``weight_g``, ``weight_v``).

    Input ``(B, in_channels, T)``, output ``(B, out_channels, T')`` as for ``nn.Conv1d``.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._split_weight()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._conv_forward(x, self.effective_weight(), self.bias)


class WNConvTranspose1d(_WeightNormed, nn.ConvTranspose1d):
    """``nn.ConvTranspose1d`` with a weight-normalised weight (norm over the input channels).

    Input ``(B, in_channels, T)``, output ``(B, out_channels, T')`` as for
    ``nn.ConvTranspose1d``; ``output_size`` is not supported (the vocoders never pass it).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._split_weight()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv_transpose1d(
            x,
            self.effective_weight(),
            self.bias,
            self.stride,
            self.padding,
            self.output_padding,
            self.groups,
            self.dilation,
        )


def fold_weight_norm(module: nn.Module) -> nn.Module:
    """Fold every weight-normalised layer inside ``module`` (in place); returns ``module``."""
    for layer in module.modules():
        if isinstance(layer, _WeightNormed):
            layer.fold_weight_norm()
    return module


def read_checkpoint(path: str | os.PathLike[str]) -> Any:
    """``torch.load`` a file on the CPU with ``weights_only=True`` (no code runs from the file).

    Raises:
        ModelError: unreadable, truncated, not a torch file, or one needing arbitrary pickles
            (the message names the file).
    """
    path = Path(path)
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except OSError as exc:
        raise ModelError(f"{path}: cannot read the checkpoint ({exc.strerror or exc})") from exc
    except Exception as exc:  # torch.load raises untyped errors (RuntimeError, EOFError, pickle)
        raise ModelError(
            f"{path}: not a readable PyTorch checkpoint (truncated or corrupt?): "
            f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        ) from exc


def open_checkpoint(
    checkpoint: str | os.PathLike[str] | Mapping[str, Any], what: str
) -> tuple[Any, str]:
    """A checkpoint's contents and the name error messages give it.

    Loaders take a file or the dict already read from one (e.g. to load one file into two
    models); either way their errors should say where the weights came from.

    Args:
        checkpoint: a path (read with :func:`read_checkpoint`) or the loaded object.
        what: names an in-memory checkpoint in messages (``"HiFi-GAN checkpoint"``).

    Returns:
        ``(contents, source)``: ``source`` is the path, or ``what`` for a dict.

    Raises:
        ModelError: the file cannot be read (see :func:`read_checkpoint`).
    """
    if isinstance(checkpoint, Mapping):
        return checkpoint, what
    return read_checkpoint(checkpoint), os.fspath(checkpoint)


def _listed(items: list[str]) -> str:
    shown = ", ".join(items[:MAX_LISTED_KEYS])
    more = len(items) - MAX_LISTED_KEYS
    return f"{shown} and {more} more" if more > 0 else shown


def to_model_keys(state: Mapping[str, Any], expected: Mapping[str, torch.Tensor]) -> dict[str, Any]:
    """Rename a checkpoint's weight-norm tensors to the names ``expected`` uses.

    Accepts the legacy names (``weight_g``/``weight_v``), the parametrization names
    (``parametrizations.weight.original0``/``original1``) and folded ``weight`` tensors, in
    either direction: a folded model takes g/v checkpoints and vice versa.

    Args:
        state: tensors as read from the file.
        expected: the target model's ``state_dict()``.

    Returns:
        A new dict; keys that fit nothing are kept unchanged (the caller reports them).
    """
    out: dict[str, Any] = {}
    for key, value in state.items():
        for suffix, legacy in zip(_PARAMETRIZED, ("weight_g", "weight_v"), strict=True):
            if key.endswith(suffix):
                key = key[: -len(suffix)] + "." + legacy
                break
        out[key] = value
    for key in list(out):
        if key not in out:  # a weight_g already consumed by its weight_v
            continue
        prefix, _, name = key.rpartition(".")
        stem = f"{prefix}." if prefix else ""
        value = out[key]
        if not isinstance(value, torch.Tensor):
            continue
        if name == "weight" and key not in expected and f"{stem}weight_v" in expected:
            out[f"{stem}weight_g"] = _norm_except_dim0(value)
            out[f"{stem}weight_v"] = value
            del out[key]
        elif name == "weight_v" and key not in expected and f"{stem}weight" in expected:
            g = out.pop(f"{stem}weight_g", None)
            if isinstance(g, torch.Tensor) and g.shape == _norm_except_dim0(value).shape:
                out[f"{stem}weight"] = torch._weight_norm(value, g, 0)
                del out[key]
            elif g is not None:
                out[f"{stem}weight_g"] = g
    return out


def load_weights(
    model: nn.Module, state: Mapping[str, Any], *, source: str, what: str
) -> nn.Module:
    """Load ``state`` into ``model`` after checking every key and shape.

    Args:
        model: the freshly built module, on a real device or on ``meta`` (then the loaded
            tensors become its parameters, on the CPU).
        state: the checkpoint's tensors (any weight-norm naming, see :func:`to_model_keys`).
        source: the file (or a description) named in errors.
        what: the architecture named in errors, e.g. ``"HiFiGAN v1 generator"``.

    Returns:
        ``model`` with the weights loaded.

    Raises:
        ModelError: keys missing or unexpected, a shape mismatch, or a non-tensor value;
            the message names ``source`` and lists the first few offending keys.
    """
    expected = model.state_dict()
    converted = to_model_keys(state, expected)
    missing = [k for k in expected if k not in converted]
    unexpected = [k for k in converted if k not in expected]
    wrong = [
        f"{k} {tuple(converted[k].shape)} (expected {tuple(expected[k].shape)})"
        if isinstance(converted[k], torch.Tensor)
        else f"{k} (a {type(converted[k]).__name__}, not a tensor)"
        for k in expected
        if k in converted
        and not (isinstance(converted[k], torch.Tensor) and converted[k].shape == expected[k].shape)
    ]
    problems = [
        f"{len(keys)} {label}: {_listed(keys)}"
        for label, keys in (
            ("missing keys", missing),
            ("unexpected keys", unexpected),
            ("shape mismatches", wrong),
        )
        if keys
    ]
    if problems:
        raise ModelError(f"{source}: does not fit the {what}; " + "; ".join(problems))
    if any(t.is_meta for t in expected.values()):
        # A model built on the meta device (no wasted random init) takes the tensors
        # themselves; copies keep it from sharing storage with the caller's dict.
        owned = {k: v.detach().to(dtype=expected[k].dtype, copy=True) for k, v in converted.items()}
        model.load_state_dict(owned, strict=True, assign=True)
    else:
        model.load_state_dict(converted, strict=True)
    return model


def load_generator(
    build: Callable[[ConfigT], Generator],
    config: ConfigT,
    state: Mapping[str, Any],
    *,
    source: str,
    what: str,
    device: str | torch.device = "cpu",
    fold: bool = True,
) -> Generator:
    """A GAN vocoder's generator built on ``meta`` (no wasted random init), ``state`` loaded.

    Args:
        build: the family's ``build(config)``.
        config: the architecture.
        state: the checkpoint's tensors (see :func:`load_weights`).
        source: the file named in errors.
        what: the architecture named in errors.
        device: where the generator goes.
        fold: fold weight norm into plain weights (faster inference, same outputs).

    Returns:
        The generator in eval mode on ``device``.

    Raises:
        ModelError: the weights do not fit (see :func:`load_weights`).
    """
    with torch.device("meta"):
        model = build(config)
    load_weights(model, state, source=source, what=what)
    if fold:
        model.remove_weight_norm()
    return model.to(device).eval()


def mel_input(
    model: nn.Module, mel: torch.Tensor | np.ndarray, bands: int, family: str
) -> torch.Tensor:
    """A vocoder's input: ``mel`` as a tensor on the generator's device and dtype.

    Args:
        model: the generator.
        mel: ``(B, bands, frames)`` mel spectrogram.
        bands: the mel bands the generator takes.
        family: the vocoder as the error names it (``"HiFi-GAN"``).

    Raises:
        InputError: ``mel`` is not 3-D with ``bands`` bands.
    """
    mel = torch.as_tensor(mel)
    if mel.ndim != 3 or mel.shape[1] != bands:
        raise InputError(f"{family} expects a (batch, {bands}, frames) mel, got {tuple(mel.shape)}")
    param = next(model.parameters())
    return mel.to(device=param.device, dtype=param.dtype)
