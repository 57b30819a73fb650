"""The talking-head task end to end: real face, real GRID speech, bad inputs."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
from PIL import Image

from avtool.errors import InputError
from avtool.io.audio import load_audio, save_audio
from avtool.io.video import VideoReader, probe
from avtool.models.face import FaceDetector
from avtool.models.facewarp import FaceMotion
from avtool.tasks.options.talkinghead import TalkingHeadOptions, parse_size
from avtool.tasks.talkinghead import output_size, plan_render, render_file, render_frames

skimage_data = pytest.importorskip("skimage.data")
SMALL = TalkingHeadOptions(size=(256, 256))


@pytest.fixture(scope="module")
def detector():
    return FaceDetector()


@pytest.fixture(scope="module")
def photo(tmp_path_factory):
    path = tmp_path_factory.mktemp("face") / "astronaut.png"
    Image.fromarray(skimage_data.astronaut()).save(path)
    return path


@pytest.fixture(scope="module")
def speech(grid_dir, tmp_path_factory):
    """The first 1.5 s of real GRID speech ("lay blue ...") as a WAV."""
    audio, rate = load_audio(grid_dir / "lbax4n.mpg", sample_rate=22050, start=0.5, duration=1.5)
    path = tmp_path_factory.mktemp("speech") / "speech.wav"
    save_audio(path, audio, rate)
    return path


def test_video_has_equal_durations_audio_and_a_sidecar(photo, speech, detector, tmp_path):
    out = tmp_path / "head.mp4"
    preview = tmp_path / "preview.png"
    result = render_file(photo, speech, out, TalkingHeadOptions(size=(256, 256),
                         preview=str(preview)), detector=detector)  # fmt: skip
    info = probe(out)
    assert (info.width, info.height, info.fps) == (256, 256, 25.0)
    assert info.video_codec == "h264" and info.audio_codec == "aac"
    assert abs(result.n_frames / 25.0 - 1.5) <= 1 / 25.0
    assert abs(info.duration - 1.5) <= 1 / 25.0 + 0.03  # AAC framing
    assert result.landmarks.shape == (result.n_frames, 68, 2)
    meta = json.loads((tmp_path / "head.mp4.json").read_text())
    assert meta["model"]["name"] == "facewarp"
    assert meta["model"]["landmarks"]["license"].startswith("iBUG")
    assert meta["input"]["drive"]["source"] == "pocketsphinx"
    assert Image.open(preview).size == (256, 256)
    # The mouth moves with the speech: the opening varies over the clip.
    from avtool.models.facewarp.mouth import mouth_area_ratio

    area = mouth_area_ratio(result.landmarks)
    assert area.max() > 0.03 and area.min() < 0.01


def test_same_seed_same_bytes_other_seed_other_motion(photo, speech, detector, tmp_path):
    a, b, c = (tmp_path / f"{n}.mp4" for n in "abc")
    options = TalkingHeadOptions(size=(128, 128), fps=10.0)
    ra = render_file(photo, speech, a, options, detector=detector)
    render_file(photo, speech, b, options, detector=detector)
    rc = render_file(photo, speech, c, TalkingHeadOptions(size=(128, 128), fps=10.0, seed=1),
                     detector=detector)  # fmt: skip
    assert a.read_bytes() == b.read_bytes()
    assert not np.allclose(ra.landmarks, rc.landmarks)


def test_still_keeps_the_upper_face_fixed(photo, speech, detector):
    plan = plan_render(photo, speech, TalkingHeadOptions(size=(256, 256), still=True),
                       detector=detector)  # fmt: skip
    eyes_brows = plan.landmarks[:, 17:48]
    assert np.ptp(eyes_brows, axis=0).max() < 1e-3  # no head motion, no blinks
    frames = list(render_frames(plan, 0, 3))
    assert len(frames) == 3 and frames[0].shape == (256, 256, 3)


def test_tts_phonemes_drive_the_mouth(photo, speech, detector):
    phonemes = {"phonemes": [{"phoneme": "ɑ", "start": 0.2, "end": 0.6},
                             {"phoneme": "m", "start": 0.6, "end": 0.75},
                             {"phoneme": "ɑ", "start": 0.75, "end": 1.2}]}  # fmt: skip
    plan = plan_render(photo, speech, SMALL, detector=detector, phonemes=phonemes)
    assert plan.drive.source == "tts"
    openness = plan.motion.mouth_open
    assert openness[int(0.4 * 25)] > 2 * openness[int(0.67 * 25)]


def test_silent_audio_closed_mouth_valid_video(photo, detector, tmp_path):
    silence = tmp_path / "silence.wav"
    save_audio(silence, np.zeros(16000, np.float32), 16000)
    result = render_file(photo, silence, tmp_path / "s.mp4", TalkingHeadOptions(size=(128, 128)),
                         detector=detector)  # fmt: skip
    assert any("silent" in w for w in result.warnings)
    from avtool.models.facewarp.mouth import mouth_area_ratio

    assert mouth_area_ratio(result.landmarks).max() < 0.005
    assert probe(tmp_path / "s.mp4").n_frames == 25


def test_noise_is_not_speech(photo, detector, tmp_path):
    noise = tmp_path / "noise.wav"
    rng = np.random.default_rng(0)
    save_audio(noise, 0.2 * np.sin(2 * np.pi * 440 * np.arange(16000) / 16000), 16000)
    plan = plan_render(photo, noise, SMALL, detector=detector)
    assert plan.n_frames == 25 and np.isfinite(plan.landmarks).all()
    del rng


def test_zero_length_audio_names_the_file(photo, detector, tmp_path):
    empty = tmp_path / "empty.wav"
    save_audio(empty, np.zeros(0, np.float32), 16000)
    with pytest.raises(InputError, match=r"empty\.wav"):
        render_file(photo, empty, tmp_path / "x.mp4", SMALL, detector=detector)
    assert not (tmp_path / "x.mp4").exists()


def test_no_face_names_the_file(speech, detector, tmp_path):
    blank = tmp_path / "wall.png"
    Image.fromarray(np.full((200, 200, 3), 128, np.uint8)).save(blank)
    with pytest.raises(InputError, match=r"wall\.png: no face"):
        render_file(blank, speech, tmp_path / "x.mp4", SMALL, detector=detector)


@pytest.mark.parametrize("kind", ["gray", "rgba", "uint16"])
def test_image_kinds(kind, speech, detector, tmp_path):
    rgb = skimage_data.astronaut()
    path = tmp_path / f"{kind}.png"
    if kind == "gray":
        Image.fromarray(rgb).convert("L").save(path)
    elif kind == "rgba":
        Image.fromarray(np.dstack([rgb, np.full(rgb.shape[:2], 255, np.uint8)])).save(path)
    else:
        Image.fromarray(rgb[:, :, 1].astype(np.uint16) * 257).save(path)  # 16-bit gray PNG
    out = tmp_path / f"{kind}.png.out.png"
    result = render_file(path, speech, out, SMALL, detector=detector)
    assert np.asarray(Image.open(out)).shape == (256, 256, 3)
    assert result.n_frames == 38


def test_several_faces_largest_first_and_index(speech, detector, tmp_path):
    face = skimage_data.astronaut()[20:260, 120:360]
    small = np.asarray(Image.fromarray(face).resize((160, 160)))
    canvas = np.full((300, 480, 3), 200, np.uint8)
    canvas[30:270, 0:240] = face
    canvas[70:230, 300:460] = small
    path = tmp_path / "two.png"
    Image.fromarray(canvas).save(path)
    first = plan_render(path, speech, SMALL, detector=detector)
    assert first.face.n_faces == 2 and first.face.box.x < 240
    assert any("2 faces" in w for w in first.warnings)
    second = plan_render(path, speech, TalkingHeadOptions(size=(256, 256), face_index=1),
                         detector=detector)  # fmt: skip
    assert second.face.box.x >= 240
    with pytest.raises(InputError, match="face-index 2"):
        plan_render(path, speech, TalkingHeadOptions(face_index=2), detector=detector)
    boxed = plan_render(path, speech, TalkingHeadOptions(size=(256, 256),
                        box=str(second.face.box)), detector=detector)  # fmt: skip
    assert boxed.face.box == second.face.box


def test_profile_or_squashed_face_is_refused(speech, detector, tmp_path):
    face = skimage_data.astronaut()
    squashed = np.asarray(Image.fromarray(face).resize((180, 512)))  # a narrow, turned look
    path = tmp_path / "profile.png"
    Image.fromarray(squashed).save(path)
    with pytest.raises(InputError, match=r"profile\.png"):
        plan_render(path, speech, SMALL, detector=detector)


def test_huge_and_tiny_photo_sizes():
    assert output_size((6000, 4000), None) == (1280, 852)
    assert output_size((101, 81), None) == (158, 128)
    assert output_size((512, 512), (320, 240)) == (320, 240)
    assert parse_size("640x480") == (640, 480) and parse_size(None) is None
    with pytest.raises(InputError):
        TalkingHeadOptions(size=(321, 240)).validated()
    with pytest.raises(InputError):
        parse_size("big")


def test_tiny_image_is_refused(speech, detector, tmp_path):
    path = tmp_path / "tiny.png"
    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(path)
    with pytest.raises(InputError, match=r"tiny\.png"):
        plan_render(path, speech, SMALL, detector=detector)


def test_external_motion_drives_the_warp(photo, detector, tmp_path):
    identity = np.array([[1.0, 0, 0, 0]])
    probe_motion = FaceMotion(np.zeros((1, 68, 2)), identity, 25.0, units="pixels")
    base = plan_render(photo, None, SMALL, detector=detector, motion=probe_motion)
    base = base.renderer.photo_landmarks
    track = np.repeat(base[None], 10, axis=0).astype(np.float32)
    track[5:, 48:68, 1] += 4.0
    motion = FaceMotion(track, np.tile([1.0, 0, 0, 0], (10, 1)), 25.0, units="pixels")
    plan = plan_render(photo, None, SMALL, detector=detector, motion=motion)
    frames = list(render_frames(plan))
    assert len(frames) == 10
    assert not np.array_equal(frames[0], frames[6])


def test_frames_stream_to_an_mp4_with_reader(photo, speech, detector, tmp_path):
    out = tmp_path / "r.mp4"
    result = render_file(photo, speech, out, TalkingHeadOptions(size=(128, 128)), detector=detector)
    with VideoReader(out) as reader:
        count = sum(1 for _ in reader)
    assert count == result.n_frames


# --------------------------------------------------------------------------- --model


@pytest.fixture(scope="module")
def tiny_predictor(tmp_path_factory):
    """A tiny random AnyoneNet predictor checkpoint whose output is not the static face."""
    import torch

    from avtool.models.anyonenet import checkpoint, predictor
    from avtool.models.anyonenet.config import PredictorConfig

    torch.manual_seed(3)
    model = predictor.build(PredictorConfig.debug())
    torch.nn.init.normal_(model.head[-1].weight, 0.0, 0.05)
    path = tmp_path_factory.mktemp("ckpt") / "tiny.pt"
    return checkpoint.save(path, model, PredictorConfig.debug(), {"steps": 0})


def test_predictor_checkpoint_drives_the_warp(photo, speech, detector, tmp_path, tiny_predictor):
    from avtool.registry import sha256_file

    options = TalkingHeadOptions(size=(128, 128), model=str(tiny_predictor))
    first = render_file(photo, speech, tmp_path / "a.mp4", options, detector=detector)
    assert abs(first.n_frames / 25.0 - 1.5) <= 1 / 25.0
    assert probe(tmp_path / "a.mp4").width == 128
    meta = json.loads((tmp_path / "a.mp4.json").read_text())
    assert meta["model"]["family"] == "anyonenet" and meta["model"]["renderer"] == "facewarp"
    assert meta["model"]["sha256"] == sha256_file(tiny_predictor)
    assert meta["model"]["license"] == "unknown" and meta["model"]["kind"] == "predictor"
    assert meta["input"]["drive"]["source"] == "anyonenet"
    # The predicted motion moves the landmarks away from the photo's over the clip.
    plan = plan_render(photo, speech, options, detector=detector)
    assert np.abs(plan.landmarks - plan.renderer.photo_landmarks[None]).max() > 0.5
    assert plan.motion.units == "frontal" and len(plan.motion.quaternions) == plan.n_frames
    again = render_file(photo, speech, tmp_path / "b.mp4", options, detector=detector)
    assert again.n_frames == first.n_frames
    assert (tmp_path / "a.mp4").read_bytes() == (tmp_path / "b.mp4").read_bytes()


def test_predictor_still_keeps_the_photo_pose(photo, speech, detector, tiny_predictor):
    options = TalkingHeadOptions(size=(128, 128), model=str(tiny_predictor), still=True)
    plan = plan_render(photo, speech, options, detector=detector)
    assert np.allclose(plan.motion.quaternions, plan.renderer.quaternion[None])


def test_unet_renderer_checkpoint_draws_face_crops(photo, speech, detector, tmp_path):
    import torch

    from avtool.models.anyonenet import checkpoint, unet
    from avtool.models.anyonenet.config import RendererConfig

    torch.manual_seed(0)
    path = checkpoint.save(tmp_path / "unet.pt", unet.build(RendererConfig.debug()),
                           RendererConfig.debug())  # fmt: skip
    out = tmp_path / "u.mp4"
    options = TalkingHeadOptions(size=(128, 128), model=str(path))
    result = render_file(photo, speech, out, options, detector=detector)
    info = probe(out)
    assert (info.width, info.height) == (32, 32) and result.size == (32, 32)
    with VideoReader(out) as reader:
        assert sum(1 for _ in reader) == result.n_frames
    meta = json.loads((tmp_path / "u.mp4.json").read_text())
    assert meta["model"]["renderer"] == "anyonenet-unet" and meta["model"]["kind"] == "renderer"


def test_unknown_or_missing_model_is_a_model_error(tmp_path):
    from avtool.errors import ModelError
    from avtool.tasks.talkinghead import load_model

    with pytest.raises(ModelError, match="nosuch"):
        TalkingHeadOptions(model="nosuch").validated()
    with pytest.raises(ModelError, match="no such"):
        load_model(str(tmp_path / "absent.pt"))
    bare = tmp_path / "bare.pt"
    bare.write_bytes(b"not a checkpoint")
    with pytest.raises(ModelError, match=r"bare\.json"):
        load_model(str(bare))


def test_cli_unknown_model_exits_3(photo, speech, tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from avtool.cli.main import app

    monkeypatch.setenv("AVTOOL_ACCEPT_LICENSE", "1")
    args = ["talkinghead", "--face", str(photo), "--audio", str(speech), "-o",
            str(tmp_path / "x.mp4"), "--model", "nosuch"]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 3, result.output
    assert not (tmp_path / "x.mp4").exists()


def test_registered_anyonenet_predictor_on_a_held_out_s1_clip(photo, speech, detector, tmp_path):
    """The shipped weights: sidecar provenance, and lip sync on an s1 test-split clip."""
    from avtool.datasets.grid import s1_split
    from avtool.models.anyonenet.data import extract_clip
    from avtool.registry import lookup
    from avtool.tasks.options.talkinghead import ANYONENET_MODEL
    from avtool.tasks.talkinghead import load_model
    from avtool.training.anyonenet.evaluate import evaluate_items
    from tests.conftest import shared_data_dir

    entry = lookup(ANYONENET_MODEL)
    options = TalkingHeadOptions(size=(128, 128), model="anyonenet")
    render_file(photo, speech, tmp_path / "a.mp4", options, detector=detector,
                accept_license=True)  # fmt: skip
    meta = json.loads((tmp_path / "a.mp4.json").read_text())["model"]
    assert meta["name"] == ANYONENET_MODEL and meta["sha256"] == entry.main.sha256
    assert meta["license"] == entry.license and "GRID" in meta["license"]
    clip = shared_data_dir() / "grid_s1" / "clips" / f"{sorted(s1_split()['test'])[0]}.mkv"
    if not clip.is_file():
        pytest.skip(f"GRID s1 clips not found at {clip.parent}")
    model = load_model("anyonenet", accept_license=True)
    result = evaluate_items(model.network, [extract_clip(clip, detector=detector)])
    # Speaker-dependent weights on their own speaker: the lips follow the speech.
    assert result["d_a_ratio"] < 0.8 and result["mean"]["predictor"]["area_corr"] > 0.5


@pytest.fixture(scope="module")
def registered_unet():
    """The shipped reduced UNet (``--model anyonenet-unet``), loaded once."""
    from avtool.tasks.talkinghead import load_model

    return load_model("anyonenet-unet", accept_license=True)


def test_registered_unet_loads_and_draws_256_crops_of_a_real_face(
    photo, speech, detector, registered_unet
):
    """The packaged weights resolve (checksum, licence gate) and draw the photo's face."""
    from avtool.errors import ModelError
    from avtool.models.anyonenet.config import RendererConfig
    from avtool.models.anyonenet.data import crop_box, crop_face
    from avtool.registry import lookup
    from avtool.tasks.options.talkinghead import ANYONENET_UNET_MODEL
    from avtool.tasks.talkinghead import load_model

    with pytest.raises(ModelError, match="accept-license"):
        load_model("anyonenet-unet")
    entry, model = lookup(ANYONENET_UNET_MODEL), registered_unet
    assert model.kind == "renderer" and model.name == ANYONENET_UNET_MODEL
    assert model.network.config == RendererConfig.reduced()
    assert model.loaded.sha256 == entry.main.sha256 and "GRID" in model.loaded.license
    # The astronaut is not GRID s1: the UNet refuses her unless forced (test_talkinghead_realism).
    options = TalkingHeadOptions(model="anyonenet-unet", still=True, force=True)
    plan = plan_render(photo, speech, options, detector=detector, model=model, accept_license=True)
    frames = list(render_frames(plan, 0, 3))
    assert len(frames) == 3 and frames[0].shape == (256, 256, 3) and frames[0].dtype == np.uint8
    # Trained weights draw the source face, not a grey blob: the first frame is close to the
    # photo's crop (untrained weights are ~45 levels off), and far from its mean colour.
    source, _ = crop_face(plan.renderer.image, crop_box(plan.renderer.photo_landmarks), 256)
    error = np.abs(frames[0].astype(float) - source).mean()
    blob = np.abs(source.astype(float) - source.mean(axis=(0, 1))).mean()
    assert error < 0.5 * blob, (error, blob)


