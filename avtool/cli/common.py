"""What every command shares: global options, error reporting, the console."""

from __future__ import annotations

import dataclasses
import functools
import inspect
import logging
import sys
import typing
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import typer

from avtool.cli import flags
from avtool.engines import BatchOptions, RunSettings
from avtool.errors import AvtoolError, ExitCode
from avtool.io.console import stderr_console
from avtool.runtime import BatchSummary, print_summary

F = TypeVar("F", bound=Callable[..., Any])

DEVICE_CHOICES = ("auto", "cpu", "cuda")


@dataclass(frozen=True)
class GlobalOptions:
    """Options every command takes, before or after the subcommand (``avtool --seed 3 tts ...``
    and ``avtool tts ... --seed 3`` mean the same). Each default is defined here, once."""

    device: str = "auto"
    quiet: bool = False
    verbose: bool = False
    seed: int = 0
    json: bool = False
    accept_license: bool = False

    @property
    def offline(self) -> bool:
        from avtool.runtime import environment_flag

        return environment_flag("AVTOOL_OFFLINE")


@dataclass(frozen=True)
class _GlobalSpec:
    """How one :class:`GlobalOptions` field is spelt on the command line."""

    field: str
    flags: tuple[str, ...]
    help: str
    envvar: str | None = None


# One definition of each global option; the root command and every subcommand are given the
# same flags from this table (see :func:`with_global_options`).
_GLOBAL_SPECS = (
    _GlobalSpec("device", ("--device",), "auto, cpu or cuda (cuda fails when CUDA is absent)."),
    _GlobalSpec("quiet", ("--quiet", "-q"), "No progress bars, info logs or 'wrote' lines."),
    _GlobalSpec("verbose", ("--verbose", "-v"), "Debug logs."),
    _GlobalSpec("seed", ("--seed",), "Random seed; same seed + inputs = same bytes."),
    _GlobalSpec("json", ("--json",), "Print a machine-readable JSON summary on stdout."),
    _GlobalSpec(
        "accept_license",
        ("--accept-license",),
        "Accept non-commercial model licences (the face landmarks need it).",
        envvar="AVTOOL_ACCEPT_LICENSE",
    ),
)
_PREFIX = "global_"


def _global_parameters(root: bool) -> list[inspect.Parameter]:
    """Keyword-only typer parameters for the global options.

    On the root they carry :class:`GlobalOptions`' defaults; after a subcommand they default to
    "not given" (``None``, or ``False`` for flags) so that they only override what was given
    before the subcommand.
    """
    defaults = GlobalOptions()
    params = []
    for spec in _GLOBAL_SPECS:
        default = getattr(defaults, spec.field)
        kind = type(default)
        given = default if root or kind is bool else None
        option = typer.Option(
            given,
            *spec.flags,
            help=spec.help,
            envvar=spec.envvar,
            show_default=root,
            rich_help_panel=None if root else "Global options (also before the subcommand)",
        )
        params.append(
            inspect.Parameter(
                _PREFIX + spec.field,
                inspect.Parameter.KEYWORD_ONLY,
                default=option,
                annotation=kind if root or kind is bool else kind | None,
            )
        )
    return params


def _validated(options: GlobalOptions) -> GlobalOptions:
    if options.device not in DEVICE_CHOICES:
        raise typer.BadParameter(
            f"{options.device!r} is not one of {', '.join(DEVICE_CHOICES)}", param_hint="--device"
        )
    return options


def with_global_options(func: F, *, root: bool = False) -> F:
    """Give a command the global options (``--seed``, ``--json``, ...) as its own flags.

    The wrapped command takes them after its own arguments; their values are merged into the
    root context's :class:`GlobalOptions` (a value given after the subcommand wins over one
    given before it), which :func:`global_options` then returns. ``root=True`` is for the root
    callback: it creates the :class:`GlobalOptions` from its flags.
    """
    signature = inspect.signature(func, eval_str=True)
    extra = _global_parameters(root)
    # typer hands the context to the one parameter annotated typer.Context: reuse the
    # command's own, or add one.
    ctx_name = next(
        (p.name for p in signature.parameters.values() if p.annotation is typer.Context), None
    )
    if ctx_name is None:
        ctx_name = _PREFIX + "ctx"
        extra.append(
            inspect.Parameter(ctx_name, inspect.Parameter.KEYWORD_ONLY, annotation=typer.Context)
        )
    own_ctx = ctx_name in signature.parameters

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        given = {spec.field: kwargs.pop(_PREFIX + spec.field) for spec in _GLOBAL_SPECS}
        ctx = kwargs[ctx_name] if own_ctx else kwargs.pop(ctx_name)
        top = ctx.find_root()
        if root:
            options = _validated(GlobalOptions(**given))
        else:
            current = top.obj if isinstance(top.obj, GlobalOptions) else GlobalOptions()
            changes = {k: v for k, v in given.items() if v is not None and v is not False}
            options = _validated(dataclasses.replace(current, **changes))
        if root or options.quiet != GlobalOptions().quiet or options.verbose:
            configure_logging(options.quiet, options.verbose)
        top.obj = options
        ctx.obj = options
        return func(*args, **kwargs)

    wrapper.__signature__ = signature.replace(  # type: ignore[attr-defined]
        parameters=[*signature.parameters.values(), *extra]
    )
    return wrapper  # type: ignore[return-value]


