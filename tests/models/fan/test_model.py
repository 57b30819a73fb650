"""The 2D-FAN network: the published checkpoint layout, loading and refusing state dicts."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import torch

from avtool.errors import ModelError
from avtool.models.fan import FanConfig, build, load_checkpoint

# Fingerprint of face-alignment 1.5.0's FAN(num_modules=4).state_dict(), the layout of the
# published 2DFAN4-11f355bf06.pth.tar: the number of tensors and the sha256 of the sorted
# "key:shape" lines (shape as a Python tuple), generated once from the reference code.
PUBLISHED_TENSORS = 1129
PUBLISHED_LAYOUT_SHA256 = "dd58afd62632b7236a14dff4884529c80b671241c77f9a9f1d5415fb90231b6e"


def layout_fingerprint(state: dict[str, torch.Tensor]) -> tuple[int, str]:
    lines = sorted(f"{key}:{tuple(value.shape)}" for key, value in state.items())
    return len(lines), hashlib.sha256("\n".join(lines).encode()).hexdigest()


def test_default_config_has_the_published_state_dict_layout() -> None:
    state = build(FanConfig()).state_dict()
    assert layout_fingerprint(state) == (PUBLISHED_TENSORS, PUBLISHED_LAYOUT_SHA256)
    # 2DFAN4 has about 23.9 M parameters; a smaller network would not match the file.
    assert sum(v.numel() for v in state.values() if v.is_floating_point()) == 23_874_320


def test_forward_shapes_and_debug_config() -> None:
    torch.manual_seed(0)
    network = build(FanConfig.debug()).eval()
    with torch.no_grad():
        heatmaps = network(torch.rand(2, 3, 256, 256))
    assert heatmaps.shape == (2, 68, 64, 64) and heatmaps.dtype == torch.float32
    assert torch.isfinite(heatmaps).all()


def test_checkpoint_without_batchnorm_counters_loads(tmp_path: Path) -> None:
    # Checkpoints from PyTorch < 0.4.1 carry no num_batches_tracked; face-alignment loads them.
    torch.manual_seed(1)
    state = {k: v for k, v in build(FanConfig.debug()).state_dict().items()}
    path = tmp_path / "old.pth.tar"
    torch.save({k: v for k, v in state.items() if "num_batches_tracked" not in k}, path)
    network = load_checkpoint(path, FanConfig.debug())
    assert not network.training
    assert torch.equal(network.state_dict()["l0.weight"], state["l0.weight"])


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("other-config", "reshaped"),
        ("renamed", "missing"),
        ("extra", "unexpected"),
        ("not-a-dict", "expected a state dict"),
        ("garbage", "not a readable torch checkpoint"),
    ],
)
def test_mismatched_state_dict_is_refused_naming_the_file(
    tmp_path: Path, change: str, message: str
) -> None:
    state = dict(build(FanConfig.debug()).state_dict())
    path = tmp_path / f"{change}.pth.tar"
    if change == "other-config":
        state = dict(build(FanConfig(num_modules=1, features=32)).state_dict())
    elif change == "renamed":
        state["module.l0.weight"] = state.pop("l0.weight")
    elif change == "extra":
        state["l9.weight"] = torch.zeros(1)
    if change == "not-a-dict":
        torch.save([torch.zeros(1)], path)
    elif change == "garbage":
        path.write_bytes(b"<html>not weights</html>")
    else:
        torch.save(state, path)
    with pytest.raises(ModelError) as err:
        load_checkpoint(path, FanConfig.debug())
    assert str(path) in str(err.value) and message in str(err.value)


@pytest.mark.parametrize(
    "config",
    [{"num_modules": 0}, {"features": 24}, {"depth": 7}, {"flip_input": "yes"}, {"stacks": 4}],
)
def test_bad_registry_config_is_a_model_error(config: dict) -> None:
    with pytest.raises(ModelError, match="model x"):
        FanConfig.from_dict(config, where="model x")
