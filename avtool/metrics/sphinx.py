"""Pocketsphinx over its bundled en-US model: one way to open a decoder, whatever it searches.

The GRID recogniser (:class:`avtool.metrics.grid.GridRecognizer`, a word grammar) and the
talking head's phone aligner (``avtool.models.facewarp.phones``, an all-phone search) use the
same acoustic model at 16 kHz and differ only in the search files and settings they add.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from avtool.errors import ModelError, SetupError

#: The rate the bundled acoustic model was trained at (Hz).
SAMPLE_RATE = 16000


def bundled_decoder(needed_for: str, what: str, files: Mapping[str, str], **settings: Any) -> Any:
    """A ``pocketsphinx.Decoder`` over the bundled en-US acoustic model at :data:`SAMPLE_RATE`.

    Args:
        needed_for: what needs pocketsphinx, for the install hint (``"GRID recognition"``).
        what: the model as the load error names it (``"en-US model"``, ``"phone model"``).
        files: decoder settings that name a file of the bundled ``en-us`` folder
            (``{"dict": "cmudict-en-us.dict"}``), joined to that folder here.
        settings: the decoder's other settings (``lm=None``, beams, ...).

    Returns:
        The decoder (log level FATAL: pocketsphinx's own logging stays quiet).

    Raises:
        SetupError: pocketsphinx is not installed.
        ModelError: the bundled model files are missing or unreadable.
    """
    try:
        import pocketsphinx
    except ImportError as exc:
        raise SetupError(f"{needed_for} needs pocketsphinx: pip install 'pocketsphinx>=5'") from exc
    model = os.path.join(pocketsphinx.get_model_path(), "en-us")
    paths = {name: os.path.join(model, file) for name, file in files.items()}
    try:
        return pocketsphinx.Decoder(
            hmm=os.path.join(model, "en-us"),
            **paths,
            **settings,
            samprate=SAMPLE_RATE,
            loglevel="FATAL",
        )
    except (RuntimeError, ValueError) as exc:
        raise ModelError(f"cannot load the pocketsphinx {what} from {model}: {exc}") from exc
