"""Error types and the process exit codes they map to.

Exit codes (documented in the README; scripts and Makefiles rely on them):

    0  every declared output exists and is non-empty
    1  a batch ran but one or more items failed (see the status report)
    2  usage error or bad input: bad option, empty text, undecodable file, no face, ...
    3  model error: unknown model, missing while offline, checksum mismatch, licence not accepted
    4  environment error: ffmpeg missing, CUDA asked for but absent, output not writable
    130 interrupted (Ctrl-C)
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    ITEM_FAILED = 1
    USAGE = 2
    MODEL = 3
    ENVIRONMENT = 4
    INTERRUPTED = 130


class AvtoolError(Exception):
    """Base class: a failure with a user-facing message and an exit code."""

    exit_code: ExitCode = ExitCode.USAGE


class InputError(AvtoolError):
    """The input (text, file, option value) cannot be used. Name the file and line/frame."""

    exit_code = ExitCode.USAGE


class ModelError(AvtoolError):
    """A model cannot be resolved, verified, licensed or loaded."""

    exit_code = ExitCode.MODEL


class SetupError(AvtoolError):
    """The environment lacks something: ffmpeg, CUDA, a writable output folder."""

    exit_code = ExitCode.ENVIRONMENT
