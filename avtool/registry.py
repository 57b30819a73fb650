"""The weights registry: which models exist, where their files come from, checked downloads.

Entries live in ``avtool/models.toml`` plus any files named in ``$AVTOOL_REGISTRY``. A file's
source is an https URL (downloaded once into :func:`cache_dir`), ``package:<pkg>/<path>`` (a file
inside an installed Python package, used in place) or a local path. Every file has a full sha256
and a size; nothing reaches a loader until both match, and a download is renamed into place only
after it passed both checks. The one exception: an https file whose publisher states only a
digest (no size) may omit ``size``; it is then checked by sha256 alone (``FileSpec.size`` None).

Hashing a 63 MB voice on every run would slow every command, so a verified file is recorded in
``cache_dir()/verified.json`` (path -> size, mtime_ns, sha256) and trusted while its size and
mtime are unchanged.

    entry = load_registry()["piper-joe-medium"]
    model = resolve("piper-joe-medium", task="tts")   # or resolve("/path/voice.onnx")
    model.path, model.files["en_US-joe-medium.onnx.json"]
"""

from __future__ import annotations

import contextlib
import difflib
import hashlib
import importlib.util
import json
import logging
import os
import re
import sys
import tempfile
import tomllib
import urllib.parse
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from avtool import __version__
from avtool.errors import AvtoolError, ModelError
from avtool.io.files import atomic_output

log = logging.getLogger(__name__)

_SHA256 = re.compile(r"[0-9a-f]{64}")
# Model names become cache folder names, so keep them to one safe path component.
_MODEL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]*")
_REQUIRED = ("task", "family", "license", "commercial", "source", "sha256")
# `size` may be left out only for https sources (see _parse_file).
_OPTIONAL = ("size", "description", "sample_rate", "fps", "homepage", "config", "files")
_ALLOWED = ", ".join(_REQUIRED + _OPTIONAL)
_FILE_KEYS = ("source", "sha256", "size")
_CHUNK = 1 << 20
_HTML_STARTS = (b"<!doctype html", b"<html")


@dataclass(frozen=True)
class FileSpec:
    """One file of a model: where it comes from and what it must hash to.

    Attributes:
        name: file name (in the cache, and the key of :attr:`ResolvedModel.files`).
        source: https URL, ``package:<pkg>/<path>``, or an absolute local path.
        sha256: expected lowercase hex digest.
        size: expected size in bytes; None for a URL whose publisher gave only the digest
            (the file is then checked by sha256 alone).
    """

    name: str
    source: str
    sha256: str
    size: int | None

    @property
    def kind(self) -> str:
        """``"url"``, ``"package"`` or ``"local"``."""
        if self.source.startswith(("https://", "http://")):
            return "url"
        return "package" if self.source.startswith("package:") else "local"


@dataclass(frozen=True)
class ModelEntry:
    """A registry entry. ``files[0]`` is the main weights file; companions follow."""

    name: str
    task: str
    license: str
    commercial: bool
    files: tuple[FileSpec, ...]
    family: str = ""
    description: str = ""
    sample_rate: int | None = None
    fps: float | None = None
    homepage: str = ""
    config: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))

    @property
    def main(self) -> FileSpec:
        """The main weights file."""
        return self.files[0]

    @property
    def size(self) -> int | None:
        """Total bytes of all files; None when a file's size is not known."""
        sizes = [f.size for f in self.files]
        return None if None in sizes else sum(s for s in sizes if s is not None)


@dataclass(frozen=True)
class ResolvedModel:
    """A model whose files are present and verified.

    Attributes:
        entry: the registry entry (ad hoc for a local path).
        path: the main weights file.
        files: :attr:`FileSpec.name` -> local path, for every file including ``path``.
    """

    entry: ModelEntry
    path: Path
    files: Mapping[str, Path]


# --- the registry files -------------------------------------------------------------------------


def registry_files() -> list[Path]:
    """The packaged ``models.toml``, then the files in ``$AVTOOL_REGISTRY`` (``os.pathsep`` list).

    Returns:
        Paths in override order: a later file's entry replaces an earlier one of the same name.
    """
    extra = os.environ.get("AVTOOL_REGISTRY", "")
    return [Path(__file__).with_name("models.toml")] + [
        Path(p).expanduser() for p in extra.split(os.pathsep) if p.strip()
    ]


