"""What every task shares at run time: inputs, output names, the batch loop, sidecars.

A task turns its inputs into :class:`BatchItem` objects, loads its model once, and hands
``run_batch`` a function that writes one item's outputs. ``run_batch`` refuses to
overwrite silently, keeps going past a failed item, writes a JSONL status report,
and decides the exit code: 0 only when every declared output exists and is non-empty.
"""

from __future__ import annotations

import contextlib
import csv
import glob
import json
import logging
import os
import platform
import re
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from avtool.errors import AvtoolError, ExitCode, InputError, SetupError
from avtool.io.console import stderr_console
from avtool.io.files import ensure_parent_writable

# Re-exported: the tasks write their sidecars through runtime, which owns the batch conventions.
from avtool.io.files import sidecar_path as sidecar_path
from avtool.io.files import write_json as write_json

log = logging.getLogger(__name__)

STDIO = "-"


# --------------------------------------------------------------------------- inputs


def read_text(path: str | Path) -> str:
    """Read UTF-8 text from a file or ``-`` (stdin).

    Raises:
        InputError: missing file, or bytes that are not UTF-8 (naming the line).
    """
    if str(path) == STDIO:
        data, name = sys.stdin.buffer.read(), "<stdin>"
    else:
        try:
            data, name = Path(path).read_bytes(), str(path)
        except OSError as exc:
            raise InputError(f"{path}: cannot read ({exc.strerror})") from exc
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise InputError(
            f"{name}:{line}: not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start})"
        ) from exc


def read_manifest(path: str | Path) -> list[dict[str, Any]]:
    """Rows of a CSV (with a header) or JSONL manifest; ``.jsonl``/``.ndjson`` are JSONL.

    Each row is one item with per-item options and ``_line`` (its line number). A row that
    cannot be read (bad JSON, not an object, more fields than the header, an unterminated
    quote) is returned as ``{"_line": n, "_error": "file:n: why"}``: the batch reports it as a
    failed item and runs the others. Blank lines and JSONL lines starting with ``#`` are
    skipped.

    Raises:
        InputError: unreadable file, a CSV without a header, or no rows at all.
    """
    text = read_text(path)
    rows: list[dict[str, Any]] = []
    if Path(str(path)).suffix.lower() in (".jsonl", ".ndjson"):
        for number, line in enumerate(text.splitlines(), 1):
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                rows.append(bad_row(path, number, f"bad JSON ({exc.msg})"))
                continue
            if not isinstance(row, dict):
                rows.append(bad_row(path, number, "each line must be a JSON object"))
                continue
            rows.append({**row, "_line": number})
    else:
        rows = _read_csv_rows(path, text)
    if not rows:
        raise InputError(f"{path}: manifest has no items")
    return rows


def bad_row(path: str | Path, line: int, why: str) -> dict[str, Any]:
    """A manifest row that becomes a failed item (``file:line: why``) instead of a batch abort."""
    return {"_line": line, "_error": f"{path}:{line}: {why}"}


def _read_csv_rows(path: str | Path, text: str) -> list[dict[str, Any]]:
    """CSV rows with their first line numbers; an unterminated quote is that row's error.

    csv alone would read an unterminated quote to the end of the file, swallowing every later
    row into one field: here the row is reported and reading resumes on the next line.
    """
    lines = text.splitlines(keepends=True)
    header = next(csv.reader(lines[:1]), None)
    if not header or not any(h.strip() for h in header):
        raise InputError(f"{path}: empty manifest (a CSV needs a header row)")
    fields = [h.strip() for h in header]
    rows: list[dict[str, Any]] = []
    start = 1  # index into lines of the next record
    while start < len(lines):
        reader = csv.reader(lines[start:], strict=True)
        record_start = start
        try:
            for values in reader:
                number = record_start + 1
                record_start = start + reader.line_num
                if not any(v.strip() for v in values):
                    continue
                if len(values) > len(fields):
                    rows.append(bad_row(path, number, "more fields than the header has"))
                    continue
                clean = {k: v for k, v in zip(fields, values, strict=False) if k and v != ""}
                if clean:
                    rows.append({**clean, "_line": number})
            break
        except csv.Error as exc:
            why = "unterminated quote" if "end of data" in str(exc) else f"bad CSV ({exc})"
            rows.append(bad_row(path, record_start + 1, why))
            start = record_start + 1
    return rows