def global_options(ctx: typer.Context) -> GlobalOptions:
    """The :class:`GlobalOptions` of this invocation (defaults when called without the root)."""
    root = ctx.find_root()
    obj = root.obj if root is not None else None
    return obj if isinstance(obj, GlobalOptions) else GlobalOptions()


def overwrite_policy(overwrite: bool, skip_existing: bool) -> str:
    """The batch runner's policy for existing outputs from the two CLI flags.

    Raises:
        typer.BadParameter: both flags given.
    """
    if overwrite and skip_existing:
        raise typer.BadParameter("--overwrite and --skip-existing exclude each other")
    return "overwrite" if overwrite else "skip" if skip_existing else "refuse"


def finish(summary: BatchSummary, opts: GlobalOptions, *, as_json: bool | None = None) -> NoReturn:
    """Print a batch command's summary (JSON with ``--json``, nothing with ``--quiet``) and exit
    with its code (0 only when every item's outputs exist).

    Args:
        summary: what the task's ``run`` returned.
        opts: the global options.
        as_json: override ``opts.json`` (False when the JSON would mix with audio on stdout).
    """
    as_json = opts.json if as_json is None else as_json
    print_summary(summary, as_json=as_json, quiet=opts.quiet)
    raise typer.Exit(summary.exit_code)


def _invocation_options(args: tuple[Any, ...], kwargs: dict[str, Any]) -> GlobalOptions:
    """The global options of the command called with these arguments: its own typer.Context
    (every avtool command takes one) holds them, merged by :func:`with_global_options` before
    the command's other wrappers run; defaults for a command without a context."""
    context = next((v for v in (*args, *kwargs.values()) if hasattr(v, "find_root")), None)
    return global_options(context) if context is not None else GlobalOptions()


def with_options(
    cls: type,
    specs: Sequence[flags.Spec],
    *,
    into: str = "options",
    panel: str | None = None,
) -> Callable[[F], F]:
    """Give a command the options ``specs`` and hand it their values as one ``cls``.

    Each option's default is its field's in ``cls()`` (the one definition of every default);
    fields without an option keep theirs, and ``seed``, when ``cls`` has one, is the global
    ``--seed``. The command receives the instance as its argument ``into``, which the command
    line does not show, and never the options one by one.

    Args:
        cls: a task's frozen options dataclass (every field has a default).
        specs: the fields given on the command line.
        into: the command's parameter that receives the ``cls``.
        panel: the ``--help`` panel of these options (None: the command's own).
    """
    defaults = cls()
    hints = typing.get_type_hints(cls)
    fields = {f.name for f in dataclasses.fields(cls)}
    prefix = f"{into}_"

    def decorate(func: F) -> F:
        signature = inspect.signature(func, eval_str=True)
        extra = [
            inspect.Parameter(
                prefix + spec.field,
                inspect.Parameter.KEYWORD_ONLY,
                annotation=spec.type or hints[spec.field],
                default=spec.option(getattr(defaults, spec.field), panel=panel),
            )
            for spec in specs
        ]

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            values = {}
            for spec in specs:
                given = kwargs.pop(prefix + spec.field)
                values[spec.field] = spec.parse(given) if spec.parse else given
            if "seed" in fields and "seed" not in values:
                values["seed"] = _invocation_options(args, kwargs).seed
            return func(*args, **kwargs, **{into: cls(**values)})

        own = [p for name, p in signature.parameters.items() if name != into]
        wrapper.__signature__ = signature.replace(parameters=[*own, *extra])  # type: ignore[attr-defined]
        return wrapper  # type: ignore[return-value]

    return decorate


