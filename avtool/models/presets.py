"""Named presets and dict round trips for the frozen config dataclasses of the model families.

A family's config subclasses :class:`PresetConfig`, names its presets (each a classmethod of
the same name returning a config) and the family for messages::

    @dataclass(frozen=True)
    class MusicLSTMConfig(PresetConfig):
        presets: ClassVar[tuple[str, ...]] = ("small", "debug")
        family_name: ClassVar[str] = "music LSTM"
        ...

and gets :meth:`~PresetConfig.preset`, :meth:`~PresetConfig.from_dict`,
:meth:`~PresetConfig.to_dict` and :meth:`~PresetConfig.to_json` with the same messages and rules
everywhere (families whose JSON nests other configs or needs converting override the last
three).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import MISSING, asdict, fields
from typing import Any, ClassVar, Self

from avtool.errors import ModelError

__all__ = ["PresetConfig"]


class PresetConfig:
    """Mixin for a frozen config dataclass with named presets.

    Attributes:
        presets: the preset names; each is a classmethod returning that config.
        family_name: the family as messages name it (``"HiFi-GAN"``, ``"music LSTM"``).
    """

    presets: ClassVar[tuple[str, ...]] = ()
    family_name: ClassVar[str] = ""

    @classmethod
    def preset(cls, name: str) -> Self:
        """The preset called ``name`` (one of :attr:`presets`).

        Raises:
            ModelError: unknown name.
        """
        if name not in cls.presets:
            raise ModelError(
                f"unknown {cls.family_name} preset {name!r} (known: {', '.join(cls.presets)})"
            )
        return getattr(cls, name)()

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields (:func:`dataclasses.asdict`)."""
        return asdict(self)  # type: ignore[call-overload]

    def to_json(self) -> str:
        """:meth:`to_dict` as the JSON written beside a checkpoint (indent 1, sorted keys)."""
        return json.dumps(self.to_dict(), indent=1, sort_keys=True)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        """A config from :func:`dataclasses.asdict` output or ``{"preset": name, ...}``.

        The preset's fields are the base, other keys that are fields override them, and
        keys that are not fields are ignored. Families whose fields need converting from
        JSON override this and use :meth:`_fields_from` and :meth:`_complete`.

        Raises:
            ModelError: an unknown preset, a missing required field or an invalid value.
        """
        try:
            return cls._complete(cls._fields_from(data))
        except TypeError as exc:
            raise ModelError(f"invalid {cls.family_name} config: {exc}") from exc

    @classmethod
    def _fields_from(cls, data: Mapping[str, Any]) -> dict[str, Any]:
        """The field values ``data`` gives, over those of the preset it names (if any)."""
        names = {f.name for f in fields(cls)}  # type: ignore[arg-type]
        chosen = {k: v for k, v in data.items() if k in names}
        if "preset" in data:
            base = cls.preset(str(data["preset"]))
            chosen = {**{f.name: getattr(base, f.name) for f in fields(base)}, **chosen}  # type: ignore[arg-type]
        return chosen

    @classmethod
    def _complete(cls, chosen: Mapping[str, Any]) -> Self:
        """``cls(**chosen)``, first naming every required field ``chosen`` lacks.

        Raises:
            ModelError: required fields are missing.
        """
        required = [
            f.name
            for f in fields(cls)  # type: ignore[arg-type]
            if f.default is MISSING and f.default_factory is MISSING
        ]
        missing = [name for name in required if name not in chosen]
        if missing:
            raise ModelError(f"{cls.family_name} config lacks {', '.join(missing)}")
        return cls(**chosen)