def manifest_file_specs(
    manifest: Path,
    path_columns: Sequence[str] = ("input",),
    columns: Sequence[str] = ("id", "output"),
) -> list[dict[str, Any]]:
    """Rows of a file-to-file manifest: ``input`` (and other path columns) plus plain columns.

    Relative paths are taken from the manifest's folder; empty cells count as absent.

    Returns:
        One dict per row: ``path`` (from ``input``), the other path columns as :class:`Path`,
        the plain columns as given, and ``origin`` (``manifest:line``). A bad row (an unknown
        column, no ``input``, unreadable) is ``{"origin": ..., "error": "file:line: why"}``:
        it becomes a failed item and the other rows still run.
    """
    allowed = [*path_columns, *columns]
    specs: list[dict[str, Any]] = []
    for row in read_manifest(manifest):
        origin = f"{manifest}:{row['_line']}"
        if "_error" in row:
            specs.append({"origin": origin, "error": row["_error"]})
            continue
        if set(row) - {*allowed, "_line"} or not row.get("input"):
            specs.append({"origin": origin, "error": f"{origin}: columns are {', '.join(allowed)}"})
            continue
        spec: dict[str, Any] = {"origin": origin}
        for key in path_columns:
            if row.get(key):
                value = Path(row[key])
                spec["path" if key == "input" else key] = (
                    value if value.is_absolute() else manifest.parent / value
                )
        spec.update({k: row[k] for k in columns if row.get(k)})
        specs.append(spec)
    return specs


def expand_paths(specs: Iterable[str], extensions: Sequence[str] = ()) -> list[Path]:
    """Files named by paths, folders (their matching files, sorted) and glob patterns.

    ``-`` reads one path per line from stdin. Order is kept and duplicates dropped.

    Raises:
        InputError: a path that does not exist, or a pattern/folder matching nothing.
    """
    exts = tuple(e.lower() for e in extensions)
    found: list[Path] = []
    for spec in specs:
        if spec == STDIO:
            found.extend(Path(line.strip()) for line in sys.stdin if line.strip())
            continue
        path = Path(spec)
        if path.is_dir():
            matches = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in exts)
        elif glob.has_magic(spec):
            matches = sorted(Path(p) for p in glob.glob(spec, recursive=True) if Path(p).is_file())
        elif path.exists():
            matches = [path]
        else:
            raise InputError(f"{spec}: no such file")
        if not matches:
            raise InputError(f"{spec}: matches no input files ({', '.join(exts) or 'any'})")
        found.extend(matches)
    return list(dict.fromkeys(found))


def file_items(
    inputs: Iterable[str],
    suffixes: Sequence[str],
    manifest: Path | None,
    output_template: str | None,
    *,
    path_columns: Sequence[str] = ("input",),
    item_options: Sequence[str] = (),
    input_options: Mapping[str, Any] | None = None,
    nothing: str = "nothing to do: give input files or --manifest",
) -> list[BatchItem]:
    """Batch items of a file-to-file command: inputs (files, folders, globs, ``-`` = paths on
    stdin) then manifest rows (columns ``path_columns`` + ``id``, ``output``).

    Ids are the manifest ``id`` or the input's stem, made unique; the output is the row's
    ``output``, else ``output_template`` filled in (:func:`format_output`), or None (stdout)
    when the template is None or ``-``. Keys named in ``item_options`` (e.g. a manifest's
    ``audio`` column) become the item's per-item options; ``input_options`` are the options
    of every command-line input (a manifest row gives its own).

    Raises:
        InputError: no inputs (``nothing`` is the message), a missing file, a bad manifest row.
    """
    specs: list[dict[str, Any]] = [
        {"path": p, "origin": str(p), **(input_options or {})}
        for p in expand_paths(inputs, suffixes)
    ]
    if manifest is not None:
        specs += manifest_file_specs(manifest, path_columns=path_columns)
    if not specs:
        raise InputError(nothing)
    ids = unique_ids([str(s.get("id") or _spec_stem(s)) for s in specs])
    items = []
    for i, (spec, item_id) in enumerate(zip(specs, ids, strict=True)):
        if "error" in spec:
            items.append(bad_item(i, item_id, spec["origin"], spec["error"]))
            continue
        if "output" in spec:
            output: Path | None = Path(spec["output"])
        elif output_template in (None, STDIO):
            output = None
        else:
            output = format_output(output_template, item_id=item_id, index=i, source=spec["path"])
        options = {k: spec[k] for k in item_options if spec.get(k)}
        items.append(
            BatchItem(index=i, id=item_id, input=str(spec["path"]), output=output,
                      options=options, origin=spec["origin"], source=spec["path"])
        )  # fmt: skip
    return items