@dataclass(frozen=True)
class _OutputPolicy:
    """What a batch does with outputs that exist, and where its per-item report goes."""

    overwrite: bool = False
    skip_existing: bool = False
    report: Path | None = None


_OUTPUT_SPECS = (
    flags.Spec("overwrite", "--overwrite", "Replace existing outputs."),
    flags.Spec(
        "skip_existing", "--skip-existing", "Keep existing outputs; make only the missing ones."
    ),
    flags.Spec("report", "--report", "Write a JSONL status line per item."),
)
_BATCH_SPECS = (
    flags.Spec(
        "engine",
        "--engine",
        "local (this process) or ray (a Ray cluster at $RAY_ADDRESS, else one started on this "
        "machine; shared filesystem assumed).",
    ),
    flags.Spec(
        "shard",
        "--shard",
        "I/N: only the I-th of N parts of the items (by sorted id), e.g. $SLURM_ARRAY_TASK_ID/N.",
    ),
    flags.Spec(
        "workers",
        "--workers",
        "Ray workers, each loading the model once (default: one per CPU, or per GPU with "
        "--device cuda).",
    ),
)


def with_batch_options(func: F) -> F:
    """Give a batch command its shared options, defined once here: ``--overwrite``,
    ``--skip-existing`` and ``--report``, and ``--engine``, ``--shard`` and ``--workers``
    (defaults from :class:`avtool.engines.BatchOptions`).

    The command receives them, with the global ``--device``, ``--accept-license`` and
    ``--quiet``, as one argument of its signature that the CLI does not show: ``settings``, a
    :class:`avtool.engines.RunSettings` (the policy from :func:`overwrite_policy`, a validated
    :class:`BatchOptions`), which it hands to its task's ``run``.
    """
    signature = inspect.signature(func, eval_str=True)

    @functools.wraps(func)
    def wrapper(*args: Any, outputs: _OutputPolicy, batch: BatchOptions, **kwargs: Any) -> Any:
        opts = _invocation_options(args, kwargs)
        settings = RunSettings(
            device=opts.device,
            accept_license=opts.accept_license,
            policy=overwrite_policy(outputs.overwrite, outputs.skip_existing),
            report=outputs.report,
            quiet=opts.quiet,
            batch=batch.validated(),
        )
        return func(*args, settings=settings, **kwargs)

    own = [p for name, p in signature.parameters.items() if name != "settings"]
    wrapper.__signature__ = signature.replace(parameters=own)  # type: ignore[attr-defined]
    with_outputs = with_options(_OutputPolicy, _OUTPUT_SPECS, into="outputs")(wrapper)
    return with_options(BatchOptions, _BATCH_SPECS, into="batch", panel="Batch options")(
        with_outputs
    )


def batch_command(cls: type, specs: Sequence[flags.Spec]) -> Callable[[F], F]:
    """Make a function a batch command: the options ``specs`` reach it as one ``cls``,
    ``options`` (:func:`with_options`), the batch options as ``settings``
    (:func:`with_batch_options`), and the :class:`BatchSummary` it returns is printed and
    gives the exit code (:func:`finish`; a command that calls :func:`finish` itself, to
    choose ``as_json``, never returns). The function takes a ``typer.Context``: the global
    options reach the decorators through it.
    """

    def decorate(func: F) -> F:
        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> NoReturn:
            summary = func(*args, **kwargs)
            finish(summary, _invocation_options(args, kwargs))

        return with_batch_options(with_options(cls, specs)(wrapper))

    return decorate


class _LevelFormatter(logging.Formatter):
    """``error: message`` lines: unwrapped, so batch logs can be grepped line by line."""

    def format(self, record: logging.LogRecord) -> str:
        return f"{record.levelname.lower()}: {super().format(record)}"


def configure_logging(quiet: bool, verbose: bool) -> None:
    """Log to stderr, one line per message; ``--quiet`` keeps warnings and errors only."""
    level = logging.WARNING if quiet else (logging.DEBUG if verbose else logging.INFO)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_LevelFormatter("%(message)s"))
    logger = logging.getLogger("avtool")
    logger.handlers[:] = [handler]
    logger.setLevel(level)
    logger.propagate = False


def handle_errors(func: F) -> F:
    """Turn :class:`AvtoolError` into a one-line message and its documented exit code."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except AvtoolError as exc:
            from rich.markup import escape

            stderr_console().print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False)
            raise typer.Exit(int(exc.exit_code)) from None
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
            raise typer.Exit(int(ExitCode.INTERRUPTED)) from None

    return wrapper  # type: ignore[return-value]
