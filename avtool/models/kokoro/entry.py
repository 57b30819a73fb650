"""Kokoro through the front door (:func:`avtool.models.loading.load`): a voice spec to a model.

A Kokoro voice is named by a spec, not by one registry entry: ``am_adam`` (or ``kokoro-am_adam``)
or a blend ``af_heart:0.6,am_adam:0.4``. :func:`resolve_spec` turns it into one resolved entry:
the engine's (its graph is the main file, so the sidecar's sha256 and licence are the engine's)
named after the voice, with every voice pack among its files and the blend in its ``config``;
:func:`load_entry` builds the model from that, and :func:`entry_facts` says which voices and
packs went in. Every file is sha256-checked by the registry before use.
"""

from __future__ import annotations

import dataclasses
from types import MappingProxyType
from typing import Any

from avtool import registry
from avtool.models.kokoro import (
    ENGINE_ENTRY,
    ENTRY_PREFIX,
    KokoroModel,
    blend_label,
    load,
    looks_like_kokoro,
    parse_blend,
    registered_voices,
    timed_graph,
)
from avtool.models.kokoro.voices import check_pack
from avtool.registry import ResolvedModel
from avtool.runtime import resolve_device

#: The files-map name of a voice's pack in a resolved spec.
PACK_FILE = "voice:{}"


def claims(spec: str) -> bool:
    """Whether ``spec`` names a Kokoro voice, a blend or the engine (see
    :func:`~avtool.models.kokoro.voices.looks_like_kokoro`)."""
    return looks_like_kokoro(spec)


def resolve_spec(spec: str, accept_license: bool = False) -> ResolvedModel:
    """The engine entry with the spec's voice packs, every file verified.

    Args:
        spec: the ``--voice`` string.
        accept_license: allow non-commercial entries (Kokoro's are Apache-2.0).

    Returns:
        The engine's entry renamed ``kokoro-VOICE`` (``kokoro-v1.0`` for a blend), its
        ``config`` holding ``blend`` (``((voice, weight), ...)``) and ``packs_sha256``, its
        files the engine's plus one ``voice:NAME`` per pack.

    Raises:
        InputError: a malformed blend or an unknown voice (close names listed).
        ModelError: a file missing or failing its checks, a pack of the wrong shape.
    """
    blend = parse_blend(spec, registered_voices())
    engine = registry.resolve(ENGINE_ENTRY, task="tts", accept_license=accept_license)
    packs = {
        name: registry.resolve(ENTRY_PREFIX + name, task="tts", accept_license=accept_license)
        for name, _ in blend
    }
    for resolved in packs.values():  # refuse a bad pack before any slow work
        check_pack(resolved.path.read_bytes(), str(resolved.path))
    entry = dataclasses.replace(
        engine.entry,
        name=ENTRY_PREFIX + blend_label(blend) if len(blend) == 1 else ENGINE_ENTRY,
        config=MappingProxyType(
            {
                "blend": blend,
                "packs_sha256": {n: r.entry.main.sha256 for n, r in packs.items()},
            }
        ),
    )
    files = {**engine.files, **{PACK_FILE.format(n): r.path for n, r in packs.items()}}
    return ResolvedModel(entry=entry, path=engine.path, files=MappingProxyType(files))


def load_entry(resolved: ResolvedModel, device: str = "cpu", *, threads: int = 0) -> KokoroModel:
    """The front door's hook: the engine with the blend of a :func:`resolve_spec` entry (an
    engine or pack entry resolved by name is resolved as a spec first).

    Args:
        resolved: from :func:`resolve_spec`.
        device: ``auto``, ``cpu`` or ``cuda``, resolved for onnxruntime.
        threads: onnxruntime intra-op threads (0 = all cores); through the front door's
            ``options`` (``load(spec, task="tts", options={"threads": 1})``).

    Raises:
        ModelError: a pack of the wrong shape, an unreadable vocabulary or graph.
        SetupError: ``cuda`` and onnxruntime has no CUDA provider.
    """
    if "blend" not in resolved.entry.config:
        resolved = resolve_spec(resolved.entry.name)
    blend = resolved.entry.config["blend"]
    run_on = resolve_device(device, engine="onnx")
    graph = timed_graph(resolved.path, resolved.entry.main.sha256, registry.cache_dir() / "derived")
    return load(
        resolved.path,
        resolved.files["vocab.json"],
        {n: resolved.files[PACK_FILE.format(n)] for n, _ in blend},
        blend,
        device=run_on,
        graph_path=graph,
        threads=threads,
    )


def entry_facts(resolved: ResolvedModel, model: KokoroModel) -> dict[str, Any]:
    """The sidecar's Kokoro facts: the voice label, the blend, each pack's sha256, the G2P."""
    packs = resolved.entry.config.get("packs_sha256") or {
        n: registry.load_registry()[ENTRY_PREFIX + n].main.sha256 for n, _ in model.blend
    }
    return {
        "voice": blend_label(model.blend),
        "blend": [{"voice": n, "weight": round(w, 6)} for n, w in model.blend],
        "packs_sha256": dict(packs),
        "g2p": "hibari (British)" if model.british else "hibari (US)",
    }