def load_registry(paths: list[Path] | None = None) -> dict[str, ModelEntry]:
    """Parse and validate registry files.

    Args:
        paths: toml files in override order; :func:`registry_files` when omitted.

    Returns:
        Model name -> entry.

    Raises:
        ModelError: a file is missing, not TOML, or has an invalid entry (the message names
            the file and the entry).
    """
    entries: dict[str, ModelEntry] = {}
    for path in registry_files() if paths is None else paths:
        try:
            data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except OSError as exc:
            raise ModelError(f"{path}: cannot read registry file ({exc.strerror})") from exc
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ModelError(f"{path}: not a valid TOML registry ({exc})") from exc
        unknown = set(data) - {"models"}
        models = data.get("models", {})
        if unknown or not isinstance(models, dict):
            raise ModelError(f"{path}: a registry holds only models.NAME tables")
        for name, raw in models.items():
            entries[name] = _parse_entry(name, raw, Path(path))
    return entries


def _parse_entry(name: str, raw: Any, toml_path: Path) -> ModelEntry:
    where = f"{toml_path}: models.{name}"
    if not _MODEL_NAME.fullmatch(name):
        raise ModelError(f"{where}: a model name is letters, digits and . _ + - only")
    if not isinstance(raw, dict):
        raise ModelError(f"{where}: must be a table")
    missing = [k for k in _REQUIRED if k not in raw]
    unknown = sorted(set(raw) - set(_REQUIRED) - set(_OPTIONAL))
    if missing:
        raise ModelError(f"{where}: missing {', '.join(missing)}")
    if unknown:
        raise ModelError(f"{where}: unknown field {', '.join(unknown)} (allowed: {_ALLOWED})")
    for key in ("task", "family", "license", "description", "homepage"):
        if not isinstance(raw.get(key, ""), str):
            raise ModelError(f"{where}: {key} must be a string")
    if not isinstance(raw["commercial"], bool):
        raise ModelError(f"{where}: commercial must be true or false")
    sample_rate, fps = raw.get("sample_rate"), raw.get("fps")
    if sample_rate is not None and not _positive_int(sample_rate):
        raise ModelError(f"{where}: sample_rate must be a positive integer")
    if fps is not None and (isinstance(fps, bool) or not isinstance(fps, int | float) or fps <= 0):
        raise ModelError(f"{where}: fps must be a positive number")
    config, companions = raw.get("config", {}), raw.get("files", {})
    if not isinstance(config, dict) or not isinstance(companions, dict):
        raise ModelError(f"{where}: config and files must be tables")

    main = _parse_file(None, raw, toml_path.parent, where)
    files = [main]
    for fname, spec in companions.items():
        fwhere = f"{where}.files.{fname}"
        if not isinstance(spec, dict) or not {"source", "sha256"} <= set(spec) <= set(_FILE_KEYS):
            raise ModelError(
                f"{fwhere}: takes source, sha256 and size (size may be left out for https)"
            )
        if Path(fname).name != fname or fname in (".", "..") or fname == main.name:
            raise ModelError(f"{fwhere}: must be a plain file name other than {main.name!r}")
        files.append(_parse_file(fname, spec, toml_path.parent, fwhere))
    return ModelEntry(
        name=name,
        task=raw["task"],
        family=raw["family"],
        description=raw.get("description", ""),
        license=raw["license"],
        commercial=raw["commercial"],
        sample_rate=sample_rate,
        fps=fps,
        homepage=raw.get("homepage", ""),
        config=MappingProxyType(config),
        files=tuple(files),
    )


def _positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _parse_file(name: str | None, raw: Mapping[str, Any], base: Path, where: str) -> FileSpec:
    source, sha256, size = raw["source"], raw["sha256"], raw.get("size")
    if not isinstance(source, str) or not source:
        raise ModelError(f"{where}: source must be a non-empty string")
    if not isinstance(sha256, str) or not _SHA256.fullmatch(sha256.lower()):
        raise ModelError(f"{where}: sha256 must be 64 hex characters, got {sha256!r}")
    if size is None and not source.startswith(("https://", "http://")):
        # Files we ship or the user points at can always be measured: only a publisher's URL
        # that states a digest but no size may go without one.
        raise ModelError(
            f"{where}: missing size (only an https source may omit it, to be checked by "
            "sha256 alone)"
        )
    if size is not None and not _positive_int(size):
        raise ModelError(f"{where}: size must be a positive number of bytes, got {size!r}")
    if source.startswith(("https://", "http://")):
        basename = urllib.parse.unquote(urllib.parse.urlsplit(source).path).rsplit("/", 1)[-1]
    elif source.startswith("package:"):
        pkg, _, rel = source.removeprefix("package:").partition("/")
        if not pkg.isidentifier() or not rel:
            raise ModelError(f"{where}: a package source is package:<package>/<path>")
        basename = rel.rsplit("/", 1)[-1]
    elif "://" in source:
        raise ModelError(f"{where}: unsupported source {source!r} (https URL, package: or a path)")
    else:
        # Relative paths are relative to the toml, so a registry can travel with its weights.
        source = os.path.normpath(base / Path(source).expanduser())
        basename = Path(source).name
    if not basename:
        raise ModelError(f"{where}: source {source!r} does not end in a file name")
    return FileSpec(name=name or basename, source=source, sha256=sha256.lower(), size=size)


