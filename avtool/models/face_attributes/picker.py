"""Face -> Kokoro voice with the registered models: attributes, then the rule.

:func:`load_picker` loads ``age-gender-v1`` and ``face-voice-rule-v1``;
``load_picker().choose([image], [box], [descriptor], accent="us")`` gives a :class:`FaceVoice`
whose ``choice.voice`` is the blend (``"am_michael:0.6,am_fenrir:0.4"``) and whose
``to_json()`` is the sidecar record (attributes, rule, blend, model hashes).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from avtool import registry
from avtool.errors import ModelError
from avtool.io.face import Box
from avtool.models.face_attributes import FaceAttributeModel, FaceAttributes, infer, load
from avtool.models.face_attributes.voice import RULE_NAME, VoiceChoice, choose_voice

log = logging.getLogger(__name__)

ATTRIBUTE_MODEL = "age-gender-v1"


@dataclass(frozen=True)
class FaceVoice:
    """A face's attributes and the voice chosen for it."""

    attributes: FaceAttributes
    choice: VoiceChoice
    models: Mapping[str, str]

    def to_json(self) -> dict[str, Any]:
        return {
            "attributes": self.attributes.to_json(),
            **self.choice.to_json(),
            "models_sha256": dict(self.models),
        }


@dataclass
class FacePicker:
    """The loaded attribute networks and the rule's fitted table."""

    model: FaceAttributeModel
    typicality: Mapping[str, float]
    models: Mapping[str, str]

    def choose(
        self,
        images: list[np.ndarray],
        boxes: list[Box],
        descriptors: list[np.ndarray],
        accent: str = "us",
    ) -> FaceVoice:
        """Attributes averaged over the images, then :func:`~.voice.choose_voice`.

        Args:
            images: ``(H, W, 3)`` uint8 RGB pictures (photos or frames) of one face.
            boxes: the face's box in each.
            descriptors: its dlib descriptor ``(128,)`` in each (averaged).
            accent: ``"us"`` or ``"gb"``.
        """
        attributes = infer(self.model, images, boxes)
        descriptor = np.mean(np.stack(descriptors), axis=0)
        choice = choose_voice(attributes.p_female, descriptor, self.typicality, accent)
        if choice.gender == "uncertain":
            log.warning(
                "the face's gender is uncertain (P(female) %.2f): using the neutral blend %s",
                attributes.p_female,
                choice.voice,
            )
        return FaceVoice(attributes, choice, self.models)


def read_table(data: str, source: str) -> dict[str, float]:
    """Voice -> typicality from the rule's JSON table.

    Raises:
        ModelError: not the rule's table.
    """
    try:
        table = json.loads(data)
        if table.get("rule") != RULE_NAME:
            raise ValueError(f"rule is {table.get('rule')!r}, not {RULE_NAME!r}")
        return {v: float(row["typicality"]) for v, row in table["voices"].items()}
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ModelError(f"{source}: not a {RULE_NAME} table ({exc})") from exc


def load_picker() -> FacePicker:
    """The registered attribute networks (``age-gender-v1``) and rule (``face-voice-rule-v1``).

    Raises:
        ModelError: a file missing or failing its checks.
    """
    nets = registry.resolve(ATTRIBUTE_MODEL, task="face")
    rule = registry.resolve(RULE_NAME, task="face")
    model = load(
        nets.path, nets.files["age-v1.onnx"], nets.files["shape_predictor_5_face_landmarks.dat"]
    )
    table = read_table(rule.path.read_text(encoding="utf-8"), str(rule.path))
    models = {ATTRIBUTE_MODEL: nets.entry.main.sha256, RULE_NAME: rule.entry.main.sha256}
    return FacePicker(model, table, models)
