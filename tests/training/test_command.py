"""The trainers' shared command line: flags, options handed on by name, exit codes."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

import pytest

from avtool.errors import InputError
from avtool.training.command import (
    REQUIRED,
    add_flags,
    call_with_flags,
    defaults_of,
    run_command,
)


def fit(data: str, out: Path, *, epochs: int = 3, lr: float = 0.1, note: str = "") -> dict:
    return {"data": data, "out": out, "epochs": epochs, "lr": lr, "note": note}


@dataclass(frozen=True)
class Settings:
    batch_size: int = 4
    learning_rate: float = 1e-3
    seed: int = 0


def test_flags_have_one_type_and_the_trainers_defaults():
    parser = add_flags(argparse.ArgumentParser(), out=REQUIRED, **defaults_of(fit, "epochs", "lr"))
    add_flags(parser, max_minutes=None)
    args = parser.parse_args(["--out", "runs/a", "--epochs", "7", "--max-minutes", "1.5"])
    assert args.out == Path("runs/a") and args.epochs == 7 and args.lr == 0.1
    assert args.max_minutes == 1.5
    with pytest.raises(SystemExit):
        parser.parse_args([])  # --out is required
    with pytest.raises(KeyError):
        add_flags(parser, nonsense=1)
    with pytest.raises(KeyError, match="no default for data"):
        defaults_of(fit, "data")


def test_options_go_to_the_parameters_of_the_same_name():
    args = argparse.Namespace(epochs=9, lr=0.5, batch_size=2, seed=7, out="unused", threads=1)
    got = call_with_flags(fit, args, "clips", Path("o"), note="given")
    assert got == {"data": "clips", "out": Path("o"), "epochs": 9, "lr": 0.5, "note": "given"}
    settings = call_with_flags(Settings, args, learning_rate=args.lr)
    assert settings == Settings(batch_size=2, learning_rate=0.5, seed=7)


def test_run_command_turns_errors_into_exit_codes(capsys):
    def fail() -> None:
        raise InputError("bad.txt: no clips")

    assert run_command(fail) == 2
    assert capsys.readouterr().err.strip() == "error: bad.txt: no clips"
    assert run_command(lambda: None) == 0 and run_command(lambda: 3) == 3