def _spec_stem(spec: Mapping[str, Any]) -> str:
    """An item id for a spec without ``id``: its file's stem, or ``line-N`` for a bad row."""
    if "path" in spec:
        return spec["path"].stem
    return f"line-{str(spec['origin']).rpartition(':')[2]}"


def bad_item(index: int, item_id: str, origin: str, error: str) -> BatchItem:
    """A manifest row that could not be read: reported as a failed item, never processed."""
    return BatchItem(index=index, id=item_id, input=origin, output=None, origin=origin,
                     error=error)  # fmt: skip


def slugify(text: str, max_words: int = 6) -> str:
    """A file-name-safe id from the first words of a text: ``"Hello there!"`` -> ``hello-there``."""
    words = re.findall(r"[a-z0-9]+", text.lower())[:max_words]
    return "-".join(words) or "item"


# --------------------------------------------------------------------------- outputs


@dataclass(frozen=True)
class BatchItem:
    """One unit of work.

    Attributes:
        index: position in the batch, from 0.
        id: name of the item (manifest ``id``, input file stem, or a slug of the text).
        input: what the item reads (text or a path), for reports.
        output: where its main output goes; None means stdout.
        options: per-item option overrides from a manifest.
        origin: where the item was declared, for messages (``manifest.csv:4``).
        source: the file the item reads (``-`` = stdin); None when ``input`` is the data.
        error: why the item cannot run (a bad manifest row, ``file:line: why``); such an item
            is reported as failed (exit code 2 of its own) without being processed.
    """

    index: int
    id: str
    input: str
    output: Path | None
    options: Mapping[str, Any] = field(default_factory=dict)
    origin: str = ""
    source: Path | None = None
    error: str | None = None


def format_output(template: str, *, item_id: str, index: int, source: Path | None = None) -> Path:
    """Fill an output template: ``{id}``, ``{stem}`` (input file stem or id), ``{index}``
    (from 1, zero-padded to 4), ``{parent}`` (the input's folder name).

    Raises:
        InputError: the template names an unknown field.
    """
    fields = {
        "id": item_id,
        "stem": source.stem if source else item_id,
        "index": f"{index + 1:04d}",
        "parent": source.parent.name if source else "",
    }
    try:
        return Path(template.format(**fields))
    except (KeyError, IndexError, ValueError) as exc:
        raise InputError(
            f"output template {template!r}: unknown field {exc}; use {{id}}, {{stem}}, "
            "{index} or {parent}"
        ) from exc


def unique_ids(ids: Sequence[str]) -> list[str]:
    """Make ids unique by suffixing repeats: ``a, a, b`` -> ``a, a-2, b``."""
    seen: dict[str, int] = {}
    out = []
    for item_id in ids:
        seen[item_id] = seen.get(item_id, 0) + 1
        out.append(item_id if seen[item_id] == 1 else f"{item_id}-{seen[item_id]}")
    return out


OVERWRITE_POLICIES = ("refuse", "skip", "overwrite")


def check_outputs(items: Sequence[BatchItem], policy: str) -> None:
    """Refuse, before any work, outputs that collide or exist without a policy.

    Raises:
        InputError: two items write the same file, or a file exists and ``policy`` is
            "refuse" (the message lists them and names ``--overwrite``/``--skip-existing``).
    """
    outputs = [i.output for i in items if i.output is not None]
    clashes = sorted({str(p) for p in outputs if outputs.count(p) > 1})
    if clashes:
        raise InputError(
            f"several items would write {', '.join(clashes[:3])}: put {{id}} or {{stem}} in -o"
        )
    if policy == "refuse":
        existing = [str(p) for p in outputs if p.exists()]
        if existing:
            more = f" and {len(existing) - 3} more" if len(existing) > 3 else ""
            verb, them = ("exists", "it") if len(existing) == 1 else ("exist", "them")
            raise InputError(
                f"{', '.join(existing[:3])}{more} already {verb}; pass --overwrite to replace "
                f"{them} or --skip-existing to keep {them}"
            )