def lookup(name: str, registry: Mapping[str, ModelEntry] | None = None) -> ModelEntry:
    """The entry called ``name``.

    Raises:
        ModelError: no such entry; the message lists close matches.
    """
    models = load_registry() if registry is None else registry
    if name in models:
        return models[name]
    raise ModelError(_unknown_message(name, models))


def _unknown_message(name: str, models: Mapping[str, ModelEntry]) -> str:
    close = difflib.get_close_matches(name, list(models), n=3, cutoff=0.5)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    return (
        f"unknown model {name!r} (not a registry name, and no such file){hint} "
        "See `avtool models list` for the available models."
    )


# --- where files live, and whether they are intact ----------------------------------------------


def cache_dir() -> Path:
    """``$AVTOOL_CACHE_DIR``, else ``$XDG_CACHE_HOME/avtool``, else ``~/.cache/avtool``."""
    if os.environ.get("AVTOOL_CACHE_DIR"):
        return Path(os.environ["AVTOOL_CACHE_DIR"]).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "avtool"


def file_path(entry: ModelEntry, spec: FileSpec) -> Path:
    """Where ``spec``'s file is (or will be, for a URL not yet downloaded).

    Raises:
        ModelError: a ``package:`` source whose package is not installed.
    """
    if spec.kind == "url":
        return cache_dir() / entry.name / spec.name
    if spec.kind == "local":
        return Path(spec.source)
    pkg, _, rel = spec.source.removeprefix("package:").partition("/")
    # find_spec locates a top-level package without importing it (some __init__s do work).
    try:
        found = importlib.util.find_spec(pkg)
    except (ImportError, ValueError):
        found = None
    locations = list(found.submodule_search_locations or []) if found else []
    if not locations:
        raise ModelError(f"model {entry.name}: Python package {pkg!r} is not installed")
    candidates = [Path(loc, *rel.split("/")) for loc in locations]
    return next((c for c in candidates if c.exists()), candidates[0])


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _load_stamps() -> dict[str, Any]:
    try:
        data = json.loads((cache_dir() / "verified.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _save_stamps(stamps: dict[str, Any]) -> None:
    # Stamps are an optimisation: failing to record one only means hashing again next time.
    keep = {p: s for p, s in stamps.items() if os.path.exists(p)}
    try:
        with atomic_output(cache_dir() / "verified.json") as tmp:
            tmp.write_text(json.dumps(keep, indent=1, sort_keys=True), encoding="utf-8")
    except (OSError, AvtoolError) as exc:
        log.debug("could not record verified files: %s", exc)


def _stamped(stamps: Mapping[str, Any], path: Path, st: os.stat_result, sha256: str) -> bool:
    stamp = stamps.get(str(path.resolve()))
    return (
        isinstance(stamp, dict)
        and stamp.get("size") == st.st_size
        and stamp.get("mtime_ns") == st.st_mtime_ns
        and stamp.get("sha256") == sha256
    )


def _stamp(stamps: dict[str, Any], path: Path, st: os.stat_result, sha256: str) -> None:
    stamps[str(path.resolve())] = {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": sha256}


def _check(path: Path, spec: FileSpec, stamps: dict[str, Any], force: bool) -> str | None:
    """The problem with ``path`` (None when intact); records a stamp after a successful hash."""
    try:
        st = path.stat()
    except OSError:
        return f"{path}: missing"
    if not path.is_file():
        return f"{path}: not a file"
    if spec.size is not None and st.st_size != spec.size:
        return f"{path}: expected {spec.size} bytes, got {st.st_size}"
    if not force and _stamped(stamps, path, st, spec.sha256):
        return None
    actual = sha256_file(path)
    if actual != spec.sha256:
        return f"{path}: expected sha256 {spec.sha256}, got {actual}"
    _stamp(stamps, path, st, actual)
    return None


def model_status(entry: ModelEntry) -> str:
    """A cheap status (no hashing) for listings.

    Returns:
        ``"corrupt"`` (a file has the wrong size), ``"missing"`` (a file is absent),
        ``"installed"`` (present, not yet verified at this size and mtime) or ``"verified"``.
        A file without a registered size is never ``"corrupt"`` here: only hashing
        (:func:`verify`) can tell.
    """
    stamps, states = _load_stamps(), set()
    for spec in entry.files:
        try:
            path = file_path(entry, spec)
            st = path.stat()
        except (ModelError, OSError):
            states.add("missing")
            continue
        if spec.size is not None and st.st_size != spec.size:
            states.add("corrupt")
        else:
            states.add("verified" if _stamped(stamps, path, st, spec.sha256) else "installed")
    return next(s for s in ("corrupt", "missing", "installed", "verified") if s in states)


def verify(entry: ModelEntry, force: bool = True) -> list[str]:
    """Check every file of ``entry`` for presence, size and sha256.

    Args:
        entry: the model.
        force: rehash even files stamped as verified at their current size and mtime.

    Returns:
        Problems, one line each (empty when the model is intact).
    """
    stamps = _load_stamps()
    before, problems = dict(stamps), []
    for spec in entry.files:
        try:
            path = file_path(entry, spec)
        except ModelError as exc:
            problems.append(str(exc))
            continue
        problem = _check(path, spec, stamps, force)
        if problem and spec.kind == "url" and not path.exists():
            problem += f" (not downloaded; `avtool models pull {entry.name}`)"
        if problem:
            problems.append(f"model {entry.name}: {problem}")
    if stamps != before:
        _save_stamps(stamps)
    return problems


# --- derived files: prepared copies of model files, built once in the cache ---------------------
#
# A derived file (Piper's seedable graph, Kokoro's timed graph) is made from a verified model
# file and kept in ``cache_dir()/derived``. Its sha256 is recorded beside it in ``<name>.sha256``
# when it is built; every use checks it (trusting the verified.json stamp while size and mtime
# are unchanged), so a corrupted or truncated copy is rebuilt, never run.

DERIVED_HASH_SUFFIX = ".sha256"


def derived_dir() -> Path:
    """``cache_dir()/derived``: the folder of prepared (derived) model files."""
    return cache_dir() / "derived"


def record_derived(path: Path) -> str:
    """Hash a just-built derived file and record the hash beside it (``<path>.sha256``).

    Returns:
        The hex sha256.
    """
    digest = sha256_file(path)
    with atomic_output(path.with_name(path.name + DERIVED_HASH_SUFFIX)) as tmp:
        tmp.write_text(digest + "\n", encoding="utf-8")
    stamps = _load_stamps()
    _stamp(stamps, path, path.stat(), digest)
    _save_stamps(stamps)
    return digest


def derived_problem(path: Path, *, force: bool = False) -> str | None:
    """What is wrong with a derived file, None when it matches its recorded hash.

    Args:
        path: the derived file.
        force: rehash even when verified.json vouches for its current size and mtime.

    Returns:
        ``"missing"``, ``"no recorded hash"``, or ``"expected sha256 X, got Y"``.
    """
    stamp_file = path.with_name(path.name + DERIVED_HASH_SUFFIX)
    try:
        st = path.stat()
    except OSError:
        return "missing"
    try:
        expected = stamp_file.read_text(encoding="utf-8").strip()
    except OSError:
        return "no recorded hash"
    if not _SHA256.fullmatch(expected):
        return f"unreadable recorded hash in {stamp_file.name}"
    stamps = _load_stamps()
    if not force and _stamped(stamps, path, st, expected):
        return None
    actual = sha256_file(path)
    if actual != expected:
        return f"expected sha256 {expected}, got {actual}"
    _stamp(stamps, path, st, actual)
    _save_stamps(stamps)
    return None


def usable_derived(path: Path) -> bool:
    """Whether a derived file can be used as it is; a corrupt one is reported (it is then
    rebuilt by the caller), an absent one is just absent."""
    problem = derived_problem(path)
    if problem is None:
        return True
    if problem == "no recorded hash":  # made by an avtool that did not record hashes
        log.info("%s: the prepared file has no recorded hash; rebuilding it", path)
    elif problem != "missing":
        words = "does not match its hash" if problem.startswith("expected") else problem
        log.warning("%s: the prepared file %s; rebuilding it", path, words)
    return False


def derived_files(entry: ModelEntry | None = None) -> list[Path]:
    """The derived files in the cache (not their ``.sha256`` records); with ``entry``, those
    made from its main file (their names carry the first 16 hex digits of its sha256)."""
    folder = derived_dir()
    if not folder.is_dir():
        return []
    files = [
        p
        for p in sorted(folder.iterdir())
        if p.is_file() and not p.name.endswith(DERIVED_HASH_SUFFIX) and not p.name.startswith(".")
    ]
    if entry is not None:
        files = [p for p in files if f"-{entry.main.sha256[:16]}-" in p.name]
    return files


def verify_derived(entry: ModelEntry | None = None) -> list[str]:
    """Rehash derived files (all, or ``entry``'s) against their recorded hashes.

    Returns:
        Problems, one line each naming the file (empty when all are intact). A file without a
        recorded hash counts: it cannot be vouched for (the next use rebuilds it).
    """
    problems = []
    for path in derived_files(entry):
        problem = derived_problem(path, force=True)
        if problem is not None:
            problems.append(f"{path}: {problem} (rebuilt on next use)")
    return problems


# --- resolving a name (or a path) to verified local files ---------------------------------------


def _env_offline() -> bool:
    from avtool.runtime import environment_flag

    # The same rule as GlobalOptions.offline, so the CLI and library calls agree.
    return environment_flag("AVTOOL_OFFLINE")


def resolve(
    name_or_path: str | os.PathLike[str],
    *,
    task: str | None = None,
    accept_license: bool = False,
    offline: bool | None = None,
    download: bool = True,
    quiet: bool = False,
    registry: Mapping[str, ModelEntry] | None = None,
) -> ResolvedModel:
    """Turn a registry name or a local weights path into verified local files.

    URL files missing from the cache (or failing their checks there) are downloaded unless
    offline. Package and local files are used in place after their checks.

    Args:
        name_or_path: a registry name, or the path of a weights file (its ``<path>.json``
            companion is included when present; the caller infers the family).
        task: the task the caller runs; an entry for another task is refused.
        accept_license: allow ``commercial = false`` entries.
        offline: never open a connection; None reads ``$AVTOOL_OFFLINE``.
        download: fetch missing URL files (False: fail instead, e.g. for ``models path``).
        quiet: no progress bar.
        registry: entries to use instead of :func:`load_registry`.

    Returns:
        The entry and the local path of each of its files.

    Raises:
        ModelError: unknown name, wrong task, licence not accepted, a file missing while
            offline, a failed download or a checksum mismatch.
    """
    models = load_registry() if registry is None else registry
    name = os.fspath(name_or_path)
    entry = models.get(name) or _local_entry(name, task, models)
    if task and entry.task != task:
        raise ModelError(
            f"model {entry.name} is a {entry.task!r} model, not {task!r}; "
            f"see `avtool models list --task {task}`"
        )
    if not entry.commercial and not accept_license:
        raise ModelError(
            f"model {entry.name} is licensed {entry.license}, which does not allow commercial "
            f"use; pass --accept-license to accept its terms ({entry.homepage or 'see its source'})"
        )
    offline = _env_offline() if offline is None else offline
    stamps = _load_stamps()
    before, paths = dict(stamps), {}
    for spec in entry.files:
        path = file_path(entry, spec)
        problem = _check(path, spec, stamps, force=False)
        if problem and spec.kind == "url" and download and not offline:
            if path.exists():
                log.warning("%s; downloading it again", problem)
            log.info("downloading %s (%s) from %s", spec.name, human_size(spec.size), spec.source)
            sha256 = _download(spec, path, quiet=quiet)
            _stamp(stamps, path, path.stat(), sha256)
        elif problem and spec.kind == "url":
            what = problem if path.exists() else f"{spec.name} is not in the cache"
            why = "AVTOOL_OFFLINE is set" if offline else "this command does not download"
            raise ModelError(
                f"model {entry.name}: {what} and {why}, so it was not downloaded. "
                f"Expected {path} with sha256 {spec.sha256} ({_size_note(spec.size)}) from "
                f"{spec.source}; run `avtool models pull {entry.name}` where the network is "
                "reachable, or copy the file there."
            )
        elif problem:
            raise ModelError(f"model {entry.name}: {problem}")
        paths[spec.name] = path
    if stamps != before:
        _save_stamps(stamps)
    return ResolvedModel(entry=entry, path=paths[entry.main.name], files=MappingProxyType(paths))


def _local_entry(name: str, task: str | None, models: Mapping[str, ModelEntry]) -> ModelEntry:
    """An ad hoc entry for a weights file given by path (plus its ``.json`` companion)."""
    path = Path(name).expanduser()
    if path.is_dir():
        raise ModelError(f"{path}: is a folder; give a model name or a weights file")
    if not path.is_file():
        raise ModelError(_unknown_message(name, models))
    path = path.resolve()
    stamps = _load_stamps()
    before, specs = dict(stamps), []
    for p in (path, path.with_name(path.name + ".json")):
        if not p.is_file():
            continue
        st = p.stat()
        # Reuse a stamp made at this exact size and mtime instead of hashing again.
        stamp = stamps.get(str(p.resolve()))
        sha256 = stamp.get("sha256") if isinstance(stamp, dict) else None
        if not (isinstance(sha256, str) and _stamped(stamps, p, st, sha256)):
            sha256 = sha256_file(p)
            _stamp(stamps, p, st, sha256)
        specs.append(FileSpec(name=p.name, source=str(p), sha256=sha256, size=st.st_size))
    if stamps != before:
        _save_stamps(stamps)
    return ModelEntry(str(path), task or "", license="unknown", commercial=True,
                      files=tuple(specs), description="local file")  # fmt: skip


def _download(spec: FileSpec, dest: Path, *, quiet: bool) -> str:
    """Fetch ``spec`` to ``dest`` via a ``.part`` file; rename only after size and sha256 pass.

    Returns:
        The sha256 of the file now at ``dest``.
    """
    # The network stack (http.client, ssl, email) is a tenth of `avtool --help`'s start-up and
    # only a download needs it.
    import http.client
    import urllib.error
    import urllib.request

    url = spec.source
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    except OSError as exc:
        raise ModelError(f"{url}: cannot write to the cache {dest.parent} ({exc})") from exc
    tmp, digest, got, head = Path(tmp_name), hashlib.sha256(), 0, b""
    request = urllib.request.Request(url, headers={"User-Agent": f"avtool/{__version__}"})
    try:
        with os.fdopen(fd, "wb") as out, _progress(spec.size, spec.name, quiet) as advance:
            try:
                with urllib.request.urlopen(request, timeout=60) as response:
                    while chunk := response.read(_CHUNK):
                        head = (head + chunk[:512])[:512]
                        out.write(chunk)
                        digest.update(chunk)
                        got += len(chunk)
                        advance(len(chunk))
            except urllib.error.HTTPError as exc:
                raise ModelError(f"{url}: HTTP error {exc.code} {exc.reason}") from exc
            except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
                reason = getattr(exc, "reason", None) or exc
                raise ModelError(f"{url}: download failed ({reason})") from exc
        # A login, consent or error page often arrives with status 200; say so plainly.
        if head.lstrip().lower().startswith(_HTML_STARTS):
            raise ModelError(
                f"{url}: got an HTML page (a login or error page?) instead of the weights"
            )
        if spec.size is not None and got != spec.size:
            raise ModelError(f"{url}: expected {spec.size} bytes, got {got}")
        actual = digest.hexdigest()
        if actual != spec.sha256:
            raise ModelError(f"{url}: expected sha256 {spec.sha256}, got {actual}")
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)
    return actual


@contextlib.contextmanager
def _progress(total: int | None, label: str, quiet: bool) -> Iterator[Callable[[int], None]]:
    """A byte-progress bar on stderr, or a no-op when quiet or stderr is not a terminal.

    ``total`` None (size not registered) shows bytes so far without a percentage.
    """
    if quiet or not sys.stderr.isatty():
        yield lambda n: None
        return
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

    columns = (TextColumn("{task.description}"), BarColumn(), DownloadColumn())
    with Progress(
        *columns, TransferSpeedColumn(), console=Console(stderr=True), transient=True
    ) as progress:
        task = progress.add_task(label, total=total)
        yield lambda n: progress.advance(task, n)


def _size_note(size: int | None) -> str:
    return f"{size} bytes" if size is not None else "size not published"


def human_size(size: int | None) -> str:
    """Decimal units for people: ``63201294`` -> ``"63.2 MB"``; None -> ``"unknown"``."""
    if size is None:
        return "unknown"
    if size < 1000:
        return f"{size} B"
    value, units = size / 1000, ["kB", "MB", "GB", "TB"]
    while value >= 1000 and len(units) > 1:
        value, units = value / 1000, units[1:]
    return f"{value:.1f} {units[0]}"