def test_cli_registered_unet_renders_an_mp4_of_the_audio_duration(photo, speech, tmp_path):
    from typer.testing import CliRunner

    from avtool.cli.main import app
    from avtool.registry import lookup
    from avtool.tasks.options.talkinghead import ANYONENET_UNET_MODEL

    out = tmp_path / "unet.mp4"
    args = ["--accept-license", "talkinghead", "--face", str(photo), "--audio", str(speech),
            "--model", "anyonenet-unet", "--force", "-o", str(out)]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    info = probe(out)
    assert (info.width, info.height, info.fps) == (256, 256, 25.0)
    assert abs(info.duration - 1.5) <= 1 / 25.0 + 0.03  # AAC framing
    meta = json.loads((tmp_path / "unet.mp4.json").read_text())["model"]
    assert meta["name"] == ANYONENET_UNET_MODEL and meta["renderer"] == "anyonenet-unet"
    assert meta["sha256"] == lookup(ANYONENET_UNET_MODEL).main.sha256
    # Same seed and input: the same bytes.
    again = tmp_path / "again.mp4"
    assert CliRunner().invoke(app, [*args[:-1], str(again)]).exit_code == 0
    assert again.read_bytes() == out.read_bytes()


def test_full_anyonenet_has_the_predictor_drive_the_unet(photo, speech, detector, tmp_path):
    """``anyonenet-full``: the paper's pipeline, the registered predictor's landmarks drawn by
    the registered UNet; both recorded in the sidecar."""
    from typer.testing import CliRunner

    from avtool.cli.main import app
    from avtool.tasks.options.talkinghead import ANYONENET_MODEL, ANYONENET_UNET_MODEL
    from avtool.tasks.talkinghead import load_model, predictor_motion

    model = load_model("anyonenet-full", accept_license=True)
    assert model.kind == "renderer" and model.name == ANYONENET_UNET_MODEL
    assert model.driver is not None and model.driver.name == ANYONENET_MODEL
    options = TalkingHeadOptions(model="anyonenet-full", still=True, force=True)
    plan = plan_render(photo, speech, options, detector=detector, model=model, accept_license=True)
    assert plan.motion.units == "frontal" and plan.drive is None
    expected = predictor_motion(model.driver.network, speech, plan.renderer, 25.0, still=True)
    np.testing.assert_allclose(plan.landmarks, plan.renderer.landmarks(expected))
    unet_only = TalkingHeadOptions(model="anyonenet-unet", still=True, force=True)
    without = dataclasses.replace(model, driver=None)
    visemes = plan_render(
        photo, speech, unet_only, detector=detector, model=without, accept_license=True
    )
    assert not np.allclose(plan.landmarks, visemes.landmarks)

    out = tmp_path / "full.mp4"
    args = ["--accept-license", "talkinghead", "--face", str(photo), "--audio", str(speech),
            "--model", "anyonenet-full", "--still", "--force", "-o", str(out)]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert (probe(out).width, probe(out).height) == (256, 256)
    meta = json.loads((tmp_path / "full.mp4.json").read_text())
    assert meta["model"]["name"] == ANYONENET_UNET_MODEL
    assert meta["model"]["driver"]["name"] == ANYONENET_MODEL
    assert meta["input"]["drive"]["source"] == "anyonenet"
