"""The step loop the step-counted trainers share (HiFi-GAN, AnyoneNet's predictor and renderer).

Each trainer supplies what one update does, what a log step records and what a checkpoint
writes; :func:`run_steps` owns the rest, once: counting steps from where a resumed run stopped,
refusing a non-finite loss, the log and checkpoint cadence (every ``log_every`` /
``checkpoint_every`` steps and after the last), and the wall-clock bound (the step that passes
``max_seconds`` is logged and checkpointed, then the run stops). Steps are counted, not timed,
so a run that is not stopped by the clock repeats exactly.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from avtool.errors import InputError, ModelError

__all__ = ["Cadence", "run_steps"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Cadence:
    """How far a run goes and how often it reports and saves.

    Attributes:
        steps: total updates to reach.
        log_every: report every this many updates (and after the last one).
        checkpoint_every: save every this many updates (and after the last one).
        max_seconds: stop after the first update that ends this long after the loop began
            (it is reported and saved); None runs to ``steps``.

    Raises:
        InputError: ``log_every`` or ``checkpoint_every`` below 1 (so a trainer that builds
            its cadence first refuses them before doing any work).
    """

    steps: int
    log_every: int
    checkpoint_every: int
    max_seconds: float | None = None

    def __post_init__(self) -> None:
        if self.log_every < 1 or self.checkpoint_every < 1:
            raise InputError(
                f"log_every and checkpoint_every must be positive, got {self.log_every} and "
                f"{self.checkpoint_every}"
            )


def run_steps(
    start: int,
    cadence: Cadence,
    update: Callable[[int], Mapping[str, float]],
    report: Callable[[int, Mapping[str, float], float], None],
    save: Callable[[int], None],
    *,
    report_first: bool = False,
    save_if_idle: bool = False,
) -> int:
    """Run ``update`` for steps ``start`` .. ``cadence.steps - 1`` (0-based), logging and saving.

    Args:
        start: updates already done (a resumed run's step).
        cadence: the total, the log and checkpoint intervals and the time bound.
        update: makes update ``step`` (0-based) and returns its losses as floats.
        report: called on a log step with ``(done, losses, seconds)``: the updates done in
            total, that update's losses, and the seconds since this call began.
        save: called on a checkpoint step with the updates done.
        report_first: also report the first update of this call (a resumed run's too).
        save_if_idle: save once when no update is left to make (``start >= steps``).

    Returns:
        The updates done in total.

    Raises:
        ModelError: a loss that is NaN or infinite (naming the step); nothing is saved for it.
    """
    steps, max_seconds = cadence.steps, cadence.max_seconds
    began = time.monotonic()
    done = start
    while done < steps:
        losses = update(done)
        done += 1
        if not all(math.isfinite(v) for v in losses.values()):
            raise ModelError(
                f"step {done}: a loss is not finite ({dict(losses)}); lower the learning rate "
                "or check the data"
            )
        elapsed = time.monotonic() - began
        out_of_time = max_seconds is not None and elapsed >= max_seconds
        last = done == steps or out_of_time
        if done % cadence.log_every == 0 or last or (report_first and done == start + 1):
            report(done, losses, elapsed)
        if done % cadence.checkpoint_every == 0 or last:
            save(done)
        if out_of_time:
            log.info("stopping after step %d: %.0f s limit reached", done, max_seconds)
            break
    if done == start and save_if_idle:
        save(done)
    return done