def versions() -> dict[str, str]:
    """Versions that can change an output: avtool, Python, platform and numerical libraries."""
    from importlib import metadata

    from avtool import __version__

    out = {
        "avtool": __version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }
    for dist in ("numpy", "onnxruntime", "torch", "piper-tts", "hibari-tts", "soxr", "soundfile"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return out


# --------------------------------------------------------------------------- device


def resolve_device(requested: str, engine: str = "torch") -> str:
    """Turn ``auto|cpu|cuda`` into the device a model will run on.

    Args:
        requested: the ``--device`` value.
        engine: "torch" or "onnx" (onnxruntime has its own CUDA provider).

    Raises:
        SetupError: cuda was asked for and is not available to ``engine``.
    """
    if requested == "cpu":
        return "cpu"
    if engine == "onnx":
        import onnxruntime as ort

        available = "CUDAExecutionProvider" in ort.get_available_providers()
    else:
        import torch

        available = torch.cuda.is_available()
    if requested == "cuda" and not available:
        raise SetupError(f"--device cuda: CUDA is not available to {engine} on this machine")
    return "cuda" if available else "cpu"


# --------------------------------------------------------------------------- batch


@dataclass
class ItemResult:
    """The outcome of one item, as written to the status report."""

    id: str
    input: str
    output: str | None
    status: str  # "ok", "skipped" or "failed"
    seconds: float = 0.0
    error: str | None = None
    exit_code: int = 0
    outputs: list[str] = field(default_factory=list)


@dataclass
class BatchSummary:
    """All item results and the process exit code they imply."""

    results: list[ItemResult]

    @property
    def failed(self) -> list[ItemResult]:
        return [r for r in self.results if r.status == "failed"]

    @property
    def exit_code(self) -> int:
        failed = self.failed
        if not failed:
            return int(ExitCode.OK)
        # One item: its own reason (2 bad input, 3 model, 4 environment) is most useful.
        if len(self.results) == 1:
            return failed[0].exit_code
        return int(ExitCode.ITEM_FAILED)

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": sum(r.status == "ok" for r in self.results),
            "skipped": sum(r.status == "skipped" for r in self.results),
            "failed": len(self.failed),
            "exit_code": self.exit_code,
            "items": [asdict(r) for r in self.results],
        }


ProcessFn = Callable[[BatchItem], Sequence[Path]]


def run_batch(
    items: Sequence[BatchItem],
    process: ProcessFn,
    *,
    policy: str = "refuse",
    report: Path | None = None,
    quiet: bool = False,
    label: str = "items",
) -> BatchSummary:
    """Run ``process`` on every item, keep going past failures, and report.

    Args:
        items: the work; outputs should already have passed :func:`check_outputs`.
        process: writes an item's outputs and returns their paths (the main output
            first; stdout outputs are not listed). It raises on failure.
        policy: "refuse", "skip" (keep existing outputs) or "overwrite".
        report: JSONL status file, one line per item, written as items finish.
        quiet: no progress bar.
        label: what the items are, for the progress bar.

    Returns:
        The results; an item whose declared outputs are missing or empty counts as failed.
    """
    results = collect_results((_run_item(item, process, policy) for item in items), len(items),
                              report=report, quiet=quiet, label=label)  # fmt: skip
    return summarise_results(results)


