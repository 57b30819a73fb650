"""Where a batch runs: in this process (``local``) or on a Ray cluster (``ray``); all items or
one shard of them (``--shard I/N``, for Slurm arrays).

Every batch task is split into a *worker factory* and the items. The factory runs once per
worker and returns the per-item function::

    def worker() -> ProcessFn:      # load the model(s) once
        model = load(...)
        def process(item): ...       # write one item's outputs, return their paths
        return process

The local engine calls the factory once in this process and hands the function to
:func:`avtool.runtime.run_batch`. The Ray engine ships the factory (cloudpickled, with the
options it closes over) to a pool of actors; each actor calls it once, so each holds one loaded
model, and runs items through the same per-item step as the local runner
(:func:`avtool.runtime.run_item`: ``--skip-existing``, atomic outputs checked non-empty, a bad
item reported, never raised). Results stream back into the same ``--report`` JSONL (one line per
item, in completion order) and the same summary (in item order).

Ray assumes a shared filesystem: inputs are read and outputs written by the workers at the
driver's paths (each actor changes to the driver's working directory), as on an NFS/Lustre
cluster or a single machine.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from avtool.errors import AvtoolError, ExitCode, InputError, SetupError
from avtool.runtime import (
    BatchItem,
    BatchSummary,
    ItemResult,
    ProcessFn,
    collect_results,
    run_batch,
    summarise_results,
)
from avtool.runtime import _run_item as run_item

log = logging.getLogger(__name__)

ENGINES = ("local", "ray")
#: A worker factory: called once per worker (loads the models), returns the per-item function.
WorkerFactory = Callable[[], ProcessFn]
#: Items in flight per Ray actor: one running, one queued, so an actor never waits for the
#: driver between items.
IN_FLIGHT_PER_WORKER = 2
#: Object store of a Ray started here: items and results are small records, never tensors.
LOCAL_OBJECT_STORE_BYTES = 128 * 1024**2
#: Ray reads this at import: "0" keeps a Ray started here on 127.0.0.1 (no cluster ports).
RAY_LOOPBACK_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"
RAY_INSTALL_HINT = "pip install 'avtool[ray]'"
#: Environment variables of the driver that every Ray worker gets (AVTOOL_OFFLINE, ...).
ENV_PREFIX = "AVTOOL_"


@dataclass(frozen=True)
class BatchOptions:
    """How a batch runs; the CLI's ``--engine``, ``--shard`` and ``--workers`` read these
    defaults.

    Attributes:
        engine: ``local`` (this process) or ``ray`` (actors on ``$RAY_ADDRESS``, or a Ray
            started on this machine, on loopback only).
        shard: ``I/N`` (1 <= I <= N): only the I-th of N stable parts of the items
            (:func:`shard_items`); None = all items.
        workers: Ray actors (each loads the model once); None = one per CPU of the cluster
            (one per GPU with ``--device cuda``), at most one per item.
    """

    engine: str = "local"
    shard: str | None = None
    workers: int | None = None

    def validated(self) -> BatchOptions:
        """Raises InputError for an unknown engine, a bad shard or a worker count below 1."""
        if self.engine not in ENGINES:
            raise InputError(f"--engine {self.engine!r}: choose from {', '.join(ENGINES)}")
        if self.shard is not None:
            parse_shard(self.shard)
        if self.workers is not None and self.workers < 1:
            raise InputError(f"--workers {self.workers}: must be at least 1")
        return self

    def select(self, items: Sequence[BatchItem]) -> list[BatchItem]:
        """The items of this shard (all of them without ``--shard``), in batch order."""
        return list(items) if self.shard is None else shard_items(items, self.shard)


@dataclass(frozen=True)
class RunSettings:
    """How a subcommand's batch runs, the same for every task's ``run``: one object instead
    of six keyword arguments repeated in every task and every CLI command.

    Attributes:
        device: ``auto``, ``cpu`` or ``cuda`` (``--device``).
        accept_license: non-commercial model licences accepted (``--accept-license``).
        policy: existing outputs: ``refuse``, ``overwrite`` or ``skip``
            (``--overwrite`` / ``--skip-existing``).
        report: a JSONL status line per item is written here (``--report``); None = none.
        quiet: no progress bar and no "wrote" lines (``--quiet``).
        batch: engine, shard and workers (``--engine`` / ``--shard`` / ``--workers``).
    """

    device: str = "auto"
    accept_license: bool = False
    policy: str = "refuse"
    report: Path | None = None
    quiet: bool = False
    batch: BatchOptions = BatchOptions()


# --------------------------------------------------------------------------- shards


def parse_shard(text: str) -> tuple[int, int]:
    """``"2/8"`` -> ``(2, 8)``.

    Raises:
        InputError: not ``I/N`` with 1 <= I <= N.
    """
    try:
        index, count = (int(part) for part in text.split("/"))
    except ValueError:
        raise InputError(f"--shard {text!r}: give I/N, e.g. 1/4 (the first of four)") from None
    if not 1 <= index <= count:
        raise InputError(f"--shard {text}: need 1 <= I <= N")
    return index, count


def shard_items(items: Sequence[BatchItem], shard: str) -> list[BatchItem]:
    """The ``I``-th of ``N`` parts of a batch: the items at positions ``I-1, I-1+N, ...`` of the
    batch sorted by item id.

    Ids are unique within a batch (:func:`avtool.runtime.unique_ids`), so the N shards cover
    every item exactly once, and the split depends only on the set of ids, not on the order the
    inputs were listed in (a shell glob, a manifest): every array task computes the same split.
    Striding over the sorted ids balances the shards to within one item. Items keep their
    ``index``, so ``{index}`` output names match the unsharded batch.

    Raises:
        InputError: a bad ``shard``.
    """
    index, count = parse_shard(shard)
    ranked = sorted(items, key=lambda item: item.id)
    chosen = {id(item) for item in ranked[index - 1 :: count]}
    return [item for item in items if id(item) in chosen]


def merge_reports(paths: Iterable[Path], *, shards: int | None = None) -> dict[str, Any]:
    """Merge the ``--report`` JSONL files of a sharded batch into one summary.

    Args:
        paths: the per-shard reports.
        shards: the expected number of reports (the array size); a shortfall counts as failed.

    Returns:
        ``{"ok", "skipped", "failed", "reports", "missing_reports", "exit_code", "items"}``,
        ``items`` sorted by id, the summary's shape (:meth:`BatchSummary.to_json`) plus the
        report counts. ``exit_code`` is 1 when an item failed, an item id appears in two
        reports, or reports are missing.

    Raises:
        InputError: an unreadable report or a line that is not a report line (file:line named).
    """
    items: dict[str, dict[str, Any]] = {}
    duplicates: list[str] = []
    paths = sorted(Path(p) for p in paths)
    for path in paths:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise InputError(f"{path}: cannot read ({exc.strerror})") from exc
        for number, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise InputError(f"{path}:{number}: bad JSON ({exc.msg})") from exc
            if not isinstance(row, dict) or "id" not in row or "status" not in row:
                raise InputError(f"{path}:{number}: not a report line (needs id and status)")
            if row["id"] in items:
                duplicates.append(str(row["id"]))
            items[str(row["id"])] = row
    rows = [items[key] for key in sorted(items)]
    count = {s: sum(r["status"] == s for r in rows) for s in ("ok", "skipped", "failed")}
    missing = max(0, shards - len(paths)) if shards is not None else 0
    bad = count["failed"] or duplicates or missing
    return {
        **count,
        "reports": len(paths),
        "missing_reports": missing,
        "duplicate_ids": sorted(set(duplicates)),
        "exit_code": int(ExitCode.ITEM_FAILED if bad else ExitCode.OK),
        "items": rows,
    }


# --------------------------------------------------------------------------- engines


def run_items(
    items: Sequence[BatchItem],
    worker: WorkerFactory,
    settings: RunSettings | None = None,
    *,
    label: str = "items",
) -> BatchSummary:
    """Run a batch on the chosen engine with the local runner's guarantees.

    Args:
        items: the work (already sharded by the caller: :meth:`BatchOptions.select`), outputs
            checked by :func:`avtool.runtime.check_outputs`.
        worker: the worker factory (see the module docstring). Locally it runs here, before
            any item, so a bad model fails the run (exit 3) before any work; on Ray each actor
            runs it, and the first actor's error is raised here the same way.
        settings: engine and workers (``settings.batch``), the overwrite policy, the report,
            quiet; ``settings.device`` on Ray: ``cuda`` (or ``auto`` on a cluster with GPUs)
            gives each actor a share of a GPU (``num_gpus``). None = the defaults, local.
        label: the progress bar's label (:func:`avtool.runtime.run_batch`).

    Raises:
        AvtoolError: the factory failed (model, licence, device); SetupError: Ray missing.
    """
    settings = settings or RunSettings()
    batch = settings.batch.validated()
    if batch.engine == "local":
        return run_batch(items, worker(), policy=settings.policy, report=settings.report,
                         quiet=settings.quiet, label=label)  # fmt: skip
    return run_on_ray(
        items, worker, workers=batch.workers, device=settings.device, policy=settings.policy,
        report=settings.report, quiet=settings.quiet, label=label,
    )  # fmt: skip


class RayWorker:
    """One Ray actor: the factory's per-item function, loaded once in ``__init__``.

    A factory error is kept (not raised), so the driver can report it as the local runner
    would (``ready``) instead of as a dead actor.
    """

    def __init__(
        self, factory: WorkerFactory, cwd: str, policy: str, env: dict[str, str] | None = None
    ) -> None:
        self.policy = policy
        self.error: AvtoolError | None = None
        self.process: ProcessFn | None = None
        # The driver's AVTOOL_* settings (offline, cache, licence) hold on every worker.
        for key in [k for k in os.environ if k.startswith(ENV_PREFIX) and k not in (env or {})]:
            del os.environ[key]
        os.environ.update(env or {})
        try:
            if not os.path.isdir(cwd):
                raise SetupError(
                    f"{cwd}: not on this Ray node; --engine ray assumes a shared filesystem "
                    "mounted at the same path on every node"
                )
            os.chdir(cwd)  # items carry the driver's (possibly relative) paths
            self.process = factory()
        except AvtoolError as exc:
            self.error = exc

    def ready(self) -> tuple[str, str] | None:
        """None when loaded, else ``(error class name, message)`` (plain data: it crosses
        processes without needing the exception's pickling)."""
        return None if self.error is None else (type(self.error).__name__, str(self.error))

    def run(self, item: BatchItem) -> ItemResult:
        """One item through the local runner's per-item step (never raises for a bad item)."""
        assert self.process is not None  # the driver only sends items to a ready worker
        return run_item(item, self.process, self.policy)


def connect_ray(num_cpus: int | None = None) -> Any:
    """The ``ray`` module, connected: an existing session, ``$RAY_ADDRESS``, or a Ray started on
    this machine (loopback only, no dashboard, ``num_cpus`` CPUs: default all of them).

    Raises:
        SetupError: Ray is not installed or the cluster cannot be reached.
    """
    address = os.environ.get("RAY_ADDRESS")
    if not address:
        # Read by Ray at import: a one-machine Ray listens on 127.0.0.1 only.
        os.environ.setdefault(RAY_LOOPBACK_ENV, "0")
    try:
        # Optional dependency (avtool[ray]): imported only when --engine ray is asked for.
        import ray
    except ImportError:
        raise SetupError(f"--engine ray needs Ray: {RAY_INSTALL_HINT}") from None
    if ray.is_initialized():
        return ray
    try:
        if address:
            ray.init(address=address, logging_level=logging.WARNING)
        else:
            ray.init(
                num_cpus=num_cpus or os.cpu_count() or 1,
                include_dashboard=False,
                object_store_memory=LOCAL_OBJECT_STORE_BYTES,
                logging_level=logging.WARNING,
            )
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise SetupError(f"cannot start or reach Ray ({address or 'local'}): {exc}") from exc
    return ray


def _worker_shape(ray: Any, workers: int | None, device: str, n_items: int) -> tuple[int, float]:
    """``(actors, num_gpus per actor)`` for this cluster and ``--device``."""
    resources = ray.cluster_resources()
    gpus = float(resources.get("GPU", 0))
    use_gpu = device == "cuda" or (device == "auto" and gpus > 0)
    if device == "cuda" and gpus == 0:
        raise SetupError("--device cuda: the Ray cluster has no GPU")
    default = int(gpus) if use_gpu else int(resources.get("CPU", 1))
    count = max(1, min(workers or default, max(n_items, 1)))
    # Several actors on one GPU share it; an actor never asks for more than one.
    return count, (min(1.0, gpus / count) if use_gpu else 0.0)


def _failed(item: BatchItem, message: str) -> ItemResult:
    output = str(item.output) if item.output is not None else None
    return ItemResult(item.id, item.input, output, "failed", error=message,
                      exit_code=int(ExitCode.ITEM_FAILED))  # fmt: skip


def ray_results(
    items: Sequence[BatchItem],
    worker: WorkerFactory,
    *,
    workers: int | None = None,
    device: str = "auto",
    policy: str = "refuse",
) -> Iterator[ItemResult]:
    """Run items on a pool of Ray actors and yield their results as they finish.

    Raises:
        AvtoolError: a worker's factory failed (the error of the first actor, same class).
    """
    if not items:
        return
    ray = connect_ray(workers)
    count, gpus = _worker_shape(ray, workers, device, len(items))
    # max_restarts: an actor killed (OOM, a crash in native code) is rebuilt for the next
    # items; the item it was running is reported failed.
    actor_class = ray.remote(num_cpus=1, num_gpus=gpus, max_restarts=2)(RayWorker)
    env = {k: v for k, v in os.environ.items() if k.startswith(ENV_PREFIX)}
    actors = [actor_class.remote(worker, os.getcwd(), policy, env) for _ in range(count)]
    try:
        try:
            problems = ray.get([a.ready.remote() for a in actors])
        except ray.exceptions.RayError as exc:  # the factory raised something unexpected
            raise SetupError(f"a Ray worker could not start: {exc}") from exc
        for problem in problems:
            if problem is not None:
                name, message = problem
                error_class = {c.__name__: c for c in AvtoolError.__subclasses__()}
                raise error_class.get(name, AvtoolError)(message)
        queue = deque(items)
        pending: dict[Any, tuple[Any, BatchItem]] = {}

        def submit(actor: Any) -> None:
            item = queue.popleft()
            pending[actor.run.remote(item)] = (actor, item)

        for _ in range(IN_FLIGHT_PER_WORKER):
            for actor in actors:
                if queue:
                    submit(actor)
        while pending:
            (ref,), _ = ray.wait(list(pending), num_returns=1)
            actor, item = pending.pop(ref)
            try:
                result = ray.get(ref)
            except ray.exceptions.RayError as exc:
                # A crash outside the per-item handler (a dead actor, an unexpected
                # exception type): that item fails, the batch goes on.
                first = str(exc).strip().splitlines()[-1] if str(exc).strip() else ""
                result = _failed(item, f"Ray worker: {type(exc).__name__}: {first}")
            yield result
            if queue:
                submit(actor)
    finally:
        for actor in actors:
            ray.kill(actor)


def run_on_ray(
    items: Sequence[BatchItem],
    worker: WorkerFactory,
    *,
    workers: int | None = None,
    device: str = "auto",
    policy: str = "refuse",
    report: Path | None = None,
    quiet: bool = False,
    label: str = "items",
) -> BatchSummary:
    """:func:`ray_results` written to the report as they arrive, with the local runner's
    progress bar; the summary lists the items in batch order."""
    start = time.perf_counter()
    results = collect_results(
        ray_results(items, worker, workers=workers, device=device, policy=policy), len(items),
        report=report, quiet=quiet, label=f"{label} (ray)", announce=False,
    )  # fmt: skip
    log.debug("ray: %d items in %.2f s", len(results), time.perf_counter() - start)
    order = {item.id: item.index for item in items}
    results.sort(key=lambda r: order.get(r.id, 0))
    return summarise_results(results)
