"""Options of ``avtool talkinghead`` (and ``avtool tts --face``) with their ranges and model
names: the CLI builds its flags from these, and :mod:`avtool.tasks.talkinghead` runs them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from avtool.errors import InputError, ModelError

MODELS = ("warp", "anyonenet", "anyonenet-unet", "anyonenet-full")
#: The registry entry ``--model anyonenet`` runs: the predictor driving the warp renderer.
ANYONENET_MODEL = "anyonenet-predictor-grid-s1"
#: The registry entry ``--model anyonenet-unet`` runs: the UNet renderer drawing face crops.
#: ``--model anyonenet-full`` runs both, as in the paper: the predictor drives the UNet.
ANYONENET_UNET_MODEL = "anyonenet-unet-grid-s1"
MAX_DEFAULT_SIDE = 1280
"""A photo larger than this (longer side) is scaled down for the default output size."""
MIN_DEFAULT_SIDE = 128
"""A photo smaller than this (shorter side) is scaled up for the default output size."""
SIZE_RANGE = (64, 4096)
"""Allowed ``--size`` width and height in pixels."""
FPS_RANGE = (1.0, 120.0)
#: The registry entry of the real mouth interiors (``--mouth bank``, the default).
MOUTH_BANK_MODEL = "mouth-bank-grid-s1"
MOUTHS = ("bank", "drawn")
CROPS = ("full", "face")


@dataclass(frozen=True)
class TalkingHeadOptions:
    """Run-time options of ``avtool talkinghead`` (and ``avtool tts --face``).

    Attributes:
        fps: output frame rate in frames/s.
        size: output ``(width, height)``; None = the photo's, made even (and scaled into
            ``MIN_DEFAULT_SIDE``..``MAX_DEFAULT_SIDE``).
        still: no head motion, no blinks.
        face_index: which face when the photo has several (0 = largest).
        box: ``"x,y,w,h"`` face box in photo pixels instead of detection.
        model: ``"warp"`` (visemes drive the warp), ``"anyonenet"`` (the registered AnyoneNet
            predictor drives it), ``"anyonenet-unet"`` (the registered UNet renderer draws face
            crops from the viseme landmarks), ``"anyonenet-full"`` (the predictor drives the
            UNet) or a local AnyoneNet predictor/renderer checkpoint ``.pt``.
        seed: seed of head motion and blinks.
        preview: also write the frame with the widest mouth opening to this PNG/JPEG.
        landmarks: the 68-point model fitted in dlib's face box: ``"dlib"`` (shipped) or
            ``"fan"`` (2D-FAN, ``fan-2d-68``: downloaded once, sha256-checked).
        mouth: the warp's mouth interior: ``"bank"`` (real teeth and tongue from the
            registered exemplar bank, :data:`MOUTH_BANK_MODEL`) or ``"drawn"`` (polygons).
        crop: ``"full"`` (the whole photo, scaled to cover the output) or ``"face"`` (a fixed
            head-and-shoulders crop around the face, scaled to the output size).
        force: render with an AnyoneNet UNet (``anyonenet-unet``, ``anyonenet-full``) even
            when the face is not its training speaker (otherwise refused: it redraws the face
            as that speaker's).
    """

    fps: float = 25.0
    size: tuple[int, int] | None = None
    still: bool = False
    face_index: int = 0
    box: str | None = None
    model: str = "warp"
    seed: int = 0
    preview: str | None = None
    landmarks: str = "dlib"
    mouth: str = "bank"
    crop: str = "full"
    force: bool = False

    def validated(self) -> TalkingHeadOptions:
        """Self, after range checks.

        Raises:
            InputError: a value out of range, naming the option.
            ModelError: ``model`` is neither a known name nor a checkpoint path (exit 3).
        """
        if not FPS_RANGE[0] <= self.fps <= FPS_RANGE[1]:
            raise InputError(f"--fps {self.fps}: must be {FPS_RANGE[0]:g}..{FPS_RANGE[1]:g}")
        if self.size is not None:
            width, height = self.size
            low, high = SIZE_RANGE
            if not (low <= width <= high and low <= height <= high):
                raise InputError(f"--size {width}x{height}: each side must be {low}..{high}")
            if width % 2 or height % 2:
                raise InputError(f"--size {width}x{height}: H.264 needs an even width and height")
        if self.face_index < 0:
            raise InputError(f"--face-index {self.face_index}: must be >= 0")
        if self.model not in MODELS and not is_checkpoint_path(self.model):
            raise ModelError(
                f"--model {self.model!r}: unknown model; choose from {', '.join(MODELS)} "
                "or give an AnyoneNet checkpoint (.pt)"
            )
        if self.seed < 0:
            raise InputError(f"--seed {self.seed}: must be >= 0")
        if self.mouth not in MOUTHS:
            raise InputError(f"--mouth {self.mouth!r}: choose one of {', '.join(MOUTHS)}")
        if self.crop not in CROPS:
            raise InputError(f"--crop {self.crop!r}: choose one of {', '.join(CROPS)}")
        # The face stage pulls numpy and dlib; options stay light for the CLI's start.
        from avtool.models.face import LANDMARK_BACKENDS

        if self.landmarks not in LANDMARK_BACKENDS:
            raise InputError(
                f"--landmarks {self.landmarks!r}: choose one of {', '.join(LANDMARK_BACKENDS)}"
            )
        return self


def is_checkpoint_path(model: str) -> bool:
    # A path is recognised by its form; whether the file exists is checked when it is loaded.
    return model.endswith(".pt") or "/" in model or Path(model).is_file()


def parse_size(text: str | None) -> tuple[int, int] | None:
    """``"512x512"`` or ``"512,512"`` -> ``(512, 512)``; None stays None.

    Raises:
        InputError: not two integers.
    """

    if text is None:
        return None
    parts = text.lower().replace(",", "x").split("x")
    try:
        width, height = (int(p) for p in parts)
    except ValueError:
        raise InputError(f"--size must be WIDTHxHEIGHT, got {text!r}") from None
    return width, height
