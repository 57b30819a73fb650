"""``avtool.tasks.v2a``: the video-to-speech pipeline on real GRID video with a tiny model,
its chunking, its bad-input errors, and the shipped s1 weights."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from avtool.engines import RunSettings
from avtool.errors import InputError, ModelError
from avtool.io.features import MelSpec
from avtool.models.v2a import V2AConfig, build
from avtool.tasks import v2a as task

#: STOI the shipped s1 model must reach on the first held-out s1 test clip (measured, with margin).
STOI_FLOOR = 0.48  # measured 0.581 on bbie8n (v2a-content-grid-s1, Griffin-Lim, seed 0)
#: GRID words of that clip the recogniser must find in the generated speech (measured 4 of 6).
WORDS_FLOOR = 3


def save_debug_model(folder: Path, *, audio: bool = False, seed: int = 0) -> Path:
    """A tiny random V2A model as ``<folder>/v2a.pt`` + ``v2a.pt.json`` (config)."""
    torch.manual_seed(seed)
    config = dataclasses.replace(V2AConfig.debug(), audio_encoder=audio)
    path = folder / ("av2a.pt" if audio else "v2a.pt")
    torch.save(build(config).state_dict(), path)
    path.with_name(path.name + ".json").write_text(config.to_json())
    return path


@pytest.fixture
def debug_model(tmp_path: Path) -> Path:
    return save_debug_model(tmp_path)


def _run(items, **options):
    return task.run(items, task.V2AOptions(**options), RunSettings(accept_license=True, quiet=True))


def test_chunked_prediction_matches_one_pass_with_full_context() -> None:
    torch.manual_seed(0)
    model = build(V2AConfig.debug()).eval()
    crops = list(np.random.default_rng(0).integers(0, 256, (60, 88, 88), dtype=np.uint8))
    n_mel = MelSpec.hifigan_22k().frames_for(60 * 882)
    whole = task.predict_mel(model, crops, 60, n_mel, None, task.V2AOptions())
    # Windows of 16 frames whose context reaches the whole clip: the same result.
    same = task.predict_mel(model, iter(crops), 60, n_mel, None,
                            task.V2AOptions(chunk_frames=16, context_frames=60))  # fmt: skip
    np.testing.assert_allclose(same, whole, atol=1e-4)
    # Short context: exact length, finite, and close to the one pass away from the seams.
    short = task.predict_mel(model, iter(crops), 60, n_mel, None,
                             task.V2AOptions(chunk_frames=16, context_frames=4))  # fmt: skip
    assert short.shape == whole.shape == (80, n_mel) and np.isfinite(short).all()
    assert np.abs(short - whole).mean() < 0.5 * np.abs(whole - whole.mean()).mean()


def test_chunked_prediction_slices_the_landmarks_with_the_crops() -> None:
    torch.manual_seed(0)
    model = build(dataclasses.replace(V2AConfig.debug(), lip_landmarks=True)).eval()
    with torch.no_grad():
        model.lips.conv2.weight.normal_()  # trained-like: the lip stream matters
    rng = np.random.default_rng(1)
    crops = list(rng.integers(0, 256, (40, 88, 88), dtype=np.uint8))
    marks = rng.normal(0, 3, (40, 68, 2)) + np.array([180.0, 140.0])
    marks[:, 36:42, 0] -= 30
    marks[:, 42:48, 0] += 30
    n_mel = MelSpec.hifigan_22k().frames_for(40 * 882)
    whole = task.predict_mel(model, crops, 40, n_mel, None, task.V2AOptions(), marks)
    same = task.predict_mel(model, iter(crops), 40, n_mel, None,
                            task.V2AOptions(chunk_frames=16, context_frames=40), marks)  # fmt: skip
    np.testing.assert_allclose(same, whole, atol=1e-4)
    # Reversed landmarks (crops unchanged) change the prediction: each window got its own.
    other = task.predict_mel(model, crops, 40, n_mel, None, task.V2AOptions(), marks[::-1])
    assert np.abs(other - whole).max() > 1e-3


def test_check_pose_refuses_a_long_profile_view() -> None:
    from avtool.io.face import frontal_template, quaternion_from_euler, quaternion_to_rotation

    template = frontal_template()

    def face(yaw: float) -> np.ndarray:
        rotated = template @ quaternion_to_rotation(quaternion_from_euler(yaw, 0, 0)).T
        return rotated[:, :2] * 60 + 150

    frames = np.stack([face(0.0)] * 10 + [face(70.0)] * 20 + [face(0.0)] * 10).astype(np.float32)
    detected = np.ones(40, bool)
    with pytest.raises(InputError, match=r"clip\.mp4: profile view .* frames 10-29"):
        task.check_pose(frames, detected, 45.0, 12, "clip.mp4")
    yaw = task.check_pose(frames[:20], detected[:20], 45.0, 12, "clip.mp4")  # 10 frames: bridged
    assert np.abs(yaw[:10]).max() < 5 and np.abs(yaw[10:]).min() > 45


def test_real_clip_makes_speech_of_the_video_length(
    grid_dir: Path, debug_model: Path, tmp_path: Path
) -> None:
    video = grid_dir / "bbaf2n.mpg"
    items = task.build_items([str(video)], None, str(tmp_path / "{stem}.wav"))
    summary = _run(items, model=str(debug_model), iters=2)
    assert summary.exit_code == 0
    out = tmp_path / "bbaf2n.wav"
    meta = json.loads((tmp_path / "bbaf2n.wav.json").read_text())
    import soundfile as sf

    audio, rate = sf.read(out)
    assert rate == 22050
    frames = meta["input"]["frames"]
    assert frames == 75 and meta["mode"] == "video"
    assert audio.size == MelSpec.hifigan_22k().frames_for(frames * 882) * 256
    assert abs(audio.size / rate - frames / 25) < 0.03
    assert meta["input"]["face_detected_fraction"] > 0.9
    assert meta["model"]["sha256"] and meta["audio"]["sha256"]


def test_same_seed_same_bytes_and_mel_output(
    grid_dir: Path, debug_model: Path, tmp_path: Path
) -> None:
    video = grid_dir / "lbax4n.mpg"
    outs = []
    for name in ("a", "b"):
        items = task.build_items([str(video)], None, str(tmp_path / f"{name}.wav"))
        summary = task.run(items, task.V2AOptions(model=str(debug_model), iters=2),
                           RunSettings(accept_license=True, quiet=True),
                           mel_template=str(tmp_path / f"{name}.npz"))  # fmt: skip
        assert summary.exit_code == 0
        outs.append((tmp_path / f"{name}.wav").read_bytes())
    assert outs[0] == outs[1]
    from avtool.io.features import load_mel

    mel, spec = load_mel(tmp_path / "a.npz")
    assert spec == MelSpec.hifigan_22k() and mel.shape[0] == 80


def test_audio_visual_mode_uses_the_noisy_audio(grid_dir: Path, tmp_path: Path) -> None:
    av = save_debug_model(tmp_path, audio=True)
    video = grid_dir / "bbaf2n.mpg"
    items = task.build_items([str(video)], None, str(tmp_path / "av.wav"))
    assert _run(items, model=str(av), iters=2, audio_from_video=True).exit_code == 0
    meta = json.loads((tmp_path / "av.wav.json").read_text())
    assert meta["mode"] == "audio-visual" and meta["input"]["audio"] == str(video)


def test_video_only_model_refuses_audio(grid_dir: Path, debug_model: Path, tmp_path: Path) -> None:
    loaded = task.load_model(str(debug_model), device="cpu")
    with pytest.raises(ModelError, match="video-only model"):
        task.v2a_file(loaded, None, None, grid_dir / "bbaf2n.mpg", tmp_path / "x.wav",
                      task.V2AOptions(), audio=grid_dir / "bbaf2n.mpg")  # fmt: skip


def test_bad_videos_fail_with_file_and_frames_and_leave_nothing(
    grid_dir: Path, debug_model: Path, tmp_path: Path
) -> None:
    from avtool.io.video import VideoReader, VideoWriter

    # A face lost for 30 frames: blank frames 20-49 of a real clip (no audio track either).
    lost = tmp_path / "lost.mp4"
    with VideoReader(grid_dir / "bbaf2n.mpg") as reader, \
            VideoWriter(lost, 25, (360, 288), preset="ultrafast") as writer:  # fmt: skip
        for i, frame in enumerate(reader):
            writer.write(np.zeros_like(frame) if 20 <= i < 50 else frame)
    noise = tmp_path / "noface.mp4"
    rng = np.random.default_rng(0)
    with VideoWriter(noise, 25, (160, 120), preset="ultrafast") as writer:
        for _ in range(10):
            writer.write(rng.integers(0, 256, (120, 160, 3), dtype=np.uint8))
    items = task.build_items([str(lost), str(noise)], None, str(tmp_path / "{stem}.wav"))
    summary = _run(items, model=str(debug_model), iters=2)
    assert summary.exit_code == 1  # the batch ran; every item failed
    errors = {r.id: r.error for r in summary.results}
    assert "lost.mp4" in errors["lost"] and "20-49" in errors["lost"]
    assert "noface.mp4" in errors["noface"] and "no face" in errors["noface"]
    assert all(r.exit_code == 2 for r in summary.results)
    av = save_debug_model(tmp_path, audio=True)
    items = task.build_items([str(lost)], None, str(tmp_path / "av.wav"))
    summary = _run(items, model=str(av), iters=2, audio_from_video=True)
    assert "no audio track" in summary.results[0].error
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "av2a.pt",
        "av2a.pt.json",
        "lost.mp4",
        "noface.mp4",
        "v2a.pt",
        "v2a.pt.json",
    ]


def test_shipped_s1_weights_make_intelligible_speech(grid_s1_dir: Path, tmp_path: Path) -> None:
    from avtool.datasets.grid import s1_split
    from avtool.io.audio import load_audio
    from avtool.metrics.speech import stoi

    clip_id = s1_split()["test"][0]
    video = grid_s1_dir / "clips" / f"{clip_id}.mkv"
    items = task.build_items([str(video)], None, str(tmp_path / "out.wav"))
    summary = _run(items)  # the registered default
    assert summary.exit_code == 0, summary.results[0].error
    meta = json.loads((tmp_path / "out.wav.json").read_text())
    assert meta["model"]["name"] == task.V2A_MODEL
    # The default vocoder for its hifigan-22k mel, and s1's own face passes the speaker guard.
    assert meta["vocoder"]["name"] == task.DEFAULT_VOCODER
    assert meta["speaker_check"]["same_speaker"] and meta["warnings"] == []
    made, _ = load_audio(tmp_path / "out.wav", sample_rate=22050)
    real, _ = load_audio(video, sample_rate=22050)
    assert stoi(real, made, 22050) > STOI_FLOOR
    # The content stream is there to make the words right: the GRID-grammar recogniser must
    # hear most of the sentence in the generated speech.
    from avtool.datasets.grid import sentence_from_id
    from avtool.metrics.grid import GridRecognizer

    heard = GridRecognizer().recognize(made, 22050).split()
    truth = sentence_from_id(clip_id).split()
    assert sum(a == b for a, b in zip(heard, truth, strict=False)) >= WORDS_FLOOR
