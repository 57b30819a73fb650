"""The shared step loop: cadence, resume count, time bound, non-finite losses."""

from __future__ import annotations

import math

import pytest

from avtool.errors import InputError, ModelError
from avtool.training.loop import Cadence, run_steps


class Calls:
    """Records what :func:`run_steps` asked for."""

    def __init__(self, losses: dict[int, float] | None = None) -> None:
        self.updates: list[int] = []
        self.reports: list[tuple[int, float]] = []
        self.saves: list[int] = []
        self.losses = losses or {}

    def update(self, step: int) -> dict[str, float]:
        self.updates.append(step)
        return {"loss": self.losses.get(step, 1.0 / (step + 1))}

    def report(self, done: int, losses, seconds: float) -> None:
        assert seconds >= 0
        self.reports.append((done, losses["loss"]))

    def save(self, done: int) -> None:
        self.saves.append(done)

    def run(self, start: int, cadence: Cadence, **flags) -> int:
        return run_steps(start, cadence, self.update, self.report, self.save, **flags)


def test_cadence_reports_and_saves_every_n_steps_and_after_the_last():
    calls = Calls()
    assert calls.run(0, Cadence(7, log_every=3, checkpoint_every=5)) == 7
    assert calls.updates == list(range(7))
    assert [d for d, _ in calls.reports] == [3, 6, 7]
    assert calls.reports[0] == (3, 1.0 / 3)  # the losses of the update that ended there
    assert calls.saves == [5, 7]


def test_resumed_runs_count_on_and_report_first_reports_their_first_step():
    calls = Calls()
    assert calls.run(4, Cadence(9, log_every=3, checkpoint_every=100), report_first=True) == 9
    assert calls.updates == [4, 5, 6, 7, 8]
    assert [d for d, _ in calls.reports] == [5, 6, 9]
    assert calls.saves == [9]


def test_nothing_left_to_do_saves_only_when_asked():
    calls = Calls()
    assert calls.run(5, Cadence(5, 1, 1)) == 5
    assert calls.updates == calls.saves == calls.reports == []
    assert calls.run(5, Cadence(3, 1, 1), save_if_idle=True) == 5
    assert calls.saves == [5]


def test_time_bound_stops_after_the_step_that_passes_it_with_a_report_and_a_save():
    calls = Calls()
    assert calls.run(2, Cadence(50, log_every=10, checkpoint_every=10, max_seconds=0.0)) == 3
    assert calls.updates == [2] and calls.reports == [(3, 1.0 / 3)] and calls.saves == [3]


def test_a_non_finite_loss_stops_the_run_before_it_is_saved():
    calls = Calls({2: math.nan})
    with pytest.raises(ModelError, match="step 3: a loss is not finite"):
        calls.run(0, Cadence(10, log_every=1, checkpoint_every=1))
    assert calls.saves == [1, 2]


def test_cadence_refuses_intervals_below_one():
    with pytest.raises(InputError, match="log_every and checkpoint_every must be positive"):
        Cadence(10, log_every=0, checkpoint_every=5)
