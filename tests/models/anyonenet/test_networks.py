"""Shapes and parameter counts of every AnyoneNet part, losses, sketches and checkpoints."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from avtool.errors import ModelError
from avtool.models.anyonenet import checkpoint, discriminator, predictor, unet
from avtool.models.anyonenet.config import PredictorConfig, RendererConfig
from avtool.models.anyonenet.losses import VGG19Features, predictor_loss
from avtool.models.anyonenet.predictor import count_parameters
from avtool.models.anyonenet.sketch import draw_sketch


def test_paper_predictor_shapes_and_size():
    torch.manual_seed(0)
    model = predictor.build(PredictorConfig.paper()).eval()
    # Six convs (512..2048) + BiLSTM + MLP at kernel 5: 32.5 M parameters.
    assert count_parameters(model) == 32_523_664
    with torch.no_grad():
        disp, dq = model(torch.randn(2, 40, 80), torch.randn(2, 68, 2), torch.randn(2, 4))
    assert disp.shape == (2, 40, 68, 2) and dq.shape == (2, 40, 4)
    norms = [type(m).__name__ for m in model.convs if "Norm" in type(m).__name__]
    assert norms == ["InstanceNorm1d"] + ["BatchNorm1d"] * 5


def test_untrained_predictor_is_the_static_face():
    model = predictor.build(PredictorConfig.debug()).eval()
    src, q = torch.randn(1, 68, 2), torch.tensor([[0.9, 0.1, -0.2, 0.05]])
    with torch.no_grad():
        landmarks, quats = predictor.apply(src, q, *model(torch.randn(1, 30, 80), src, q))
    assert torch.allclose(landmarks, src[:, None].expand_as(landmarks))
    assert torch.allclose(quats.norm(dim=-1), torch.ones(1, 30))


def test_paper_renderer_shapes_and_size():
    config = RendererConfig.paper()
    generator, disc = unet.build(config), discriminator.build(config)
    assert count_parameters(generator) == 54_417_603  # pix2pix UNet-256 on 6 channels
    assert count_parameters(disc) == 2_768_705  # 70x70 PatchGAN on 6 channels
    with torch.no_grad():
        frame = generator.eval()(torch.randn(1, 6, 256, 256))
        logits, features = disc(torch.randn(1, 3, 256, 256), frame)
    assert frame.shape == (1, 3, 256, 256) and frame.abs().max() <= 1
    assert logits.shape == (1, 1, 30, 30) and len(features) == 4


def test_reduced_renderer_keeps_the_256_layout_at_a_quarter_width():
    from avtool.models.anyonenet.config import preset

    config = RendererConfig.reduced()
    assert preset("renderer", "reduced") == config
    assert (config.image_size, config.depth, config.disc_layers) == (256, 8, 3)
    generator, disc = unet.build(config), discriminator.build(config)
    assert count_parameters(generator) == 3_405_363  # 16 base channels: ~1/16 of the paper's
    assert count_parameters(disc) == 176_081
    with torch.no_grad():
        frame = generator.eval()(torch.randn(2, 6, 256, 256))
        logits, _ = disc(torch.randn(2, 3, 256, 256), frame)
    assert frame.shape == (2, 3, 256, 256) and frame.abs().max() <= 1
    assert logits.shape == (2, 1, 30, 30)


def test_unet_refuses_wrong_size():
    with pytest.raises(ValueError, match="expected"):
        unet.build(RendererConfig.debug())(torch.randn(1, 6, 64, 64))


def test_predictor_loss_terms():
    target = torch.zeros(1, 5, 68, 2)
    q = torch.tensor([1.0, 0, 0, 0]).expand(1, 5, 4)
    total, parts = predictor_loss(target, q, target, -q)  # -q is the same rotation
    assert total.item() == 0 and parts["quaternion"] == 0
    moved = target.clone()
    moved[:, 2] += 0.1
    _, parts = predictor_loss(moved, q, target, q)
    assert parts["l2"] > 0 and parts["interframe"] > 0


def test_vgg_loads_torchvision_layout(tmp_path):
    vgg = VGG19Features()
    state = {k: torch.randn_like(v) for k, v in vgg.state_dict().items() if k.startswith("feat")}
    state["classifier.0.weight"] = torch.zeros(2, 2)  # extra keys of the full model are ignored
    torch.save(state, tmp_path / "vgg19.pth")
    loaded = VGG19Features.load(tmp_path / "vgg19.pth")
    assert torch.equal(loaded.features[0].weight, state["features.0.weight"])
    assert [f.shape[1] for f in loaded(torch.zeros(1, 3, 32, 32))] == [64, 128, 256, 512, 512]
    torch.save({"features.0.weight": torch.zeros(64, 3, 3, 3)}, tmp_path / "bad.pth")
    with pytest.raises(ModelError):
        VGG19Features.load(tmp_path / "bad.pth")


def test_sketch_draws_each_part():
    points = np.stack([np.linspace(4, 60, 68), np.linspace(4, 60, 68) ** 0.5 * 7], axis=1)
    image = draw_sketch(points.astype(np.float32), 64)
    assert image.shape == (64, 64, 3) and image.dtype == np.uint8
    colours = {tuple(c) for c in image.reshape(-1, 3)}
    assert (255, 0, 0) in colours and (255, 255, 255) in colours and (0, 0, 0) in colours


@pytest.mark.parametrize("kind", ["predictor", "renderer"])
def test_checkpoint_round_trip(tmp_path, kind):
    torch.manual_seed(1)
    if kind == "predictor":
        config, model = PredictorConfig.debug(), predictor.build(PredictorConfig.debug())
    else:
        config, model = RendererConfig.debug(), unet.build(RendererConfig.debug())
    path = checkpoint.save(tmp_path / f"{kind}.pt", model, config, {"steps": 3})
    loaded, loaded_config, meta = checkpoint.load(path, kind)
    assert loaded_config == config and meta["steps"] == 3
    for (name, a), b in zip(model.state_dict().items(), loaded.state_dict().values(), strict=True):
        assert torch.equal(a, b), name
    other = "renderer" if kind == "predictor" else "predictor"
    with pytest.raises(ModelError):
        checkpoint.load(path, other)
    with pytest.raises(ModelError):
        checkpoint.load(tmp_path / "missing.pt", kind)