def collect_results(
    results: Iterable[ItemResult],
    total: int,
    *,
    report: Path | None = None,
    quiet: bool = False,
    label: str = "items",
    announce: bool = True,
) -> list[ItemResult]:
    """Drain ``results`` under a progress bar, appending each to the JSONL ``report`` as it
    arrives (so a killed batch keeps the lines of what finished).

    Args:
        results: item results as they finish (a generator that does the work).
        total: how many to expect, for the bar.
        report: JSONL status file, one line per item.
        quiet: no progress bar and no ``wrote ...`` lines.
        label: what the items are, for the progress bar.
        announce: print ``wrote out.wav (...)`` for each written item.

    Returns:
        The results in arrival order.
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    collected: list[ItemResult] = []
    progress = Progress(
        "[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
        TimeRemainingColumn(), console=stderr_console(quiet), disable=quiet or total < 2,
        transient=True,
    )  # fmt: skip
    with contextlib.ExitStack() as stack:
        report_file = None
        if report is not None:
            ensure_parent_writable(report)
            report_file = stack.enter_context(open(report, "w", encoding="utf-8"))
        stack.enter_context(progress)
        task = progress.add_task(label, total=total)
        for result in results:
            collected.append(result)
            if announce and not quiet and result.status == "ok" and result.outputs:
                progress.console.print(wrote_line(Path(result.outputs[0])),
                                       highlight=False, markup=False)  # fmt: skip
            if report_file is not None:
                report_file.write(json.dumps(asdict(result)) + "\n")
                report_file.flush()
            progress.advance(task)
    return collected


def summarise_results(results: list[ItemResult]) -> BatchSummary:
    """Log every failed item on stderr (a bad manifest row's error already names file:line)
    and wrap the results, in the order given, as the batch's summary."""
    for result in results:
        if result.status == "failed" and str(result.error).startswith(f"{result.input}:"):
            log.error("%s", result.error)
        elif result.status == "failed":
            log.error("%s: %s", result.id, result.error)
    return BatchSummary(results)


def wrote_line(output: Path) -> str:
    """``wrote out.wav (7.9 s, piper-joe-medium)``: what was written, read from its sidecar."""
    facts = []
    try:
        meta = json.loads(sidecar_path(output).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        meta = {}
    media = meta.get("audio") if isinstance(meta.get("audio"), dict) else meta.get("video")
    duration = media.get("duration") if isinstance(media, dict) else None
    if isinstance(duration, int | float):
        facts.append(f"{duration:.1f} s")
    model = meta.get("model")
    name = model.get("name") if isinstance(model, dict) else model
    if isinstance(name, str):
        facts.append(name)
    return f"wrote {output}" + (f" ({', '.join(facts)})" if facts else "")


def _run_item(item: BatchItem, process: ProcessFn, policy: str) -> ItemResult:
    result = ItemResult(item.id, item.input, str(item.output) if item.output else None, "ok")
    if item.error is not None:
        result.status, result.error, result.exit_code = "failed", item.error, int(ExitCode.USAGE)
        return result
    if item.output is not None and policy == "skip" and _non_empty(item.output):
        result.status = "skipped"
        return result
    start = time.perf_counter()
    try:
        written = list(process(item))
        missing = [str(p) for p in written if not _non_empty(p)]
        if missing:
            raise SetupError(f"declared output missing or empty: {', '.join(missing)}")
        result.outputs = [str(p) for p in written]
    except AvtoolError as exc:
        result.status, result.error, result.exit_code = "failed", str(exc), int(exc.exit_code)
    except (OSError, ValueError, RuntimeError) as exc:
        # Unexpected failures still must not stop a batch of thousands of files.
        log.debug("item %s failed", item.id, exc_info=True)
        result.status, result.error = "failed", f"{type(exc).__name__}: {exc}"
        result.exit_code = int(ExitCode.ITEM_FAILED)
    result.seconds = round(time.perf_counter() - start, 4)
    return result


def _non_empty(path: Path) -> bool:
    try:
        return path.stat().st_size > 0
    except OSError:
        return False


def print_summary(summary: BatchSummary, *, as_json: bool, quiet: bool) -> None:
    """Print the JSON summary on stdout (``--json``) or a one-line summary on stderr."""

    if as_json:
        print(json.dumps(summary.to_json(), indent=2, default=str))
        return
    data = summary.to_json()
    if len(summary.results) > 1:  # a single item's error line already says it all
        stderr_console(quiet and not data["failed"]).print(
            f"{data['ok']} done, {data['skipped']} skipped, {data['failed']} failed"
        )


def environment_flag(name: str) -> bool:
    """True when the environment variable is set to anything but "", 0, false or no."""
    return os.environ.get(name, "").strip().lower() not in ("", "0", "false", "no")
